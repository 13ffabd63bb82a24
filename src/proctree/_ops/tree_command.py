"""``proctree tree PID|SOCKET`` and ``proctree ps``: ask a running program for its tree.

The client side of the control socket (``control_server.py``). Every way
of not getting an answer is one line on stderr and exit status 1; a
target that is neither a PID nor an existing path is exit status 2.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import pwd
import stat
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, cast, final

import trio

from .._core import ProctreeError
from .control_server import (
    ControlError,
    list_sockets,
    runtime_dir,
)
from .tree_json import TreeDocumentError, check_schema, render_document

__all__ = [
    "BadTarget",
    "Unreachable",
    "fetch",
    "fetch_raw",
    "find_socket",
    "list_programs",
    "ps_command",
    "tree_command",
]

DEFAULT_TIMEOUT: Final = 10.0
_LIMIT: Final = 1 << 30  # 1 GiB: far above a 100,000-process document

Write = Callable[[str], object]


class BadTarget(ProctreeError):
    """The argument is neither a PID nor a socket path (exit status 2)."""


class Unreachable(ProctreeError):
    """The program could not be asked for its tree (exit status 1)."""


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _stale(path: Path, what: str) -> Unreachable:
    """Remove a socket nobody listens on (if it is ours) and say so."""
    removed = False
    with contextlib.suppress(OSError):
        if os.lstat(path).st_uid == os.getuid():
            path.unlink()
            removed = True
    done = "removed it" if removed else "could not remove it"
    return Unreachable(
        f"{what}'s control socket {path} is stale (the program that made it "
        f"is gone); {done}"
    )


def find_socket(target: str, environ: Mapping[str, str] | None = None) -> Path:
    """The control socket a ``PID`` or ``SOCKET`` argument names.

    Raises:
        BadTarget: ``target`` is not a PID and no file of that name exists.
        Unreachable: the PID is not running, belongs to another user, or
            has no control socket; a stale socket is removed.
    """
    if target.isdigit():
        return _socket_of_pid(int(target), environ)
    path = Path(target)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BadTarget(
            f"{target!r} is neither a PID nor an existing control socket"
        ) from None
    except OSError as exc:
        raise Unreachable(f"cannot look at {path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise BadTarget(f"{path} is not a socket: give a PID or a control socket")
    if info.st_uid != os.getuid():
        raise Unreachable(
            f"{path} belongs to {_user(info.st_uid)}, not to you "
            f"({_user(os.getuid())}): only a program's own user may see its tree"
        )
    return path


def _socket_of_pid(pid: int, environ: Mapping[str, str] | None) -> Path:
    try:
        folder = runtime_dir(environ)
    except ControlError as exc:
        raise Unreachable(str(exc)) from None
    path = folder / f"{pid}.sock"
    try:
        owner = os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        if os.path.lexists(path):
            raise _stale(path, f"process {pid}") from None
        raise Unreachable(f"no process has PID {pid}") from None
    if owner != os.getuid():
        raise Unreachable(
            f"process {pid} runs as {_user(owner)}, not as you "
            f"({_user(os.getuid())}): only a program's own user may see its tree"
        )
    if not os.path.lexists(path):
        raise Unreachable(
            f"process {pid} ({_command_line(pid)}) is not a proctree program: "
            f"it has no control socket {path}"
        )
    if not os.path.exists(path):
        raise _stale(path, f"process {pid}")  # a link to a socket that is gone
    return path


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "unknown command"
    words = raw.rstrip(b"\0").split(b"\0")
    text = " ".join(w.decode(errors="replace") for w in words)
    return text[:80] + ("..." if len(text) > 80 else "")


async def fetch(
    path: Path, command: str = "tree", *, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """Send ``command`` on the control socket at ``path``; return the answer.

    Raises:
        Unreachable: nobody listens (the stale socket is removed), the
            program exited before it answered, it refused, or it did not
            answer within ``timeout`` seconds.
    """
    return (await _exchange(path, command, timeout))[1]


async def fetch_raw(
    path: Path, *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bytes, dict[str, Any]]:
    """The tree document as the program sent it (one line of JSON), and parsed.

    Raises:
        Unreachable: as :func:`fetch`.
    """
    return await _exchange(path, "tree", timeout)


async def _exchange(
    path: Path, command: str, timeout: float
) -> tuple[bytes, dict[str, Any]]:
    what = f"the program at {path}"
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(timeout) as waited:
        try:
            stream = await trio.open_unix_socket(str(path))
        except FileNotFoundError:
            raise Unreachable(f"{what} has exited (its socket is gone)") from None
        except ConnectionRefusedError:
            raise _stale(path, what) from None
        except OSError as exc:
            if exc.errno == errno.EACCES:
                raise Unreachable(
                    f"{path} is not yours: only a program's own user may see its tree"
                ) from None
            raise Unreachable(f"cannot connect to {path}: {exc.strerror}") from None
        async with stream:
            try:
                request = json.dumps({"command": command}) + "\n"
                await stream.send_all(request.encode())
                while size < _LIMIT:
                    chunk = await stream.receive_some(1 << 20)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
            except (trio.BrokenResourceError, ConnectionResetError):
                pass  # judged by what arrived, below
    if waited.cancelled_caught:
        raise Unreachable(
            f"{what} did not answer within {timeout:g} s (is it stopped, or "
            "busy? try again, or a longer --timeout)"
        )
    data = b"".join(chunks)
    if not data.endswith(b"\n"):
        raise Unreachable(f"{what} exited before it answered")
    # 100,000 entries make as many dicts: the cyclic gc would walk them
    # again and again while they are made, and find nothing to free.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        answer = json.loads(data)
    except ValueError:
        raise Unreachable(f"{what} sent an answer that is not JSON") from None
    finally:
        if was_enabled:
            gc.enable()
    if not isinstance(answer, dict):
        raise Unreachable(f"{what} sent an answer that is not a JSON object")
    if "error" in answer:
        raise Unreachable(f"{what} {answer['error']}")
    return data, cast("dict[str, Any]", answer)


async def _ping(path: Path, timeout: float) -> dict[str, Any]:
    return await fetch(path, "ping", timeout=timeout)


@final
class Program:
    """One line of ``proctree ps``."""

    def __init__(self, pid: int, socket: Path, facts: Mapping[str, Any]) -> None:
        self.pid = pid
        self.socket = socket
        self.facts = facts


def list_programs(
    environ: Mapping[str, str] | None = None,
    *,
    write: Write,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Program]:
    """Ask each control socket of this user's runtime folder who it is.

    Stale sockets are removed and reported with ``write``.

    Raises:
        Unreachable: the runtime folder is not safe to use.
    """
    try:
        folder = runtime_dir(environ)
    except ControlError as exc:
        raise Unreachable(str(exc)) from None
    found: list[Program] = []
    for path in list_sockets(folder):
        try:
            facts = trio.run(_ping, path, timeout)
        except Unreachable as exc:
            write(f"proctree ps: {exc}")
            continue
        found.append(Program(int(path.stem), path, facts.get("program", {})))
    return found


def _print_error(command: str, exc: BaseException) -> None:
    print(f"proctree {command}: {exc}", file=sys.stderr, flush=True)


def tree_command(
    target: str,
    *,
    view: str,
    timeout: float,
    serve: str | None = None,
    colour: bool = False,
) -> int:
    """Print (or serve) the live tree of the program ``target`` names.

    Returns:
        The exit status: 0, 1 if the program could not be asked, 2 if
        ``target`` names nothing.
    """
    try:
        path = find_socket(target)
        if serve is not None:
            from .page_server import serve_page

            return serve_page(path, serve, timeout=timeout)
        raw, doc = trio.run(lambda: fetch_raw(path, timeout=timeout))
        check_schema(doc)
        if view == "json":
            # As the program sent it (one line): re-encoding 100,000
            # entries would double the time; pipe it to jq to indent it.
            sys.stdout.buffer.write(raw)
        else:
            sys.stdout.write(render_document(doc, view, colour=colour))
        sys.stdout.flush()
    except BadTarget as exc:
        _print_error("tree", exc)
        return 2
    except (Unreachable, TreeDocumentError) as exc:
        _print_error("tree", exc)
        return 1
    return 0


def ps_command(*, timeout: float) -> int:
    """Print this user's running proctree programs, one a line.

    Returns:
        The exit status: 0, or 1 if the runtime folder cannot be used.
    """

    def warn(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        programs = list_programs(write=warn, timeout=timeout)
    except Unreachable as exc:
        _print_error("ps", exc)
        return 1
    if not programs:
        warn("proctree ps: no proctree program of yours is running")
        return 0
    print(f"{'PID':>7}  {'UPTIME':>9}  {'TARGET':<32}  SOCKET")
    now = time.time()
    for program in programs:
        started = program.facts.get("started_at")
        uptime = f"{now - started:.0f}s" if isinstance(started, float) else "?"
        target = str(program.facts.get("target") or "?")
        print(f"{program.pid:>7}  {uptime:>9}  {target:<32}  {program.socket}")
    return 0
