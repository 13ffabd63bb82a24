"""Contract 9: deep and wide trees close correctly, with no recursion limit."""

from __future__ import annotations

import trio
import trio.testing

import proctree
from proctree import State

N = 100_000


async def test_a_chain_100_000_deep_closes_leaf_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    order: list[int] = []

    def teardown(i: int):  # type: ignore[no-untyped-def]
        async def fn() -> None:
            order.append(i)

        return fn

    async with proctree.open_root() as root:
        prev = root
        for i in range(N):
            prev = proctree.with_teardown(teardown(i), parent=prev)
        leaf = prev
    assert order == list(range(N - 1, -1, -1))
    assert leaf.state is State.CLOSED


async def test_a_chain_of_go_processes_100_000_deep_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(proc: proctree.Process) -> None:
        await proc.closing.wait()

    async with proctree.open_root() as root:
        prev = root
        for _ in range(N):
            prev = prev.go(fn)
        await trio.testing.wait_all_tasks_blocked()
        await root.aclose()
    assert prev.state is State.CLOSED


async def test_a_tree_100_000_wide_closes_every_child_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    closed = 0

    async def teardown() -> None:
        nonlocal closed
        closed += 1

    async def fn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root() as root:
        for i in range(N):
            if i % 2:
                root.go(fn, grace=0)
            else:
                proctree.with_teardown(teardown)
    assert closed == N // 2
    assert root._children is None
