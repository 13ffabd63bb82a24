"""Contract points that docs/guarantees.rst listed as not (or only partly) tested.

Each test pins one point of SPEC.md's contract or of a decision in
docs/design.md (section 10), with exact times on trio's MockClock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree._ops.run import run_target
from proctree._ops.systemd import SystemdNotifier
from proctree.testing import TeardownRecorder

Ready = Callable[[], Awaitable[None]]

ROOT = Path(__file__).resolve().parents[2]


class Boom(Exception):
    pass


def now() -> float:
    return trio.current_time()


async def stubborn(ready: Ready) -> None:
    """A runner that ignores the graceful stop: only a cancel ends it."""
    await ready()
    await trio.sleep_forever()


# ---------------------------------------------------------------- 1. parent=None


async def test_a_process_made_without_parent_in_a_teardown_is_its_processs_child(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    seen: dict[str, object] = {}

    async def child_fn(proc: proctree.Process) -> None:
        await trio.sleep(2)  # ignores closing, ends within its 5 s grace
        seen["child ended"] = now()

    async def late_teardown() -> None:
        await trio.sleep(3)
        seen["late torn down"] = now()

    async def teardown() -> None:
        child = proctree.go(child_fn, name="child")
        late = proctree.with_teardown(late_teardown, name="late")
        group = proctree.with_parent(None, name="group")
        seen["child"] = (child.path, child.state)
        seen["late"] = (late.path, late.state)
        # The root is RUNNING: only a process made under the CLOSING
        # teardown's process is closed at once.
        seen["group"] = group.state

    p = proctree.with_teardown(teardown, parent=proctree_root, name="p")
    await p.aclose()
    assert now() == 3
    assert seen == {
        "child": ("test/p/child", State.CLOSING),
        "late": ("test/p/late", State.CLOSING),
        "group": State.CLOSED,
        "child ended": 2,
        "late torn down": 3,
    }
    assert proctree_root.state is State.RUNNING


# --------------------------------------------- 2. own task before own teardown


async def test_a_go_processs_own_teardown_runs_only_after_its_function_ended(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    log: list[tuple[str, float]] = []

    async def work(proc: proctree.Process) -> None:
        try:
            await proc.closing.wait()
            await trio.sleep(2)  # finishes the job in hand, within its grace
        finally:
            log.append(("function ended", now()))

    async def teardown() -> None:
        log.append(("teardown started", now()))

    p = proctree_root.go(work, name="worker")
    p.set_teardown(teardown)
    await trio.sleep(1)
    await p.aclose()
    assert log == [("function ended", 3), ("teardown started", 3)]
    assert p.state is State.CLOSED
    assert not p.overran_grace


async def test_a_roots_own_teardown_runs_only_after_its_body_ended(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[str, float]] = []

    async def teardown() -> None:
        log.append(("teardown started", now()))

    async def close_the_root(proc: proctree.Process, root: proctree.Process) -> None:
        await trio.sleep(1)
        await root.aclose()

    async with proctree.open_root(name="app") as root:
        root.set_teardown(teardown)
        root.go(close_the_root, root)
        try:
            await trio.sleep_forever()
        finally:
            # The body is cancelled at t=1 and takes 2 s more to clean up.
            with trio.CancelScope(shield=True):
                await trio.sleep(2)
            log.append(("body ended", now()))
    assert log == [("body ended", 3), ("teardown started", 3)]
    assert root.state is State.CLOSED


# ---------------------------------- 3. add_child_no_wait(q) on a CLOSING process


async def test_add_child_no_wait_on_a_closing_process_closes_q_at_once_without_waiting(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    async def parent_teardown() -> None:
        await trio.sleep(1)

    async def q_teardown() -> None:
        await trio.sleep(10)

    parent = proctree.with_teardown(parent_teardown, parent=proctree_root, name="p")
    q = proctree.with_teardown(q_teardown, parent=proctree_root, name="q")
    q_closing = q.closing  # made now, while q is RUNNING: not set
    async with trio.open_nursery() as nursery:
        nursery.start_soon(parent.aclose)
        await trio.sleep(0.5)
        assert parent.state is State.CLOSING  # its teardown is running
        parent.add_child_no_wait(q)
        assert q_closing.is_set()  # in the same step, no checkpoint between
        assert q.state is State.CLOSING
        await parent.closed.wait()
        assert now() == 1  # the parent did not wait for q's 10 s teardown
        assert q.state is State.CLOSING
    await q.closed.wait()
    assert now() == 10.5


# ----------------------------------------------- 5. per-tree grace of go functions


@pytest.mark.parametrize("grace", [0, 0.5, 2.5, 30])
async def test_open_root_grace_cancels_a_go_function_ignoring_closing_exactly_then(
    autojump_clock: trio.testing.MockClock, grace: float
) -> None:
    ended: list[float] = []

    async def ignores_closing(proc: proctree.Process) -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended.append(now())

    async with proctree.open_root(grace=grace):
        p = proctree.go(ignores_closing)
        await trio.sleep(1)
        await p.aclose()
        assert now() == 1 + grace
    assert ended == [1 + grace]
    assert p.overran_grace is (grace > 0)  # grace 0: see the test below


@pytest.mark.parametrize(
    ("how", "overran"),
    [
        # No grace at all from the start: cancelled at once, as asked.
        ("open_root(grace=0)", False),
        ("go(grace=0)", False),
        ("aclose(grace=0)", False),
        ("stop(grace=0)", False),
        # Its 5 s grace was running out and a tighter close forced it.
        ("aclose() then aclose(grace=0)", True),
    ],
)
async def test_only_a_task_forced_while_its_grace_ran_reports_overran_grace(
    autojump_clock: trio.testing.MockClock,
    how: str,
    overran: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def ignores_closing(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root(grace=0 if how == "open_root(grace=0)" else 5):
        if how == "stop(grace=0)":
            p = proctree.new_process(stubborn)
            await p.start()
            await p.stop(grace=0)
        else:
            p = proctree.go(ignores_closing, grace=0 if how == "go(grace=0)" else None)
            await trio.sleep(1)
            if how == "aclose() then aclose(grace=0)":
                with trio.move_on_after(0):  # start the close, do not wait
                    await p.aclose()
                assert p.state is State.CLOSING
            await p.aclose(grace=0 if how.endswith("aclose(grace=0)") else None)
            assert now() == 1  # it was cancelled at once either way
    assert p.overran_grace is overran
    warned = [r for r in caplog.records if "did not end within its grace" in r.message]
    assert len(warned) == (1 if overran else 0)


# ---------------------------------------------------- 6. cross-root failures


async def test_a_cross_root_failure_closes_both_roots_but_is_recorded_once_in_its_host(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A process hosted by root A and also a child of root B's ``holder``.

    design.md section 10: the failure closes B's ancestors too, but is
    recorded once, in A, whose nursery ran the failing code.
    """
    handed_over = trio.Event()
    procs: dict[str, proctree.Process] = {}
    exited: dict[str, float] = {}
    a_failures: list[BaseException] = []

    async def fails(proc: proctree.Process) -> None:
        await trio.sleep(1)
        raise Boom("worker failed")

    async def run_a() -> None:
        with pytest.RaisesGroup(Boom) as info:
            async with proctree.open_root(name="a") as a:
                procs["a"] = a
                procs["worker"] = proctree.go(fails, name="worker")
                handed_over.set()
                await trio.sleep_forever()
        exited["a"] = now()
        a_failures.extend(info.value.exceptions)

    async def run_b() -> None:
        async with proctree.open_root(name="b") as b:
            procs["b"] = b
            await handed_over.wait()
            procs["holder"] = proctree.with_parent(b, name="holder")
            procs["holder"].add_child(procs["worker"])
            await trio.sleep_forever()
        exited["b"] = now()  # no exception: B did not record the failure

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_a)
        nursery.start_soon(run_b)
    worker = procs.pop("worker")
    assert isinstance(worker.error, Boom)
    assert a_failures == [worker.error]  # once, in A
    assert exited == {"a": 1, "b": 1}  # B was closed by the failure too
    for name, other in procs.items():
        assert (name, other.state, other.error) == (name, State.CLOSED, None)


