"""The close driver: close requests down the tree, completions up it.

One synchronous loop, and the tasks whose ends feed it.

Every state change of a process goes through :func:`drive`. It keeps an
explicit stack (no recursion, so the depth of the tree does not matter) and
does O(1) work per edge. See ``docs/design.md``, sections 2 and 3.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, cast

import trio

from .current import CURRENT, InTeardown
from .edges import CLOSE, WAIT, add_edge, remove_up, ups_of
from .host import emit
from .overruns import note_overrun
from .reasons import FAILED, FAILURE_BELOW, PARENT, REQUESTED, RETURNED
from .results import NO_VALUE
from .state import State

if TYPE_CHECKING:
    from .host import Host
    from .node import Process
    from .protocols import Keeper, Teardown

__all__ = [
    "add_note",
    "drive",
    "fail",
    "go_task",
    "hand_up",
    "is_cancellation",
    "link",
    "task_ended",
]

_INITIAL: Final = State.INITIAL
_STARTING: Final = State.STARTING
_RUNNING: Final = State.RUNNING
_CLOSING: Final = State.CLOSING
_CLOSED: Final = State.CLOSED


def drive(closes: list[tuple[Process, float | None]], settles: list[Process]) -> None:
    """Run close requests down and completions up until nothing is left.

    ``closes`` holds ``(process, deadline)`` pairs: the deadline is a bound,
    the absolute time by which the process and its subtree are cancelled at
    the latest (None: no bound); each process is forced at the earlier of
    the bound and now plus its own grace. ``settles`` holds processes whose
    dependencies changed.
    """
    now: float | None = None
    while closes or settles:
        while closes:
            p, deadline = closes.pop()
            state = p._state
            if state is _CLOSED:
                continue
            if state is _CLOSING:
                if deadline is None or deadline >= p._forced:
                    continue
                forced = deadline
                first = False
            else:
                if p._host is None:
                    continue  # background(): the one open process with no host
                if now is None:
                    now = trio.current_time()
                # An explicit deadline from above is a bound: it only ever
                # shortens the process's own grace (contract 6).
                forced = now + p._grace
                if deadline is not None and deadline < forced:
                    forced = deadline
                first = True
                if p._why is None:
                    p._why = _reason(p)
                p._state = _CLOSING
                ev = p._closing_ev
                if ev is not None:
                    ev.set()
                watchers = p._watchers
                if watchers is not None:
                    p._watchers = None
                    for watcher in watchers:
                        watcher()
                host = p._host
                if host.instruments:
                    emit(host, "closing", p)
                if not p._task_alive:
                    # A running task settles the process when it ends.
                    settles.append(p)
            p._forced = forced
            scope = p._scope
            if scope is not None:
                if now is None:
                    now = trio.current_time()
                if forced <= now and first:
                    # No grace at all: cancelled at once, as asked; not an
                    # overrun (its task had no time to end by itself).
                    scope.cancel()
                elif forced < scope.deadline:
                    # A grace, or a close that tightens one already running
                    # out: trio's deadline cancels the task, and the task's
                    # end sees the deadline passed (an overrun).
                    scope.deadline = forced
            children = p._children
            if children:
                for child, flags in children.items():
                    if flags & CLOSE:
                        # Its reason is known here, for much less than
                        # _reason() would cost it (a failure of its own wins).
                        if child._why is None and child._error is None:
                            child._why = PARENT
                        closes.append((child, deadline))
        if settles:
            _settle(settles.pop(), closes, settles)


def _reason(p: Process) -> str:
    """Why ``p``, still open, is being closed now (when no caller said)."""
    if p._error is not None:
        return FAILED
    ups = p._ups
    if ups is not None:
        for u in ups_of(p):
            if u._state is _CLOSING:
                siblings = u._children
                if siblings is not None and siblings.get(p, 0) & CLOSE:
                    return PARENT
    if p._auto_close and not p._task_alive:
        return RETURNED
    return REQUESTED


def _settle(
    p: Process, closes: list[tuple[Process, float | None]], settles: list[Process]
) -> None:
    state = p._state
    if state is _RUNNING or state is _STARTING or state is _INITIAL:
        if p._auto_close and not p._open_waits:
            closes.append((p, None))
        return
    if state is not _CLOSING or p._open_waits or p._task_alive:
        return
    if not p._torn:
        p._torn = True
        teardown = p._teardown
        if teardown is not None:
            host = p._host
            assert host is not None
            p._task_alive = True
            host.nursery.start_soon(_teardown_task, p, teardown, name=p.name)
            return
    # CLOSED: tell every process above, then forget the tree.
    host = p._host
    if host is not None and host.instruments:
        # Before the links go, so that the hooks still see the path.
        emit(host, "closed", p, trio.current_time() - p._born, p._error)
    p._state = _CLOSED
    ev = p._closed_ev
    if ev is not None:
        ev.set()
    ups = p._ups
    if ups is not None:
        for u in ups if isinstance(ups, list) else (ups,):
            siblings = u._children
            if siblings is not None and siblings.pop(p, 0) & WAIT:
                u._open_waits -= 1
                settles.append(u)
        p._ups = None
    children = p._children
    if children is not None:
        # Only CLOSE-only edges can be left: WAIT edges were all closed.
        for child in children:
            remove_up(child, p)
        p._children = None
    if host is not None:
        if host.strays:
            host.strays.discard(p)
        p._host = None
    p._teardown = None
    p._scope = None
    p._startup = None
    keeper = p._keeper
    if keeper is not None:
        p._keeper = None
        keeper.closed(p)


def link(parent: Process, child: Process, flags: int) -> None:
    """Add the edge ``parent -> child``; a CLOSING parent closes the child now.

    The parent is not CLOSED; a CLOSED child gets no edge.
    """
    if child._state is _CLOSED:
        return
    add_edge(parent, child, flags)
    if flags & CLOSE and parent._state is _CLOSING:
        drive([(child, None)], [])


# ----------------------------------------------------------- tasks, failures


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is trio's Cancelled, or a group holding one."""
    if isinstance(exc, trio.Cancelled):
        return True
    return (
        isinstance(exc, BaseExceptionGroup)
        and cast("BaseExceptionGroup[BaseException]", exc).subgroup(trio.Cancelled)
        is not None
    )


