"""A runner for an operating-system process: started, watched, stopped, reaped.

Stopping sends SIGTERM (or the chosen signal), waits for the process's
grace, then sends SIGKILL; whatever happens, the child is waited for, so it
never stays a zombie, and its pipes are closed.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Mapping, Sequence
from typing import Final, Protocol, final

import attrs
import trio

from .._core import (
    Process,
    ProctreeError,
    Ready,
    check_async_callable,
    check_name,
    check_seconds,
    current_process,
    is_cancellation,
)
from .parent_death import die_with_parent
from .serving import OneRun, optional_grace

__all__ = ["OSProcess", "OSProcessError", "ReadyCheck", "os_process"]


class ReadyCheck(Protocol):
    """The readiness check of :func:`os_process`, polled until it returns True.

    Any ``async def check() -> bool``; what it raises fails the start.
    """

    def __call__(self) -> Awaitable[bool]:
        """Whether the OS process is ready."""
        ...


# Once the child has exited, its pipes normally reach end-of-file at once;
# a grandchild that inherited them may keep them open for ever, so reading
# what is left is bounded by this many seconds.
_DRAIN_SECONDS: Final = 1.0
# A line longer than this (no newline yet) is scanned as it is and dropped.
_MAX_LINE: Final = 65536
_READ_SIZE: Final = 65536
_TAIL_LINES_IN_MESSAGE: Final = 10
# How often a stop looks whether the child's group has emptied once the
# child itself has exited (the kernel tells no one when a group empties).
_GROUP_POLL_SECONDS: Final = 0.05


class OSProcessError(ProctreeError):
    """An OS process run by :func:`os_process` failed.

    It exited before it was ready, exited on its own while running (even
    with code 0: a leaf runs until it is stopped), or exited with an
    unexpected code when asked to stop. The message ends with the last
    lines of its stderr.
    """

    command: tuple[str, ...]
    """The program and its arguments."""
    returncode: int
    """Its exit code; negative if a signal killed it (``-signal.SIGSEGV``)."""
    stderr_tail: str
    """The end of what it wrote on stderr (decoded as UTF-8, errors replaced)."""

    def __init__(
        self, message: str, command: tuple[str, ...], returncode: int, stderr_tail: str
    ) -> None:
        super().__init__(message, command, returncode, stderr_tail)
        self.command = command
        self.returncode = returncode
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        return str(self.args[0])


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal"
        return f"was killed by {name} ({-returncode})"
    return f"exited with code {returncode}"


def _error(
    name: str, command: tuple[str, ...], returncode: int, tail: str, when: str
) -> OSProcessError:
    message = f"os_process {name!r}: {command[0]!r} {_describe_exit(returncode)} {when}"
    lines = tail.rstrip("\n").splitlines()[-_TAIL_LINES_IN_MESSAGE:]
    if lines:
        message += "; its stderr ended with:\n" + "\n".join(f"  {x}" for x in lines)
    else:
        message += " (nothing on stderr)"
    return OSProcessError(message, command, returncode, tail)


def _echo(label: str, chunk: bytes | bytearray) -> None:
    """Pass the child's output on to our own stdout or stderr."""
    target = sys.stdout if label == "stdout" else sys.stderr
    if target is None:
        return
    try:
        buffer = getattr(target, "buffer", None)
        if buffer is not None:
            target.flush()  # keep order with text already written
            buffer.write(chunk)
            buffer.flush()
        else:
            target.write(chunk.decode("utf-8", "replace"))
            target.flush()
    except (OSError, ValueError):
        pass  # our own stream is closed: the child's output is dropped


