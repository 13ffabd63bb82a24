"""The Supervisor: restore, the restart loop, per-key operations, strategies, events."""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree._supervision import (
    ChildFailed,
    ChildRestarting,
    ChildStarted,
    ChildStopped,
    GaveUpError,
    MemoryTable,
    NotRunningError,
    ProcessExistsError,
    ProcessNotFoundError,
    RestartsPaused,
    RestartsResumed,
    Supervisor,
    SupervisorEvent,
    SupervisorGaveUp,
)
from proctree._supervision.policy import DoNotRestart, RestartPolicy, TerminateTree

Ready = Callable[[], Awaitable[None]]

EXACT = RestartPolicy.exponential(initial=0.5, cap=4.0, jitter=0.0)


class Boom(Exception):
    pass


class Worker:
    """A runner that logs when it starts and stops; it can be told to fail."""

    def __init__(self, log: list[tuple[float, str]], key: str) -> None:
        self.log = log
        self.key = key
        self.runs = 0
        self.fail_after: list[float | None] = []  # per run; None: run forever
        self.end_with: BaseException | None = None
        self.startup_delay = 0.0
        self.fail_start = False

    async def run(self, ready: Ready) -> None:
        run = self.runs
        self.runs += 1
        await trio.sleep(self.startup_delay)
        if self.fail_start:
            raise Boom(f"{self.key} start")
        self.log.append((trio.current_time(), f"start {self.key}"))
        after = self.fail_after[run] if run < len(self.fail_after) else None
        try:
            if after is None:
                await ready()
            else:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ready)
                    await trio.sleep(after)
                    nursery.cancel_scope.cancel()
                raise self.end_with or Boom(f"{self.key} run {run}")
        finally:
            self.log.append((trio.current_time(), f"stop {self.key}"))


def names(events: list[SupervisorEvent]) -> list[tuple[float, str, str]]:
    return [(e.time, type(e).__name__, e.key) for e in events]


async def test_start_restores_every_key_in_table_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    table = MemoryTable({k: Worker(log, k) for k in "abc"})
    async with proctree.open_root():
        sup = Supervisor(table)
        await sup.start()
        assert sup.keys() == ["a", "b", "c"]
        assert all(sup.child(k).state is proctree.State.RUNNING for k in "abc")
        await sup.stop()
    assert sorted(log) == [(0.0, f"{x} {k}") for x in ("start", "stop") for k in "abc"]


async def test_startup_waits_at_most_start_timeout_for_each_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    slow = Worker(log, "slow")
    slow.startup_delay = 100
    events: list[SupervisorEvent] = []
    async with proctree.open_root() as root:
        sup = Supervisor(
            MemoryTable({"slow": slow}), start_timeout=3, on_event=events.append
        )
        await sup.start()
        assert trio.current_time() == 3
        assert isinstance(events[0], ChildFailed)
        assert isinstance(events[0].error, proctree.StartTimeoutError)
        await sup.stop()
        assert root.state is proctree.State.RUNNING


async def test_a_key_added_to_the_table_starts_on_the_next_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    table = MemoryTable()
    async with proctree.open_root():
        sup = Supervisor(table, interval=2)
        await sup.start()
        await trio.sleep(0.5)
        table.set("a", Worker(log, "a"))
        await trio.sleep(2)
        assert log == [(2.0, "start a")]
        assert sup.keys() == ["a"]
        await sup.stop()


async def test_a_key_removed_from_the_table_is_stopped_and_stays_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    table = MemoryTable({"a": Worker(log, "a")})
    async with proctree.open_root():
        sup = Supervisor(table, interval=1)
        await sup.start()
        table.delete("a")
        await trio.sleep(5)
        assert log == [(0.0, "start a"), (1.0, "stop a")]
        assert sup.keys() == []
        await sup.stop()


async def test_two_concurrent_start_child_make_one_process_and_one_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.startup_delay = 1
    table = MemoryTable()
    results: list[object] = []
    async with proctree.open_root():
        sup = Supervisor(table, interval=60)
        await sup.start()
        table.set("a", worker)

        async def call() -> None:
            try:
                results.append(await sup.start_child("a"))
            except ProcessExistsError as exc:
                results.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            nursery.start_soon(call)
        assert worker.runs == 1
        errors = [r for r in results if isinstance(r, ProcessExistsError)]
        assert len(errors) == 1
        assert "'a'" in str(errors[0])
        await sup.stop()


