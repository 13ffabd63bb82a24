"""Contract 9: deep and wide trees close correctly, with no recursion limit."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import proctree
from proctree import State

N = 100_000
"""The size contract 9 names; the default run checks a tenth of it (still far
past any recursion limit), the slow session the whole."""

SIZES = pytest.mark.parametrize(
    "n", [N // 10, pytest.param(N, marks=pytest.mark.slow)], ids=["10k", "100k"]
)


@SIZES
async def test_a_chain_100_000_deep_closes_leaf_first(
    autojump_clock: trio.testing.MockClock, n: int
) -> None:
    order: list[int] = []

    def teardown(i: int):  # type: ignore[no-untyped-def]
        async def fn() -> None:
            order.append(i)

        return fn

    async with proctree.open_root() as root:
        prev = root
        for i in range(n):
            prev = proctree.with_teardown(teardown(i), parent=prev)
        leaf = prev
    assert order == list(range(n - 1, -1, -1))
    assert leaf.state is State.CLOSED


@SIZES
async def test_a_chain_of_go_processes_100_000_deep_closes(
    autojump_clock: trio.testing.MockClock, n: int
) -> None:
    async def fn(proc: proctree.Process) -> None:
        await proc.closing.wait()

    async with proctree.open_root() as root:
        prev = root
        for _ in range(n):
            prev = prev.go(fn)
        await trio.testing.wait_all_tasks_blocked()
        await root.aclose()
    assert prev.state is State.CLOSED


@SIZES
async def test_a_tree_100_000_wide_closes_every_child_once(
    autojump_clock: trio.testing.MockClock, n: int
) -> None:
    closed = 0

    async def teardown() -> None:
        nonlocal closed
        closed += 1

    async def fn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root() as root:
        for i in range(n):
            if i % 2:
                root.go(fn, grace=0)
            else:
                proctree.with_teardown(teardown)
    assert closed == n // 2
    assert root._children is None
