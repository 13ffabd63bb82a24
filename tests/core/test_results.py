"""A go function's return value: await proc.result(), its failure raised instead."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree

from ..support.helpers import no_garbage


class Boom(Exception):
    pass


class Value:
    """A return value that weak references can watch."""


async def double(proc: proctree.Process, x: int) -> int:
    await trio.sleep(1)
    return 2 * x


async def test_result_waits_for_the_function_and_returns_its_value(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        p = proctree.go(double, 21)
        assert await p.result() == 42
        assert trio.current_time() == 1
        assert p.state is proctree.State.CLOSED


async def test_result_after_the_close_returns_the_same_object_every_time() -> None:
    made = Value()

    async def make(proc: proctree.Process) -> Value:
        return made

    async with proctree.open_root() as root:
        p = root.go(make)
        await p.wait()
        assert await p.result() is made
        assert await p.result() is made


async def test_result_of_a_function_that_returns_nothing_is_none() -> None:
    async def nothing(proc: proctree.Process) -> None:
        await trio.lowlevel.checkpoint()

    async with proctree.open_root():
        p = proctree.go(nothing)
        assert await p.result() is None


async def test_result_raises_the_functions_failure_which_also_reaches_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def bad(proc: proctree.Process) -> int:
        await trio.sleep(1)
        raise Boom("bad")

    got: list[BaseException] = []

    async def waiter(proc: proctree.Process, p: proctree.Process[int]) -> None:
        try:
            await p.result()
        except Boom as exc:
            got.append(exc)

    # The failure closes its own root (and so cancels whatever waits in
    # that root); a waiter elsewhere sees it raised by result().
    async with proctree.open_root() as outer:
        with pytest.RaisesGroup(Boom):
            async with proctree.open_root():
                p = proctree.go(bad)
                outer.go(waiter, p)
                await trio.sleep_forever()
        assert got == [p.error]
        with pytest.raises(Boom):
            await p.result()


async def test_result_raises_a_teardown_failure_even_when_the_function_returned() -> (
    None
):
    async def torn() -> None:
        raise Boom("teardown")

    async def fine(proc: proctree.Process) -> int:
        proc.set_teardown(torn)
        return 1

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = proctree.go(fine)
            await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(Boom, match="teardown"):
        await p.result()


async def test_result_of_a_cancelled_function_is_no_result_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stuck(proc: proctree.Process) -> int:
        await trio.sleep_forever()
        return 0  # pragma: no cover

    async with proctree.open_root():
        p = proctree.go(stuck, grace=2)
        await p.aclose()
        with pytest.raises(proctree.NoResultError, match="'stuck' closed before"):
            await p.result()
        assert trio.current_time() == 2


async def test_result_comes_once_the_children_it_waits_for_are_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def child(proc: proctree.Process) -> None:
        await trio.sleep(5)

    async def parent(proc: proctree.Process) -> str:
        proc.go(child)
        return "done"

    async with proctree.open_root():
        p = proctree.go(parent)
        assert await p.result() == "done"
        assert trio.current_time() == 5


async def test_result_does_not_close_the_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def until_closed(proc: proctree.Process) -> str:
        await proc.closing.wait()
        return "closed by someone else"

    async with proctree.open_root():
        p = proctree.go(until_closed)
        with trio.move_on_after(3):
            await p.result()
        assert p.state is proctree.State.RUNNING
        await p.aclose()
        assert await p.result() == "closed by someone else"


@pytest.mark.parametrize("maker", ["with_parent", "with_teardown", "root", "runner"])
async def test_a_process_without_a_function_has_no_result(maker: str) -> None:
    async def teardown() -> None:
        pass

    async def run(ready: Callable[[], Awaitable[None]]) -> None:
        await ready()

    async with proctree.open_root() as root:
        p: proctree.Process = {
            "with_parent": lambda: proctree.with_parent(root),
            "with_teardown": lambda: proctree.with_teardown(teardown),
            "root": lambda: root,
            "runner": lambda: proctree.new_process(run),
        }[maker]()
        with pytest.raises(proctree.InvalidStateError, match="has no result"):
            await p.result()
        if maker != "root":
            assert p.state is not proctree.State.CLOSED  # refused at once


async def test_a_closed_process_and_its_value_die_by_refcount_when_nobody_asks() -> (
    None
):
    async def make(proc: proctree.Process) -> Value:
        return Value()

    gc.disable()
    try:
        with no_garbage():
            async with proctree.open_root() as root:
                p = root.go(make)
                value_ref = weakref.ref(await p.result())
                process_ref = weakref.ref(p)
                del p
                assert process_ref() is None
                assert value_ref() is None
    finally:
        gc.enable()


async def test_the_value_lives_as_long_as_the_process_is_held() -> None:
    async def make(proc: proctree.Process) -> Value:
        return Value()

    async with proctree.open_root() as root:
        p = root.go(make)
        value_ref = weakref.ref(await p.result())
        await trio.testing.wait_all_tasks_blocked()
        assert value_ref() is not None  # p is still held: someone may ask
        del p
        assert value_ref() is None