async def test_child_while_starting_returns_the_starting_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.startup_delay = 1
    table = MemoryTable()
    async with proctree.open_root():
        sup = Supervisor(table, interval=60)
        await sup.start()
        table.set("a", worker)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.start_child, "a")
            await trio.sleep(0.5)
            assert sup.child("a").state is proctree.State.STARTING
            assert sup.keys() == ["a"]
        assert sup.child("a").state is proctree.State.RUNNING
        await sup.stop()


async def test_stop_during_startup_stops_the_starting_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.startup_delay = 5
    async with proctree.open_root():
        sup = Supervisor(MemoryTable({"a": worker}), child_grace=0.5)
        async with trio.open_nursery() as nursery:

            async def start() -> None:
                with pytest.raises(proctree.InvalidStateError):
                    await sup.start()

            nursery.start_soon(start)
            await trio.sleep(1)
            await sup.stop()
        assert trio.current_time() == 1.5  # the child's grace, then forced
        assert sup.state is proctree.State.CLOSED
    assert log == []


async def test_per_key_errors_name_the_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    async with proctree.open_root():
        sup = Supervisor(MemoryTable({"a": Worker(log, "a")}))
        with pytest.raises(NotRunningError, match="'a'"):
            await sup.start_child("a")
        await sup.start()
        with pytest.raises(ProcessExistsError, match="'a'"):
            await sup.start_child("a")
        with pytest.raises(ProcessNotFoundError, match="'zz'"):
            await sup.start_child("zz")
        with pytest.raises(ProcessNotFoundError, match="'zz'"):
            await sup.stop_child("zz")
        with pytest.raises(ProcessNotFoundError, match="'zz'"):
            sup.child("zz")
        with pytest.raises(TypeError, match="str"):
            sup.child(1)  # type: ignore[arg-type]
        await sup.stop()
        with pytest.raises(NotRunningError, match="'a'"):
            await sup.stop_child("a")


async def test_stop_child_is_not_a_failure_and_the_loop_brings_it_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    async with proctree.open_root():
        sup = Supervisor(MemoryTable({"a": Worker(log, "a")}), interval=2)
        await sup.start()
        await trio.sleep(0.5)
        await sup.stop_child("a")
        assert sup.keys() == []
        await trio.sleep(3)
        assert log == [(0.0, "start a"), (0.5, "stop a"), (2.0, "start a")]
        assert sup.restarts("a") == 0
        await sup.stop()


async def test_a_failing_child_is_restarted_and_never_reaches_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [1.0]
    async with proctree.open_root() as root:
        sup = Supervisor(MemoryTable({"a": worker}), policy=EXACT, interval=60)
        await sup.start()
        await trio.sleep(3)
        assert log == [(0.0, "start a"), (1.0, "stop a"), (1.5, "start a")]
        assert sup.restarts("a") == 1
        assert root.state is proctree.State.RUNNING
        await sup.stop()


