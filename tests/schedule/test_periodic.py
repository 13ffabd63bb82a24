"""proctree.periodic: goprocess's periodic tests, retold with exact times."""

from __future__ import annotations

import gc
import math
import signal
import weakref
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree.periodic import (
    every,
    every_go,
    on_signal,
    on_signal_go,
    tick,
    tick_go,
    ticker,
    ticker_go,
)

from ..support.helpers import no_garbage

CallFn = Callable[[proctree.Process], Awaitable[object]]


class Boom(Exception):
    pass


def stamps(times: list[float], durations: list[float] | None = None) -> CallFn:
    """A call that notes when it starts, then runs for the next duration (or 0)."""
    queue = list(durations or [])

    async def call(proc: proctree.Process) -> None:
        times.append(trio.current_time())
        await trio.sleep(queue.pop(0) if queue else 0)

    return call


def blocks(times: list[float], calls: list[proctree.Process]) -> CallFn:
    """A call that notes when it starts and runs until its process closes."""

    async def call(proc: proctree.Process) -> None:
        times.append(trio.current_time())
        calls.append(proc)
        await proc.closing.wait()

    return call


async def send_at(
    proc: proctree.Process,
    send: trio.MemorySendChannel[object],
    moments: list[float],
    sent: list[float],
) -> None:
    """Send one value at each moment, noting when each send returned."""
    async with send:
        for i, moment in enumerate(moments):
            await trio.sleep_until(moment)
            await send.send(i)
            sent.append(trio.current_time())


# ------------------------------------------------------------------ every


async def test_every_calls_one_interval_apart_starting_one_interval_from_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    async with proctree.open_root():
        await trio.sleep(10)
        schedule = every(2, stamps(times))
        await trio.sleep(7)
        await schedule.aclose()
    assert times == [12.0, 14.0, 16.0]


async def test_every_waits_the_interval_after_a_slow_call_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    async with proctree.open_root():
        schedule = every(1, stamps(times, [2.5, 0, 0]))
        await trio.sleep(6)
        await schedule.aclose()
    # 1 -> ends 3.5; 4.5 -> ends 4.5; 5.5
    assert times == [1.0, 4.5, 5.5]


async def test_every_counts_the_children_of_a_call_as_part_of_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []

    async def helper(proc: proctree.Process) -> None:
        await trio.sleep(3)

    async def call(proc: proctree.Process) -> None:
        times.append(trio.current_time())
        proc.go(helper)  # returns at once; the call ends when helper does

    async with proctree.open_root():
        schedule = every(1, call)
        await trio.sleep(9.5)
        await schedule.aclose()
    assert times == [1.0, 5.0, 9.0]


async def test_every_go_keeps_starting_calls_while_earlier_ones_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    calls: list[proctree.Process] = []
    async with proctree.open_root():
        schedule = every_go(1, blocks(times, calls))
        await trio.sleep(3.5)
        assert [c.state for c in calls] == [State.RUNNING] * 3
        await schedule.aclose()
        assert trio.current_time() == 3.5
        assert [c.state for c in calls] == [State.CLOSED] * 3
    assert times == [1.0, 2.0, 3.0]


# ------------------------------------------------------------------- tick


