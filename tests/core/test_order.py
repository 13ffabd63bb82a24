"""The goprocess test list, retold: order and exactly-once teardown."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree.testing import TeardownRecorder

from ..support.helpers import forever, recorder, until_closing


async def checkpoint() -> None:
    """A teardown that only yields once."""
    await trio.lowlevel.checkpoint()


async def test_closing_is_set_before_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[bool, bool]] = []
    async with proctree.open_root() as root:

        async def teardown() -> None:
            seen.append((p.closing.is_set(), p.closed.is_set()))

        p = proctree.with_teardown(teardown, parent=root)
        assert not p.closing.is_set()
        await p.aclose()
    assert seen == [(True, False)]
    assert p.closed.is_set()
    assert p.state is State.CLOSED


async def test_teardown_runs_once_under_2000_concurrent_closers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0

    async def teardown() -> None:
        nonlocal runs
        await trio.sleep(0.001)
        runs += 1

    async with proctree.open_root() as root:
        p = proctree.with_teardown(teardown, parent=root)
        done = 0

        async def closer() -> None:
            nonlocal done
            await p.aclose()
            assert p.state is State.CLOSED
            done += 1

        async with trio.open_nursery() as nursery:
            for _ in range(2000):
                nursery.start_soon(closer)
    assert runs == 1
    assert done == 2000


async def test_three_two_one_order_when_all_three_are_closed_at_once(
    autojump_clock: trio.testing.MockClock,
    proctree_root: proctree.Process,
    proctree_recorder: TeardownRecorder,
) -> None:
    # The project's own plugin: the root fixture checks the tree ended well,
    # the recorder gives the close order.
    p1 = proctree.with_teardown(checkpoint, parent=proctree_root, name="1")
    p2 = proctree.with_teardown(checkpoint, parent=p1, name="2")
    p3 = proctree.with_teardown(checkpoint, parent=p2, name="3")
    async with trio.open_nursery() as nursery:
        for p in (p1, p3, p2):
            nursery.start_soon(p.aclose)
    assert proctree_recorder.order == ["3", "2", "1"]


async def test_closing_a_node_closes_its_leaves_first_and_not_its_siblings(
    autojump_clock: trio.testing.MockClock,
    proctree_root: proctree.Process,
    proctree_recorder: TeardownRecorder,
) -> None:
    def node(name: str, parent: proctree.Process) -> proctree.Process:
        return proctree.with_teardown(checkpoint, parent=parent, name=name)

    a = node("a", proctree_root)
    a1 = node("a1", a)
    node("a2", a)
    node("a11", a1)
    b = node("b", proctree_root)
    await a.aclose()
    assert sorted(proctree_recorder.order[:2]) == ["a11", "a2"]
    proctree_recorder.assert_order("a11", "a1", "a")
    proctree_recorder.assert_order(["a11", "a2"], "a")
    assert proctree_recorder.order[-1] == "a"
    assert b.state is State.RUNNING
    assert not b.closing.is_set()


async def test_wait_for_orders_the_close_without_closing_the_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        a = proctree.with_teardown(recorder(log, "a"), parent=root)
        b = proctree.with_teardown(recorder(log, "b"), parent=root)
        a.wait_for(b)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.aclose)
            await trio.testing.wait_all_tasks_blocked()
            assert a.state is State.CLOSING
            assert b.state is State.RUNNING
            assert log == []
            await b.aclose()
        assert log == ["b", "a"]


async def test_add_child_waits_but_add_child_no_wait_does_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        parent = proctree.with_teardown(recorder(log, "parent"), parent=root)
        waited = proctree.with_parent(root, name="waited")
        waited.wait_for(proctree.with_parent(root, name="gate"))
        not_waited = proctree.with_parent(root, name="not-waited")
        gate2 = proctree.with_parent(root, name="gate2")
        not_waited.wait_for(gate2)
        parent.add_child(waited)
        parent.add_child_no_wait(not_waited)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(parent.aclose)
            await trio.testing.wait_all_tasks_blocked()
            # Both children are closing; only the waited one holds the parent.
            assert waited.state is State.CLOSING
            assert not_waited.state is State.CLOSING
            assert parent.state is State.CLOSING
            assert log == []
            nursery.cancel_scope.cancel()
        await root.aclose()


async def test_no_wait_child_is_closing_before_the_parent_teardown_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[bool] = []
    async with proctree.open_root() as root:

        async def teardown() -> None:
            seen.append(child.closing.is_set())

        parent = proctree.with_teardown(teardown, parent=root)
        child = proctree.with_parent(root)
        child.wait_for(proctree.with_parent(root))
        parent.add_child_no_wait(child)
        await parent.aclose()
        assert child.state is State.CLOSING
    assert seen == [True]


async def test_go_function_ends_before_its_parent_teardown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def worker(proc: proctree.Process) -> None:
        try:
            await proc.closing.wait()
            await trio.sleep(1)
        finally:
            log.append("worker ended")

    async with proctree.open_root() as root:
        parent = proctree.with_teardown(recorder(log, "parent teardown"), parent=root)
        parent.go(worker)
        await parent.aclose()
    assert log == ["worker ended", "parent teardown"]


async def test_go_process_closes_itself_once_its_function_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:

        async def quick(proc: proctree.Process) -> None:
            await trio.lowlevel.checkpoint()

        p = root.go(quick)
        await p.wait()
        assert p.state is State.CLOSED


async def test_go_process_waits_for_its_children_after_its_function_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        release = trio.Event()

        async def child(proc: proctree.Process) -> None:
            await release.wait()

        async def parent(proc: proctree.Process) -> None:
            proc.go(child)

        p = root.go(parent)
        await trio.testing.wait_all_tasks_blocked()
        assert p.state is State.RUNNING
        release.set()
        await p.wait()


async def test_close_after_children_does_not_force_the_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        parent = proctree.with_parent(root)
        c1 = proctree.with_parent(parent)
        c2 = parent.go(until_closing)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(parent.close_after_children)
            await trio.testing.wait_all_tasks_blocked()
            assert not c1.closing.is_set()
            assert not c2.closing.is_set()
            assert parent.state is State.RUNNING
            await c1.aclose()
            assert parent.state is State.RUNNING
            await c2.aclose()
        assert parent.state is State.CLOSED


async def test_after_closed_go_add_child_and_wait_for_raise(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        p = proctree.with_parent(root)
        await p.aclose()
        other = proctree.with_parent(root)
        with pytest.raises(proctree.InvalidStateError, match="CLOSED"):
            p.go(forever)
        with pytest.raises(proctree.InvalidStateError, match="CLOSED"):
            p.add_child(other)
        with pytest.raises(proctree.InvalidStateError, match="CLOSED"):
            p.wait_for(other)


async def test_after_closed_add_child_no_wait_closes_the_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        p = proctree.with_parent(root)
        await p.aclose()
        q = proctree.with_parent(root)
        p.add_child_no_wait(q)
        assert q.state is State.CLOSED


async def test_while_closing_add_child_closes_the_child_and_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        gate = proctree.with_parent(root)
        p = proctree.with_teardown(recorder(log, "p"), parent=root)
        p.wait_for(gate)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(p.aclose)
            await trio.testing.wait_all_tasks_blocked()
            assert p.state is State.CLOSING
            late = proctree.with_teardown(recorder(log, "late"), parent=root)
            late.wait_for(proctree.with_parent(root, name="late-gate"))
            p.add_child(late)
            assert late.closing.is_set()
            await gate.aclose()
            await trio.testing.wait_all_tasks_blocked()
            assert p.state is State.CLOSING
            nursery.cancel_scope.cancel()
        await root.aclose()
    assert log == ["late", "p"]


async def test_go_while_closing_gives_a_child_that_is_already_closing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        gate = proctree.with_parent(root)
        p = proctree.with_parent(root)
        p.wait_for(gate)
        seen: list[bool] = []

        async def child(proc: proctree.Process) -> None:
            seen.append(proc.closing.is_set())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(p.aclose)
            await trio.testing.wait_all_tasks_blocked()
            c = p.go(child)
            assert c.state is State.CLOSING
            await gate.aclose()
        assert seen == [True]


async def test_wait_does_not_cause_a_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        p = proctree.with_parent(root)
        with trio.move_on_after(10):
            await p.wait()
        assert p.state is State.RUNNING
        assert not p.closing.is_set()


async def test_wait_returns_once_someone_else_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        p = proctree.with_parent(root)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(p.wait)
            await trio.testing.wait_all_tasks_blocked()
            await p.aclose()


async def test_background_never_closes(autojump_clock: trio.testing.MockClock) -> None:
    bg = proctree.background()
    assert bg is proctree.background()
    async with proctree.open_root():
        with trio.move_on_after(100):
            await bg.wait()
        with pytest.raises(proctree.InvalidStateError, match="never closes"):
            await bg.aclose()
    assert bg.state is State.RUNNING
    assert not bg.closing.is_set()


async def test_a_child_of_background_is_closed_when_its_root_exits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root():
        p = proctree.with_teardown(recorder(log, "stray"), parent=proctree.background())
        g = proctree.go(until_closing, parent=proctree.background())
    assert log == ["stray"]
    assert p.state is State.CLOSED
    assert g.state is State.CLOSED


async def test_a_teardown_may_use_its_own_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:

        async def helper(proc: proctree.Process) -> None:
            await trio.sleep(1)
            log.append("helper done")

        async def teardown() -> None:
            p.go(helper)
            p.add_child(proctree.with_teardown(recorder(log, "added"), parent=root))
            log.append("teardown done")

        p = proctree.with_teardown(teardown, parent=root)
        await p.aclose()
        assert p.state is State.CLOSED
    assert log[0] == "teardown done"
    assert sorted(log[1:]) == ["added", "helper done"]


async def test_root_closes_children_first_when_its_body_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        root.set_teardown(recorder(log, "root"))
        proctree.with_teardown(recorder(log, "child"))
        root.go(until_closing)
    assert log == ["child", "root"]
    assert root.state is State.CLOSED


async def test_closing_the_root_from_elsewhere_cancels_its_body(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reached_end = False
    async with proctree.open_root() as root:

        async def closer(proc: proctree.Process) -> None:
            await trio.sleep(1)
            await root.aclose()

        proctree.go(closer, parent=proctree.background())
        await trio.sleep_forever()
        reached_end = True  # pragma: no cover
    assert not reached_end
    assert root.state is State.CLOSED


async def test_processes_of_two_roots_can_wait_for_each_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root(name="a") as a:
        a_proc = proctree.with_teardown(recorder(log, "a-proc"), parent=a)
        async with proctree.open_root(name="b") as b:
            b_proc = proctree.with_teardown(recorder(log, "b-proc"), parent=b)
            a_proc.wait_for(b_proc)
        assert log == ["b-proc"]
    assert log == ["b-proc", "a-proc"]


async def test_a_dag_child_is_closed_once_by_either_parent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        left = proctree.with_teardown(recorder(log, "left"), parent=root)
        right = proctree.with_teardown(recorder(log, "right"), parent=root)
        shared = proctree.with_teardown(recorder(log, "shared"), parent=left)
        right.add_child(shared)
        await right.aclose()
        assert log == ["shared", "right"]
        assert left.state is State.RUNNING
    assert log == ["shared", "right", "left"]
