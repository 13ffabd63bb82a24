"""The fault matrix (issue #7): each fault, its expected outcome, and no leak after.

Every scenario runs under :func:`tests.support.leakcheck.run_leak_checked`: once the
root has exited, no task it hosted is alive, no process it made is alive,
nothing is left for the cyclic gc (on a clean path), no child process is
unreaped and no file descriptor is open.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Literal

import pytest
import trio
import trio.testing

import proctree
from proctree import State

from ..support.leakcheck import Track, run_leak_checked

Ready = Callable[[], Awaitable[None]]


class Boom(Exception):
    pass


class Teardowns:
    """Teardowns that count how often each one was entered and finished."""

    def __init__(self) -> None:
        self.entered: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()
        self.order: list[str] = []

    def __call__(
        self,
        label: str,
        *,
        sleep: float = 0,
        raises: BaseException | None = None,
    ) -> Callable[[], Awaitable[None]]:
        async def teardown() -> None:
            self.entered[label] += 1
            if raises is not None:
                self.order.append(label)
                raise raises
            await trio.sleep(sleep)
            self.finished[label] += 1
            self.order.append(label)

        return teardown

    def before(self, first: str, then: str) -> bool:
        return self.order.index(first) < self.order.index(then)


def state_of(p: proctree.Process) -> State:
    """``p.state``, read through a call so that mypy does not narrow it."""
    return p.state


# ----------------------------------------------------- failures in the tree


Fault = Literal["function", "teardown", "both"]


@pytest.mark.parametrize("fault", ["function", "teardown", "both"])
async def test_a_failure_closes_the_tree_once_and_surfaces_once_from_root_and_aclose(
    autojump_clock: trio.testing.MockClock, fault: Fault
) -> None:
    # root ─ mid ─ victim (go; fails at t=1) ─ leaf
    #      │     └ sibling
    #      └ other
    # (The exceptions live in the scenario: a failure's traceback holds the
    # failed process, which must be freed once the failure is dropped.)
    teardowns = Teardowns()

    async def scenario(track: Track) -> None:
        fn_exc = Boom("function")
        td_exc = Boom("teardown")
        expected = {"function": [fn_exc], "teardown": [td_exc]}
        expected["both"] = [fn_exc, td_exc]

        async def victim_fn(proc: proctree.Process) -> None:
            await trio.sleep(1)
            if fault != "teardown":
                raise fn_exc
            # closing itself cancels the function; then the teardown fails
            await proc.aclose()

        with pytest.RaisesGroup(Boom, *[Boom] * (fault == "both")) as info:
            async with proctree.open_root() as root:
                mid = track(proctree.with_teardown(teardowns("mid"), name="mid"))
                victim = track(mid.go(victim_fn, name="victim", grace=1000))
                victim.set_teardown(
                    teardowns("victim", raises=td_exc if fault != "function" else None)
                )
                leaf = track(proctree.with_teardown(teardowns("leaf"), parent=victim))
                sibling = track(
                    proctree.with_teardown(teardowns("sibling"), parent=mid)
                )
                other = track(proctree.with_teardown(teardowns("other"), parent=root))
                track(root)
                await trio.sleep_forever()
        # the root raised each failure once, the very objects, in order
        assert list(info.value.exceptions) == expected[fault]
        assert trio.current_time() == 1
        # the victim's error: its own failures only; ancestors have none
        if fault == "both":
            assert isinstance(victim.error, BaseExceptionGroup)
            assert list(victim.error.exceptions) == [fn_exc, td_exc]
        else:
            assert victim.error is expected[fault][0]
        assert (mid.error, root.error, leaf.error, sibling.error) == (None,) * 4
        for exc, part in [(fn_exc, "function"), (td_exc, "teardown")]:
            if exc in expected[fault]:
                assert exc.__notes__ == [
                    f"proctree: raised by the {part} of process 'root/mid/victim'"
                ]
        # a later aclose() and wait() raise that same error, and only it
        for call in (victim.aclose, victim.wait):
            with pytest.raises(BaseException) as raised:  # noqa: PT011
                await call()
            assert raised.value is victim.error
        await mid.aclose()  # an ancestor's aclose does not raise
        # every teardown ran exactly once, leaves first
        assert teardowns.entered == dict.fromkeys(
            ["leaf", "victim", "sibling", "mid", "other"], 1
        )
        assert teardowns.before("leaf", "victim")
        assert teardowns.before("victim", "mid")
        assert teardowns.before("sibling", "mid")
        assert {p.state for p in (root, mid, victim, leaf, sibling, other)} == {
            State.CLOSED
        }

    await run_leak_checked(scenario, allow_cycles=True)


async def test_a_process_whose_function_and_teardown_both_fail_is_reported_once_each(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Three closers (outside the root, so that the failure does not cancel
    # them) all see the same group of both failures; the root reports each
    # failure once.
    teardowns = Teardowns()

    async def scenario(track: Track) -> None:
        fn_exc = Boom("function")
        td_exc = Boom("teardown")
        seen: list[BaseException] = []

        async def fn(proc: proctree.Process) -> None:
            await proc.closing.wait()
            raise fn_exc

        async def closer(p: proctree.Process) -> None:
            try:
                await p.aclose()
            except BaseException as exc:
                seen.append(exc)

        async with trio.open_nursery() as outside:
            with pytest.RaisesGroup(Boom, Boom) as info:
                async with proctree.open_root() as root:
                    p = track(root.go(fn, name="p"))
                    p.set_teardown(teardowns("p", raises=td_exc))
                    for _ in range(3):
                        outside.start_soon(closer, p)
                    await trio.sleep_forever()
        assert list(info.value.exceptions) == [fn_exc, td_exc]
        assert isinstance(p.error, BaseExceptionGroup)
        assert list(p.error.exceptions) == [fn_exc, td_exc]
        assert len(seen) == 3
        assert all(exc is p.error for exc in seen)
        assert teardowns.entered == {"p": 1}

    await run_leak_checked(scenario, allow_cycles=True)


# ------------------------------------------------- a caller cancelled mid-close


@pytest.mark.parametrize("teardown_fails", [False, True], ids=["clean", "failing"])
@pytest.mark.parametrize("how", ["cancel_scope", "own_process_closed"])
async def test_a_caller_cancelled_mid_close_leaves_the_close_to_finish_once(
    autojump_clock: trio.testing.MockClock,
    how: Literal["cancel_scope", "own_process_closed"],
    teardown_fails: bool,
) -> None:
    # The close of `sub` takes 10 s (its teardown). Its first caller stops
    # waiting at t=1 (cancelled by a scope, or because its own process was
    # closed with no grace); the close goes on. A caller from t=2 waits for
    # the end and returns (or raises the failure); one at t=11, after the
    # root exited, returns (or raises the same failure) at once.
    teardowns = Teardowns()

    async def closer(proc: proctree.Process, target: proctree.Process) -> None:
        await target.aclose()
        raise AssertionError("not reached: this caller is cancelled first")

    async def scenario(track: Track) -> None:
        td_exc = Boom("sub")
        later: list[tuple[float, float, BaseException | None]] = []

        async def slow_then_maybe_fail() -> None:
            await teardowns("sub", sleep=10)()
            if teardown_fails:
                raise td_exc

        async def later_closer(target: proctree.Process, at: float) -> None:
            await trio.sleep_until(at)
            try:
                await target.aclose()
            except Boom as exc:
                later.append((at, trio.current_time(), exc))
            else:
                later.append((at, trio.current_time(), None))

        async with trio.open_nursery() as outside:
            with pytest.RaisesGroup(Boom) if teardown_fails else _nothing():
                async with proctree.open_root() as root:
                    sub = track(proctree.with_teardown(slow_then_maybe_fail))
                    child = track(
                        proctree.with_teardown(teardowns("child"), parent=sub)
                    )
                    if how == "cancel_scope":
                        with trio.move_on_after(1) as scope:
                            await sub.aclose()
                        assert scope.cancelled_caught
                    else:
                        caller = track(root.go(closer, sub, grace=1000))
                        await trio.sleep(1)
                        await caller.aclose(grace=0)
                        assert caller.error is None
                    assert trio.current_time() == 1
                    assert state_of(sub) is State.CLOSING
                    assert child.state is State.CLOSED
                    assert teardowns.entered == {"child": 1, "sub": 1}
                    assert teardowns.finished == {"child": 1}
                    outside.start_soon(later_closer, sub, 2)
                    outside.start_soon(later_closer, sub, 11)
                    # when sub fails, the failure closes the root: the
                    # body is cancelled here
                    await sub.wait()
                    assert trio.current_time() == 10
        error = td_exc if teardown_fails else None
        assert later == [(2, 10, error), (11, 11, error)]
        assert sub.state is State.CLOSED
        assert sub.error is error
        assert teardowns.entered == {"child": 1, "sub": 1}
        assert teardowns.finished == {"child": 1, "sub": 1}

    await run_leak_checked(scenario, allow_cycles=teardown_fails)


class _nothing:
    """A context manager that expects nothing (the other branch of RaisesGroup)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


