"""The control socket of ``proctree run``: a Unix socket that answers with the tree.

Where it lives (``docs/seeing.rst``): ``$XDG_RUNTIME_DIR/proctree/PID.sock``,
or, without ``XDG_RUNTIME_DIR``, ``/tmp/proctree-UID/PID.sock`` in a folder
of mode 0700 that must belong to the user; ``--control PATH`` puts it
elsewhere and leaves a symlink ``PID.sock`` in that folder, so that
``proctree tree PID`` and ``proctree ps`` still find it. The socket has
mode 0600, and each connection's peer credentials (``SO_PEERCRED``) must
name the same user, or the connection is refused.

The protocol: the client sends one line, a JSON object such as
``{"command": "tree"}``; the program answers with one JSON object and
closes the connection. An answer with an ``"error"`` key is a refusal.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gc
import json
import os
import socket
import stat
import struct
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, cast, final

import trio

from .._core import (
    Instrument,
    Process,
    ProctreeError,
    close_reason,
    tree,
)
from .timeline import describe
from .tree_json import ClosedEntry, tree_document

__all__ = [
    "CONTROL_SCHEMA",
    "CloseLog",
    "ControlError",
    "ControlSocket",
    "bind_control",
    "runtime_dir",
    "serve_control",
]

CONTROL_SCHEMA: Final = "proctree.control/1"
"""The schema of the control protocol's small answers (ping, refusals)."""

_MAX_REQUEST: Final = 64 * 1024
_REQUEST_TIMEOUT: Final = 10.0
_CLOSED_KEPT: Final = 1000

Write = Callable[[str], object]


class ControlError(ProctreeError):
    """The control socket cannot be set up or reached; the message says why."""


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder that holds this user's control sockets, made if need be.

    ``$XDG_RUNTIME_DIR/proctree``, or ``/tmp/proctree-UID`` without it.
    Either way it must be a real folder (not a symlink) owned by this user
    with no access for others (mode 0700), or nobody can trust it.

    Raises:
        ControlError: the folder cannot be made, or is not safe.
    """
    env = os.environ if environ is None else environ
    uid = os.getuid()
    base = env.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "proctree" if base else Path(f"/tmp/proctree-{uid}")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise ControlError(
            f"cannot make the control socket folder {folder}: {exc.strerror}"
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise ControlError(f"{folder} is not a folder; remove it")
    if info.st_uid != uid:
        raise ControlError(
            f"{folder} belongs to uid {info.st_uid}, not to you (uid {uid}); "
            "set XDG_RUNTIME_DIR to a folder of your own"
        )
    if info.st_mode & 0o077:
        raise ControlError(
            f"{folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run 'chmod 700 {folder}'"
        )
    return folder


def peer_uid(sock: socket.socket | trio.socket.SocketType) -> int:
    """The user id of the process at the other end of a Unix socket."""
    creds = sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def is_stale(path: Path) -> bool:
    """Whether ``path`` is a socket nobody listens on any more."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError as exc:
        return exc.errno in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        probe.close()
    return False


@final
class ControlSocket:
    """A bound, listening control socket and what to remove when it closes."""

    def __init__(self, sock: socket.socket, path: Path, link: Path | None) -> None:
        self.sock = sock
        self.path = path
        self.link = link
        self._inode = os.stat(path).st_ino

    def close(self) -> None:
        """Close the socket and remove its file (and link), if still ours."""
        self.sock.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        if self.link is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == str(self.path):
                    self.link.unlink()


def _clear_stale(path: Path, write: Write) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ControlError(f"{path} exists and is not a socket; choose another path")
    if not is_stale(path):
        raise ControlError(
            f"{path} is the control socket of a running program; "
            "choose another --control path"
        )
    path.unlink()
    write(f"proctree: removed a stale control socket {path} (its program is gone)")


def bind_control(
    path: str | None,
    *,
    write: Write,
    environ: Mapping[str, str] | None = None,
) -> ControlSocket:
    """Make the control socket of this program (mode 0600) and listen on it.

    Args:
        path: where (``--control``), or None for ``PID.sock`` in
            :func:`runtime_dir`.
        write: where to say that a stale socket was removed.
        environ: the environment to read ``XDG_RUNTIME_DIR`` from.

    Raises:
        ControlError: the path is taken by a live program or by something
            that is not a socket, or the folder is not safe.
    """
    folder = runtime_dir(environ)
    default = folder / f"{os.getpid()}.sock"
    where = default if path is None else Path(path).absolute()
    _clear_stale(where, write)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)
    try:
        sock.bind(str(where))
        os.chmod(where, 0o600)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ControlError(
            f"cannot listen on {where}: {exc.strerror or exc}; "
            "choose another --control path"
        ) from None
    finally:
        os.umask(old_mask)
    link = None
    if where != default:
        with contextlib.suppress(FileNotFoundError):
            os.lstat(default)
            default.unlink()  # a pid this program now has: the old one is gone
        os.symlink(where, default)
        link = default
    return ControlSocket(sock, where, link)


