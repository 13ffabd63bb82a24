"""proctree.ratelimit: goprocess's rate limiter, with slots held until CLOSED."""

from __future__ import annotations

import weakref

import attrs
import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree.ratelimit import RateLimiter, RateLimiterStatistics

from ..support.helpers import no_garbage, until_closing


class Boom(Exception):
    pass


async def hold(proc: proctree.Process, seconds: float) -> None:
    await trio.sleep(seconds)


async def test_with_limit_3_the_4th_of_6_children_waits_for_a_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[float] = []
    async with proctree.open_root():
        limiter = RateLimiter(None, 3)

        async def spawn_all(proc: proctree.Process) -> None:
            for seconds in (3, 1, 2, 1, 1, 1):
                await limiter.limited_go(hold, seconds)
                started.append(trio.current_time())

        proctree.go(spawn_all)
        await trio.sleep(0.5)
        assert started == [0.0, 0.0, 0.0]
        assert limiter.statistics() == RateLimiterStatistics(
            limit=3, in_use=3, tasks_waiting=1
        )
        await trio.sleep(10)
        assert limiter.statistics() == RateLimiterStatistics(
            limit=3, in_use=0, tasks_waiting=0
        )
    # Slots free at 1 (the 1 s child) and 2 (the 2 s child and the 4th).
    assert started == [0.0, 0.0, 0.0, 1.0, 2.0, 2.0]


async def test_grandchildren_count_against_their_parents_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def spawns_and_returns(proc: proctree.Process) -> None:
        proc.go(hold, 5)  # the grandchild runs on after this returns

    async with proctree.open_root():
        limiter = RateLimiter(None, 1)
        first = await limiter.limited_go(spawns_and_returns)
        await trio.sleep(1)
        states = [first.state]
        assert limiter.statistics().in_use == 1
        await limiter.limited_go(hold, 0)
        assert trio.current_time() == 5.0
        states.append(first.state)
    assert states == [State.RUNNING, State.CLOSED]


async def test_a_childs_teardown_runs_inside_its_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow_teardown() -> None:
        await trio.sleep(2)

    async def with_teardown(proc: proctree.Process) -> None:
        proc.set_teardown(slow_teardown)

    async with proctree.open_root():
        limiter = RateLimiter(None, 1)
        await limiter.limited_go(with_teardown)
        await limiter.limited_go(hold, 0)
        assert trio.current_time() == 2.0


async def test_go_starts_children_at_once_without_a_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        limiter = RateLimiter(None, 1)
        await limiter.limited_go(until_closing)
        free = [limiter.go(until_closing) for _ in range(5)]
        assert trio.current_time() == 0.0
        assert [p.state for p in free] == [State.RUNNING] * 5
        assert limiter.statistics().in_use == 1


async def test_waiters_get_slots_first_come_first_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    order: list[tuple[str, float]] = []
    async with proctree.open_root() as root:
        limiter = RateLimiter(root, 1)
        await limiter.limited_go(hold, 1)

        async def wait_for_slot(proc: proctree.Process, label: str) -> None:
            await limiter.limited_go(hold, 1)
            order.append((label, trio.current_time()))

        for label in "abc":
            root.go(wait_for_slot, label)
            await trio.sleep(0.25)
        await trio.sleep(5)
    assert order == [("a", 1.0), ("b", 2.0), ("c", 3.0)]


async def test_waiting_callers_get_an_error_when_the_limiter_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    errors: list[tuple[str, float]] = []
    async with proctree.open_root() as root:
        limiter = RateLimiter(root, 1, name="uploads")
        await limiter.limited_go(until_closing)

        async def wait_for_slot(proc: proctree.Process) -> None:
            try:
                await limiter.limited_go(hold, 1)
            except proctree.InvalidStateError as exc:
                errors.append((str(exc), trio.current_time()))

        for _ in range(2):
            root.go(wait_for_slot)
        await trio.sleep(2)
        await limiter.process.aclose()
        assert limiter.process.state is State.CLOSED
    assert len(errors) == 2
    for message, when in errors:
        assert when == 2.0
        assert "'uploads' started closing while limited_go() waited" in message
        assert "make a new RateLimiter" in message


async def test_limited_go_on_a_closed_limiter_fails_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        limiter = RateLimiter(None, 2)
        await limiter.process.aclose()
        with pytest.raises(proctree.InvalidStateError, match="is CLOSED"):
            await limiter.limited_go(hold, 1)
        assert limiter.statistics().in_use == 0


