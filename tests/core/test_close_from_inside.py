"""Contract 4: a close survives its callers and may come from inside the tree."""

from __future__ import annotations

import trio
import trio.testing

import proctree
from proctree import State

from ..support.helpers import recorder


async def test_a_caller_cancelled_mid_aclose_does_not_stop_the_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def slow_teardown() -> None:
        await trio.sleep(10)
        log.append("torn down")

    async with proctree.open_root() as root:
        p = proctree.with_teardown(slow_teardown, parent=root)
        with trio.move_on_after(1):
            await p.aclose()
        assert p.state is State.CLOSING
        assert log == []
        await p.wait()
        assert log == ["torn down"]
        assert trio.current_time() == 10


async def test_closing_oneself_from_ones_function_cancels_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    after: list[str] = []

    async def fn(proc: proctree.Process) -> None:
        await proc.aclose()
        after.append("not reached")  # pragma: no cover

    async with proctree.open_root() as root:
        p = root.go(fn, grace=1000)
        await p.wait()
        assert trio.current_time() == 0
    assert after == []


async def test_closing_an_ancestor_from_a_function_does_not_deadlock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def fn(proc: proctree.Process) -> None:
        await trio.sleep(1)
        await grandparent.aclose()
        log.append("not reached")  # pragma: no cover

    async with proctree.open_root() as root:
        grandparent = proctree.with_teardown(recorder(log, "grandparent"), parent=root)
        parent = proctree.with_teardown(recorder(log, "parent"), parent=grandparent)
        parent.go(fn, grace=1000)
        await grandparent.wait()
        assert trio.current_time() == 1
    assert log == ["parent", "grandparent"]


async def test_closing_the_root_from_a_deep_function_ends_the_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(proc: proctree.Process) -> None:
        await trio.sleep(2)
        await root.aclose()

    async with proctree.open_root() as root:
        proctree.with_parent(root).go(fn)
        await trio.sleep_forever()
    assert trio.current_time() == 2


async def test_a_teardown_closing_its_ancestor_starts_the_close_and_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def teardown() -> None:
        await parent.aclose()
        log.append("child teardown returned")

    async with proctree.open_root() as root:
        parent = proctree.with_teardown(recorder(log, "parent"), parent=root)
        child = proctree.with_teardown(teardown, parent=parent)
        await child.aclose()
        await parent.wait()
    assert log == ["child teardown returned", "parent"]


async def test_a_function_closing_an_unrelated_process_waits_for_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def slow() -> None:
        await trio.sleep(3)
        log.append("other closed")

    async def fn(proc: proctree.Process) -> None:
        await other.aclose()
        log.append("fn went on")

    async with proctree.open_root() as root:
        other = proctree.with_teardown(slow, parent=root)
        await root.go(fn).wait()
    assert log == ["other closed", "fn went on"]


async def test_close_after_children_from_a_function_closes_after_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def child(proc: proctree.Process) -> None:
        await trio.sleep(4)

    async def fn(proc: proctree.Process) -> None:
        proc.go(child)
        await proc.close_after_children()

    async with proctree.open_root() as root:
        p = root.go(fn)
        await p.wait()
        assert trio.current_time() == 4


async def test_grace_given_to_aclose_bounds_the_whole_subtree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root(grace=100) as root:
        top = proctree.with_parent(root)
        top.go(stubborn)
        proctree.with_parent(top).go(stubborn, grace=50)
        await top.aclose(grace=3)
        assert trio.current_time() == 3


async def test_a_function_watching_closing_ends_within_its_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ended: list[float] = []

    async def polite(proc: proctree.Process) -> None:
        await proc.closing.wait()
        await trio.sleep(1)
        ended.append(trio.current_time())

    async with proctree.open_root() as root:
        p = root.go(polite)
        await trio.sleep(2)
        await p.aclose()
    assert ended == [3]


async def test_the_default_grace_forces_after_five_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root() as root:
        p = root.go(stubborn)
        await p.aclose()
        assert trio.current_time() == proctree.DEFAULT_GRACE == 5


async def test_a_teardown_is_never_cancelled_by_a_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def long_teardown() -> None:
        await trio.sleep(60)
        log.append("teardown finished")

    async with proctree.open_root() as root:
        p = proctree.with_teardown(long_teardown, parent=root)
        await p.aclose(grace=0)
    assert log == ["teardown finished"]