# -------------------------------------------------- KeyboardInterrupt in a teardown


async def test_keyboard_interrupt_in_a_teardown_forces_the_rest_and_surfaces_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # docs/design.md, section 5.4: a KeyboardInterrupt is a failure that also
    # forces the shutdown (the host nursery is cancelled); the root raises it
    # bare, as trio.run would, since it is the only failure. Every process
    # still reaches CLOSED and every teardown is entered exactly once; those
    # due after the interrupt are cancelled at their first checkpoint, and so
    # is a go function that would have had 1000 s of grace.
    #
    # root ─ a ─ b (teardown raises KeyboardInterrupt) ─ c (1 s teardown)
    #      ├ s (5 s teardown) ─ s2
    #      └ g (go, ignores closing, grace 1000)
    teardowns = Teardowns()
    cancelled: list[float] = []

    async def stubborn(proc: proctree.Process) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(trio.current_time())
            raise

    async def scenario(track: Track) -> None:
        interrupt = KeyboardInterrupt()
        with pytest.RaisesExc(KeyboardInterrupt) as info:
            async with proctree.open_root() as root:
                a = track(proctree.with_teardown(teardowns("a"), name="a"))
                b = track(
                    proctree.with_teardown(teardowns("b", raises=interrupt), parent=a)
                )
                c = track(proctree.with_teardown(teardowns("c", sleep=1), parent=b))
                s = track(proctree.with_teardown(teardowns("s", sleep=5), parent=root))
                s2 = track(proctree.with_teardown(teardowns("s2"), parent=s))
                g = track(root.go(stubborn, grace=1000))
                track(root)
                await trio.sleep(1)
                await b.aclose()
        assert info.value is interrupt
        assert b.error is interrupt
        assert (a.error, root.error, s.error) == (None, None, None)
        assert trio.current_time() == 2  # c's teardown, then forced at once
        assert cancelled == [2]
        assert {p.state for p in (root, a, b, c, s, s2, g)} == {State.CLOSED}
        assert teardowns.entered == dict.fromkeys(["a", "b", "c", "s", "s2"], 1)
        assert teardowns.finished == {"c": 1}
        assert teardowns.order == ["c", "b"]

    await run_leak_checked(scenario, allow_cycles=True)


