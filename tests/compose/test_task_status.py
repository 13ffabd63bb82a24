"""trio's task_status protocol both ways: startable(runner), from_task_status(fn)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State

from ..support.leakcheck import Track, run_leak_checked

Ready = Callable[[], Awaitable[None]]


class Boom(Exception):
    pass


def logged(log: list[str], name: str = "svc") -> proctree.Runner:
    async def run(ready: Ready) -> None:
        await trio.sleep(1)
        log.append("ready")
        try:
            await ready()
            log.append("asked to stop")
            await trio.sleep(0.5)
            log.append("stopped")
        except trio.Cancelled:
            log.append("forced")
            raise

    run.__name__ = name
    return run


# -------------------------------------------------------------- startable


async def test_nursery_start_returns_the_runners_process_once_it_is_ready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root(name="app"), trio.open_nursery() as nursery:
        p = await nursery.start(proctree.startable(logged(log)))
        assert isinstance(p, proctree.Process)
        assert (p.name, p.path, p.state) == ("svc", "app/svc", State.RUNNING)
        assert log == ["ready"]
        assert trio.current_time() == 1
        await p.stop()
        assert log == ["ready", "asked to stop", "stopped"]
    assert trio.current_time() == 1.5


async def test_the_task_ends_when_the_process_is_stopped() -> None:
    async with proctree.open_root():
        async with trio.open_nursery() as nursery:
            p = await nursery.start(proctree.startable(proctree.nop()))
            await p.stop()
        # The nursery exited: its task saw the process CLOSED and returned.
        assert p.state is State.CLOSED


async def test_cancelling_the_task_forces_the_runner_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root():
        async with trio.open_nursery() as nursery:
            p = await nursery.start(proctree.startable(logged(log)))
            nursery.cancel_scope.cancel()
        assert p.state is State.CLOSED
        assert log == ["ready", "asked to stop", "forced"]
        assert trio.current_time() == 1
        assert not p.overran_grace  # no grace was given: not an overrun


async def test_a_startup_failure_is_raised_by_nursery_start_and_not_by_the_root() -> (
    None
):
    async def bad(ready: Ready) -> None:
        raise Boom("no database")

    async with proctree.open_root() as root, trio.open_nursery() as nursery:
        with pytest.raises(Boom, match="no database"):
            await nursery.start(proctree.startable(bad))
    assert root.error is None


async def test_a_failure_while_running_is_raised_by_the_task_in_its_nursery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def crash() -> None:
        await trio.sleep(2)
        raise Boom("lost the connection")

    fails_later = proctree.leaf(crash)

    async with proctree.open_root() as root:
        with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="lost the connection")):
            async with trio.open_nursery() as nursery:
                p = await nursery.start(proctree.startable(fails_later))
                await trio.sleep_forever()
        assert p.state is State.CLOSED
        assert root.state is State.RUNNING  # it did not travel up the tree too
    assert trio.current_time() == 2


async def test_a_timeout_is_raised_by_nursery_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(ready: Ready) -> None:
        await trio.sleep(10)
        await ready()

    async with proctree.open_root(), trio.open_nursery() as nursery:
        with pytest.raises(proctree.StartTimeoutError):
            await nursery.start(proctree.startable(slow, timeout=3))
        assert trio.current_time() == 3


async def test_startable_takes_a_parent_and_a_name() -> None:
    async with proctree.open_root(name="app") as root:
        group = proctree.with_parent(root, name="group")
        async with trio.open_nursery() as nursery:
            make = proctree.startable(proctree.nop(), parent=group, name="idle")
            p = await nursery.start(make)
            assert p.path == "app/group/idle"
            await group.aclose()
        assert p.state is State.CLOSED


async def test_a_startable_outside_every_root_says_to_open_one() -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(proctree.ProctreeError, match="open_root"):
            await nursery.start(proctree.startable(proctree.nop()))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": 3}, TypeError),
        ({"parent": "root"}, TypeError),
        ({"timeout": -1}, ValueError),
    ],
)
def test_startable_refuses_bad_arguments_at_the_call(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        proctree.startable(proctree.nop(), **kwargs)  # type: ignore[arg-type]


def test_startable_refuses_what_is_not_a_runner() -> None:
    with pytest.raises(TypeError, match="run\\(ready\\)"):
        proctree.startable(42)  # type: ignore[arg-type]


async def test_a_startable_leaves_nothing_behind() -> None:
    async def scenario(track: Track) -> None:
        async with proctree.open_root(), trio.open_nursery() as nursery:
            track(await nursery.start(proctree.startable(proctree.nop())))
            nursery.cancel_scope.cancel()

    await run_leak_checked(scenario)


# ------------------------------------------------------- from_task_status


async def echo(stream: trio.SocketStream) -> None:
    async for data in stream:
        await stream.send_all(data)


def serve_echo() -> Callable[..., Awaitable[object]]:
    return functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1")


async def test_a_serve_tcp_function_is_a_runner_with_its_listeners_reported() -> None:
    listeners: list[trio.SocketListener] = []
    runner = proctree.from_task_status(serve_echo(), on_started=listeners.extend)
    async with proctree.open_root():
        p = proctree.new_process(runner)
        assert p.name == "serve_tcp"
        await p.start()
        port = listeners[0].socket.getsockname()[1]
        async with await trio.open_tcp_stream("127.0.0.1", port) as client:
            await client.send_all(b"hello")
            assert await client.receive_some() == b"hello"
        await p.stop()
        assert p.state is State.CLOSED
        with pytest.raises(OSError, match="onnect"):  # the listener is closed
            await trio.open_tcp_stream("127.0.0.1", port)


async def test_stopping_cancels_the_function_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            log.append(f"cancelled at {trio.current_time():g}")

    async with proctree.open_root():
        p = proctree.new_process(proctree.from_task_status(serve), grace=10)
        await p.start()
        await trio.sleep(1)
        await p.stop()
        assert not p.overran_grace
    assert log == ["cancelled at 1"]


async def test_the_functions_args_are_passed_and_started_value_given() -> None:
    got: list[object] = []

    async def serve(a: int, b: str, *, task_status: trio.TaskStatus[str]) -> None:
        task_status.started(f"{a}{b}")
        await trio.sleep_forever()

    runner = proctree.from_task_status(serve, 1, "x", name="s", on_started=got.append)
    async with proctree.open_root():
        p = proctree.new_process(runner)
        await p.start()
        assert (p.name, got) == ("s", ["1x"])
        await p.stop()


async def test_a_failure_before_started_fails_the_start_with_its_own_type() -> None:
    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        raise Boom("cannot bind")

    async with proctree.open_root() as root:
        p = proctree.new_process(proctree.from_task_status(serve))
        with pytest.raises(Boom, match="cannot bind"):
            await p.start()
    assert root.error is None


async def test_returning_before_started_is_a_start_error() -> None:
    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        pass

    async with proctree.open_root():
        p = proctree.new_process(proctree.from_task_status(serve))
        with pytest.raises(proctree.StartError, match=r"task_status\.started"):
            await p.start()


async def test_a_failure_after_started_is_the_processs_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep(1)
        raise Boom("crashed")

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="crashed")):
        async with proctree.open_root():
            p = proctree.new_process(proctree.from_task_status(serve))
            await p.start()
            await trio.sleep_forever()
    assert isinstance(p.error, Boom)


async def test_returning_while_running_is_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep(1)

    with pytest.RaisesGroup(
        pytest.RaisesExc(proctree.ProctreeError, match="must run until it is stopped")
    ):
        async with proctree.open_root():
            p = proctree.new_process(proctree.from_task_status(serve))
            await p.start()
            await trio.sleep_forever()


async def test_an_on_started_failure_fails_the_start() -> None:
    def refuse(value: object) -> None:
        raise Boom("bad value")

    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep_forever()

    async with proctree.open_root():
        p = proctree.new_process(proctree.from_task_status(serve, on_started=refuse))
        with pytest.raises(Boom, match="bad value"):
            await p.start()


async def test_task_status_runners_stop_in_reverse_order_in_a_sequence() -> None:
    log: list[str] = []

    async def serve(name: str, *, task_status: trio.TaskStatus[None]) -> None:
        log.append(f"start {name}")
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            log.append(f"stop {name}")

    app = proctree.sequential(
        proctree.from_task_status(serve, "db", name="db"),
        proctree.from_task_status(serve, "http", name="http"),
    )
    async with proctree.open_root():
        p = proctree.new_process(app)
        await p.start()
        await p.stop()
    assert log == ["start db", "start http", "stop http", "stop db"]


def test_from_task_status_refuses_bad_arguments_at_the_call() -> None:
    def not_async(*, task_status: object) -> None:
        pass

    with pytest.raises(TypeError, match="async"):
        proctree.from_task_status(not_async)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_started"):
        proctree.from_task_status(serve_echo(), on_started=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name"):
        proctree.from_task_status(serve_echo(), name=3)  # type: ignore[arg-type]


async def test_a_task_status_runner_leaves_no_socket_or_task_behind() -> None:
    async def scenario(track: Track) -> None:
        async with proctree.open_root():
            p = track(proctree.new_process(proctree.from_task_status(serve_echo())))
            await p.start()
            await p.stop()

    await run_leak_checked(scenario)


async def test_startable_and_from_task_status_compose_both_ways() -> None:
    # A runner made from a task_status function, started by nursery.start.
    listeners: list[trio.SocketListener] = []
    runner = proctree.from_task_status(serve_echo(), on_started=listeners.extend)
    async with proctree.open_root(), trio.open_nursery() as nursery:
        p = await nursery.start(proctree.startable(runner))
        assert listeners
        await p.stop()