@final
class CloseLog(Instrument):
    """Remembers the last processes that closed, for the live views."""

    def __init__(self, keep: int = _CLOSED_KEPT) -> None:
        self.entries: collections.deque[ClosedEntry] = collections.deque(maxlen=keep)

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """Keep the close."""
        self.entries.append(
            ClosedEntry(
                name=process.name,
                path=process.path,
                closed_at=trio.current_time(),
                lifetime=duration,
                close_reason=close_reason(process),
                error=None if error is None else describe(error),
                overran_grace=process.overran_grace,
            )
        )


def _refusal(message: str) -> bytes:
    return (json.dumps({"schema": CONTROL_SCHEMA, "error": message}) + "\n").encode()


async def serve_control(
    proc: Process,
    control: ControlSocket,
    root: Process,
    log: CloseLog | None,
    program: Mapping[str, object],
) -> None:
    """Answer on ``control`` until this process is cancelled; then remove it.

    Run it as a ``go`` function under :func:`~proctree.background` with no
    grace, so it lasts as long as the root and stays out of its tree.
    """
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(control.sock))
    try:
        async with trio.open_nursery() as nursery:
            while True:
                stream = await listener.accept()
                nursery.start_soon(_answer, stream, root, log, program)
    finally:
        control.close()


async def _answer(
    stream: trio.SocketStream,
    root: Process,
    log: CloseLog | None,
    program: Mapping[str, object],
) -> None:
    async with stream:
        uid = peer_uid(stream.socket)
        # Read the request first, even from a peer about to be refused:
        # closing with its bytes unread would reset the connection, and the
        # peer would not see why.
        request = await _read_request(stream)
        if uid != os.getuid():
            await stream.send_all(
                _refusal(
                    f"refused: you are uid {uid} and this program runs as uid "
                    f"{os.getuid()}; only its own user may look at its tree"
                )
            )
            return
        if request is None:
            await stream.send_all(_refusal("expected one line of JSON"))
            return
        command = request.get("command")
        if command == "ping":
            answer = {"schema": CONTROL_SCHEMA, "program": dict(program)}
            await stream.send_all((json.dumps(answer) + "\n").encode())
        elif command == "tree":
            await stream.send_all(await tree_answer(root, log, program))
        else:
            await stream.send_all(
                _refusal(f"unknown command {command!r}: expected 'tree' or 'ping'")
            )


async def _read_request(stream: trio.SocketStream) -> dict[str, Any] | None:
    data = b""
    with trio.move_on_after(_REQUEST_TIMEOUT):
        while b"\n" not in data and len(data) < _MAX_REQUEST:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            data += chunk
    try:
        request = json.loads(data.partition(b"\n")[0])
    except ValueError:
        return None
    return cast("dict[str, Any]", request) if isinstance(request, dict) else None


async def tree_answer(
    root: Process, log: CloseLog | None, program: Mapping[str, object]
) -> bytes:
    """The tree document of ``root``, encoded, one line.

    The snapshot is taken at once (it reads the live tree); turning it into
    JSON runs in a worker thread, so that a 100,000-process document does
    not hold the program's other tasks up for the whole encoding.
    """
    now = trio.current_time()
    # The cyclic gc would walk the heap several times while 100,000
    # snapshot objects are made (and find nothing to free): off meanwhile.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        snapshot = tree(root)
    finally:
        if was_enabled:
            gc.enable()
    closed = list(log.entries) if log is not None else []

    def encode() -> bytes:
        doc = tree_document(snapshot, now=now, program=program, closed=closed)
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode()

    return await trio.to_thread.run_sync(encode)


def list_sockets(folder: Path) -> Iterator[Path]:
    """The ``PID.sock`` entries of a runtime folder (sockets and links)."""
    for entry in sorted(folder.iterdir()):
        if entry.suffix == ".sock" and entry.stem.isdigit():
            yield entry
