"""The restartable Service (golib's startStop, with its weak spots fixed)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import proctree


class Boom(Exception):
    pass


class Server:
    """A serve loop that runs until asked to stop."""

    def __init__(self) -> None:
        self.runs = 0
        self.stops = 0
        self._stop = trio.Event()
        self.fail_serve_after: float | None = None
        self.fail_stop = False

    async def serve(self) -> None:
        self.runs += 1
        self._stop = trio.Event()
        if self.fail_serve_after is not None:
            await trio.sleep(self.fail_serve_after)
            raise Boom(f"serve {self.runs}")
        await self._stop.wait()

    async def stop(self) -> None:
        self.stops += 1
        if self.fail_stop:
            raise Boom("stop")
        self._stop.set()


async def test_start_stop_and_uptime_on_trios_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    async with proctree.open_root():
        svc = proctree.Service(server.serve, server.stop)
        assert not svc.is_running
        assert svc.uptime == 0.0
        await trio.sleep(2)
        await svc.start()
        assert svc.is_running
        await trio.sleep(7.5)
        assert svc.uptime == 7.5
        await svc.stop()
        assert not svc.is_running
        assert svc.uptime == 0.0
    assert (server.runs, server.stops) == (1, 1)
    assert svc.errors == []
    assert svc.last_error is None


async def test_a_serve_error_goes_to_errors_never_to_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    server.fail_serve_after = 1
    async with proctree.open_root() as root:
        svc = proctree.Service(server.serve, server.stop)
        await svc.start()
        await trio.sleep(2)
        assert not svc.is_running
        assert [str(e) for e in svc.errors] == ["serve 1"]
        await svc.start()
        await trio.sleep(2)
        # Each start begins a fresh error list for its run (golib parity).
        assert [str(e) for e in svc.errors] == ["serve 2"]
        assert str(svc.last_error) == "serve 2"
        assert root.state is proctree.State.RUNNING


async def test_stop_reports_the_stop_functions_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    server.fail_stop = True
    async with proctree.open_root():
        svc = proctree.Service(server.serve, server.stop, grace=1)
        await svc.start()
        with pytest.raises(Boom, match="stop"):
            await svc.stop()
        assert not svc.is_running
        assert [str(e) for e in svc.errors] == ["stop"]


async def test_restart_runs_again(autojump_clock: trio.testing.MockClock) -> None:
    server = Server()
    async with proctree.open_root():
        svc = proctree.Service(server.serve, server.stop)
        await svc.start()
        await trio.sleep(3)
        await svc.restart()
        assert svc.is_running
        assert svc.uptime == 0
        # start() returns once serve() is launched; let it take its first step
        await trio.testing.wait_all_tasks_blocked()
        assert (server.runs, server.stops) == (2, 1)
        await svc.stop()


async def test_100_rapid_cycles_with_concurrent_callers_leave_one_run_at_most(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    live = 0
    most = 0

    async def serve() -> None:
        nonlocal live, most
        live += 1
        most = max(most, live)
        try:
            await server.serve()
        finally:
            live -= 1

    async with proctree.open_root():
        svc = proctree.Service(serve, server.stop)

        async def caller(i: int) -> None:
            for _ in range(100):
                await [svc.start, svc.stop, svc.restart][i % 3]()

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(caller, i)
        await svc.stop()
    assert most == 1
    assert live == 0
    assert svc.errors == []
    assert server.runs == server.stops


async def test_closing_the_parent_stops_the_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    async with proctree.open_root() as root:
        group = proctree.with_parent(root)
        svc = proctree.Service(server.serve, server.stop, parent=group)
        await svc.start()
        await group.aclose()
        assert not svc.is_running
        assert server.stops == 1
        with pytest.raises(proctree.InvalidStateError):
            await svc.start()


async def test_each_start_begins_a_fresh_error_list_for_its_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    server.fail_serve_after = 0
    async with proctree.open_root():
        svc = proctree.Service(server.serve, server.stop, max_errors=3)
        for run in range(1, 6):
            await svc.start()
            assert svc.errors == []
            await trio.sleep(1)
            assert [str(e) for e in svc.errors] == [f"serve {run}"]


async def test_start_of_a_running_service_stops_it_and_starts_it_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    async with proctree.open_root():
        svc = proctree.Service(server.serve, server.stop)
        await svc.start()
        await trio.sleep(3)
        first = svc.process
        await svc.start()
        assert svc.is_running
        assert svc.uptime == 0
        assert first is not None
        assert first.state is proctree.State.CLOSED
        await trio.testing.wait_all_tasks_blocked()
        assert (server.runs, server.stops) == (2, 1)
        await svc.stop()


async def test_ten_concurrent_starts_run_one_after_another_as_golibs_do(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # golib's Start takes a lock, stops a running service, then starts it:
    # ten concurrent calls make ten runs, each stopping the one before, and
    # leave one run going.
    server = Server()
    live = 0
    most = 0

    async def serve() -> None:
        nonlocal live, most
        live += 1
        most = max(most, live)
        try:
            await server.serve()
        finally:
            live -= 1

    async with proctree.open_root():
        svc = proctree.Service(serve, server.stop)
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(svc.start)
        await trio.testing.wait_all_tasks_blocked()
        assert svc.is_running
        assert (server.runs, server.stops, live, most) == (10, 9, 1, 1)
        await svc.stop()
    assert (server.stops, live) == (10, 0)


async def test_a_stop_fn_failing_while_start_restarts_is_logged_and_the_run_starts(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    server = Server()
    async with proctree.open_root():
        svc = proctree.Service(server.serve, server.stop, grace=1)
        await svc.start()
        server.fail_stop = True
        await svc.start()
        assert svc.is_running
        assert svc.errors == []
        server.fail_stop = False
        await svc.stop()
    assert "stop_fn failed while start() restarted it: Boom: stop" in caplog.text


async def test_bad_service_input_gives_clear_errors(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Server()
    async with proctree.open_root():
        with pytest.raises(TypeError, match="async def"):
            proctree.Service(print, server.stop)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not callable"):
            proctree.Service(server.serve, None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_errors"):
            proctree.Service(server.serve, server.stop, max_errors=0)
        with pytest.raises(ValueError, match=">= 0"):
            proctree.Service(server.serve, server.stop, grace=-1)
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        proctree.Service(server.serve, server.stop)


async def test_stop_raises_only_the_stop_functions_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def serve() -> None:
        await trio.sleep(1)
        raise Boom("serve")

    async def stop() -> None:
        pass

    async with proctree.open_root():
        svc = proctree.Service(serve, stop)
        await svc.start()
        await trio.sleep(2)
        await svc.stop()  # the serve error is history, not stop()'s
        assert [str(e) for e in svc.errors] == ["serve"]
