"""Run a function on a schedule: goprocess's ``periodic`` package, on trio.

Every schedule is one process (the *schedule*), a child of ``parent``, and
every call of ``fn`` is a child process of the schedule. So closing the
schedule stops it from making calls at once and then waits for the calls
in flight, each of which gets its own grace, as any ``go`` child does.

The schedule's own function runs no user code, so it ends the moment the
schedule starts closing: its loop runs inside ``move_on_closing`` (a close
that carries a long deadline must not leave it sleeping until its next
tick), and its grace is 0, which covers the common close at no cost. No
call starts once the schedule is closing.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TypeVar

import trio

from .._core import (
    Process,
    State,
    check_async_callable,
    check_grace,
    go,
    resolve_parent,
)
from .bridges import move_on_closing

__all__ = [
    "every",
    "every_go",
    "on_signal",
    "on_signal_go",
    "tick",
    "tick_go",
    "ticker",
    "ticker_go",
]

_T = TypeVar("_T")

CallFn = Callable[[Process], Awaitable[object]]
"""What a schedule calls: ``async def fn(proc)``, ``proc`` being the call's process."""


# ------------------------------------------------------------- checks


def _check_interval(interval: object, what: str) -> float:
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise TypeError(
            f"{what}(): interval must be a number of seconds such as 1 or 0.5, "
            f"got {interval!r}"
        )
    if math.isnan(interval) or interval <= 0:
        raise ValueError(
            f"{what}(): interval must be more than 0 seconds, got {interval!r}; "
            "to run calls back to back, loop inside one proctree.go() function"
        )
    return float(interval)


def _check_source(source: object, what: str) -> None:
    if not hasattr(type(source), "__aiter__"):
        raise TypeError(
            f"{what}() reads from a trio receive channel (or another async "
            f"iterable), got {type(source).__name__}; make one with "
            "trio.open_memory_channel()"
        )


def _schedule(
    what: str,
    fn: object,
    parent: Process | None,
    name: str | None,
    grace: float | None,
    example: str = "fn(proc)",
) -> tuple[Process, str, float | None]:
    """Check what every schedule takes; return the parent, name and call grace."""
    check_async_callable(fn, what, example, nargs=example.count(",") + 1)
    call_grace = None if grace is None else check_grace(grace)
    parent_p = resolve_parent(parent, what)[0]
    if name is None:
        label = getattr(fn, "__name__", None) or type(fn).__name__
        name = f"{what}({label})"
    elif not isinstance(name, str):
        raise TypeError(f"{what}(): name must be a str, got {type(name).__name__}")
    return parent_p, name, call_grace


def _running(schedule: Process) -> bool:
    # Checked right before each call: a tick that comes in the same instant
    # as the close must not start a call that is closing from birth.
    return schedule.state is State.RUNNING


def _next_tick(start: float, interval: float, k: int, now: float) -> int:
    """The first tick after tick ``k`` that is not in the past.

    Ticks are ``start + k * interval`` (computed, never accumulated, so the
    rate does not drift); the ones that passed while a call was busy are
    dropped. A tick at exactly ``now`` is not in the past.
    """
    # The division may round either way; start a little early, then step.
    k = max(k + 1, math.floor((now - start) / interval) - 1)
    while start + k * interval < now:
        k += 1
    return k


# ------------------------------------------------------------- the loops


async def _call(call: Process, sequential: bool) -> None:
    # Only a sequential loop waits; a concurrent one must not even keep a
    # reference to the call, which would outlive the call's close.
    if sequential:
        await call.closed.wait()


async def _every_loop(
    schedule: Process,
    interval: float,
    fn: CallFn,
    grace: float | None,
    sequential: bool,
) -> None:
    with move_on_closing(schedule):
        while True:
            await trio.sleep(interval)
            if not _running(schedule):
                return
            await _call(schedule.go(fn, grace=grace), sequential)


async def _tick_loop(
    schedule: Process,
    interval: float,
    fn: CallFn,
    grace: float | None,
    sequential: bool,
) -> None:
    start = trio.current_time()
    k = 1
    with move_on_closing(schedule):
        while True:
            await trio.sleep_until(start + k * interval)
            if not _running(schedule):
                return
            await _call(schedule.go(fn, grace=grace), sequential)
            k = _next_tick(start, interval, k, trio.current_time())


async def _ticker_loop(
    schedule: Process,
    source: AsyncIterable[object],
    fn: CallFn,
    grace: float | None,
    sequential: bool,
) -> None:
    call: Process | None = None
    # The channel is read all the time, busy or not, so that a tick that
    # comes while a call runs is dropped instead of queued.
    with move_on_closing(schedule):
        async for _ in source:
            if call is not None:
                if call.state is not State.CLOSED:
                    continue  # busy: this tick is dropped
                call = None
            # A tick taken while idle is handled, even if the close came in
            # the same instant (the call then starts closing, with its grace).
            if sequential:
                call = schedule.go(fn, grace=grace)
            else:
                schedule.go(fn, grace=grace)