async def test_tick_keeps_a_fixed_rate_whatever_the_calls_take(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    async with proctree.open_root():
        schedule = tick(1, stamps(times, [0.25, 0.75, 0.5]))
        await trio.sleep(4.5)
        await schedule.aclose()
    assert times == [1.0, 2.0, 3.0, 4.0]


async def test_tick_drops_the_ticks_that_come_while_a_call_is_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    async with proctree.open_root():
        schedule = tick(1, stamps(times, [2.5, 0, 0]))
        await trio.sleep(6.5)
        await schedule.aclose()
    # busy from 1 to 3.5: the ticks at 2 and 3 are dropped, not queued
    assert times == [1.0, 4.0, 5.0, 6.0]


async def test_tick_starts_on_the_tick_at_which_the_busy_call_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    async with proctree.open_root():
        schedule = tick(1, stamps(times, [2, 0]))
        await trio.sleep(4.5)
        await schedule.aclose()
    assert times == [1.0, 3.0, 4.0]


async def test_tick_does_not_drift_with_an_inexact_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    async with proctree.open_root():
        schedule = tick(0.1, stamps(times, [0.05] * 100))
        await trio.sleep(10.05)
        await schedule.aclose()
    assert times == [k * 0.1 for k in range(1, 101)]


async def test_tick_go_keeps_firing_while_calls_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    calls: list[proctree.Process] = []
    async with proctree.open_root():
        schedule = tick_go(0.5, blocks(times, calls))
        await trio.sleep(2.25)
        assert [c.state for c in calls] == [State.RUNNING] * 4
        await schedule.aclose()
        assert trio.current_time() == 2.25
    assert times == [0.5, 1.0, 1.5, 2.0]


# -------------------------------------------------------------- closing


@pytest.mark.parametrize("make", [every, every_go, tick, tick_go])
async def test_closing_stops_the_schedule_at_once_and_waits_for_the_call_in_flight(
    autojump_clock: trio.testing.MockClock,
    make: Callable[..., proctree.Process],
) -> None:
    log: list[str] = []

    async def call(proc: proctree.Process) -> None:
        log.append(f"start {trio.current_time()}")
        await proc.closing.wait()
        await trio.sleep(0.5)  # finish the job in hand
        log.append(f"end {trio.current_time()}")

    async with proctree.open_root():
        schedule = make(1, call)
        await trio.sleep(1.5)
        await schedule.aclose()
        log.append(f"closed {trio.current_time()}")
        await trio.sleep(5)
    assert log == ["start 1.0", "end 2.0", "closed 2.0"]
    assert schedule.state is State.CLOSED


@pytest.mark.parametrize("kind", ["every", "every_go", "tick", "tick_go", "ticker"])
async def test_a_close_with_a_long_grace_still_stops_the_schedule_at_once(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    times: list[float] = []
    _, receive = trio.open_memory_channel[object](0)
    makers: dict[str, Callable[[CallFn, proctree.Process], proctree.Process]] = {
        "every": lambda fn, parent: every(10, fn, parent=parent),
        "every_go": lambda fn, parent: every_go(10, fn, parent=parent),
        "tick": lambda fn, parent: tick(10, fn, parent=parent),
        "tick_go": lambda fn, parent: tick_go(10, fn, parent=parent),
        "ticker": lambda fn, parent: ticker(receive, fn, parent=parent),
    }
    async with proctree.open_root() as root:
        group = proctree.with_parent(root)
        schedule = makers[kind](stamps(times), group)
        await trio.sleep(1)
        # A deadline 60 s away travels down; the loop must not sleep it out.
        await group.aclose(grace=60)
        assert trio.current_time() == 1.0
        assert schedule.state is State.CLOSED
    assert times == []


async def test_a_call_that_ignores_closing_is_cancelled_after_its_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[float] = []

    async def stubborn(proc: proctree.Process) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(trio.current_time())

    async with proctree.open_root():
        schedule = every(1, stubborn, grace=2)
        await trio.sleep(1.5)
        await schedule.aclose()
        assert trio.current_time() == 3.5
    assert cancelled == [3.5]


async def test_closing_before_the_first_tick_makes_no_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    async with proctree.open_root():
        schedules = [
            make(1, stamps(times)) for make in (every, every_go, tick, tick_go)
        ]
        await trio.sleep(0.5)
        for schedule in schedules:
            await schedule.aclose()
        assert trio.current_time() == 0.5
        await trio.sleep(5)
    assert times == []


@pytest.mark.parametrize("run", range(8))  # trio orders same-instant wakeups at random
async def test_a_tick_in_the_same_instant_as_the_close_ends_with_everything_closed(
    autojump_clock: trio.testing.MockClock, run: int
) -> None:
    times: list[float] = []
    calls: list[proctree.Process] = []

    async def call(proc: proctree.Process) -> None:
        times.append(trio.current_time())
        calls.append(proc)

    async with proctree.open_root():
        schedule = tick(1, call)
        await trio.sleep(2)  # wakes in the same instant as the tick at 2
        await schedule.aclose()
        assert trio.current_time() == 2.0
    assert times in ([1.0], [1.0, 2.0])
    assert [c.state for c in calls] == [State.CLOSED] * len(times)


async def test_closing_the_parent_closes_the_schedule_and_its_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    calls: list[proctree.Process] = []
    async with proctree.open_root() as root:
        group = proctree.with_parent(root, name="group")
        schedule = every_go(1, blocks(times, calls), parent=group)
        await trio.sleep(2.5)
        await group.aclose()
        assert schedule.state is State.CLOSED
        assert [c.state for c in calls] == [State.CLOSED] * 2
        assert trio.current_time() == 2.5


async def test_the_schedule_goes_under_the_current_process_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []

    async def owner(proc: proctree.Process) -> None:
        every(1, stamps(times))
        await trio.sleep(2.5)

    async with proctree.open_root():
        worker = proctree.go(owner)
        # The go function has returned at 2.5, but its process waits for
        # the schedule, its child, which nobody closes.
        await trio.sleep(3.5)
        assert worker.state is State.RUNNING
        await worker.aclose()
    assert times == [1.0, 2.0, 3.0]


async def test_a_failing_call_closes_the_schedule_and_reaches_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []

    async def fails_the_second_time(proc: proctree.Process) -> None:
        times.append(trio.current_time())
        if len(times) == 2:
            raise Boom("second call")

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="second call")):
        async with proctree.open_root():
            schedule = every(1, fails_the_second_time)
            await trio.sleep_forever()
    assert times == [1.0, 2.0]
    assert schedule.state is State.CLOSED
    assert schedule.error is None  # the call failed, not the schedule