@final
@attrs.define(eq=False)
class _Output:
    """What one run reads from its child's pipes."""

    pattern: re.Pattern[str] | None
    tail_bytes: int
    echo: bool
    tail: bytearray = attrs.field(factory=bytearray)
    match: re.Match[str] | None = None
    matched: trio.Event = attrs.field(factory=trio.Event)
    open_pipes: int = 0
    eof: trio.Event = attrs.field(factory=trio.Event)

    def keep(self, chunk: bytes | bytearray) -> None:
        self.tail += chunk
        if len(self.tail) > self.tail_bytes:
            del self.tail[: len(self.tail) - self.tail_bytes]

    def scan(self, line: bytes | bytearray) -> None:
        if self.pattern is None or self.match is not None:
            return
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        found = self.pattern.search(text)
        if found is not None:
            self.match = found
            self.matched.set()

    async def pump(self, stream: trio.abc.ReceiveStream, label: str) -> None:
        pending = bytearray()
        try:
            while True:
                try:
                    chunk = await stream.receive_some(_READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not chunk:
                    break
                if self.echo:
                    _echo(label, chunk)
                if label == "stderr":
                    self.keep(chunk)
                if self.pattern is None or self.match is not None:
                    continue
                pending += chunk
                *lines, rest = pending.split(b"\n")
                for line in lines:
                    self.scan(line)
                pending = bytearray(rest)
                if len(pending) > _MAX_LINE:
                    self.scan(pending)
                    pending.clear()
            if pending:
                self.scan(pending)
        finally:
            self.open_pipes -= 1
            if not self.open_pipes:
                self.eof.set()


@final
@attrs.define(eq=False)
class OSProcess:
    """The runner :func:`os_process` returns: an OS process as a leaf.

    While it runs, :attr:`pid` is the child's process id; :attr:`ready_match`
    keeps the line that made it ready, :attr:`returncode` the exit code of
    its latest run. It runs in one process at a time; once stopped it may
    run again (a new OS process each time).
    """

    command: tuple[str, ...]
    """The program and its arguments."""
    ready_line: re.Pattern[str] | None = None
    """The pattern a line of its output must match for it to be ready."""
    ready_check: ReadyCheck | None = None
    """The readiness check, polled every :attr:`check_interval` seconds."""
    check_interval: float = 0.1
    """Seconds between two readiness checks."""
    stop_signal: signal.Signals = signal.SIGTERM
    """The signal that asks it to stop (SIGKILL follows after the grace)."""
    cwd: str | None = None
    """Its working directory (None: ours)."""
    # An environment often holds secrets: keep it out of reprs and logs.
    env: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    """Its environment (None: ours)."""
    new_session: bool = True
    """Whether it runs in a session and process group of its own."""
    echo: bool = True
    """Whether what it prints is passed on to our stdout and stderr."""
    tail_bytes: int = 8192
    """How many bytes of its stderr are kept for :class:`OSProcessError`."""
    name: str = "os_process"
    """The default name of its process."""
    default_grace: float | None = None
    """Seconds between the stop signal and SIGKILL (None: the tree's grace)."""
    _pid: int | None = attrs.field(init=False, default=None)
    _ready_match: re.Match[str] | None = attrs.field(init=False, default=None)
    _returncode: int | None = attrs.field(init=False, default=None)
    _run: OneRun = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._run = OneRun("os_process", self.name)

    @property
    def pid(self) -> int | None:
        """The OS process id while it runs; None before and after."""
        return self._pid

    @property
    def ready_match(self) -> re.Match[str] | None:
        """The match of ``ready_line`` in the line that made it ready.

        Its groups let a caller read what the line said (a port, a URL).
        None until then, and when it has no ``ready_line``.
        """
        return self._ready_match

    @property
    def returncode(self) -> int | None:
        """The exit code of its latest run; None while it runs or before."""
        return self._returncode

    async def run(self, ready: Ready) -> None:
        """Start the OS process, report ready when it is, stop and reap it.

        Raises:
            InvalidStateError: it is already running in another process.
            OSError: the program could not be started (such as
                :exc:`FileNotFoundError` for a program that does not exist).
            OSProcessError: it exited before it was ready, on its own while
                running, or with an unexpected code when asked to stop.
            BaseException: what the readiness check raised.
        """
        me = current_process("os_process")
        self._run.claim(me)
        try:
            await self._supervise(me, ready)
        finally:
            self._pid = None
            self._run.release()

    async def _spawn(self, pipe_stdout: bool) -> trio.Process:
        if pipe_stdout:
            stdout: int | None = subprocess.PIPE
        else:
            stdout = None if self.echo else subprocess.DEVNULL
        try:
            return await trio.lowlevel.open_process(
                list(self.command),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=self.env,
                start_new_session=self.new_session,
                preexec_fn=die_with_parent(),
            )
        except OSError as exc:
            exc.add_note(
                f"proctree: os_process {self.name!r} could not start "
                f"{self.command[0]!r}: check the program's name, that it is "
                "executable, and PATH"
            )
            raise

    def _signal(self, proc: trio.Process, sig: int) -> None:
        try:
            if self.new_session:
                # The whole group, even once the child itself has exited and
                # been reaped: what it started may still run in the group,
                # and POSIX reuses no id while a group holds it.
                os.killpg(proc.pid, sig)
            elif proc.returncode is None:
                # Once reaped, its pid may belong to another process.
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def _until_ready(self, output: _Output) -> None:
        if self.ready_line is not None:
            await output.matched.wait()
            self._ready_match = output.match
        elif self.ready_check is not None:
            while not await self.ready_check():
                await trio.sleep(self.check_interval)

    async def _supervise(self, me: Process, ready: Ready) -> None:
        self._returncode = None
        self._ready_match = None
        output = _Output(self.ready_line, self.tail_bytes, self.echo)
        proc = await self._spawn(pipe_stdout=self.ready_line is not None)
        self._pid = proc.pid
        was_ready = stopping = False
        failure: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                waker = trio.CancelScope()
                exited = trio.Event()

                starting = trio.CancelScope()

                async def watch() -> None:
                    await proc.wait()
                    exited.set()
                    waker.cancel()

                async def watch_stop() -> None:
                    # Stopped while starting: ask it to stop now, rather
                    # than wait for a ready line and then the whole grace.
                    await me.closing.wait()
                    starting.cancel()

                nursery.start_soon(watch)
                nursery.start_soon(watch_stop)
                for pipe, label in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
                    if pipe is not None:
                        output.open_pipes += 1
                        nursery.start_soon(output.pump, pipe, label)
                with waker:
                    try:
                        with starting:
                            await self._until_ready(output)
                    except BaseException as exc:
                        if is_cancellation(exc):
                            raise
                        failure = exc  # raised after the nursery: it keeps its type
                    else:
                        if not starting.cancelled_caught:
                            was_ready = True
                            await ready()
                        stopping = True
                if failure is None:
                    if stopping:
                        self._signal(proc, self.stop_signal)
                    # The grace bounds this wait: past it we are cancelled,
                    # and the finally clause below sends SIGKILL.
                    await exited.wait()
                    if stopping and self.new_session:
                        # What the child started in its group gets the rest
                        # of the grace too, then the group's SIGKILL.
                        await _group_gone(proc.pid)
                    with trio.move_on_after(_DRAIN_SECONDS):
                        await output.eof.wait()
                nursery.cancel_scope.cancel()
        finally:
            # However we got here (stopped, forced, cancelled, failed), the
            # child does not outlive the run and is reaped.
            with trio.CancelScope(shield=True):
                self._signal(proc, signal.SIGKILL)
                await proc.wait()
                for pipe in (proc.stdout, proc.stderr):
                    if pipe is not None:
                        await pipe.aclose()
            self._returncode = proc.returncode
        if failure is not None:
            raise failure
        returncode = proc.returncode
        assert returncode is not None  # waited for above
        self._judge(returncode, output, was_ready, stopping)

    def _judge(
        self, returncode: int, output: _Output, was_ready: bool, stopping: bool
    ) -> None:
        tail = bytes(output.tail).decode("utf-8", "replace")
        if stopping:
            if returncode in (0, -self.stop_signal, 128 + self.stop_signal):
                return
            when = f"when asked to stop with {self.stop_signal.name}"
        elif not was_ready:
            when = "before it was ready"
        else:
            when = "on its own while running (a leaf runs until it is stopped)"
        raise _error(self.name, self.command, returncode, tail, when)


async def _group_gone(pgid: int) -> None:
    """Return once process group ``pgid`` has no member left."""
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        await trio.sleep(_GROUP_POLL_SECONDS)


def _check_command(command: object) -> tuple[str, ...]:
    if isinstance(command, str | bytes):
        raise TypeError(
            "os_process(): command must be a list of the program and its "
            f"arguments, such as ['python', '-m', 'http.server'], got {command!r}; "
            "shlex.split() splits a command line"
        )
    if not isinstance(command, Sequence):
        raise TypeError(f"os_process(): command must be a list, got {command!r}")
    parts: list[str] = []
    for part in command:
        if isinstance(part, os.PathLike):
            part = os.fspath(part)
        if not isinstance(part, str):
            raise TypeError(
                f"os_process(): every part of the command must be a str, got {part!r}"
            )
        parts.append(part)
    if not parts or not parts[0]:
        raise ValueError("os_process(): command is empty; it needs a program to run")
    return tuple(parts)


def os_process(
    command: Sequence[str | os.PathLike[str]],
    *,
    ready_line: str | re.Pattern[str] | None = None,
    ready_check: ReadyCheck | None = None,
    check_interval: float = 0.1,
    stop_signal: int = signal.SIGTERM,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    new_session: bool = True,
    echo: bool = True,
    tail_bytes: int = 8192,
    name: str | None = None,
    grace: float | None = None,
) -> OSProcess:
    """A runner that runs an OS process (a program) as a process of the tree.

    Readiness: with neither ``ready_line`` nor ``ready_check`` it is ready as
    soon as the program has started; with ``ready_line``, once it prints a
    line (on stdout or stderr, ending with a newline) that contains that
    text or matches that pattern; with ``ready_check``, once that check
    returns True. If the program exits first, ``start()`` raises
    :class:`OSProcessError`.

    Stopping sends ``stop_signal`` (SIGTERM), waits for the process's grace,
    then sends SIGKILL. Either way the program is waited for (never left a
    zombie) and its pipes are closed. Exiting with 0, or by the stop signal
    (``-SIGTERM``, or ``128 + SIGTERM`` as shells report it), is a clean
    stop; another code is an :class:`OSProcessError`, as is the program
    exiting on its own while it runs.

    By default the program runs in a session of its own (``new_session``),
    and signals go to its whole process group. So a Ctrl-C in the terminal
    reaches proctree, which stops the tree in order, rather than reaching
    the program at the same moment as its dependents; and the program's own
    children get the stop signal with it.

    Its stdin is ``/dev/null``. Its stderr is read (the end is kept for the
    error) and, with ``echo``, passed on to this program's stderr; its
    stdout is inherited, or read and passed on when ``ready_line`` needs it.

    POSIX only (Linux, macOS): it relies on signals and process groups.

    Args:
        command: the program and its arguments, such as
            ``[sys.executable, "-m", "http.server", "0"]``.
        ready_line: a text (found anywhere in a line) or a compiled
            :class:`re.Pattern` (searched in each line).
        ready_check: ``async def check() -> bool``, polled until it returns
            True; what it raises fails the start.
        check_interval: seconds between two calls of ``ready_check``.
        stop_signal: the signal that asks the program to stop.
        cwd: its working directory; by default ours.
        env: its whole environment; by default ours.
        new_session: run it in its own session and process group.
        echo: pass its output on to ours; if False, it is read and dropped.
        tail_bytes: how much of its stderr to keep for the error.
        name: the name of its process; by default the program's file name.
        grace: seconds between the stop signal and SIGKILL; by default the
            tree's grace.

    Returns:
        The runner, to pass to :func:`new_process` or a combinator.

    Raises:
        TypeError: ``command`` is a string rather than a list, or an
            argument has the wrong type.
        ValueError: ``command`` is empty, both ``ready_line`` and
            ``ready_check`` are given, ``stop_signal`` is not a signal, or a
            number is out of range.
    """
    parts = _check_command(command)
    pattern: re.Pattern[str] | None
    if ready_line is None or isinstance(ready_line, re.Pattern):
        pattern = ready_line
    elif isinstance(ready_line, str):
        if not ready_line:
            raise ValueError("os_process(): ready_line is empty")
        pattern = re.compile(re.escape(ready_line))
    else:
        raise TypeError(
            "os_process(): ready_line must be a str or a re.Pattern, "
            f"got {ready_line!r}"
        )
    if ready_check is not None:
        check_async_callable(ready_check, "os_process", "ready_check()", nargs=0)
        if pattern is not None:
            raise ValueError("os_process(): give ready_line or ready_check, not both")
    interval = check_seconds(check_interval, "check_interval")
    if interval == 0 or math.isinf(interval):
        raise ValueError(
            f"os_process(): check_interval must be > 0 and finite, got {check_interval}"
        )
    try:
        sig = signal.Signals(stop_signal)
    except (ValueError, TypeError):
        raise ValueError(
            f"os_process(): stop_signal must be a signal, got {stop_signal!r}"
        ) from None
    if cwd is not None:
        if not isinstance(cwd, str | os.PathLike):
            raise TypeError(f"os_process(): cwd must be a path, got {cwd!r}")
        cwd = os.fspath(cwd)
    if env is not None:
        if not isinstance(env, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise TypeError("os_process(): env must map str to str")
        env = dict(env)
    if isinstance(tail_bytes, bool) or not isinstance(tail_bytes, int):
        raise TypeError(f"os_process(): tail_bytes must be an int, got {tail_bytes!r}")
    if tail_bytes < 0:
        raise ValueError(f"os_process(): tail_bytes must be >= 0, got {tail_bytes}")
    check_name(name, "os_process")
    return OSProcess(
        parts,
        pattern,
        ready_check,
        interval,
        sig,
        cwd,
        env,
        bool(new_session),
        bool(echo),
        tail_bytes,
        os.path.basename(parts[0]) if name is None else name,
        optional_grace(grace),
    )
