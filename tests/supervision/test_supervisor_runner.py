"""A Supervisor is a runner: inside combinators, under new_process, restarted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import MemoryTable, RestartPolicy, State, Supervisor

from ..support.leakcheck import Track, run_leak_checked

Ready = Callable[[], Awaitable[None]]


class Boom(Exception):
    pass


def logged(
    log: list[str], name: str, *, fail_after: float | None = None
) -> proctree.Runner:
    """A leaf that logs its start and stop, and may fail after a while."""

    async def foreground() -> None:
        log.append(f"start {name}")
        try:
            if fail_after is None:
                await trio.sleep_forever()
            await trio.sleep(fail_after)
            raise Boom(name)
        finally:
            log.append(f"stop {name}")

    return proctree.leaf(foreground, name=name)


async def test_a_supervisor_in_a_sequence_starts_in_order_and_stops_in_reverse() -> (
    None
):
    log: list[str] = []
    table = MemoryTable({"w1": logged(log, "w1"), "w2": logged(log, "w2")})
    sup = Supervisor(table, name="workers")
    app = proctree.sequential(logged(log, "db"), sup, logged(log, "http"))
    async with proctree.open_root(name="app"):
        p = proctree.new_process(app)
        await p.start()
        # The keys are restored concurrently, between db and http.
        assert (log[0], sorted(log[1:3]), log[3:]) == (
            "start db",
            ["start w1", "start w2"],
            ["start http"],
        )
        assert sup.state is State.RUNNING
        assert sup.keys() == ["w1", "w2"]
        assert sup.child("w1").path == f"app/{p.name}/workers/w1"
        assert p.name == "sequential[db, workers, http]"
        await p.stop()
    assert log[4] == "stop http"
    assert sorted(log[5:7]) == ["stop w1", "stop w2"]
    assert log[7:] == ["stop db"]
    assert sup.state is State.CLOSED


async def test_a_supervisor_and_a_service_start_and_stop_together_in_parallel() -> None:
    log: list[str] = []
    sup = Supervisor(MemoryTable({"w": logged(log, "w")}), name="fleet")
    stop = trio.Event()

    async def sync() -> None:
        log.append("start sync")
        await stop.wait()
        log.append("stop sync")

    async def stop_sync() -> None:
        stop.set()

    svc = proctree.Service(sync, stop_sync)
    async with proctree.open_root():
        p = proctree.new_process(proctree.parallel(sup, svc))
        await p.start()
        assert sorted(log) == ["start sync", "start w"]
        assert p.name == "parallel[fleet, sync]"
        assert (sup.state, svc.is_running) == (State.RUNNING, True)
        await p.stop()
    assert sorted(log[2:]) == ["stop sync", "stop w"]
    assert (sup.state, svc.is_running) == (State.CLOSED, False)


async def test_the_process_made_for_it_is_its_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    sup = Supervisor(MemoryTable({"a": logged(log, "a")}))
    assert sup.state is State.INITIAL  # no process yet: none was made
    async with proctree.open_root():
        p = proctree.new_process(sup)
        assert p.name == "supervisor"
        await p.start()
        assert sup.process is p
        child = sup.child("a")
        assert child.path.endswith("supervisor/a")
        await sup.stop_child("a")
        assert "stop a" in log
        await p.stop()
        assert sup.state is State.CLOSED


async def test_a_childs_failure_is_restarted_and_never_reaches_the_combinator(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    table = MemoryTable({"flaky": logged(log, "flaky", fail_after=1)})
    sup = Supervisor(table, policy=RestartPolicy.immediate(failure_threshold=100))
    app = proctree.sequential(logged(log, "db"), sup)
    async with proctree.open_root() as root:
        p = proctree.new_process(app)
        await p.start()
        await trio.sleep(3.5)
        assert log.count("start flaky") == 4
        assert p.state is State.RUNNING
        await p.stop()
    assert root.error is None


async def test_giving_up_fails_the_combinator_and_so_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    table = MemoryTable({"a": logged(log, "a", fail_after=1)})
    policy = RestartPolicy.immediate(failure_threshold=1.5, on_threshold="give_up")
    sup = Supervisor(table, policy=policy)
    with pytest.RaisesGroup(proctree.GaveUpError):
        async with proctree.open_root():
            p = proctree.new_process(proctree.sequential(logged(log, "db"), sup))
            await p.start()
            await trio.sleep_forever()
    assert log[-1] == "stop db"  # the combinator stopped the rest
    assert trio.current_time() == 2


async def test_a_supervisor_made_outside_every_root_runs_under_one() -> None:
    log: list[str] = []
    sup = Supervisor(MemoryTable({"a": logged(log, "a")}))  # at import time, say
    async with proctree.open_root(name="app"):
        p = proctree.new_process(sup)
        await p.start()
        assert sup.child("a").path == "app/supervisor/a"
        await p.stop()
    assert log == ["start a", "stop a"]


async def test_its_own_start_outside_every_root_says_to_open_one() -> None:
    sup = Supervisor()
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        await sup.start()


async def test_its_own_process_is_made_under_the_root_current_at_start() -> None:
    sup = Supervisor(name="late")
    async with proctree.open_root(name="app"):
        await sup.start()
        assert sup.process.path == "app/late"
        await sup.stop()


async def test_a_supervisor_runs_in_one_process_at_a_time() -> None:
    sup = Supervisor()
    async with proctree.open_root():
        first = proctree.new_process(sup)
        await first.start()
        second = proctree.new_process(sup)
        with pytest.raises(proctree.InvalidStateError, match="one process at a time"):
            await second.start()
        with pytest.raises(proctree.InvalidStateError):
            await sup.start()  # its process is the runner's, RUNNING
        await first.stop()


async def test_its_own_process_once_made_is_the_only_one_it_runs_in() -> None:
    async with proctree.open_root():
        sup = Supervisor()
        own = sup.process  # made now, INITIAL
        with pytest.raises(proctree.InvalidStateError, match="already has a process"):
            await proctree.new_process(sup).start()
        await sup.start()
        assert own.state is State.RUNNING
        await sup.stop()


async def test_a_stop_bound_reaches_the_supervisors_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(ready: Ready) -> None:
        await ready()
        await trio.sleep_forever()

    sup = Supervisor(MemoryTable({"a": stubborn}))
    async with proctree.open_root():
        p = proctree.new_process(proctree.sequential(proctree.nop(), sup))
        await p.start()
        child = sup.child("a")
        await p.stop(grace=2)
        assert trio.current_time() == 2
        assert child.overran_grace


async def test_a_supervisor_under_a_supervisor_is_restarted_afresh(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    inner = Supervisor(
        MemoryTable({"a": logged(log, "a", fail_after=1)}),
        policy=RestartPolicy.immediate(failure_threshold=1.5, on_threshold="give_up"),
        name="inner",
    )
    outer = Supervisor(
        MemoryTable({"inner": inner}),
        policy=RestartPolicy.exponential(initial=1, jitter=0, failure_threshold=10),
        name="outer",
    )
    async with proctree.open_root():
        await outer.start()
        await trio.sleep(2.5)  # inner gave up at 2, the outer restarts it at 3
        assert outer.restarts("inner") == 1
        await trio.sleep(1)
        assert inner.state is State.RUNNING
        assert inner.restarts("a") == 0  # a new run starts afresh
        info = proctree.tree(outer.process)
        assert [(c.key, c.restarts) for c in info.children] == [("inner", 1)]
        await outer.stop()
    assert log.count("start a") == 3


async def test_a_pause_shows_in_the_tree_while_it_runs_as_a_part(
    autojump_clock: trio.testing.MockClock,
) -> None:
    table = MemoryTable({"a": logged([], "a", fail_after=0)})
    policy = RestartPolicy.immediate(failure_threshold=1.5, threshold_backoff=15)
    sup = Supervisor(table, policy=policy, name="fleet")
    async with proctree.open_root():
        p = proctree.new_process(proctree.sequential(proctree.nop(), sup))
        await p.start()
        await trio.sleep(5)
        fleet = next(i for i in proctree.tree(p).walk() if i.name == "fleet")
        assert fleet.status == "restarts paused until t=15 (10s from now)"
        await p.stop()


async def test_its_events_reach_the_instruments_of_the_tree_it_runs_in() -> None:
    seen: list[tuple[str, str, str]] = []

    class Events(proctree.Instrument):
        def supervisor_event(self, process: proctree.Process, event: object) -> None:
            key = getattr(event, "key", "")
            seen.append((process.name, type(event).__name__, key))

    sup = Supervisor(MemoryTable({"a": proctree.nop()}), name="fleet")
    async with proctree.open_root(instruments=[Events()]):
        p = proctree.new_process(proctree.sequential(proctree.nop(), sup))
        await p.start()
        assert seen == [("fleet", "ChildStarted", "a")]
        await p.stop()
    assert seen[1:] == [("fleet", "ChildStopped", "a")]


async def test_a_supervisor_is_startable_by_a_nursery() -> None:
    log: list[str] = []
    sup = Supervisor(MemoryTable({"a": logged(log, "a")}))
    async with proctree.open_root(), trio.open_nursery() as nursery:
        p = await nursery.start(proctree.startable(sup))
        assert p is sup.process
        assert sup.keys() == ["a"]
        await p.stop()
    assert log == ["start a", "stop a"]


async def test_a_supervisor_run_as_a_part_is_freed_by_refcount() -> None:
    async def scenario(track: Track) -> None:
        sup = Supervisor(MemoryTable({"a": proctree.nop()}))
        async with proctree.open_root():
            p = track(proctree.new_process(proctree.sequential(sup)))
            await p.start()
            track(sup.child("a"))
            track(sup.process)
            await p.stop()

    await run_leak_checked(scenario)
