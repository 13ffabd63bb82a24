"""Contract 5: no error is lost, each surfaces once; cancellation is never swallowed."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import proctree
from proctree import State

from ..support.helpers import recorder, until_closing


class Boom(Exception):
    pass


async def test_a_failing_teardown_becomes_the_error_and_reaches_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    boom = Boom("teardown")

    async def teardown() -> None:
        raise boom

    with pytest.RaisesGroup(Boom) as info:
        async with proctree.open_root() as root:
            p = proctree.with_teardown(teardown, parent=root, name="db")
            with pytest.raises(Boom):
                await p.aclose()
            assert p.error is boom
            assert p.state is State.CLOSED
    assert info.value.exceptions == (boom,)
    assert any("'root/db'" in note for note in boom.__notes__)


async def test_a_failing_function_closes_its_ancestors_and_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def bad(proc: proctree.Process) -> None:
        await trio.sleep(1)
        raise Boom("function")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root() as root:
            mid = proctree.with_teardown(recorder(log, "mid"), parent=root)
            sibling = proctree.with_teardown(recorder(log, "sibling"), parent=root)
            worker = mid.go(bad)
            await trio.sleep_forever()
    assert isinstance(worker.error, Boom)
    assert mid.error is None
    assert root.error is None
    assert sorted(log) == ["mid", "sibling"]
    assert sibling.state is State.CLOSED


async def test_several_failures_leave_as_one_group_each_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    errors = [Boom(str(i)) for i in range(3)]

    def failing(exc: Exception):  # type: ignore[no-untyped-def]
        async def teardown() -> None:
            raise exc

        return teardown

    with pytest.RaisesGroup(Boom, Boom, Boom) as info:
        async with proctree.open_root() as root:
            parent = proctree.with_parent(root)
            for exc in errors:
                proctree.with_teardown(failing(exc), parent=parent)
            # a DAG: the same failing process under two parents
            other = proctree.with_parent(root)
            for child in list(parent._children or ()):
                other.add_child(child)
    assert sorted(map(str, info.value.exceptions)) == ["0", "1", "2"]
    assert len({id(e) for e in info.value.exceptions}) == 3


async def test_function_and_teardown_failing_both_make_the_error_a_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def teardown() -> None:
        raise Boom("teardown")

    async def fn(proc: proctree.Process) -> None:
        raise Boom("function")

    with pytest.RaisesGroup(Boom, Boom):
        async with proctree.open_root() as root:
            p = root.go(fn)
            p.set_teardown(teardown)
    assert isinstance(p.error, BaseExceptionGroup)
    assert sorted(str(e) for e in p.error.exceptions) == ["function", "teardown"]


async def test_an_error_awaited_and_reraised_by_the_body_is_reported_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    boom = Boom()

    async def teardown() -> None:
        raise boom

    with pytest.RaisesGroup(Boom) as info:
        async with proctree.open_root() as root:
            p = proctree.with_teardown(teardown, parent=root)
            await p.aclose()
    assert info.value.exceptions == (boom,)


async def test_a_body_failure_closes_the_tree_and_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    with pytest.RaisesGroup(Boom):
        async with proctree.open_root() as root:
            proctree.with_teardown(recorder(log, "child"), parent=root)
            raise Boom("body")
    assert log == ["child"]


async def test_keyboard_interrupt_in_a_function_is_not_swallowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(proc: proctree.Process) -> None:
        raise KeyboardInterrupt

    with pytest.RaisesGroup(KeyboardInterrupt, allow_unwrapped=False):
        async with proctree.open_root() as root:
            root.go(fn)
            await trio.sleep_forever()


async def test_keyboard_interrupt_in_a_teardown_forces_and_is_not_swallowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[bool] = []

    async def slow(proc: proctree.Process) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    async def teardown() -> None:
        raise KeyboardInterrupt

    with pytest.RaisesGroup(KeyboardInterrupt):
        async with proctree.open_root() as root:
            root.go(slow, grace=1000)
            p = proctree.with_teardown(teardown, parent=root)
            await p.aclose()
    assert cancelled == [True]
    assert trio.current_time() < 1000


async def test_outer_cancellation_propagates_out_of_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    with trio.move_on_after(5) as scope:
        async with proctree.open_root() as root:
            proctree.with_teardown(recorder(log, "child"), parent=root)
            root.go(until_closing)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert root.state is State.CLOSED


async def test_a_cancelled_function_is_not_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root() as root:
        p = root.go(stubborn, grace=2)
        start = trio.current_time()
        await p.aclose()
        assert trio.current_time() - start == 2
        assert p.error is None


async def test_trio_cancelled_inside_a_teardown_is_not_swallowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def teardown() -> None:
        await trio.sleep_forever()

    with trio.move_on_after(3) as scope:
        async with proctree.open_root() as root:
            p = proctree.with_teardown(teardown, parent=root)
            await p.aclose()
    assert scope.cancelled_caught
    assert p.state is State.CLOSED
    assert p.error is None


async def test_a_failure_under_background_still_reaches_the_hosting_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(proc: proctree.Process) -> None:
        raise Boom("stray")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = proctree.go(fn, parent=proctree.background())
            with pytest.raises(Boom):
                await p.wait()
