"""Starting a runner process: INITIAL -> STARTING -> RUNNING, or a failed start.

:func:`start` is the body of :meth:`Process.start`. A startup failure is
``start()``'s to raise while a ``start()`` is there to raise it; once the
caller gave up it travels up like any failure (``docs/design.md``,
section 6).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast, final

import attrs
import trio

from .checks import check_seconds
from .current import CURRENT
from .driver import add_note, drive, fail, hand_up, is_cancellation, task_ended
from .errors import InvalidStateError, ProctreeError, StartError, StartTimeoutError
from .host import Host, emit
from .protocols import Keeper, RunFn
from .state import State

if TYPE_CHECKING:
    from .node import Process

__all__ = [
    "ReadyCallback",
    "Startup",
    "launch",
    "mark_ready",
    "start",
    "startup_failure",
]

_INITIAL: Final = State.INITIAL
_STARTING: Final = State.STARTING
_RUNNING: Final = State.RUNNING
_CLOSED: Final = State.CLOSED


@final
@attrs.define(eq=False, slots=True)
class Startup:
    """How far a starting runner got: shared by start() and the runner task."""

    event: trio.Event | None = None  # made by a start() that waits on it
    reached: bool = False  # the runner called ready()
    running: bool = False  # ... while STARTING, so the process became RUNNING
    abandoned: bool = False  # start()'s caller gave up: nobody will raise
    keeper: Keeper | None = None  # where a failure goes if abandoned
    host: Host | None = None
    run: RunFn | None = None  # the runner's run, for runner_of()
    # A launch() (no start() waits): when ready() must have been called by,
    # and who hears that it was.
    limit: float = math.inf
    limit_at: float = math.inf
    on_ready: Callable[[Process], object] | None = None


def _check_startable(p: Process, what: str) -> None:
    if p._state is not _INITIAL or p._run is None:
        raise InvalidStateError(
            f"cannot {what} process {p.name!r}: it is {p._state.name}; "
            "only an INITIAL process made by proctree.new_process() can "
            "start, once"
        )


def _begin(p: Process) -> Startup:
    """INITIAL -> STARTING: spawn the runner's task; its progress to watch."""
    host = p._host
    assert host is not None
    run = cast("RunFn", p._run)
    p._run = None
    p._state = _STARTING
    p._task_alive = True
    scope = p._scope = trio.CancelScope()
    if p._forced < math.inf:
        scope.deadline = p._forced
    progress = p._startup = Startup(run=run)
    p._born = trio.current_time()
    if host.instruments:
        emit(host, "started", p)
    # Where a failure goes if no start() raises it (by then the process
    # may be CLOSED and have forgotten both).
    progress.keeper, progress.host = p._keeper, host
    host.nursery.start_soon(_runner_task, p, run, progress, name=p.name)
    return progress


def launch(
    p: Process, timeout: float, on_ready: Callable[[Process], object] | None
) -> None:
    """Start ``p``'s runner without waiting for it: nobody raises its failures.

    For an owner that watches the process as its keeper (a supervisor's
    restart): a startup failure travels up like any failure, to the
    keeper, as if a ``start()`` had been abandoned at once; a runner not
    ready within ``timeout`` seconds is cancelled and fails with
    :class:`StartTimeoutError` (its own cancel scope's deadline: no task
    waits). ``on_ready(p)`` is called when it becomes RUNNING; it must not
    raise.
    """
    _check_startable(p, "launch")
    limit = check_seconds(timeout, "timeout")
    progress = _begin(p)
    progress.abandoned = True
    progress.on_ready = on_ready
    if limit < math.inf:
        progress.limit = limit
        progress.limit_at = trio.current_time() + limit
        scope = p._scope
        assert scope is not None
        if progress.limit_at < scope.deadline:
            scope.deadline = progress.limit_at


async def start(p: Process, timeout: float | None) -> None:
    """Start ``p``'s runner and wait for ``ready()`` (see :meth:`Process.start`)."""
    _check_startable(p, "start")
    limit = math.inf if timeout is None else check_seconds(timeout, "timeout")
    progress = _begin(p)
    # The runner task has not run yet: it sets the event once it is there.
    event = progress.event = trio.Event()
    scope = p._scope
    assert scope is not None
    try:
        if limit == math.inf:
            await event.wait()
            timed_out = False
        else:
            with trio.move_on_after(limit) as waiter:
                await event.wait()
            timed_out = waiter.cancelled_caught
    except BaseException:
        # The caller gave up (cancelled): abandon the startup. A failure
        # the runner has had (in the same instant) or still has is no
        # longer start()'s to raise: it travels up.
        progress.abandoned = True
        if p._error is not None:
            hand_up(p, p._error, progress.keeper, progress.host)
        scope.cancel()
        drive([(p, None)], [])
        raise
    if timed_out:
        error = _timed_out(p, limit)
        p._error = error
        scope.cancel()
        drive([(p, None)], [])
        await _await_startup_end(p, progress, own=error)
        raise error
    if progress.running and p._error is None:
        return
    await _await_startup_end(p, progress, own=None)
    if p._error is not None:
        raise p._error
    raise InvalidStateError(f"process {p.name!r} was stopped while starting")


