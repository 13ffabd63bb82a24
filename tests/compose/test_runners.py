"""Runners and their combinators: pact's test list, retold, plus our fixes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree.testing import TeardownRecorder


class Boom(Exception):
    pass


def service(log: list[str], name: str) -> proctree.Runner:
    """A leaf that logs its start and stop."""

    async def foreground() -> None:
        log.append(f"start {name}")
        try:
            await trio.sleep_forever()
        finally:
            log.append(f"stop {name}")

    return proctree.leaf(foreground, name=name)


def failing_runner(name: str) -> proctree.Runner:
    async def run(ready: Callable[[], Awaitable[None]]) -> None:
        raise Boom(name)

    return run


async def start(runner: proctree.Runner, **kwargs: float) -> proctree.Process:
    p = proctree.new_process(runner)
    await p.start(**kwargs)
    return p


@pytest.mark.parametrize("combinator", [proctree.chain, proctree.sequential])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
async def test_a_stack_starts_in_order_and_stops_in_reverse(
    autojump_clock: trio.testing.MockClock,
    combinator: Callable[..., proctree.Runner],
    n: int,
) -> None:
    log: list[str] = []
    names = [str(i) for i in range(n)]
    async with proctree.open_root():
        p = await start(combinator(*(service(log, x) for x in names)))
        assert log == [f"start {x}" for x in names]
        assert p.state is State.RUNNING
        await p.stop()
        assert p.state is State.CLOSED
    assert log == [f"start {x}" for x in names] + [f"stop {x}" for x in reversed(names)]


async def test_the_tree_shows_one_process_per_dependency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root():
        p = await start(proctree.sequential(service(log, "db"), service(log, "cache")))
        assert p.name == "sequential[db, cache]"
        children = list(p._children or ())
        assert [c.name for c in children] == ["db", "cache"]
        assert all(c.state is State.RUNNING for c in children)
        chained = await start(proctree.chain(service(log, "a"), service(log, "b")))
        (a,) = list(chained._children or ())
        (b,) = list(a._children or ())
        assert (a.name, b.name) == ("a", "b")


async def test_parallel_runs_every_dependency_and_stops_them_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root():
        p = await start(proctree.parallel(*(service(log, str(i)) for i in range(5))))
        assert sorted(log) == [f"start {i}" for i in range(5)]
        await p.stop()
    assert sorted(log[5:]) == [f"stop {i}" for i in range(5)]


@pytest.mark.parametrize("combinator", [proctree.chain, proctree.sequential])
@pytest.mark.parametrize("position", [0, 1, 2])
async def test_a_failing_start_rolls_back_those_already_started(
    autojump_clock: trio.testing.MockClock,
    combinator: Callable[..., proctree.Runner],
    position: int,
) -> None:
    log: list[str] = []
    runners = [
        failing_runner(str(i)) if i == position else service(log, str(i))
        for i in range(3)
    ]
    async with proctree.open_root():
        p = proctree.new_process(combinator(*runners))
        with pytest.raises(Boom, match=str(position)):
            await p.start()
        assert p.state is State.CLOSED
        assert isinstance(p.error, Boom)
    started = [str(i) for i in range(position)]
    assert log == [f"start {x}" for x in started] + [
        f"stop {x}" for x in reversed(started)
    ]


async def test_parallel_rolls_back_when_one_fails_to_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def slow_failure(ready: Callable[[], Awaitable[None]]) -> None:
        await trio.sleep(1)
        raise Boom("late")

    async with proctree.open_root():
        p = proctree.new_process(
            proctree.parallel(service(log, "a"), slow_failure, service(log, "b"))
        )
        with pytest.raises(Boom, match="late"):
            await p.start()
    assert sorted(log) == ["start a", "start b", "stop a", "stop b"]


async def test_a_startup_failure_never_reaches_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        p = proctree.new_process(failing_runner("x"))
        with pytest.raises(Boom):
            await p.start()
        assert root.state is State.RUNNING
        assert isinstance(p.error, Boom)


async def test_a_dependency_dying_while_running_stops_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def dies_later() -> None:
        log.append("start dying")
        await trio.sleep(5)
        raise Boom("died")

    with pytest.RaisesGroup(Boom) as info:
        async with proctree.open_root():
            p = await start(
                proctree.sequential(
                    service(log, "a"), proctree.leaf(dies_later), service(log, "c")
                )
            )
            await trio.sleep_forever()
    assert log == ["start a", "start dying", "start c", "stop c", "stop a"]
    assert trio.current_time() == 5
    assert p.state is State.CLOSED
    assert str(info.value.exceptions[0]) == "died"


async def test_a_dependency_ending_by_itself_stops_the_combinator(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def brief(ready: Callable[[], Awaitable[None]]) -> None:
        with trio.move_on_after(2):
            await ready()
        log.append("brief returned")

    async with proctree.open_root():
        p = await start(proctree.parallel(service(log, "a"), brief))
        await p.wait()
        assert trio.current_time() == 2
    assert "stop a" in log


async def test_leaf_run_error_is_returned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def work() -> None:
        await trio.sleep(1)
        raise Boom("work")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = await start(proctree.leaf(work))
            with pytest.raises(Boom, match="work"):
                await p.wait()


async def test_leaf_run_ending_first_cancels_ready_and_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def work() -> None:
        await trio.sleep(1)

    with pytest.RaisesGroup(proctree.ProctreeError):
        async with proctree.open_root():
            p = await start(proctree.leaf(work, name="quitter"))
            with pytest.raises(proctree.ProctreeError, match="quitter"):
                await p.wait()
            assert trio.current_time() == 1


async def test_leaf_callback_error_wins(autojump_clock: trio.testing.MockClock) -> None:
    async def work() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Boom("run")

    async def ready() -> None:
        await trio.sleep(1)
        raise Boom("callback")

    with pytest.raises(Boom, match="callback") as info:
        await proctree.leaf(work).run(ready)
    assert str(info.value.__context__) == "run"


async def test_leaf_cancels_the_foreground_once_graceful_stop_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # pact's Leaf: the graceful stop returns, then the foreground's context
    # is cancelled, at once: no waiting out the grace, no overrun.
    log: list[str] = []

    async def work() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            log.append("foreground cancelled")
            raise

    async def stop() -> None:
        await trio.sleep(1)
        log.append("graceful_stop returned")

    async with proctree.open_root():
        p = proctree.new_process(proctree.leaf(work, stop), grace=10)
        await p.start()
        await p.stop()
        assert trio.current_time() == 1
        assert not p.overran_grace
    assert log == ["graceful_stop returned", "foreground cancelled"]


async def test_leaf_whose_graceful_stop_waits_lets_the_foreground_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    done = trio.Event()
    ended = trio.Event()

    async def work() -> None:
        await done.wait()
        await trio.sleep(1)
        log.append("foreground ended")
        ended.set()

    async def stop() -> None:
        log.append("graceful_stop")
        done.set()
        await ended.wait()

    async with proctree.open_root():
        p = await start(proctree.leaf(work, stop))
        await p.stop()
        assert trio.current_time() == 1
    assert log == ["graceful_stop", "foreground ended"]


async def test_start_stop_callback_error_wins_and_keeps_the_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # pact's StartStop: the callback fails (a failure further along a chain
    # reaching an earlier part) and the graceful stop fails too.
    async def begin() -> None:
        pass

    async def end() -> None:
        raise Boom("stop")

    async def ready() -> None:
        raise Boom("callback")

    with pytest.raises(Boom, match="callback") as info:
        await proctree.start_stop(begin, end).run(ready)
    assert str(info.value.__context__) == "stop"


async def test_leaf_without_graceful_stop_cancels_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        p = await start(proctree.leaf(trio.sleep_forever))
        await p.stop()
        assert trio.current_time() == 0


async def test_start_stop_start_error_skips_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def begin() -> None:
        raise Boom("start")

    async def end() -> None:
        log.append("stop called")

    async with proctree.open_root():
        with pytest.raises(Boom):
            await start(proctree.start_stop(begin, end))
    assert log == []


async def test_start_stop_stop_error_is_surfaced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def begin() -> None:
        pass

    async def end() -> None:
        raise Boom("stop")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = await start(proctree.start_stop(begin, end))
            with pytest.raises(Boom, match="stop"):
                await p.stop()


async def test_nop_is_ready_at_once_and_stops_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        p = await start(proctree.nop())
        assert p.state is State.RUNNING
        await p.stop()
        assert p.state is State.CLOSED
        assert trio.current_time() == 0


async def test_prefixed_error_keeps_the_type_and_adds_the_prefix(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        p = proctree.new_process(proctree.prefixed_error("db", failing_runner("down")))
        with pytest.raises(Boom) as info:
            await p.start()
    assert "db: down" in info.value.__notes__
    with pytest.RaisesGroup(Boom):
        raise BaseExceptionGroup("g", [info.value])


async def test_start_timeout_cancels_the_runner_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[float] = []

    async def slow(ready: Callable[[], Awaitable[None]]) -> None:
        try:
            await trio.sleep(100)
        except trio.Cancelled:
            cancelled.append(trio.current_time())
            raise

    async with proctree.open_root():
        p = proctree.new_process(slow)
        with pytest.raises(proctree.StartTimeoutError, match="3s"):
            await p.start(timeout=3)
        assert cancelled == [3]
        assert p.state is State.CLOSED
        assert isinstance(p.error, proctree.StartTimeoutError)


async def test_a_runner_returning_before_ready_fails_its_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def quits(ready: Callable[[], Awaitable[None]]) -> None:
        pass

    async with proctree.open_root():
        p = proctree.new_process(quits)
        with pytest.raises(proctree.StartError, match="before calling ready"):
            await p.start()
        assert p.state is State.CLOSED


async def test_stop_gives_the_grace_then_forces(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(ready: Callable[[], Awaitable[None]]) -> None:
        await ready()
        await trio.sleep_forever()

    async with proctree.open_root():
        p = await start(stubborn)
        await p.stop(grace=2)
        assert trio.current_time() == 2
        assert p.overran_grace


async def test_a_grace_given_to_stop_bounds_the_whole_subtree(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    def stubborn(name: str) -> proctree.Runner:
        async def run(ready: Callable[[], Awaitable[None]]) -> None:
            await ready()
            await trio.sleep_forever()

        return proctree.prefixed_error(name, run)

    async with proctree.open_root(grace=100):
        p = await start(proctree.sequential(stubborn("a"), stubborn("b")))
        await p.stop(grace=3)
        assert trio.current_time() == 3
        deps = list(p._children or ())
    assert deps == []
    assert "2 processes did not end within their grace" in caplog.text


async def test_each_dependency_gets_its_own_grace_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(ready: Callable[[], Awaitable[None]]) -> None:
        await ready()
        await trio.sleep_forever()

    async with proctree.open_root(grace=2):
        p = await start(proctree.sequential(stubborn, stubborn, stubborn))
        await p.stop()
        assert trio.current_time() == 6


async def test_stopping_a_starting_combinator_stops_what_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def slow_start(ready: Callable[[], Awaitable[None]]) -> None:
        await trio.sleep(10)
        await ready()

    async with proctree.open_root(), trio.open_nursery() as nursery:
        p = proctree.new_process(proctree.sequential(service(log, "a"), slow_start))

        async def starter() -> None:
            with pytest.raises(proctree.InvalidStateError, match="while starting"):
                await p.start()

        nursery.start_soon(starter)
        await trio.sleep(1)
        await p.stop()
    assert log == ["start a", "stop a"]


async def test_invalid_state_moves_raise_and_name_the_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        p = await start(proctree.nop())
        with pytest.raises(proctree.InvalidStateError, match="RUNNING"):
            await p.start()
        await p.stop()
        with pytest.raises(proctree.InvalidStateError, match="CLOSED"):
            await p.start()
        with pytest.raises(proctree.InvalidStateError, match="CLOSED"):
            await p.stop()
        await p.aclose()  # idempotent
        q = proctree.new_process(proctree.nop())
        await q.stop()
        assert q.state is State.CLOSED
        with pytest.raises(proctree.InvalidStateError, match="CLOSED"):
            await q.start()
        with pytest.raises(proctree.InvalidStateError, match="RUNNING"):
            await root.go(_idle).start()


async def _idle(proc: proctree.Process) -> None:
    await proc.closing.wait()


async def test_closing_the_parent_stops_an_initial_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        parent = proctree.with_parent(root)
        p = proctree.new_process(proctree.nop(), parent=parent)
        assert p.state is State.INITIAL
        await parent.aclose()
        assert p.state is State.CLOSED


async def test_bad_runner_input_gives_clear_errors(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def sync(ready: object) -> None:
        pass

    async with proctree.open_root():
        with pytest.raises(TypeError, match="not callable"):
            proctree.new_process(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="async def"):
            proctree.new_process(sync)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not callable"):
            proctree.sequential(proctree.nop(), "db")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="async def"):
            proctree.leaf(lambda: None)  # type: ignore[arg-type, return-value]
        with pytest.raises(ValueError, match=">= 0"):
            await proctree.new_process(proctree.nop()).start(timeout=-1)
        with pytest.raises(ValueError, match=">= 0"):
            proctree.new_process(proctree.nop(), grace=-1)
        with pytest.raises(ValueError, match=">= 0"):
            await proctree.new_process(proctree.nop()).stop(grace=-2)
        with pytest.raises(TypeError, match="prefix must be a str"):
            proctree.prefixed_error(3, proctree.nop())  # type: ignore[arg-type]


async def test_runner_objects_work_like_functions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Server:
        name = "server"

        async def run(self, ready: Callable[[], Awaitable[None]]) -> None:
            await ready()

    async with proctree.open_root():
        p = await start(Server())
        assert p.name == "server"
        await p.stop()


async def test_the_plugin_recorder_sees_a_stack_stop_in_reverse(
    autojump_clock: trio.testing.MockClock,
    proctree_root: proctree.Process,
    proctree_recorder: TeardownRecorder,
) -> None:
    log: list[str] = []
    stack = proctree.sequential(*(service(log, x) for x in ("db", "cache", "http")))
    p = proctree.new_process(stack, parent=proctree_root)
    await p.start()
    await p.stop()
    proctree_recorder.assert_order("http", "cache", "db", p.name)


async def test_a_leaf_forced_while_stopping_still_reports_its_foreground_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # graceful_stop hangs, so stop(grace=1) forces the leaf at t=1; the
    # foreground fails as it is cancelled, and the leaf itself is cancelled
    # in graceful_stop: the failure goes with the cancellation.
    async def serve() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Boom("foreground")

    async def stop() -> None:
        await trio.sleep_forever()

    boom = pytest.RaisesExc(Boom, match="foreground")
    with pytest.RaisesGroup(boom, flatten_subgroups=True):
        async with proctree.open_root() as root:
            p = proctree.new_process(proctree.leaf(serve, stop), parent=root)
            await p.start()
            await p.stop(grace=1)  # the failure closes the root: cancelled here
    assert trio.current_time() == 1
    assert p.overran_grace
    assert isinstance(p.error, BaseExceptionGroup)
    assert boom.matches(p.error.exceptions[0])


async def test_a_startup_failure_of_an_abandoned_start_travels_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # start()'s caller gives up at t=1; the runner fails as it is cancelled.
    # No start() is left to raise that failure, so it goes up as any would.
    async def run(ready: Callable[[], Awaitable[None]]) -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Boom("while abandoned")

    boom = pytest.RaisesExc(Boom, match="while abandoned")
    with pytest.RaisesGroup(boom):
        async with proctree.open_root() as root:
            p = proctree.new_process(run, parent=root)
            with trio.move_on_after(1):
                await p.start()
            await p.closed.wait()
            await trio.sleep(1)  # the failure closes the root: cancelled here
    assert trio.current_time() == 1
    assert boom.matches(p.error)