# -------------------------------------------------------------- a signal storm


@pytest.mark.parametrize(
    ("storm", "forced"),
    [
        ("same_signal_at_once", False),
        ("two_signals_at_once", True),
        ("while_closing", True),
    ],
    ids=["same_signal_at_once", "two_signals_at_once", "while_closing"],
)
async def test_a_storm_of_100_signals_closes_once_and_exits_cleanly(
    autojump_clock: trio.testing.MockClock, storm: str, forced: bool
) -> None:
    # Real signals, sent to this process. They need no real time: a signal
    # sent to oneself from the main thread is handled (queued in trio's
    # receiver) before os.kill returns, so the mock clock is enough.
    #
    # trio merges a signal that arrives while the same one is still pending
    # (docs/design.md, section 9), so:
    # * 100 SIGTERMs sent at once are one signal: one graceful close;
    # * 100 alternating SIGTERM/SIGINT sent at once are two signals: the
    #   second forces (cancels the teardown under way);
    # * 100 SIGTERMs once the first was handled are a second signal: forced.
    # Either way the block exits without an exception, the tree closes once
    # and every teardown is entered exactly once.
    teardowns = Teardowns()

    async def scenario(track: Track) -> None:
        async with proctree.with_signals(signal.SIGTERM, signal.SIGINT) as root:
            track(root)
            sub = track(proctree.with_teardown(teardowns("sub", sleep=3), name="sub"))
            track(proctree.with_teardown(teardowns("leaf"), parent=sub))
            track(root.go(_until_closing))
            await trio.testing.wait_all_tasks_blocked()
            if storm == "while_closing":
                os.kill(os.getpid(), signal.SIGTERM)
                await root.closing.wait()
                with trio.CancelScope(shield=True):
                    while not teardowns.entered["sub"]:
                        await trio.sleep(0.001)
                    # nothing checkpoints between these: one pending signal
                    for _ in range(100):
                        signal.raise_signal(signal.SIGTERM)
            else:
                two = storm == "two_signals_at_once"
                for i in range(100):
                    os.kill(
                        os.getpid(), signal.SIGINT if two and i % 2 else signal.SIGTERM
                    )
            await root.closed.wait()  # the close cancels the body first
        assert root.state is State.CLOSED
        assert teardowns.entered == {"leaf": 1, "sub": 1}
        if forced:
            # sub's 3 s teardown was cancelled (leaf's may have been too,
            # when the second signal came before it reached a checkpoint)
            assert "sub" not in teardowns.finished
            assert teardowns.finished["leaf"] <= 1
            assert trio.current_time() < 3
        else:
            assert teardowns.finished == {"leaf": 1, "sub": 1}
            assert trio.current_time() == 3

    await run_leak_checked(scenario, signals=True)


