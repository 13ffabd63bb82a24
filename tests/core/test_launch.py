"""launch(): a runner started with no start() waiting, its failures its keeper's.

The supervisor starts a restart this way, right where the failed child's
close is reported; these tests pin the core's side of it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree._core import launch, new_process, set_keeper

Ready = Callable[[], Awaitable[None]]


class Boom(Exception):
    pass


class Keeper:
    """Takes every failure of its process, and records what it heard."""

    def __init__(self) -> None:
        self.taken: list[BaseException] = []
        self.closed_at: list[float] = []

    def take(self, p: proctree.Process, exc: BaseException) -> bool:
        self.taken.append(exc)
        return True

    def closed(self, p: proctree.Process) -> None:
        self.closed_at.append(trio.current_time())

    def restarts(self, p: proctree.Process) -> int:
        return 0


async def test_a_launched_runner_becomes_running_and_tells_on_ready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    heard: list[tuple[float, proctree.State]] = []

    async def serve(ready: Ready) -> None:
        await trio.sleep(0.5)
        await ready()

    async with proctree.open_root() as root:
        p = new_process(serve, parent=root)
        launch(p, 1.0, lambda q: heard.append((trio.current_time(), q.state)))
        at_once = p.state
        assert at_once is proctree.State.STARTING
        await trio.sleep(10)  # past the start timeout: it was lifted at ready()
        assert p.state is proctree.State.RUNNING
        assert heard == [(0.5, proctree.State.RUNNING)]
        await p.stop()
        assert p.error is None
        assert not p.overran_grace


async def test_a_runner_not_ready_in_time_fails_up_with_start_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hang(ready: Ready) -> None:
        await trio.sleep_forever()

    keeper = Keeper()
    async with proctree.open_root() as root:
        p = new_process(hang, parent=root)
        set_keeper(p, keeper)
        launch(p, 3.0, None)
        await p.closed.wait()
        assert trio.current_time() == 3.0
        assert isinstance(p.error, proctree.StartTimeoutError)
        assert "within 3s" in str(p.error)
        assert keeper.taken == [p.error]
        assert keeper.closed_at == [3.0]
        assert not p.overran_grace  # the start timeout is not a grace overrun
        assert root.state is proctree.State.RUNNING  # the keeper took it


async def test_a_runner_ready_at_its_timeout_is_too_late(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def late(ready: Ready) -> None:
        with trio.CancelScope(shield=True):
            await trio.sleep(2)  # the deadline passes meanwhile
        await ready()

    keeper = Keeper()
    heard: list[proctree.Process] = []
    async with proctree.open_root() as root:
        p = new_process(late, parent=root)
        set_keeper(p, keeper)
        launch(p, 1.0, heard.append)
        await p.closed.wait()
        assert heard == []
        assert isinstance(p.error, proctree.StartTimeoutError)
        assert keeper.taken == [p.error]


@pytest.mark.parametrize("how", ["raises", "returns"])
async def test_a_startup_failure_travels_up_with_no_start_to_raise_it(
    how: str,
) -> None:
    async def bad(ready: Ready) -> None:
        await trio.lowlevel.checkpoint()
        if how == "raises":
            raise Boom("no start")

    with pytest.RaisesGroup(
        Boom if how == "raises" else proctree.StartError, flatten_subgroups=True
    ):
        async with proctree.open_root() as root:
            p = new_process(bad, parent=root)
            launch(p, math.inf, None)
            await trio.sleep_forever()  # the failure closes the root
    assert p.state is proctree.State.CLOSED
    assert p.error is not None
    assert "raised by the runner" in "".join(p.error.__notes__)


async def test_a_launch_stopped_while_starting_is_no_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started = trio.Event()

    async def slow(ready: Ready) -> None:
        started.set()
        await trio.sleep_forever()

    keeper = Keeper()
    async with proctree.open_root() as root:
        p = new_process(slow, parent=root)
        set_keeper(p, keeper)
        launch(p, 60.0, None)
        await started.wait()
        await p.aclose(grace=1)  # forced: it never called ready(), to hear the stop
        assert trio.current_time() == 1
        assert p.error is None
        assert keeper.taken == []


async def test_launch_checks_its_arguments_and_the_state() -> None:
    async def serve(ready: Ready) -> None:
        await ready()

    async with proctree.open_root() as root:
        p = new_process(serve, parent=root)
        with pytest.raises(ValueError, match="timeout"):
            launch(p, -1.0, None)
        assert p.state is proctree.State.INITIAL  # a bad timeout starts nothing
        launch(p, 5.0, None)
        with pytest.raises(proctree.InvalidStateError, match="cannot launch"):
            launch(p, 5.0, None)
        with pytest.raises(proctree.InvalidStateError, match="cannot start"):
            await p.start()
        await p.aclose()