async def test_the_schedule_and_its_calls_are_named(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    calls: list[proctree.Process] = []
    async with proctree.open_root():
        work = blocks(times, calls)
        assert every(1, work).name == "every(call)"
        assert tick_go(1, work, name="beat").name == "beat"
        await trio.sleep(1.5)
        assert {c.name for c in calls} == {"call"}


# ----------------------------------------------------------------- ticker


async def test_ticker_drops_the_ticks_that_come_while_a_call_is_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    sent: list[float] = []
    send, receive = trio.open_memory_channel[object](0)
    async with proctree.open_root() as root:
        schedule = ticker(receive, stamps(times, [1.5, 1.5, 1.5]))
        root.go(send_at, send, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], sent)
        await schedule.wait()
        # The channel ended at 6; the call started at 5 ran until 6.5.
        assert trio.current_time() == 6.5
    assert times == [1.0, 3.0, 5.0]
    # The sender is never held up, busy or not.
    assert sent == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


async def test_ticker_go_starts_a_call_for_every_tick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    send, receive = trio.open_memory_channel[object](0)
    async with proctree.open_root() as root:
        schedule = ticker_go(receive, stamps(times, [1.5] * 4))
        root.go(send_at, send, [1.0, 1.5, 2.0, 2.5], [])
        await schedule.wait()
        assert trio.current_time() == 4.0
    assert times == [1.0, 1.5, 2.0, 2.5]


async def test_closing_a_ticker_leaves_its_channel_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    send, receive = trio.open_memory_channel[object](1)
    async with proctree.open_root():
        schedule = ticker(receive, stamps(times))
        await send.send("tick")
        await trio.sleep(1)
        await schedule.aclose()
        send.send_nowait("after")
        assert receive.receive_nowait() == "after"
    assert times == [0.0]


# -------------------------------------------------------------- on_signal