async def _until_closing(proc: proctree.Process) -> None:
    await proc.closing.wait()


# ---------------------------------------------------- closing one's ancestor


@pytest.mark.parametrize("target", ["parent", "grandparent", "root"])
@pytest.mark.parametrize("where", ["function", "teardown"])
async def test_a_child_closing_its_ancestor_closes_it_once_in_order_without_deadlock(
    autojump_clock: trio.testing.MockClock,
    where: Literal["function", "teardown"],
    target: str,
) -> None:
    # root ─ grandparent ─ parent ─ child (go function or teardown)
    #      │             └ aunt
    #      └ bystander
    # At t=1 the child closes its ancestor. From a function, the function is
    # cancelled at once (its grace of 1000 s does not apply); from a
    # teardown, aclose() returns at once and the close finishes after it.
    teardowns = Teardowns()
    after_aclose: list[str] = []

    async def scenario(track: Track) -> None:
        async with proctree.open_root() as root:
            gp = track(proctree.with_teardown(teardowns("grandparent"), name="gp"))
            parent = track(proctree.with_teardown(teardowns("parent"), parent=gp))
            track(proctree.with_teardown(teardowns("aunt"), parent=gp))
            bystander = track(proctree.with_teardown(teardowns("bystander")))
            ancestors = {"parent": parent, "grandparent": gp, "root": root}
            chosen = ancestors[target]
            track(root)

            if where == "function":

                async def fn(proc: proctree.Process) -> None:
                    await trio.sleep(1)
                    await chosen.aclose()
                    after_aclose.append("not reached")  # pragma: no cover

                child = track(parent.go(fn, grace=1000, name="child"))
                child.set_teardown(teardowns("child"))
                await chosen.wait()
            else:

                async def teardown() -> None:
                    await chosen.aclose()
                    after_aclose.append("returned")
                    await teardowns("child")()

                child = track(proctree.with_teardown(teardown, parent=parent))
                await trio.sleep(1)
                await child.aclose()
                await chosen.wait()
        assert trio.current_time() == 1
        assert after_aclose == ([] if where == "function" else ["returned"])
        assert child.state is State.CLOSED
        assert bystander.state is State.CLOSED
        counts = dict.fromkeys(
            ["child", "parent", "grandparent", "aunt", "bystander"], 1
        )
        assert teardowns.entered == counts
        assert teardowns.finished == counts
        assert teardowns.before("child", "parent")
        assert teardowns.before("parent", "grandparent")
        assert teardowns.before("aunt", "grandparent")

    await run_leak_checked(scenario)


# ------------------------------------- a subtree closing while a supervisor restarts


class Flaky:
    """A supervised runner that fails 1 s after each start; it logs every run."""

    def __init__(self, startup: float) -> None:
        self.startup = startup
        self.entered: list[float] = []
        self.exited: list[float] = []

    async def run(self, ready: Ready) -> None:
        self.entered.append(trio.current_time())
        try:
            await trio.sleep(self.startup)
            stopped = False
            async with trio.open_nursery() as nursery:

                async def serve() -> None:
                    nonlocal stopped
                    await ready()  # returns when the child is asked to stop
                    stopped = True
                    nursery.cancel_scope.cancel()

                nursery.start_soon(serve)
                await trio.sleep(1)
                nursery.cancel_scope.cancel()
            if not stopped:
                raise Boom("flaky")
        finally:
            self.exited.append(trio.current_time())


