"""How sequential and chain start their parts: each from the previous one's ready().

The combinator launches a part and launches the next from the part's
``ready()`` callback, in the part's own task; it wakes once, when all are
up or the starts broke off (``docs/design-compose.md``, section 8).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State

Ready = Callable[[], Awaitable[None]]


class Boom(Exception):
    pass


def logging_leaf(log: list[str], name: str, graceful: bool) -> proctree.Runner:
    async def foreground() -> None:
        log.append(f"start {name}")
        await trio.sleep_forever()

    async def graceful_stop() -> None:
        log.append(f"graceful stop {name}")

    return proctree.leaf(foreground, graceful_stop if graceful else None, name=name)


@pytest.mark.parametrize("kind", [proctree.sequential, proctree.chain])
async def test_a_part_starts_once_the_part_before_it_called_ready(
    kind: Callable[..., proctree.RunnerObject],
) -> None:
    log: list[str] = []

    def part(name: str) -> proctree.Runner:
        async def run(ready: Ready) -> None:
            log.append(f"run {name}")
            await trio.lowlevel.checkpoint()  # the next waits for ready(), not this
            log.append(f"ready {name}")
            await ready()

        return run

    async with proctree.open_root() as root:
        p = proctree.new_process(kind(part("a"), part("b"), part("c")), parent=root)
        await p.start()
        assert log == ["run a", "ready a", "run b", "ready b", "run c", "ready c"]
        assert p.state is State.RUNNING
        await p.stop()


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "cancelled"])
async def test_a_leafs_foreground_has_begun_before_the_next_part_starts(
    graceful: bool,
) -> None:
    # A leaf reports ready once its foreground runs: with a graceful stop
    # the foreground has a task of its own, started before ready().
    for _ in range(20):  # trio may run a batch's tasks in either order
        log: list[str] = []
        parts = [logging_leaf(log, name, graceful) for name in ("a", "b", "c")]
        async with proctree.open_root() as root:
            p = proctree.new_process(proctree.sequential(*parts), parent=root)
            await p.start()
            await trio.testing.wait_all_tasks_blocked()
            assert log == ["start a", "start b", "start c"]
            await p.stop()


async def test_a_part_failing_to_start_stops_those_before_it_and_fails_the_start() -> (
    None
):
    log: list[str] = []

    async def broken(ready: Ready) -> None:
        await trio.lowlevel.checkpoint()
        raise Boom("no start")

    late = logging_leaf(log, "late", graceful=False)
    runner = proctree.sequential(
        logging_leaf(log, "a", graceful=True), broken, late, name="stack"
    )
    async with proctree.open_root() as root:
        p = proctree.new_process(runner, parent=root)
        with pytest.raises(Boom, match="no start") as caught:
            await p.start()
        assert p.state is State.CLOSED
        assert "raised by the runner of process 'root/stack/broken'" in "".join(
            caught.value.__notes__
        )
        assert log == ["start a", "graceful stop a"]  # "late" never started
        assert root.state is State.RUNNING  # a startup failure is start()'s


async def test_a_stop_while_the_parts_start_stops_the_one_starting_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stopped: list[str] = []

    async def slow(ready: Ready) -> None:
        try:
            await trio.sleep_forever()
        finally:
            stopped.append("slow")

    runner = proctree.sequential(logging_leaf([], "a", graceful=False), slow)
    async with proctree.open_root() as root:
        p = proctree.new_process(runner, parent=root)

        async def start() -> None:
            with pytest.raises(proctree.InvalidStateError, match="stopped while"):
                await p.start()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(start)
            await trio.sleep(1)
            parts = proctree.tree(p).children
            assert [c.state for c in parts] == [State.RUNNING, State.STARTING]
            await p.aclose(grace=2)
        assert trio.current_time() == 3  # "slow" never listened: forced
        assert stopped == ["slow"]
        assert p.state is State.CLOSED


async def test_no_closing_callback_is_left_on_the_combinator_once_started() -> None:
    # The starts watch the combinator's close while they run, and forget it
    # after: a long-running stack keeps nothing per start.
    async with proctree.open_root() as root:
        p = proctree.new_process(
            proctree.sequential(logging_leaf([], "a", graceful=False)), parent=root
        )
        await p.start()
        assert p._watchers is None  # pyright: ignore[reportPrivateUsage]
        await p.stop()


async def test_cancel_on_closing_needs_a_process_with_its_own_task() -> None:
    from proctree._core import cancel_on_closing

    async with proctree.open_root() as root:
        plain = proctree.with_parent(root, name="plain")
        with pytest.raises(proctree.InvalidStateError, match="no task of its own"):
            cancel_on_closing(plain)


class StepsOf(trio.abc.Instrument):
    """Counts the steps of the tasks with a given name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.steps += 1


@pytest.mark.parametrize("kind", [proctree.sequential, proctree.chain])
async def test_the_combinator_wakes_twice_to_start_and_twice_to_stop(
    kind: Callable[..., proctree.RunnerObject],
) -> None:
    # Its parts start from each other's ready() and stop from each other's
    # close: its own task runs once to begin, once when all are up (or, to
    # stop, when asked and when the last part is CLOSED), never per part.
    log: list[str] = []
    parts = [logging_leaf(log, name, graceful=False) for name in "abcd"]
    steps = StepsOf("stack")
    async with proctree.open_root() as root:
        p = proctree.new_process(kind(*parts, name="stack"), parent=root)
        trio.lowlevel.add_instrument(steps)
        try:
            await p.start()
            started = steps.steps
            await p.stop()
        finally:
            trio.lowlevel.remove_instrument(steps)
    assert log == ["start a", "start b", "start c", "start d"]
    assert (started, steps.steps - started) == (2, 2)
