"""Bad input gives a clear error that says what to do."""

from __future__ import annotations

import functools
import signal

import pytest
import trio
import trio.testing

import proctree

from ..support.helpers import until_closing


def sync_fn(proc: proctree.Process) -> None:
    pass


async def test_go_rejects_a_regular_function(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        with pytest.raises(TypeError, match="async def"):
            proctree.go(sync_fn)  # type: ignore[arg-type]


async def test_go_rejects_something_not_callable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        with pytest.raises(TypeError, match="not callable"):
            proctree.go(42)  # type: ignore[arg-type]


async def test_teardown_must_be_an_async_callable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        with pytest.raises(TypeError, match="not callable"):
            proctree.with_teardown("nope", parent=root)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="async def"):
            root.set_teardown(lambda: None)  # type: ignore[arg-type, return-value]


async def test_parent_of_the_wrong_type_is_a_type_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        with pytest.raises(TypeError, match=r"parent must be a proctree\.Process"):
            proctree.go(until_closing, parent="root")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"parent must be a proctree\.Process"):
            proctree.with_parent(object())  # type: ignore[arg-type]


async def test_add_child_of_a_non_process_is_a_type_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        for method in (root.add_child, root.add_child_no_wait, root.wait_for):
            with pytest.raises(TypeError, match=r"takes a proctree\.Process"):
                method(None)  # type: ignore[arg-type]


async def test_calls_outside_every_root_say_to_open_one() -> None:
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        proctree.go(until_closing)
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        proctree.with_parent(None)
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        proctree.with_parent(proctree.background())


def test_processes_have_no_public_constructor() -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        proctree.Process("x")


async def test_a_cycle_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        a = proctree.with_parent(root, name="a")
        b = proctree.with_parent(a, name="b")
        c = proctree.with_parent(b, name="c")
        with pytest.raises(proctree.CycleError, match="'a'"):
            c.add_child(a)
        with pytest.raises(proctree.CycleError):
            c.wait_for(a)
        with pytest.raises(proctree.CycleError):
            a.add_child(a)
        with pytest.raises(proctree.CycleError):
            a.add_child_no_wait(a)
        # a CLOSE-only cycle cannot deadlock and is allowed
        c.add_child_no_wait(a)


async def test_grace_must_be_a_non_negative_number(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        with pytest.raises(ValueError, match=">= 0"):
            root.go(until_closing, grace=-1)
        with pytest.raises(TypeError, match="number of seconds"):
            root.go(until_closing, grace="5")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=">= 0"):
            await proctree.with_parent(root).aclose(grace=float("nan"))
    with pytest.raises(ValueError, match=">= 0"):
        proctree.open_root(grace=-0.5)


def test_with_signals_rejects_what_is_not_a_signal() -> None:
    with pytest.raises(TypeError, match="signal numbers"):
        proctree.with_signals("SIGTERM")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid signal"):
        proctree.with_signals(10_000)


async def test_background_cannot_be_waited_for_or_adopted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        with pytest.raises(proctree.InvalidStateError, match="never closes"):
            root.wait_for(proctree.background())
        with pytest.raises(proctree.InvalidStateError, match="never closes"):
            root.add_child(proctree.background())
        with pytest.raises(proctree.InvalidStateError, match="never closes"):
            proctree.background().set_teardown(until_closing_teardown)


async def until_closing_teardown() -> None:
    pass


async def test_set_teardown_after_it_ran_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        p = proctree.with_parent(root)
        await p.aclose()
        with pytest.raises(proctree.InvalidStateError, match="already started"):
            p.set_teardown(until_closing_teardown)


async def test_go_refuses_a_function_that_cannot_take_the_process_at_the_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def no_process() -> None:
        pass

    async def two(proc: proctree.Process, a: int, b: int) -> None:
        pass

    async with proctree.open_root() as root:
        with pytest.raises(TypeError, match=r"go\(\) will call .*no_process\(\)"):
            proctree.go(no_process)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="async def fn"):
            root.go(two, 1)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="teardown"):
            proctree.with_teardown(two)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"run\(ready\)"):
            proctree.new_process(no_process)  # type: ignore[arg-type]
        assert root._children is None  # nothing was made


async def test_go_accepts_what_can_take_the_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[object] = []

    async def star(*args: object) -> None:
        seen.append(len(args))

    async def defaults(proc: proctree.Process, a: int = 1) -> None:
        seen.append(a)

    async with proctree.open_root():
        proctree.go(star)
        proctree.go(defaults)
        proctree.go(defaults, 2)
        proctree.go(functools.partial(defaults, a=3))
    assert sorted(seen, key=str) == [1, 1, 2, 3]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_with_signals_refuses_a_signal_no_program_can_catch(sig: int) -> None:
    with pytest.raises(ValueError, match="cannot be caught"):
        proctree.with_signals(sig)


async def test_entering_a_root_twice_says_to_open_a_new_one() -> None:
    root_cm = proctree.open_root()
    async with root_cm:
        pass
    with pytest.raises(proctree.InvalidStateError, match=r"open_root\(\) .*again"):
        async with root_cm:
            pass  # pragma: no cover