async def test_on_signal_handles_every_value_in_order_one_at_a_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[object, float]] = []
    sent: list[float] = []
    send, receive = trio.open_memory_channel[object](0)

    async def handle(proc: proctree.Process, value: object) -> None:
        handled.append((value, trio.current_time()))
        await trio.sleep(1)

    async with proctree.open_root() as root:
        schedule = on_signal(receive, handle)
        root.go(send_at, send, [0.0, 0.0, 0.0], sent)
        await schedule.wait()
        assert trio.current_time() == 3.0
    assert handled == [(0, 0.0), (1, 1.0), (2, 2.0)]
    # Nothing dropped: the sender waited for each value to be taken.
    assert sent == [0.0, 1.0, 2.0]


async def test_on_signal_go_handles_every_value_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[object, float]] = []
    send, receive = trio.open_memory_channel[object](0)

    async def handle(proc: proctree.Process, value: object) -> None:
        handled.append((value, trio.current_time()))
        await trio.sleep(1)

    async with proctree.open_root() as root:
        schedule = on_signal_go(receive, handle)
        root.go(send_at, send, [0.0, 0.0, 0.5], [])
        await schedule.wait()
        assert trio.current_time() == 1.5
    assert handled == [(0, 0.0), (1, 0.0), (2, 0.5)]


async def test_on_signal_runs_a_handler_for_a_real_signal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[int] = []
    done = trio.Event()

    async def reload(proc: proctree.Process, signum: int) -> None:
        got.append(signum)
        done.set()

    with trio.open_signal_receiver(signal.SIGUSR1) as receiver:
        async with proctree.open_root():
            schedule = on_signal(receiver, reload)
            signal.raise_signal(signal.SIGUSR1)
            await done.wait()
            await schedule.aclose()
    assert got == [signal.SIGUSR1]


# -------------------------------------------------------------- bad input

SCHEDULES = [every, every_go, tick, tick_go]
CHANNELS = [ticker, ticker_go, on_signal, on_signal_go]


async def _noop(proc: proctree.Process) -> None:
    pass


def _sync(proc: proctree.Process) -> None:
    pass


@pytest.mark.parametrize("make", SCHEDULES)
@pytest.mark.parametrize("interval", [0, -1, -0.5, math.nan])
async def test_an_interval_that_is_not_positive_is_a_value_error(
    autojump_clock: trio.testing.MockClock,
    make: Callable[..., proctree.Process],
    interval: float,
) -> None:
    async with proctree.open_root():
        with pytest.raises(ValueError, match="interval must be more than 0 seconds"):
            make(interval, _noop)


@pytest.mark.parametrize("make", SCHEDULES)
@pytest.mark.parametrize("interval", ["1", None, True])
async def test_an_interval_that_is_not_a_number_is_a_type_error(
    autojump_clock: trio.testing.MockClock,
    make: Callable[..., proctree.Process],
    interval: object,
) -> None:
    async with proctree.open_root():
        with pytest.raises(TypeError, match="interval must be a number of seconds"):
            make(interval, _noop)


@pytest.mark.parametrize("make", SCHEDULES)
async def test_a_function_that_is_not_async_is_a_type_error(
    autojump_clock: trio.testing.MockClock,
    make: Callable[..., proctree.Process],
) -> None:
    async with proctree.open_root():
        with pytest.raises(TypeError, match=r"needs an async function \(async def"):
            make(1, _sync)
        with pytest.raises(TypeError, match="not callable"):
            make(1, "fn")


@pytest.mark.parametrize("make", CHANNELS)
async def test_the_channel_variants_check_the_channel_and_the_function(
    autojump_clock: trio.testing.MockClock,
    make: Callable[..., proctree.Process],
) -> None:
    _, receive = trio.open_memory_channel[object](0)
    async with proctree.open_root():
        with pytest.raises(TypeError, match="open_memory_channel"):
            make(5, _noop)
        with pytest.raises(TypeError, match="async def"):
            make(receive, _sync)


