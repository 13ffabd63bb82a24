"""A leaf with no graceful stop runs its foreground in the runner's own task.

Its ``ready`` is the core's, so it can report ready without waiting and
watch the close instead (the fast path). A leaf given some other ``ready``
(wrapped by a runner of the user's) takes the general path, with the
foreground in a task of its own. Both must behave the same; each case
here runs both ways.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State

AsyncFn = Callable[[], Awaitable[None]]


class Boom(Exception):
    pass


def wrapped(runner: proctree.RunnerObject) -> proctree.Runner:
    """A runner that hands ``runner`` a ready of its own (the general path)."""

    async def run(ready: Callable[[], Awaitable[None]]) -> None:
        async def own_ready() -> None:
            await ready()

        await runner.run(own_ready)

    return run


def made(fn: AsyncFn, path: str, name: str = "work") -> proctree.Runner:
    runner = proctree.leaf(fn, name=name)
    return runner if path == "fast" else wrapped(runner)


PATHS = pytest.mark.parametrize("path", ["fast", "general"])


@PATHS
async def test_the_foreground_runs_where_the_path_says(path: str) -> None:
    tasks: list[trio.lowlevel.Task] = []

    async def work() -> None:
        tasks.append(trio.lowlevel.current_task())
        await trio.sleep_forever()

    async with proctree.open_root():
        body = trio.lowlevel.current_task()
        p = proctree.new_process(made(work, path))
        await p.start()
        await trio.testing.wait_all_tasks_blocked()
        nursery = tasks[0].parent_nursery
        assert nursery is not None
        # Fast: the runner's own task, in the tree's nursery (opened by the
        # root's body). General: a task in the leaf's own nursery.
        assert (nursery.parent_task is body) is (path == "fast")
        await p.stop()
    assert p.state is State.CLOSED


@PATHS
async def test_a_stop_cancels_the_foreground_at_once(
    path: str, autojump_clock: trio.testing.MockClock
) -> None:
    log: list[str] = []

    async def work() -> None:
        try:
            await trio.sleep_forever()
        finally:
            log.append("cancelled")

    async with proctree.open_root():
        p = proctree.new_process(made(work, path))
        await p.start()
        assert p.state is State.RUNNING
        await p.stop()
        assert trio.current_time() == 0
        assert log == ["cancelled"]
        assert p.error is None


@PATHS
async def test_a_foreground_that_returns_while_running_fails(
    path: str, autojump_clock: trio.testing.MockClock
) -> None:
    async def work() -> None:
        await trio.sleep(1)

    with pytest.RaisesGroup(proctree.ProctreeError):
        async with proctree.open_root():
            p = proctree.new_process(made(work, path, name="quitter"))
            await p.start()
            with pytest.raises(proctree.ProctreeError, match="quitter"):
                await p.wait()
            assert trio.current_time() == 1


@PATHS
async def test_a_foreground_that_returns_when_asked_to_stop_is_fine(
    path: str, autojump_clock: trio.testing.MockClock
) -> None:
    async def work() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            return  # swallows the cancellation: a stop was asked, so fine

    async with proctree.open_root():
        p = proctree.new_process(made(work, path))
        await p.start()
        await p.stop()
        assert p.error is None


@PATHS
async def test_a_foreground_failure_is_the_leafs(
    path: str, autojump_clock: trio.testing.MockClock
) -> None:
    async def work() -> None:
        await trio.sleep(1)
        raise Boom("work")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = proctree.new_process(made(work, path))
            await p.start()
            with pytest.raises(Boom, match="work"):
                await p.wait()


@PATHS
async def test_a_failure_while_stopping_is_kept(
    path: str, autojump_clock: trio.testing.MockClock
) -> None:
    async def work() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Boom("cleanup")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = proctree.new_process(made(work, path))
            await p.start()
            with pytest.raises(Boom, match="cleanup"):
                await p.stop()


@PATHS
async def test_a_grace_forces_a_foreground_that_ignores_the_stop(
    path: str, autojump_clock: trio.testing.MockClock
) -> None:
    async def work() -> None:
        with trio.CancelScope(shield=True):
            await trio.sleep(5)
        await trio.sleep_forever()

    async with proctree.open_root():
        p = proctree.new_process(made(work, path), grace=2)
        await p.start()
        await p.stop()
        # Shielded for 5 s: the grace's deadline cancels the rest at once.
        assert trio.current_time() == 5
        assert p.error is None


async def test_a_leaf_run_by_another_runner_with_the_cores_ready_lets_it_go_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A runner of the user's may hand its own ready to a leaf's run: the
    # stop cancels the leaf's foreground, not the code after it.
    log: list[str] = []

    async def foreground() -> None:
        await trio.sleep_forever()

    inner = proctree.leaf(foreground, name="inner")

    async def outer(ready: Callable[[], Awaitable[None]]) -> None:
        await inner.run(ready)
        log.append("after the leaf")
        await trio.sleep(1)  # cleanup that takes time, within the grace
        log.append("cleaned up")

    async with proctree.open_root() as root:
        p = proctree.new_process(outer, parent=root, grace=5)
        await p.start()
        await p.stop()
        assert log == ["after the leaf", "cleaned up"]
        assert trio.current_time() == 1
        assert not p.overran_grace