@pytest.mark.parametrize(
    ("close_at", "startup", "runs"),
    [
        # during the backoff: fails at 1, restart due at 1.5
        (1.25, 0.0, 1),
        # while the restarted child starts (from 2.0 to 2.5)
        (2.25, 0.5, 2),
        # at the very moment the child fails (either may come first)
        (1.0, 0.0, 1),
        # after five restarts (a run every 1.6 s), while the sixth starts
        (8.05, 0.1, 6),
    ],
    ids=["during_backoff", "during_restart", "at_failure", "after_restarts"],
)
async def test_a_subtree_closing_while_its_supervisor_restarts_stops_everything(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    close_at: float,
    startup: float,
    runs: int,
) -> None:
    # pytest keeps every captured log record, and a ChildFailed warning's
    # event holds the failure, whose traceback holds the failed child:
    # the leak check would see pytest's references, not proctree's.
    caplog.set_level(logging.ERROR, logger="proctree.supervisor")
    # root ─ sub ─ supervisor ─ "a" (fails 1 s after each start, forever)
    #            └ sibling
    # When sub starts closing, no run of "a" begins any more, every run
    # that began has ended, the supervisor closes with no error, and the
    # child's failures (taken by the supervisor) never reach the root.
    teardowns = Teardowns()
    flaky = Flaky(startup)
    policy = proctree.RestartPolicy.exponential(
        initial=0.5, cap=0.5, jitter=0.0, failure_threshold=1000
    )

    async def scenario(track: Track) -> None:
        async with proctree.open_root() as root:
            track(root)
            sub = track(proctree.with_teardown(teardowns("sub"), name="sub"))
            sibling = track(proctree.with_teardown(teardowns("sibling"), parent=sub))
            sup = proctree.Supervisor(
                proctree.MemoryTable({"a": flaky}),
                policy=policy,
                parent=sub,
                interval=0.3,
                child_grace=0.05,
            )
            track(sup.process)
            await sup.start()
            children: list[proctree.Process] = []

            async def watch() -> None:
                # every process the supervisor runs for "a", as it appears
                while True:
                    keys = sup.keys()
                    if keys and (not children or sup.child("a") is not children[-1]):
                        children.append(track(sup.child("a")))
                    await trio.sleep(0.01)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                await trio.sleep_until(close_at)
                nursery.cancel_scope.cancel()
            await sub.aclose()
            closed_at = trio.current_time()
            assert sup.process.state is State.CLOSED
            assert sup.process.error is None
            assert sup.keys() == []
            assert all(c.state is State.CLOSED for c in children)
            assert sibling.state is State.CLOSED
            assert root.state is State.RUNNING
            await trio.sleep(10)  # nothing restarts later either
        assert len(flaky.entered) == runs
        assert all(t <= close_at for t in flaky.entered)
        assert len(flaky.exited) == runs
        assert all(t <= closed_at for t in flaky.exited)
        assert closed_at <= close_at + 0.05  # at most the child's grace
        assert teardowns.entered == {"sibling": 1, "sub": 1}

    # allow_cycles: the supervised children fail, and a failure's traceback
    # cycle is freed by the cyclic gc (docs/design.md section 7).
    await run_leak_checked(scenario, allow_cycles=True)


async def test_a_stopped_supervisor_leaves_no_reference_cycle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def run(ready: Ready) -> None:
        await ready()

    async def scenario(track: Track) -> None:
        async with proctree.open_root():
            sup = proctree.Supervisor(proctree.MemoryTable({"a": run}))
            track(sup.process)
            await sup.start()
            track(sup.child("a"))
            await sup.stop()

    await run_leak_checked(scenario)


# ------------------------------------------------------------------ runners


async def test_a_runner_raising_before_ready_fails_only_its_start_and_tears_down_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A startup failure is start()'s (docs/design.md, section 8): it is
    # raised there, kept in error, and never reaches the root; what the
    # runner had already made is torn down once.
    teardowns = Teardowns()

    async def scenario(track: Track) -> None:
        exc = Boom("cannot connect")

        async def run(ready: Ready) -> None:
            track(proctree.with_teardown(teardowns("pool"), name="pool"))
            await trio.sleep(1)
            raise exc

        async with proctree.open_root() as root:
            track(root)
            p = track(proctree.new_process(run, name="db"))
            with pytest.raises(Boom) as raised:
                await p.start()
            assert raised.value is exc
            assert p.error is exc
            assert p.state is State.CLOSED
            assert root.state is State.RUNNING
            with pytest.raises(Boom):
                await p.aclose()
            with pytest.raises(proctree.InvalidStateError):
                await p.start()
        assert trio.current_time() == 1
        assert teardowns.entered == {"pool": 1}
        assert root.error is None

    await run_leak_checked(scenario, allow_cycles=True)