async def go_task(
    p: Process, fn: Callable[..., Awaitable[object]], args: tuple[object, ...]
) -> None:
    """The task of a ``go`` process: ``await fn(p, *args)`` in its cancel scope."""
    CURRENT.set(p)
    scope = p._scope
    assert scope is not None
    host = p._host
    if host is not None and host.instruments:
        emit(host, "started", p)
    p._run = NO_VALUE  # until fn returns (a go process has no runner)
    try:
        with scope:
            p._run = await fn(p, *args)
    except BaseException as exc:
        p._scope = None  # past it: the close that fail() makes cancels nothing
        if is_cancellation(exc):
            raise
        fail(p, exc, "function")
        if not isinstance(exc, Exception):
            raise
    finally:
        task_ended(p, scope)


def task_ended(p: Process, scope: trio.CancelScope) -> None:
    """Bookkeeping when a process's own task ends, however it ends."""
    deadline = scope.deadline
    if (
        scope.cancelled_caught
        and deadline != math.inf
        and trio.current_time() >= deadline
    ):
        p._overran = True
        host = p._host
        note_overrun(host, p)
        if host is not None and host.instruments:
            emit(host, "grace_overrun", p)
    # Its task is past its scope: a close from here on sets no deadline on it.
    p._scope = None
    p._task_alive = False
    p._auto_close = True
    drive([], [p])


async def _teardown_task(p: Process, teardown: Teardown) -> None:
    if p._open_waits:
        # A wait_for/add_child came between scheduling and now: honour it,
        # the teardown is started again once those processes are CLOSED.
        p._torn = False
        p._task_alive = False
        return
    CURRENT.set(InTeardown(p))
    host = p._host
    if host is not None and host.instruments:
        emit(host, "teardown_started", p)
    try:
        await teardown()
    except BaseException as exc:
        if is_cancellation(exc):
            raise
        fail(p, exc, "teardown")
        if not isinstance(exc, Exception):
            raise
    finally:
        p._task_alive = False
        drive([], [p])


def add_note(exc: BaseException, part: str, p: Process) -> None:
    """Say on ``exc`` which part of which process raised it."""
    exc.add_note(f"proctree: raised by the {part} of process {p.path!r}")


def fail(p: Process, exc: BaseException, part: str) -> None:
    """Record ``exc`` as a failure of ``p``'s ``part`` and close what it must.

    The failure becomes ``p.error``, is recorded once in the host, closes
    ``p`` and every ancestor along CLOSE edges. A ``BaseException`` that is
    not an ``Exception`` (KeyboardInterrupt...) also forces the host's
    shutdown. Used by the root for its body's failures too.
    """
    host = p._host
    taken = p._keeper is not None and p._keeper.take(p, exc)
    # A taken failure is its keeper's business, not the host's.
    fresh = taken or host is None or host.record(exc)
    if fresh:
        add_note(exc, part, p)
        previous = p._error
        p._error = (
            exc
            if previous is None
            else BaseExceptionGroup(
                f"process {p.name!r} failed more than once", [previous, exc]
            )
        )
    _close_up(p, exc, taken)


def hand_up(
    p: Process, exc: BaseException, keeper: Keeper | None, host: Host | None
) -> None:
    """Send up a failure already recorded as ``p.error``.

    Used for a startup failure whose start() was abandoned: the keeper or
    host ``p`` had when it started gets it (``p`` may be CLOSED by now, its
    links gone), then its ancestors, if still linked, close as for any
    failure.
    """
    taken = keeper is not None and keeper.take(p, exc)
    if not taken and host is not None:
        host.record(exc)
    _close_up(p, exc, taken)


def _close_up(p: Process, exc: BaseException, taken: bool) -> None:
    """Close ``p`` and, unless a keeper took ``exc``, its CLOSE ancestors."""
    host = p._host
    closes: list[tuple[Process, float | None]] = [(p, None)]
    seen = {p}
    stack = [] if taken else [p]
    while stack:
        q = stack.pop()
        for u in ups_of(q):
            siblings = u._children
            if u in seen or siblings is None or not siblings.get(q, 0) & CLOSE:
                continue
            seen.add(u)
            if u._why is None and u._state is not _CLOSED:
                u._why = FAILURE_BELOW
            closes.append((u, None))
            stack.append(u)
    drive(closes, [])
    if host is not None and not isinstance(exc, Exception):
        host.nursery.cancel_scope.cancel()
