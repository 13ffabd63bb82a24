"""Contract 6: an explicit grace from above is a bound, never a replacement.

Each process is forced at the earlier of its own grace and any bound from
above (``aclose(grace=)``, ``stop(grace=)``, a combinator process's own
grace, ``proctree run --grace``): a bound only ever shortens a stop. Exact
times on trio's MockClock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree

Ready = Callable[[], Awaitable[None]]


class Stubborn:
    """A runner with its own grace that ignores ready() returning."""

    def __init__(self, name: str, grace: float, forced: dict[str, float]) -> None:
        self.name = name
        self.default_grace = grace
        self.forced = forced

    async def run(self, ready: Ready) -> None:
        await ready()
        try:
            await trio.sleep_forever()
        finally:
            self.forced[self.name] = trio.current_time()


async def _forced_at(
    runner: proctree.Runner, *, grace: float | None = None, stop: float | None = None
) -> float:
    """Start ``runner`` in its own process, stop it at t=0, return when it is CLOSED."""
    async with proctree.open_root() as root:
        p = proctree.new_process(runner, parent=root, grace=grace)
        await p.start()
        t0 = trio.current_time()
        await p.stop(grace=stop)
        return trio.current_time() - t0


async def test_a_go_child_is_forced_at_its_own_grace_under_a_longer_aclose_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    forced: list[float] = []

    async def ignores_closing(proc: proctree.Process) -> None:
        try:
            await trio.sleep_forever()
        finally:
            forced.append(trio.current_time())

    async with proctree.open_root() as root:
        group = proctree.with_parent(root, name="group")
        group.go(ignores_closing, grace=1)
        group.go(ignores_closing, grace=3)
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        await group.aclose(grace=2)
    assert [t - t0 for t in forced] == [1, 2]


async def test_a_leaf_stopped_with_a_longer_grace_is_forced_at_its_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def serve() -> None:
        await trio.sleep_forever()

    async def hangs() -> None:
        await trio.sleep_forever()

    runner = proctree.leaf(serve, hangs)
    assert await _forced_at(runner, grace=1, stop=5) == 1
    assert await _forced_at(runner, grace=5, stop=2) == 2


@pytest.mark.parametrize("combinator", [proctree.sequential, proctree.parallel])
async def test_a_part_is_forced_at_its_own_grace_inside_a_combinator_with_a_longer_one(
    autojump_clock: trio.testing.MockClock,
    combinator: Callable[..., proctree.RunnerObject],
) -> None:
    forced: dict[str, float] = {}
    runner = combinator(Stubborn("quick", 1, forced), Stubborn("slow", 4, forced))
    took = await _forced_at(runner, grace=5)
    if combinator is proctree.sequential:
        # In reverse order: "slow" is forced at 4, then "quick" at 4 + 1.
        assert forced == {"slow": 4, "quick": 5}
        assert took == 5
    else:
        assert forced == {"quick": 1, "slow": 4}
        assert took == 4


@pytest.mark.parametrize("combinator", [proctree.sequential, proctree.parallel])
async def test_a_combinators_own_grace_bounds_every_part(
    autojump_clock: trio.testing.MockClock,
    combinator: Callable[..., proctree.RunnerObject],
) -> None:
    forced: dict[str, float] = {}
    runner = combinator(Stubborn("a", 10, forced), Stubborn("b", 10, forced))
    assert await _forced_at(runner, grace=3) == 3
    assert forced == {"a": 3, "b": 3}


async def test_stop_grace_bounds_a_subtree_but_never_lengthens_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    forced: dict[str, float] = {}
    runner = proctree.sequential(Stubborn("a", 1, forced), Stubborn("b", 6, forced))
    # b (forced at min(6, 2) = 2), then a: its own grace 1 from t=2 is
    # later than the bound, so the bound: 2.
    assert await _forced_at(runner, stop=2) == 2
    assert forced == {"b": 2, "a": 2}