# ------------------------------------------------ 7. add_child of a CLOSED process


async def test_add_child_of_a_closed_process_changes_nothing(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    runs = Counter[str]()

    def counting(label: str, seconds: float) -> Callable[[], Awaitable[None]]:
        async def teardown() -> None:
            await trio.sleep(seconds)
            runs[label] += 1

        return teardown

    q = proctree.with_teardown(counting("q", 1), parent=proctree_root, name="q")
    await q.aclose()
    assert now() == 1
    parent = proctree.with_teardown(
        counting("parent", 2), parent=proctree_root, name="parent"
    )
    parent.add_child(q)  # no error
    snapshot = proctree.tree(parent)
    assert (snapshot.children, snapshot.waits_for, snapshot.closes) == ((), (), ())
    assert q.path == "q"  # still out of every tree
    await parent.aclose()
    assert now() == 3  # only the parent's own 2 s teardown
    assert runs == {"q": 1, "parent": 1}
    assert q.state is State.CLOSED
    assert q.error is None


# --------------------------------------------------------- 8. stop() and CLOSING


async def test_stop_of_a_closing_process_waits_for_the_close_and_of_a_closed_one_raises(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    async def slow_to_stop(ready: Ready) -> None:
        await ready()
        await trio.sleep(2)  # a graceful shutdown that takes 2 s

    p = proctree.new_process(slow_to_stop, parent=proctree_root, name="svc")
    await p.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(p.stop)
        await trio.sleep(0.5)
        assert p.state is State.CLOSING
        await p.stop()
        assert now() == 2
        assert p.state is State.CLOSED
    assert not p.overran_grace
    with pytest.raises(proctree.InvalidStateError, match="already CLOSED"):
        await p.stop()


# ---------------------------------------------- 9. a caller cancelled in start()


async def test_a_caller_cancelled_in_start_abandons_it_and_the_runner_is_cancelled(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    log: list[tuple[str, float]] = []

    async def never_ready(ready: Ready) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            log.append(("runner cancelled", now()))
            raise

    p = proctree.new_process(never_ready, parent=proctree_root, name="slow")
    with trio.move_on_after(1) as waiter:
        await p.start()
    assert waiter.cancelled_caught
    # Observed at once: the close is under way, the runner's task not yet ended.
    assert p.state is State.CLOSING
    await p.wait()  # no error: a cancellation is not a failure
    assert now() == 1
    assert p.state is State.CLOSED
    assert p.error is None
    assert log == [("runner cancelled", 1)]
    assert proctree_root.state is State.RUNNING
    with pytest.raises(proctree.InvalidStateError, match="CLOSED"):
        await p.start()


# ------------------------------------------------------ 10. proctree run --grace


async def test_run_grace_bounds_the_stop_of_a_runner_that_ignores_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: dict[str, float] = {}
    is_ready = trio.Event()

    async def ignores_the_stop(ready: Ready) -> None:
        try:
            is_ready.set()
            await ready()
            times["asked to stop"] = now()
            await trio.sleep_forever()
        finally:
            times["ended"] = now()

    lines: list[str] = []
    codes: list[int] = []

    async def run() -> None:
        code = await run_target(
            ignores_the_stop,
            grace=3,
            show_tree=False,
            verbose=False,
            colour=False,
            write=lines.append,
            notifier=SystemdNotifier(None),
        )
        codes.append(code)
        times["exited"] = now()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await is_ready.wait()
        await trio.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)
    assert times == {"asked to stop": 1, "ended": 4, "exited": 4}
    assert codes == [0]
    assert lines == []


def test_run_grace_bounds_the_stop_of_a_real_subprocess() -> None:
    """End to end: ``--grace 0.2`` forces well before the default 5 s."""
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proctree",
            "run",
            "tests.ops.cli_targets:stubborn",
            "--tree",
            "--grace",
            "0.2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "stubborn [RUNNING]" in line:
                break
        else:
            raise AssertionError("the runner never became ready")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - signalled
    assert proc.returncode == 0, err
    assert "did not end within its grace" in err
    assert elapsed < proctree.DEFAULT_GRACE - 1


# ------------------------------------------------------------- partly proven


async def test_teardowns_run_once_with_some_closers_cancelled_and_a_failure_elsewhere(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = Counter[str]()
    finished: list[float] = []
    cancelled: list[float] = []

    def counting(label: str, seconds: float) -> Callable[[], Awaitable[None]]:
        async def teardown() -> None:
            await trio.sleep(seconds)
            runs[label] += 1

        return teardown

    async def fails(proc: proctree.Process) -> None:
        await trio.sleep(0.5)  # while the target's teardown runs
        raise Boom("elsewhere")

    async def closer(target: proctree.Process, give_up: bool) -> None:
        with trio.move_on_after(0.2 if give_up else 60) as scope:
            await target.aclose()
        (cancelled if scope.cancelled_caught else finished).append(now())

    async with trio.open_nursery() as callers:
        with pytest.RaisesGroup(Boom):
            async with proctree.open_root() as root:
                target = proctree.with_teardown(
                    counting("target", 1), parent=root, name="target"
                )
                for i in range(3):
                    proctree.with_teardown(
                        counting(f"kid {i}", 0.1), parent=target, name=f"kid {i}"
                    )
                bad = proctree.go(fails, parent=root, name="bad")
                bad.set_teardown(counting("bad", 0))
                proctree.with_teardown(counting("sibling", 0), parent=root)
                for i in range(20):
                    callers.start_soon(closer, target, i % 2 == 0)
                await trio.sleep_forever()
        assert now() == 1.1  # kids' 0.1 s, then the target's 1 s
    assert runs == {
        "target": 1,
        "kid 0": 1,
        "kid 1": 1,
        "kid 2": 1,
        "bad": 1,
        "sibling": 1,
    }
    assert cancelled == [0.2] * 10
    assert finished == [1.1] * 10


async def test_sibling_teardowns_overlap_in_time(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    done: list[tuple[str, float]] = []

    def one_second(label: str) -> Callable[[], Awaitable[None]]:
        async def teardown() -> None:
            await trio.sleep(1)
            done.append((label, now()))

        return teardown

    parent = proctree.with_parent(proctree_root, name="parent")
    for label in ("a", "b", "c"):
        proctree.with_teardown(one_second(label), parent=parent, name=label)
    await parent.aclose()
    assert now() == 1  # not 3
    assert sorted(done) == [("a", 1), ("b", 1), ("c", 1)]


async def test_parallel_stops_its_runners_together(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    log: list[tuple[str, str, float]] = []

    def slow_to_stop(label: str) -> Callable[[Ready], Awaitable[None]]:
        async def run(ready: Ready) -> None:
            await ready()
            log.append(("stopping", label, now()))
            await trio.sleep(2)
            log.append(("stopped", label, now()))

        run.__name__ = label
        return run

    p = proctree.new_process(
        proctree.parallel(*(slow_to_stop(x) for x in "abc")), parent=proctree_root
    )
    await p.start()
    await trio.sleep(1)
    await p.stop()
    assert now() == 3  # one 2 s stop, not three in a row
    assert sorted(log) == [
        *[("stopped", x, 3) for x in "abc"],
        *[("stopping", x, 1) for x in "abc"],
    ]


async def test_a_runner_gets_the_default_grace_of_5_seconds_when_nothing_sets_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Plain:
        async def run(self, ready: Ready) -> None:
            await stubborn(ready)

    assert proctree.DEFAULT_GRACE == 5
    async with proctree.open_root():
        for runner in (stubborn, Plain()):
            p = proctree.new_process(runner)
            await p.start()
            started = now()
            await p.stop()
            assert now() - started == 5
            assert p.overran_grace


async def test_start_stop_starts_and_stops_cleanly(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    log: list[tuple[str, float]] = []
    running = False

    async def start_in_background() -> None:
        nonlocal running
        await trio.sleep(1)  # takes 1 s to come up
        running = True
        log.append(("started", now()))

    async def graceful_stop() -> None:
        nonlocal running
        await trio.sleep(0.5)
        running = False
        log.append(("stopped", now()))

    p = proctree.new_process(
        proctree.start_stop(start_in_background, graceful_stop), parent=proctree_root
    )
    assert p.name == "start_in_background"
    await p.start()
    assert now() == 1
    assert p.state is State.RUNNING
    assert running
    await trio.sleep(2)
    await p.stop()
    assert now() == 3.5
    assert log == [("started", 1), ("stopped", 3.5)]
    assert not running
    assert p.state is State.CLOSED
    assert p.error is None
    assert not p.overran_grace


async def test_new_process_grace_bounds_the_forced_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class PrefersLong:
        default_grace = 50.0

        async def run(self, ready: Ready) -> None:
            await stubborn(ready)

    async with proctree.open_root(grace=100):
        for runner in (stubborn, PrefersLong()):
            p = proctree.new_process(runner, grace=1.5)
            await p.start()
            started = now()
            await p.stop()
            assert now() - started == 1.5
            assert p.overran_grace


async def test_a_services_error_history_is_its_current_runs_even_after_105_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0

    async def serve() -> None:
        nonlocal runs
        runs += 1
        raise Boom(f"serve {runs}")

    async def stop() -> None:
        pass

    assert proctree.DEFAULT_MAX_ERRORS == 100
    async with proctree.open_root():
        svc = proctree.Service(serve, stop)
        for _ in range(105):
            await svc.start()
            assert svc.process is not None
            await svc.process.closed.wait()
        assert runs == 105
        # Each start begins a fresh list (golib's startStop resets its error
        # pool): the history is the current run's, bounded by max_errors.
        assert [str(e) for e in svc.errors] == ["serve 105"]
        assert str(svc.last_error) == "serve 105"


async def test_wait_for_on_a_closing_process_is_still_honoured(
    autojump_clock: trio.testing.MockClock,
    proctree_root: proctree.Process,
    proctree_recorder: TeardownRecorder,
) -> None:
    # p is already CLOSING (held open by its wait for gate); a
    # wait_for(q) added now still holds p's CLOSED until q is CLOSED, and
    # does not close q.
    gate = proctree.with_parent(proctree_root, name="gate")
    p = proctree.with_parent(proctree_root, name="p")
    p.wait_for(gate)
    q = proctree.with_parent(proctree_root, name="q")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(p.aclose)
        await trio.testing.wait_all_tasks_blocked()
        assert p.state is State.CLOSING
        p.wait_for(q)
        await gate.aclose()
        await trio.sleep(1)
        assert p.state is State.CLOSING  # q still holds it
        assert q.state is State.RUNNING  # a wait, not a close
        await q.aclose()
    assert p.state is State.CLOSED
    proctree_recorder.assert_order(["gate", "q"], "p")