async def test_a_cancelled_waiter_takes_no_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        limiter = RateLimiter(None, 1)
        await limiter.limited_go(hold, 2)
        with trio.move_on_after(1) as scope:
            await limiter.limited_go(hold, 1)
        assert scope.cancelled_caught
        assert limiter.statistics().tasks_waiting == 0
        await limiter.limited_go(hold, 1)
        assert trio.current_time() == 2.0
        assert limiter.statistics().in_use == 1


async def test_a_failing_child_gives_its_slot_back_and_its_failure_goes_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fails(proc: proctree.Process) -> None:
        await trio.sleep(1)
        raise Boom("child")

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="child")):
        async with proctree.open_root():
            limiter = RateLimiter(None, 1)
            child = await limiter.limited_go(fails)
            await trio.sleep_forever()
    assert isinstance(child.error, Boom)
    assert limiter.statistics().in_use == 0
    assert limiter.process.state is State.CLOSED


async def test_closing_the_limiter_closes_its_children_and_frees_every_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        group = proctree.with_parent(root)
        limiter = RateLimiter(group, 3)
        children = [await limiter.limited_go(until_closing) for _ in range(3)]
        await trio.sleep(1)
        await group.aclose()
        assert trio.current_time() == 1.0
        assert [c.state for c in children] == [State.CLOSED] * 3
        assert limiter.statistics().in_use == 0


async def test_statistics_is_a_frozen_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        limiter = RateLimiter(None, 2)
        before = limiter.statistics()
        await limiter.limited_go(until_closing)
        assert before == RateLimiterStatistics(limit=2, in_use=0, tasks_waiting=0)
        assert limiter.statistics().in_use == 1
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            before.in_use = 5  # type: ignore[misc]


async def test_the_limiter_is_a_process_under_its_parent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        limiter = RateLimiter(None, 2, name="fetchers")
        assert limiter.process.name == "fetchers"
        assert limiter.limit == 2
        child = await limiter.limited_go(until_closing, name="fetch-1")
        assert child.name == "fetch-1"
        assert repr(limiter) == (
            "<proctree.ratelimit.RateLimiter 'fetchers' 1/2 in use>"
        )


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_below_1_is_a_value_error(
    autojump_clock: trio.testing.MockClock, limit: int
) -> None:
    async with proctree.open_root() as root:
        with pytest.raises(ValueError, match="limit must be at least 1"):
            RateLimiter(root, limit)


@pytest.mark.parametrize("limit", [1.5, "3", None, True])
async def test_a_limit_that_is_not_an_int_is_a_type_error(
    autojump_clock: trio.testing.MockClock, limit: object
) -> None:
    async with proctree.open_root() as root:
        with pytest.raises(TypeError, match="limit must be an int"):
            RateLimiter(root, limit)  # type: ignore[arg-type]


async def test_a_function_that_is_not_async_fails_at_once_even_without_a_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def sync(proc: proctree.Process) -> None:
        pass

    async with proctree.open_root():
        limiter = RateLimiter(None, 1)
        await limiter.limited_go(until_closing)
        with pytest.raises(TypeError, match=r"limited_go\(\) needs an async function"):
            await limiter.limited_go(sync)  # type: ignore[arg-type]
        assert trio.current_time() == 0.0
        with pytest.raises(TypeError, match="async def"):
            limiter.go(sync)  # type: ignore[arg-type]
        assert limiter.statistics().in_use == 1


async def test_bad_parent_or_name_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        with pytest.raises(TypeError, match=r"parent must be a proctree\.Process"):
            RateLimiter("root", 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name must be a str"):
            RateLimiter(root, 1, name=5)  # type: ignore[arg-type]


async def test_a_limiter_outside_every_root_says_to_open_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        RateLimiter(None, 1)


async def _use_a_limiter() -> list[weakref.ref[object]]:
    async with proctree.open_root():
        limiter = RateLimiter(None, 2)
        children = [await limiter.limited_go(hold, 1) for _ in range(4)]
        children.append(limiter.go(hold, 1))
        with trio.move_on_after(0.5):
            await limiter.limited_go(hold, 1)  # a waiter that gives up
        refs: list[weakref.ref[object]] = [weakref.ref(limiter)]
        refs += [weakref.ref(p) for p in (limiter.process, *children)]
    return refs


async def test_a_closed_limiter_leaves_no_garbage_and_no_live_object(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with no_garbage():
        refs = await _use_a_limiter()
    assert [r() for r in refs] == [None] * len(refs)