@pytest.mark.parametrize(
    ("policy", "failing_restarts", "returning_restarts"),
    [
        (EXACT, True, True),
        (RestartPolicy.transient(initial_delay=0.5, jitter=0.0), True, False),
        (RestartPolicy.temporary(), False, False),
    ],
    ids=["permanent", "transient", "temporary"],
)
@pytest.mark.parametrize("fails", [True, False], ids=["fails", "returns"])
async def test_each_restart_kind(
    autojump_clock: trio.testing.MockClock,
    policy: RestartPolicy,
    failing_restarts: bool,
    returning_restarts: bool,
    fails: bool,
) -> None:
    log: list[tuple[float, str]] = []

    async def run(ready: Ready) -> None:
        log.append((trio.current_time(), "start"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ready)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        if fails:
            raise Boom("x")

    async with proctree.open_root() as root:
        sup = Supervisor(MemoryTable({"a": run}), policy=policy, interval=60)
        await sup.start()
        await trio.sleep(1.25)
        expected = failing_restarts if fails else returning_restarts
        await trio.sleep(0.5)
        assert log == [(0.0, "start")] + ([(1.5, "start")] if expected else [])
        assert sup.keys() == (["a"] if expected else [])
        await sup.stop()
        assert root.state is proctree.State.RUNNING


async def test_backoff_sequence_is_exact_and_a_stable_run_resets_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [0, 0, 0, 0, 0, 0, 100, 0]
    policy = RestartPolicy.exponential(
        initial=0.5, cap=4.0, jitter=0.0, stable_after=50, failure_threshold=100
    )
    async with proctree.open_root():
        sup = Supervisor(MemoryTable({"a": worker}), policy=policy, interval=1000)
        await sup.start()
        await trio.sleep(200)
        await sup.stop()
    starts = [t for t, what in log if what == "start a"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # run 6 lasted 100 s >= stable_after: the sequence starts over
    assert gaps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 100.5, 1.0]


async def test_backoff_with_seeded_jitter_is_reproducible(
    autojump_clock: trio.testing.MockClock,
) -> None:
    import random

    policy = RestartPolicy.exponential(
        initial=1.0, cap=8.0, jitter=0.25, seed=7, failure_threshold=100
    )
    rng = random.Random(7)
    expected = [policy.delay(n, rng) for n in range(5)]
    events: list[SupervisorEvent] = []
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [0] * 5
    async with proctree.open_root():
        sup = Supervisor(
            MemoryTable({"a": worker}),
            policy=policy,
            interval=1000,
            on_event=events.append,
        )
        await sup.start()
        await trio.sleep(100)
        await sup.stop()
    delays = [e.delay for e in events if isinstance(e, ChildRestarting)]
    assert delays == expected
    assert len(set(delays)) == 5


async def test_threshold_pauses_restarts_then_resumes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [0, 0, 0]
    policy = RestartPolicy.immediate(
        failure_threshold=2.5, failure_decay=30, threshold_backoff=15
    )
    events: list[SupervisorEvent] = []
    async with proctree.open_root():
        sup = Supervisor(
            MemoryTable({"a": worker}),
            policy=policy,
            interval=1000,
            on_event=events.append,
        )
        await sup.start()
        await trio.sleep(20)
        await sup.stop()
    assert [t for t, w in log if w == "start a"] == [0.0, 0.0, 0.0, 15.0]
    paused = [e for e in events if isinstance(e, RestartsPaused)]
    resumed = [e for e in events if isinstance(e, RestartsResumed)]
    assert [(e.time, e.delay) for e in paused] == [(0.0, 15.0)]
    assert [e.time for e in resumed] == [15.0]


async def test_threshold_with_give_up_fails_the_supervisor_upward(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [1, 1, 1]
    other = Worker(log, "b")
    policy = RestartPolicy.immediate(failure_threshold=2.5, on_threshold="give_up")
    events: list[SupervisorEvent] = []
    with pytest.RaisesGroup(pytest.RaisesExc(GaveUpError, match="'a'")):
        async with proctree.open_root():
            sup = Supervisor(
                MemoryTable({"a": worker, "b": other}),
                policy=policy,
                on_event=events.append,
            )
            await sup.start()
            await trio.sleep_forever()
    assert trio.current_time() == 3
    assert ("stop b") in [w for _, w in log]
    assert isinstance(events[-1], ChildStopped) or isinstance(
        events[-2], SupervisorGaveUp
    )
    assert isinstance(sup.process.error, GaveUpError)
    assert isinstance(sup.process.error.__cause__, Boom)


async def test_do_not_restart_ends_the_key_quietly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [1]
    worker.end_with = DoNotRestart()
    events: list[SupervisorEvent] = []
    async with proctree.open_root():
        sup = Supervisor(
            MemoryTable({"a": worker}), policy=EXACT, on_event=events.append
        )
        await sup.start()
        await trio.sleep(10)
        assert sup.keys() == []
        assert names(events) == [
            (0.0, "ChildStarted", "a"),
            (1.0, "ChildStopped", "a"),
        ]
        await sup.start_child("a")
        assert sup.keys() == ["a"]
        await sup.stop()


async def test_terminate_tree_stops_everything_and_fails_upward(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [1]
    worker.end_with = TerminateTree("enough")
    with pytest.RaisesGroup(pytest.RaisesExc(TerminateTree, match="enough")):
        async with proctree.open_root():
            sup = Supervisor(
                MemoryTable({"a": worker, "b": Worker(log, "b")}), policy=EXACT
            )
            await sup.start()
            await trio.sleep_forever()
    assert sorted(log) == [
        (0.0, "start a"),
        (0.0, "start b"),
        (1.0, "stop a"),
        (1.0, "stop b"),
    ]


@pytest.mark.parametrize(
    ("strategy", "order", "restarted"),
    [
        ("one_for_one", None, ["b"]),
        ("one_for_all", None, ["a", "b", "c", "d"]),
        ("rest_for_one", None, ["b", "c", "d"]),
        ("rest_for_one", ("d", "c", "b", "a"), ["b", "a"]),
    ],
)
async def test_each_strategys_restart_set(
    autojump_clock: trio.testing.MockClock,
    strategy: str,
    order: tuple[str, ...] | None,
    restarted: list[str],
) -> None:
    log: list[tuple[float, str]] = []
    workers = {k: Worker(log, k) for k in "abcd"}
    workers["b"].fail_after = [1]
    policy = RestartPolicy.exponential(
        initial=0.5, jitter=0.0, strategy=strategy, order=order
    )
    async with proctree.open_root():
        sup = Supervisor(MemoryTable(workers), policy=policy, interval=60)
        await sup.start()
        await trio.sleep(2)
        assert sorted(k for k in "abcd" if workers[k].runs == 2) == sorted(restarted)
        assert [w for t, w in log if t == 1.5] == [f"start {k}" for k in restarted]
        others = [k for k in restarted if k != "b"]
        assert sorted(w for t, w in log if t == 1.0) == sorted(
            f"stop {k}" for k in ["b", *others]
        )
        assert all(sup.restarts(k) == 1 for k in restarted)
        assert sup.keys() == sorted(sup.keys(), key=(order or "abcd").index)
        await sup.stop()


async def test_events_are_emitted_in_order_to_the_hook_and_the_logger(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [1]
    events: list[SupervisorEvent] = []
    caplog.set_level("INFO", logger="proctree.supervisor")
    async with proctree.open_root():
        sup = Supervisor(
            MemoryTable({"a": worker}),
            policy=EXACT,
            interval=60,
            on_event=events.append,
        )
        await sup.start()
        await trio.sleep(2)
        await sup.stop()
    assert [(e.time, type(e).__name__, e.restarts) for e in events] == [
        (0.0, "ChildStarted", 0),
        (1.0, "ChildFailed", 0),
        (1.0, "ChildRestarting", 1),
        (1.5, "ChildStarted", 1),
        (2.0, "ChildStopped", 1),
    ]
    failed = events[1]
    assert isinstance(failed, ChildFailed)
    assert isinstance(failed.error, Boom)
    restarting = events[2]
    assert isinstance(restarting, ChildRestarting)
    assert restarting.delay == 0.5
    assert isinstance(events[0], ChildStarted)
    records = [r for r in caplog.records if r.name == "proctree.supervisor"]
    assert [r.levelname for r in records] == [
        "INFO",
        "WARNING",
        "INFO",
        "INFO",
        "INFO",
    ]


async def test_a_failing_hook_is_logged_and_ignored(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def hook(event: SupervisorEvent) -> None:
        raise RuntimeError("hook")

    log: list[tuple[float, str]] = []
    async with proctree.open_root():
        sup = Supervisor(MemoryTable({"a": Worker(log, "a")}), on_event=hook)
        await sup.start()
        await sup.stop()
    assert "on_event hook" in caplog.text


async def test_closing_the_supervisor_forces_children_past_their_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(ready: Ready) -> None:
        await ready()
        with trio.CancelScope(shield=True):
            await trio.sleep(10)

    async with proctree.open_root():
        sup = Supervisor(MemoryTable({"s": stubborn}), child_grace=2)
        await sup.start()
        await sup.stop()
        assert trio.current_time() == 10
    async with proctree.open_root():

        async def slow(ready: Ready) -> None:
            await ready()
            await trio.sleep(10)

        sup = Supervisor(MemoryTable({"s": slow}), child_grace=2)
        await sup.start()
        t0 = trio.current_time()
        await sup.stop()
        assert trio.current_time() - t0 == 2
        assert sup.overran == ("s",)


async def test_a_startup_failure_is_retried_under_the_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_start = True
    events: list[SupervisorEvent] = []
    async with proctree.open_root():
        sup = Supervisor(
            MemoryTable({"a": worker}),
            policy=EXACT,
            interval=60,
            on_event=events.append,
        )
        await sup.start()
        await trio.sleep(0.75)
        worker.fail_start = False
        await trio.sleep(1)
        assert log == [(1.5, "start a")]
        assert names(events)[:3] == [
            (0.0, "ChildFailed", "a"),
            (0.0, "ChildRestarting", "a"),
            (0.5, "ChildFailed", "a"),
        ]
        await sup.stop()


def test_bad_arguments_say_what_to_do() -> None:
    with pytest.raises(TypeError, match="RestartPolicy"):
        Supervisor(policy="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Table"):
        Supervisor(table={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        MemoryTable().set(1, proctree.nop())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run"):
        MemoryTable().set("a", 42)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="'a'"):
        MemoryTable().delete("a")


async def test_events_and_their_log_lines_name_the_real_cause_of_a_nursery_group(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="proctree.supervisor")
    events: list[SupervisorEvent] = []

    async def worker(ready: Ready) -> None:
        await ready()

        async def inner() -> None:
            raise RuntimeError("disk full")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(inner)

    async with proctree.open_root() as root:
        sup = Supervisor(
            MemoryTable({"w": worker}),
            parent=root,
            policy=EXACT,
            on_event=events.append,
        )
        await sup.start()
        await trio.sleep(0.1)
        await sup.stop()
    failed = next(e for e in events if isinstance(e, ChildFailed))
    assert failed.reason == "RuntimeError: disk full"
    assert isinstance(failed.error, ExceptionGroup)  # kept as raised
    lines = [r.getMessage() for r in caplog.records if "ChildFailed" in r.getMessage()]
    assert lines
    assert lines[0].endswith("error=RuntimeError: disk full)")


async def test_while_paused_a_restart_announces_the_delay_that_really_comes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [0, 0, 0]
    policy = RestartPolicy.immediate(
        failure_threshold=2.5, failure_decay=30, threshold_backoff=15
    )
    events: list[SupervisorEvent] = []
    snapshots: list[str] = []
    async with proctree.open_root() as root:
        sup = Supervisor(
            MemoryTable({"a": worker}),
            parent=root,
            policy=policy,
            interval=1000,
            on_event=events.append,
        )
        await sup.start()
        await trio.sleep(5)
        [info] = [i for i in proctree.tree(root).walk() if i.name == "supervisor"]
        snapshots.append(proctree.render_text(proctree.tree(root)))
        assert info.status == "restarts paused until t=15 (10s from now)"
        await trio.sleep(15)
        [info] = [i for i in proctree.tree(root).walk() if i.name == "supervisor"]
        assert info.status is None
        await sup.stop()
    starts = [t for t, w in log if w == "start a"]
    assert starts == [0.0, 0.0, 0.0, 15.0]
    restarting = [e for e in events if isinstance(e, ChildRestarting)]
    # The third failure pauses restarts for 15 s: its restart is announced
    # for when it happens, not for the policy's immediate delay.
    assert [(e.time, e.delay) for e in restarting] == [(0, 0), (0, 0), (0, 15)]
    for event, start in zip(restarting, starts[1:], strict=True):
        assert event.time + event.delay == start
    assert "restarts paused until t=15 (10s from now)" in snapshots[0]


class Flaky:
    """Fails once running; its restarts then fail to start as told."""

    def __init__(self, restart: str) -> None:
        self.restart = restart  # how each restart goes: "hangs", "raises", "returns"
        self.runs = 0

    async def run(self, ready: Ready) -> None:
        self.runs += 1
        if self.runs == 1:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ready)
                await trio.sleep(1)
                nursery.cancel_scope.cancel()
            raise Boom("first run")
        if self.restart == "hangs":
            await trio.sleep_forever()
        if self.restart == "raises":
            raise Boom("restart")


@pytest.mark.parametrize("restart", ["hangs", "raises", "returns"])
async def test_a_restart_that_fails_to_start_is_the_policys_like_any_failure(
    autojump_clock: trio.testing.MockClock, restart: str
) -> None:
    # A due restart is started with no task waiting on its start (the
    # table answers at once): its startup failure, start timeout included,
    # reaches the policy through the slot, as a failure while running does.
    flaky = Flaky(restart)
    events: list[SupervisorEvent] = []
    policy = RestartPolicy.exponential(
        initial=1.0, cap=1.0, jitter=0.0, failure_threshold=math.inf
    )
    async with proctree.open_root() as root:
        sup = Supervisor(
            MemoryTable({"a": flaky.run}),
            policy=policy,
            start_timeout=2,
            interval=600,
            on_event=events.append,
        )
        await sup.start()
        await trio.sleep(7.5)
        failures = [e for e in events if isinstance(e, ChildFailed)]
        expected = {
            "hangs": proctree.StartTimeoutError,
            "raises": Boom,
            "returns": proctree.StartError,
        }[restart]
        assert len(failures) == (3 if restart == "hangs" else 7)
        assert isinstance(failures[0].error, Boom)
        assert [type(e.error) for e in failures[1:]] == [expected] * (len(failures) - 1)
        # first run fails at 1; each restart comes 1 s after the last failure,
        # and fails at once (or after its 2 s start timeout)
        took = 2 if restart == "hangs" else 0
        assert [e.time for e in failures] == [
            1.0 + i * (1 + took) for i in range(len(failures))
        ]
        assert sup.restarts("a") == len(failures)
        assert not [e for e in events if isinstance(e, ChildStarted)][1:]
        assert sup.overran == ()
        assert root.state is proctree.State.RUNNING
        await sup.stop()


class NoQuickGet:
    """A table with only the async get: restarts start in a task, as before."""

    def __init__(self, runner: object) -> None:
        self.runner = runner
        self.gets = 0

    async def get(self, key: str, /) -> object:
        self.gets += 1
        await trio.lowlevel.checkpoint()
        return self.runner if key == "a" else None

    async def _keys(self) -> object:
        yield "a"

    def __aiter__(self) -> object:
        return self._keys()


async def test_a_table_without_get_nowait_restarts_through_its_get(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    worker = Worker(log, "a")
    worker.fail_after = [1.0]
    table = NoQuickGet(worker)
    async with proctree.open_root():
        sup = Supervisor(table, policy=EXACT, interval=60)  # type: ignore[arg-type]
        await sup.start()
        await trio.sleep(3)
        assert log == [(0.0, "start a"), (1.0, "stop a"), (1.5, "start a")]
        assert table.gets == 2  # the restore, then the restart
        assert sup.child("a").state is proctree.State.RUNNING
        await sup.stop()


async def test_two_keys_failing_at_once_give_up_once_with_the_first_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Both keys' restarts come due in the same instant and both fail at
    # once: the first failure past the threshold gives up, and the second
    # (its restart was already launched) must not give up again with
    # another error: the root raises the one the event reported.
    async def failing(ready: Ready) -> None:
        raise Boom("start fails")

    events: list[SupervisorEvent] = []
    policy = RestartPolicy.exponential(
        initial=0.5, cap=4.0, jitter=0.0, failure_threshold=4.0, on_threshold="give_up"
    )
    table = MemoryTable()
    with pytest.RaisesGroup(GaveUpError) as caught:
        async with proctree.open_root() as root:
            sup = Supervisor(
                table, policy=policy, parent=root, interval=1.0, on_event=events.append
            )
            await sup.start()
            table.set("a", failing)
            table.set("b", failing)
            await trio.sleep(10)
    gave_up = [e for e in events if isinstance(e, SupervisorGaveUp)]
    assert len(gave_up) == 1
    assert caught.value.exceptions[0] is gave_up[0].error
    assert {e.key for e in events if isinstance(e, ChildFailed)} == {"a", "b"}
