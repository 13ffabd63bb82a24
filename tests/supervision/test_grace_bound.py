"""Contract 6 for supervised children: a stop's grace bounds, never lengthens."""

from __future__ import annotations

import trio
import trio.testing

import proctree

from ..compose.test_grace_bound import Stubborn


async def test_a_supervisor_stop_bounds_each_child_at_the_earlier_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    forced: dict[str, float] = {}
    table = proctree.MemoryTable(
        {"quick": Stubborn("quick", 1, forced), "slow": Stubborn("slow", 3, forced)}
    )
    async with proctree.open_root() as root:
        sup = proctree.Supervisor(table, parent=root)
        await sup.start()
        t0 = trio.current_time()
        await sup.stop(grace=2)
        assert trio.current_time() - t0 == 2
    assert {k: t - t0 for k, t in forced.items()} == {"quick": 1, "slow": 2}


async def test_stop_child_with_a_longer_grace_forces_at_the_childs_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    forced: dict[str, float] = {}
    table = proctree.MemoryTable({"quick": Stubborn("quick", 1, forced)})
    async with proctree.open_root() as root:
        sup = proctree.Supervisor(table, parent=root)
        await sup.start()
        t0 = trio.current_time()
        await sup.stop_child("quick", grace=5)
        assert trio.current_time() - t0 == 1
        await sup.stop()
    assert forced["quick"] - t0 == 1
