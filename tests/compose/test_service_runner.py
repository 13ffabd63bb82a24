"""A Service is a runner: started and stopped with the process that runs it."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import proctree
from proctree import State

from ..support.leakcheck import Track, run_leak_checked
from .test_service import Boom, Server


def part(log: list[str], name: str) -> proctree.Runner:
    async def foreground() -> None:
        log.append(f"start {name}")
        try:
            await trio.sleep_forever()
        finally:
            log.append(f"stop {name}")

    return proctree.leaf(foreground, name=name)


def logging_server(log: list[str]) -> Server:
    server = Server()
    serve, stop = server.serve, server.stop

    async def logged_serve() -> None:
        log.append("start svc")
        await serve()

    async def logged_stop() -> None:
        log.append("stop svc")
        await stop()

    server.serve = logged_serve  # type: ignore[method-assign]
    server.stop = logged_stop  # type: ignore[method-assign]
    return server


async def test_a_service_in_a_sequence_starts_in_order_and_stops_in_reverse() -> None:
    log: list[str] = []
    server = logging_server(log)
    svc = proctree.Service(server.serve, server.stop, name="svc")
    app = proctree.sequential(part(log, "db"), svc, part(log, "http"))
    async with proctree.open_root(name="app"):
        p = proctree.new_process(app)
        await p.start()
        assert log == ["start db", "start svc", "start http"]
        assert svc.is_running
        assert svc.process is not None
        assert svc.process.path == "app/sequential[db, svc, http]/svc/svc"
        await p.stop()
    assert log[3:] == ["stop http", "stop svc", "stop db"]
    assert not svc.is_running
    assert (server.runs, server.stops) == (1, 1)


async def test_a_run_that_fails_stays_in_errors_and_the_runner_keeps_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    server.fail_serve_after = 1
    svc = proctree.Service(server.serve, server.stop, name="sync")
    async with proctree.open_root() as root:
        p = proctree.new_process(svc)
        await p.start()
        await trio.sleep(2)
        assert not svc.is_running
        assert [str(e) for e in svc.errors] == ["serve 1"]
        assert p.state is State.RUNNING
        server.fail_serve_after = None
        await svc.restart()  # an operator brings it back, under the runner
        assert svc.is_running
        assert svc.process is not None
        assert svc.process.path == f"{p.path}/sync"
        await p.stop()
        assert not svc.is_running
    assert root.error is None


async def test_the_stop_functions_failure_is_the_runners_failure() -> None:
    server = Server()
    server.fail_stop = True
    svc = proctree.Service(server.serve, server.stop)
    # As for any runner that fails while it stops, it is the process's
    # failure: stop() raises it, and it travels up.
    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="stop")):
        async with proctree.open_root():
            p = proctree.new_process(svc)
            await p.start()
            with pytest.raises(Boom, match="stop"):
                await p.stop()
            assert isinstance(svc.last_error, Boom)


async def test_a_forced_stop_forces_the_run_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def serve() -> None:
        await trio.sleep_forever()

    async def ignore_the_stop() -> None:
        await trio.sleep_forever()

    svc = proctree.Service(serve, ignore_the_stop, grace=30)
    async with proctree.open_root():
        p = proctree.new_process(proctree.sequential(svc))
        await p.start()
        run = svc.process
        assert run is not None
        await p.stop(grace=2)
        assert run.state is State.CLOSED
        assert trio.current_time() == 2
        assert run.overran_grace


async def test_the_runner_process_gives_the_run_its_own_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done = trio.Event()

    async def serve() -> None:
        await done.wait()

    async def slow_stop() -> None:
        await trio.sleep(8)  # longer than the tree's default grace
        done.set()

    svc = proctree.Service(serve, slow_stop, grace=10)
    async with proctree.open_root():
        p = proctree.new_process(svc)
        await p.start()
        await p.stop()
        assert trio.current_time() == 8
        assert not p.overran_grace


async def test_a_service_runs_in_one_runner_process_at_a_time() -> None:
    server = Server()
    svc = proctree.Service(server.serve, server.stop)
    async with proctree.open_root():
        first = proctree.new_process(svc)
        await first.start()
        with pytest.raises(proctree.InvalidStateError, match="one runner process"):
            await proctree.new_process(svc).start()
        await first.stop()
        second = proctree.new_process(svc)  # once the first is done: fine
        await second.start()
        assert svc.is_running
        await second.stop()
    assert server.runs == 2


async def test_a_service_made_outside_every_root_runs_under_one() -> None:
    server = Server()
    svc = proctree.Service(server.serve, server.stop, name="svc")
    async with proctree.open_root(name="app"):
        p = proctree.new_process(svc)
        await p.start()
        assert svc.process is not None
        assert svc.process.path == "app/svc/svc"
        await p.stop()
        # Stopped as a runner, it can still be started by hand, under the
        # root current then.
        await svc.start()
        assert svc.process.path == "app/svc"
        await svc.stop()


async def test_a_service_run_as_a_runner_leaves_nothing_behind() -> None:
    async def scenario(track: Track) -> None:
        server = Server()
        svc = proctree.Service(server.serve, server.stop)
        async with proctree.open_root():
            p = track(proctree.new_process(proctree.sequential(svc)))
            await p.start()
            assert svc.process is not None
            track(svc.process)
            await p.stop()

    await run_leak_checked(scenario)
