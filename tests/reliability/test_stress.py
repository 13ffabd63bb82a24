"""Stress (issue #7): many closers, a million processes, deep chains; no leaks.

Every scenario runs under :func:`tests.support.leakcheck.run_leak_checked`. These
tests run in CI like the others (the project has no ``slow`` marker); the
million-node tree is the heaviest, at about a minute and 1.5 GB.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State

from ..core import test_scale
from ..support.leakcheck import Track, run_leak_checked

CLOSERS = 10_000


async def _until_closing(proc: proctree.Process) -> None:
    await proc.closing.wait()


async def test_10_000_concurrent_closers_of_one_process_all_return_teardown_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Every second closer is cancelled in the middle of the close; the
    # others wait for the end. The teardown (1 s) runs once.
    runs = 0

    async def teardown() -> None:
        nonlocal runs
        runs += 1
        await trio.sleep(1)

    async def scenario(track: Track) -> tuple[int, int]:
        returned = cancelled = 0

        async def closer(p: proctree.Process, i: int) -> None:
            nonlocal returned, cancelled
            with trio.move_on_after(0.5 if i % 2 else 1000) as scope:
                await p.aclose()
                assert p.state is State.CLOSED
                assert trio.current_time() == 1
                returned += 1
            if scope.cancelled_caught:
                assert p.state is State.CLOSING
                cancelled += 1

        async with proctree.open_root() as root:
            p = track(proctree.with_teardown(teardown, parent=root))
            async with trio.open_nursery() as nursery:
                for i in range(CLOSERS):
                    nursery.start_soon(closer, p, i)
            track(root)
        return returned, cancelled

    assert await run_leak_checked(scenario) == (CLOSERS // 2, CLOSERS // 2)
    assert runs == 1


async def test_10_000_closers_at_every_level_of_a_subtree_tear_each_node_down_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A subtree of 1,111 processes (fanout 10, 4 levels; the leaves are go
    # processes), 10,000 closers spread over every node, all at once. Each
    # teardown checks that the node's children are CLOSED before it runs.
    fanout, levels = 10, 4
    entered: dict[int, int] = {}
    out_of_order: list[int] = []

    async def scenario(track: Track) -> int:
        returned = 0
        nodes: list[proctree.Process] = []
        children: dict[int, list[proctree.Process]] = {}

        def teardown(i: int) -> Callable[[], Awaitable[None]]:
            async def fn() -> None:
                entered[i] = entered.get(i, 0) + 1
                if any(c.state is not State.CLOSED for c in children.get(i, [])):
                    out_of_order.append(i)
                await trio.sleep(0.01)

            return fn

        async def closer(p: proctree.Process) -> None:
            nonlocal returned
            await p.aclose()
            assert p.state is State.CLOSED
            returned += 1

        async with proctree.open_root() as root:
            top = proctree.with_teardown(teardown(0), parent=root)
            nodes.append(top)
            level = [0]
            for depth in range(1, levels):
                below = []
                for up in level:
                    for _ in range(fanout):
                        if depth == levels - 1:
                            child = nodes[up].go(_until_closing)
                        else:
                            child = proctree.with_parent(nodes[up])
                        child.set_teardown(teardown(len(nodes)))
                        children.setdefault(up, []).append(child)
                        below.append(len(nodes))
                        nodes.append(child)
                level = below
            track.many(nodes)
            await trio.testing.wait_all_tasks_blocked()
            async with trio.open_nursery() as nursery:
                for i in range(CLOSERS):
                    nursery.start_soon(closer, nodes[-1 - i % len(nodes)])
            assert top.state is State.CLOSED
            assert root.state is State.RUNNING
        assert len(nodes) == 1_111
        assert entered == dict.fromkeys(range(len(nodes)), 1)
        return returned

    assert await run_leak_checked(scenario) == CLOSERS
    assert out_of_order == []


@pytest.mark.slow
async def test_a_tree_of_1_000_000_processes_closes_with_every_teardown_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Fanout 10, 7 levels: node i is a child of node (i - 1) // 10. Every
    # 100th node is a go process (10,000 tasks), every other one a
    # with_parent process with a teardown. The root's body ends and the
    # whole tree closes.
    n = 1_000_000
    counts = bytearray(n)

    def teardown(i: int) -> Callable[[], Awaitable[None]]:
        async def fn() -> None:
            counts[i] += 1

        return fn

    async def scenario(track: Track) -> None:
        async with proctree.open_root() as root:
            nodes = [root]
            for i in range(1, n):
                parent = nodes[(i - 1) // 10]
                if i % 100 == 0:
                    nodes.append(parent.go(_until_closing))
                else:
                    nodes.append(proctree.with_teardown(teardown(i), parent=parent))
            await trio.testing.wait_all_tasks_blocked()
        assert all(p.state is State.CLOSED for p in nodes)
        track.many(nodes)

    await run_leak_checked(scenario)
    assert counts.count(1) == n - n // 100  # every teardown, once
    assert counts.count(0) == n // 100  # the go processes and the root


@pytest.mark.slow
@pytest.mark.parametrize(
    "chain",
    [
        test_scale.test_a_chain_100_000_deep_closes_leaf_first,
        test_scale.test_a_chain_of_go_processes_100_000_deep_closes,
    ],
    ids=["with_teardown", "go"],
)
async def test_a_chain_100_000_deep_leaves_no_task_garbage_fd_or_zombie(
    autojump_clock: trio.testing.MockClock,
    chain: Callable[[trio.testing.MockClock, int], Awaitable[None]],
) -> None:
    # test_scale's chains (which assert their own order and states), run
    # again under the leak check rather than written twice.
    async def scenario(track: Track) -> None:
        await chain(autojump_clock, test_scale.N)

    await run_leak_checked(scenario)