async def _await_startup_end(
    p: Process, progress: Startup, own: BaseException | None
) -> None:
    """Wait for CLOSED in start(); if the caller gives up, hand failures up.

    A startup failure is start()'s to raise only while start() is there
    to raise it: one it already holds (other than ``own``, its own
    timeout error) travels up as any failure would, and one the runner
    has yet to raise will (``progress.abandoned``).
    """
    try:
        await p.closed.wait()
    except BaseException:
        progress.abandoned = True
        error = p._error
        if error is not None and error is not own:
            hand_up(p, error, progress.keeper, progress.host)
        elif own is not None and own.__cause__ is not None:
            hand_up(p, own.__cause__, progress.keeper, progress.host)
        raise


@final
class ReadyCallback:
    """The ``ready`` a runner process's runner is called with.

    Awaiting it reports the runner ready and returns when the process
    starts closing. :func:`mark_ready` reports ready without waiting, for
    a runner that watches the close another way (a leaf's fast path).
    """

    __slots__ = ("_p", "_progress")

    def __init__(self, p: Process, progress: Startup) -> None:
        self._p = p
        self._progress = progress

    async def __call__(self) -> None:
        """Report ready; return once the process starts closing."""
        self.mark()
        await self._p.closing.wait()

    def mark(self) -> Process:
        """Report ready (once): a STARTING process becomes RUNNING."""
        progress = self._progress
        p = self._p
        if not progress.reached:
            limit_at = progress.limit_at
            if limit_at < math.inf and p._state is _STARTING:
                # A launch(): past its start timeout it is too late (the
                # cancel is on its way); in time, the deadline is lifted.
                if trio.current_time() >= limit_at:
                    return p
                scope = p._scope
                assert scope is not None
                scope.deadline = p._forced
            progress.reached = True
            if p._state is _STARTING:
                p._state = _RUNNING
                progress.running = True
                host = p._host
                if host is not None and host.instruments:
                    emit(host, "ready", p)
                if progress.on_ready is not None:
                    progress.on_ready(p)
            if progress.event is not None:
                progress.event.set()
        return p


def mark_ready(ready: object) -> Process | None:
    """Report ready through ``ready`` without waiting, if it is the core's.

    Returns the runner's process (whose close the caller must then watch,
    with ``on_closing``), or None when ``ready`` is some other callable: the
    caller must await it as usual.
    """
    if type(ready) is ReadyCallback:
        return ready.mark()
    return None


async def _runner_task(p: Process, run: RunFn, progress: Startup) -> None:
    CURRENT.set(p)
    scope = p._scope
    assert scope is not None
    ready = ReadyCallback(p, progress)

    try:
        with scope:
            await run(ready)
        p._scope = None  # past it: a close from here on cancels nothing
        if not progress.reached and p._state is _STARTING:
            _ended_unready(p, progress, scope)
    except BaseException as exc:
        p._scope = None
        if is_cancellation(exc):
            raise
        if progress.running or progress.abandoned:
            # Running, or starting for a start() that is no longer there to
            # raise it: a failure like any other, it travels up.
            fail(p, exc, "runner")
        else:
            # A startup failure is start()'s to raise: it does not travel up.
            # That includes a failure after ready() if the process was
            # stopped while starting (it never became RUNNING).
            add_note(exc, "runner", p)
            _add_startup_error(p, exc)
            drive([(p, None)], [])
        if not isinstance(exc, Exception):
            raise
    finally:
        if progress.event is not None:
            progress.event.set()
        task_ended(p, scope)


def _timed_out(p: Process, limit: float) -> StartTimeoutError:
    return StartTimeoutError(
        f"process {p.name!r} did not call ready() within {limit:g}s and was cancelled"
    )


def _ended_unready(p: Process, progress: Startup, scope: trio.CancelScope) -> None:
    """The runner returned (or was cancelled) before ``ready()``, still STARTING."""
    error: ProctreeError
    if scope.cancelled_caught and trio.current_time() >= progress.limit_at:
        scope.deadline = math.inf  # its start timeout, not a grace overrun
        error = _timed_out(p, progress.limit)
    else:
        error = StartError(
            f"the runner of process {p.name!r} returned before calling ready()"
        )
    if progress.abandoned:
        fail(p, error, "runner")  # no start() raises it: it travels up
    else:
        p._error = error


def _add_startup_error(p: Process, exc: BaseException) -> None:
    """Make ``exc`` part of what ``p``'s start() raises."""
    previous = p._error
    if previous is None:
        p._error = exc
    elif isinstance(previous, StartTimeoutError):
        # start() gave up on its timeout and raises that error: it keeps
        # the runner's failures as its cause, so the type callers catch
        # stays the same.
        cause = previous.__cause__
        previous.__cause__ = (
            exc
            if cause is None
            else BaseExceptionGroup(f"process {p.name!r} failed to start", [cause, exc])
        )
    else:
        p._error = BaseExceptionGroup(
            f"process {p.name!r} failed more than once", [previous, exc]
        )


def startup_failure(p: Process, exc: BaseException) -> bool:
    """Give ``exc`` to ``p``'s start(), if one is still there to raise it.

    For a keeper whose own runner has ended while its process is still
    starting (a combinator rolled back or timed out): a failure of a part
    that comes late belongs to the same failed start. Returns False when
    no start() will raise it (never started, running, abandoned, closed):
    the caller then lets it travel up.
    """
    progress = p._startup
    if (
        progress is None
        or progress.running
        or progress.abandoned
        or p._state is _CLOSED
    ):
        return False
    _add_startup_error(p, exc)
    return True