@pytest.mark.parametrize("make", SCHEDULES)
async def test_a_negative_grace_or_a_bad_name_is_refused(
    autojump_clock: trio.testing.MockClock,
    make: Callable[..., proctree.Process],
) -> None:
    async with proctree.open_root():
        with pytest.raises(ValueError, match="grace must be >= 0"):
            make(1, _noop, grace=-1)
        with pytest.raises(TypeError, match="name must be a str"):
            make(1, _noop, name=5)


@pytest.mark.parametrize("make", SCHEDULES)
async def test_a_schedule_outside_every_root_says_to_open_one(
    autojump_clock: trio.testing.MockClock,
    make: Callable[..., proctree.Process],
) -> None:
    with pytest.raises(proctree.ProctreeError, match=r"open_root"):
        make(1, _noop)


# ------------------------------------------------------------------ leaks


async def _run_schedules() -> list[weakref.ref[proctree.Process]]:
    calls: list[weakref.ref[proctree.Process]] = []

    async def call(proc: proctree.Process) -> None:
        calls.append(weakref.ref(proc))
        await trio.sleep(0.5)

    async def handle(proc: proctree.Process, value: object) -> None:
        await call(proc)

    send, receive = trio.open_memory_channel[object](0)
    async with proctree.open_root() as root:
        schedules = [make(1, call) for make in (every, every_go, tick, tick_go)] + [
            ticker(receive, call),
            on_signal_go(receive, handle),
        ]
        root.go(send_at, send, [0.5, 1.5, 2.5], [])
        await trio.sleep(3.25)
        refs = [weakref.ref(s) for s in schedules]
    return refs + calls


async def test_closed_schedules_leave_no_garbage_and_no_live_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with no_garbage():
        refs = await _run_schedules()
    assert len(refs) > 6
    assert [r() for r in refs] == [None] * len(refs)


async def test_a_long_running_schedule_does_not_keep_its_finished_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[weakref.ref[proctree.Process]] = []

    async def call(proc: proctree.Process) -> None:
        calls.append(weakref.ref(proc))

    async with proctree.open_root():
        schedule = tick_go(0.01, call)
        await trio.sleep(1.005)
        gc.collect()
        assert len(calls) == 100
        assert [r() for r in calls] == [None] * 100
        assert schedule.state is State.RUNNING


@pytest.mark.parametrize("schedule_of", [ticker, on_signal])
async def test_a_value_taken_off_the_channel_as_the_close_comes_is_handled(
    autojump_clock: trio.testing.MockClock,
    schedule_of: Callable[..., proctree.Process],
) -> None:
    # goprocess parity: its OnSignal always runs the function for a value
    # it has received. An unbuffered channel hands the value straight to
    # the waiting schedule; the close comes before the schedule runs again.
    send, receive = trio.open_memory_channel[int](0)
    handled: list[object] = []

    async def handle(proc: proctree.Process, *value: object) -> None:
        handled.append(value[0] if value else "tick")

    async with proctree.open_root() as root, send, receive:
        schedule = schedule_of(receive, handle, parent=root)
        await trio.testing.wait_all_tasks_blocked()
        send.send_nowait(7)  # taken off the channel by the waiting schedule
        await schedule.aclose()
    assert handled == [7 if schedule_of is on_signal else "tick"]


async def test_on_signal_handles_the_values_goprocess_s_example_sends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # goprocess's OnSignal example, told in trio: three signals, each sent
    # when the previous was received, then the schedule is closed at once.
    send, receive = trio.open_memory_channel[int](0)
    handled: list[int] = []

    async def handle(proc: proctree.Process, value: int) -> None:
        handled.append(value)

    async with proctree.open_root() as root, send, receive:
        schedule = on_signal(receive, handle, parent=root)
        for value in (1, 2, 3):
            await send.send(value)
        await schedule.aclose()
    assert handled == [1, 2, 3]