async def _signal_loop(
    schedule: Process,
    source: AsyncIterable[_T],
    fn: Callable[[Process, _T], Awaitable[object]],
    grace: float | None,
    sequential: bool,
) -> None:
    # The next value is not read before the call is done: values wait in
    # the channel (its sender feels the backpressure), none is dropped.
    with move_on_closing(schedule):
        async for value in source:
            # Once taken off the channel, a value is handled, even if the
            # close came in the same instant: its sender saw it delivered.
            await _call(schedule.go(fn, value, grace=grace), sequential)


# ------------------------------------------------------------- public


def every(
    interval: float,
    fn: CallFn,
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Call ``await fn(proc)`` again and again, ``interval`` seconds apart.

    The first call starts ``interval`` seconds from now; each next call
    starts ``interval`` seconds after the previous one *ended* (its process
    is CLOSED, its own children included). So there are at least
    ``interval`` seconds between the end of a call and the start of the
    next, and one call at a time. For a fixed rate, use :func:`tick`.

    Each call runs in a new child process of the schedule (``proc``), so
    closing the schedule closes the call in flight and waits for it. A call
    that raises is a failure of its process: it closes the schedule and
    travels up the tree as every failure does; catch inside ``fn`` to keep
    the schedule going.

    Args:
        interval: seconds between the end of a call and the next start.
        fn: ``async def fn(proc)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"every(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``interval`` is not a number, or ``fn`` is not an async
            function, or ``parent`` is not a Process.
        ValueError: ``interval`` is not more than 0, or ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    seconds = _check_interval(interval, "every")
    parent_p, label, call_grace = _schedule("every", fn, parent, name, grace)
    return go(
        _every_loop, seconds, fn, call_grace, True, parent=parent_p, name=label, grace=0
    )


def every_go(
    interval: float,
    fn: CallFn,
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc)`` every ``interval`` seconds, without waiting for it.

    The first call starts ``interval`` seconds from now, and each next one
    ``interval`` seconds after the previous one *started*: calls that are
    still running do not hold the schedule up, so several may run at once.
    Each interval is measured from the previous start, so a late start
    delays the ones after it; :func:`tick_go` keeps to a fixed grid instead.

    Each call is a child process of the schedule; closing the schedule
    closes every call in flight and waits for them all.

    Args:
        interval: seconds between the starts of two calls.
        fn: ``async def fn(proc)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"every_go(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``interval`` is not a number, or ``fn`` is not an async
            function, or ``parent`` is not a Process.
        ValueError: ``interval`` is not more than 0, or ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    seconds = _check_interval(interval, "every_go")
    parent_p, label, call_grace = _schedule("every_go", fn, parent, name, grace)
    return go(
        _every_loop,
        seconds,
        fn,
        call_grace,
        False,
        parent=parent_p,
        name=label,
        grace=0,
    )


def tick(
    interval: float,
    fn: CallFn,
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Call ``await fn(proc)`` at a fixed rate, one call at a time.

    Ticks come every ``interval`` seconds from now (the first one
    ``interval`` seconds from now) on a fixed grid that does not drift.
    Each tick starts a call, unless the previous call is still running:
    ticks that come while a call is busy are dropped, never queued, and the
    next call starts on the first tick after the busy one ended. A call
    that ends exactly on a tick starts the next one on that tick.

    Each call is a child process of the schedule; closing the schedule
    closes the call in flight and waits for it.

    Args:
        interval: seconds between ticks.
        fn: ``async def fn(proc)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"tick(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``interval`` is not a number, or ``fn`` is not an async
            function, or ``parent`` is not a Process.
        ValueError: ``interval`` is not more than 0, or ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    seconds = _check_interval(interval, "tick")
    parent_p, label, call_grace = _schedule("tick", fn, parent, name, grace)
    return go(
        _tick_loop, seconds, fn, call_grace, True, parent=parent_p, name=label, grace=0
    )


def tick_go(
    interval: float,
    fn: CallFn,
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc)`` on every tick of a fixed grid, without waiting.

    Ticks come every ``interval`` seconds from now, and every tick starts a
    call, whether or not earlier calls still run. The grid does not drift;
    if the schedule itself is late (the event loop was blocked past several
    ticks), the missed ticks are dropped rather than started in a burst.

    Each call is a child process of the schedule; closing the schedule
    closes every call in flight and waits for them all.

    Args:
        interval: seconds between ticks.
        fn: ``async def fn(proc)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"tick_go(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``interval`` is not a number, or ``fn`` is not an async
            function, or ``parent`` is not a Process.
        ValueError: ``interval`` is not more than 0, or ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    seconds = _check_interval(interval, "tick_go")
    parent_p, label, call_grace = _schedule("tick_go", fn, parent, name, grace)
    return go(
        _tick_loop, seconds, fn, call_grace, False, parent=parent_p, name=label, grace=0
    )


def ticker(
    receive_channel: AsyncIterable[object],
    fn: CallFn,
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Call ``await fn(proc)`` for the ticks of a channel, one call at a time.

    The channel is a clock: each value received is a tick, and what the
    value is does not matter. A tick starts a call unless the previous call
    is still running; ticks that come while a call is busy are read and
    dropped, so the sender is never held up and no backlog builds. (To
    handle every value, in order, use :func:`on_signal`.)

    When the channel ends (its sender is closed), the schedule closes once
    the call in flight is done. proctree never closes the channel: it is
    the caller's.

    Args:
        receive_channel: where the ticks come from: a trio receive channel,
            or any async iterable.
        fn: ``async def fn(proc)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"ticker(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``receive_channel`` is not an async iterable, ``fn`` is
            not an async function, or ``parent`` is not a Process.
        ValueError: ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    _check_source(receive_channel, "ticker")
    parent_p, label, call_grace = _schedule("ticker", fn, parent, name, grace)
    return go(
        _ticker_loop,
        receive_channel,
        fn,
        call_grace,
        True,
        parent=parent_p,
        name=label,
        grace=0,
    )


def ticker_go(
    receive_channel: AsyncIterable[object],
    fn: CallFn,
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc)`` for every tick of a channel, without waiting.

    Every value received starts a call at once, whether or not earlier
    calls still run. When the channel ends, the schedule closes once every
    call in flight is done.

    Args:
        receive_channel: where the ticks come from: a trio receive channel,
            or any async iterable.
        fn: ``async def fn(proc)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"ticker_go(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``receive_channel`` is not an async iterable, ``fn`` is
            not an async function, or ``parent`` is not a Process.
        ValueError: ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    _check_source(receive_channel, "ticker_go")
    parent_p, label, call_grace = _schedule("ticker_go", fn, parent, name, grace)
    return go(
        _ticker_loop,
        receive_channel,
        fn,
        call_grace,
        False,
        parent=parent_p,
        name=label,
        grace=0,
    )


def on_signal(
    receive_channel: AsyncIterable[_T],
    fn: Callable[[Process, _T], Awaitable[object]],
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Call ``await fn(proc, value)`` for every value of a channel, in order.

    Where :func:`ticker` treats the channel as a clock, ``on_signal`` treats
    it as a stream of events, each of which must be handled: ``fn`` gets the
    value, and the next value is read only once the call for the previous
    one is done (its process is CLOSED). Nothing is dropped; values wait in
    the channel meanwhile, so its sender feels the backpressure.

    It fits :func:`trio.open_signal_receiver`, whose iterator gives signal
    numbers (``on_signal(receiver, reload)`` with ``async def reload(proc,
    signum)``), and any channel of requests or messages.

    When the channel ends, the schedule closes once the call in flight is
    done. proctree never closes the channel: it is the caller's. Once the
    schedule is closing it reads no more values (one read in that very
    instant is not handled); the rest stay in the channel.

    Args:
        receive_channel: where the values come from: a trio receive channel,
            a signal receiver, or any async iterable.
        fn: ``async def fn(proc, value)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"on_signal(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``receive_channel`` is not an async iterable, ``fn`` is
            not an async function, or ``parent`` is not a Process.
        ValueError: ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    _check_source(receive_channel, "on_signal")
    parent_p, label, call_grace = _schedule(
        "on_signal", fn, parent, name, grace, "fn(proc, value)"
    )
    return go(
        _signal_loop,
        receive_channel,
        fn,
        call_grace,
        True,
        parent=parent_p,
        name=label,
        grace=0,
    )


def on_signal_go(
    receive_channel: AsyncIterable[_T],
    fn: Callable[[Process, _T], Awaitable[object]],
    *,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc, value)`` for every value of a channel, without waiting.

    Like :func:`on_signal`, every value is handled and none is dropped, but
    each call starts as soon as its value is read, so several may run at
    once. When the channel ends, the schedule closes once every call in
    flight is done.

    Args:
        receive_channel: where the values come from: a trio receive channel,
            a signal receiver, or any async iterable.
        fn: ``async def fn(proc, value)``; ``proc`` is the call's process.
        parent: the parent of the schedule; None means the current process.
        name: the schedule's name; by default ``"on_signal_go(<fn's name>)"``.
        grace: seconds a call may run on once closing before it is
            cancelled; by default the tree's grace.

    Returns:
        The schedule's process; close it to stop the schedule.

    Raises:
        TypeError: ``receive_channel`` is not an async iterable, ``fn`` is
            not an async function, or ``parent`` is not a Process.
        ValueError: ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    _check_source(receive_channel, "on_signal_go")
    parent_p, label, call_grace = _schedule(
        "on_signal_go", fn, parent, name, grace, "fn(proc, value)"
    )
    return go(
        _signal_loop,
        receive_channel,
        fn,
        call_grace,
        False,
        parent=parent_p,
        name=label,
        grace=0,
    )