@pytest.mark.parametrize("grace", [0, 1e-9, 0.001])
async def test_stop_with_a_tiny_grace_forces_a_runner_that_ignores_closing(
    autojump_clock: trio.testing.MockClock, grace: float
) -> None:
    # The runner neither returns after ready() nor watches closing: the grace
    # is all it gets; then it is cancelled, which is not a failure.
    teardowns = Teardowns()
    ended: list[float] = []

    async def stubborn(ready: Ready) -> None:
        try:
            await ready()
            await trio.sleep_forever()
        finally:
            ended.append(trio.current_time())

    async def scenario(track: Track) -> None:
        async with proctree.open_root() as root:
            track(root)
            p = track(proctree.new_process(stubborn, grace=1000))
            p.set_teardown(teardowns("p"))
            child = track(proctree.with_teardown(teardowns("child"), parent=p))
            await p.start()
            await trio.sleep(1)
            await p.stop(grace=grace)
            assert trio.current_time() == 1 + grace
            if grace:  # (with no grace at all, see the report on #7)
                assert p.overran_grace
            assert p.error is None
            assert (p.state, child.state) == (State.CLOSED, State.CLOSED)
            with pytest.raises(proctree.InvalidStateError):
                await p.stop()
        assert ended == [1 + grace]
        assert teardowns.entered == {"child": 1, "p": 1}
        assert teardowns.before("child", "p")

    await run_leak_checked(scenario)


@pytest.mark.parametrize("grace", [0, 0.001])
async def test_stop_with_a_tiny_grace_kills_and_reaps_an_os_process_ignoring_sigterm(
    grace: float,
) -> None:
    # A real child process: real time (it must start, print, and die), and
    # every wait bounded. It ignores SIGTERM, so the tiny grace ends in
    # SIGKILL; it must be reaped (no zombie) with its pipes closed.
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )

    async def scenario(track: Track) -> int | None:
        runner = proctree.os_process(
            [sys.executable, "-c", script], ready_line="ready", echo=False
        )
        async with proctree.open_root():
            p = track(proctree.new_process(runner))
            with trio.fail_after(10):
                await p.start()
                await p.stop(grace=grace)
            assert p.error is None
        return runner.returncode

    await run_leak_checked(scenario)  # warms up trio's thread cache and imports
    assert await run_leak_checked(scenario) == -signal.SIGKILL


# ------------------------------------------------ the leak check catches leaks


async def test_the_leak_check_fails_on_each_kind_of_leak(
    autojump_clock: trio.testing.MockClock,
) -> None:
    kept: list[object] = []
    release = trio.Event()

    async def left_task(track: Track) -> None:
        async def lingering() -> None:
            await release.wait()

        trio.lowlevel.spawn_system_task(lingering)

    async def left_cycle(track: Track) -> None:
        cycle: list[object] = []
        cycle.append(cycle)

    async def left_process(track: Track) -> None:
        async with proctree.open_root() as root:
            kept.append(track(root))

    async def left_process_with_cycles_allowed(track: Track) -> None:
        async with proctree.open_root() as root:
            kept.append(track(root))

    async def left_fd(track: Track) -> None:
        kept.extend(os.pipe())

    async def left_zombie(track: Track) -> None:
        _make_zombie()

    cases: list[tuple[Callable[[Track], Awaitable[None]], bool, str]] = [
        (left_task, False, "tasks outlived their root"),
        (left_cycle, False, "left for the cyclic gc"),
        (left_process, False, "not freed by refcount: .'root'"),
        (left_process_with_cycles_allowed, True, "not freed by gc.collect.*'root'"),
        (left_fd, False, "file descriptors left open"),
        (left_zombie, False, "left unreaped"),
    ]
    for scenario, allow_cycles, message in cases:
        with pytest.raises(AssertionError, match=message):
            await run_leak_checked(scenario, allow_cycles=allow_cycles)
        release.set()
        for fd in kept:
            if isinstance(fd, int):
                os.close(fd)
        kept.clear()
    await trio.testing.wait_all_tasks_blocked()


def _make_zombie() -> None:
    """Start a child process and wait until it exits, without reaping it."""
    pid = os.posix_spawn("/bin/true", ["true"], {})
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
