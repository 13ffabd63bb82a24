"""The TCP server leaf, with real connections on 127.0.0.1.

These tests do real I/O, so they run on trio's real clock; every wait is
bounded with ``trio.fail_after`` so that a bug fails instead of hanging.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree._leaves.tcp import TCPServer, tcp_server

from .support import no_garbage

# Generous bounds: a 2-core CI machine may be slow, never this slow.
LIMIT = 10


class Boom(Exception):
    pass


async def echo(proc: proctree.Process, stream: trio.SocketStream) -> None:
    """Echo until the peer closes, or until the server stops."""
    async with trio.open_nursery() as nursery:

        async def end_on_closing() -> None:
            await proc.closing.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(end_on_closing)
        async for data in stream:
            await stream.send_all(data)
        nursery.cancel_scope.cancel()


async def stop(proc: proctree.Process, target: proctree.Process) -> None:
    """A go function that stops ``target``."""
    await target.stop()


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def started(server: TCPServer) -> proctree.Process:
    p = proctree.new_process(server)
    with trio.fail_after(LIMIT):
        await p.start()
    return p


def children(p: proctree.Process) -> list[proctree.Process]:
    return list(p._children or ())


async def test_start_reports_the_bound_port_and_serves_connections() -> None:
    server = tcp_server(echo, 0, host="127.0.0.1")
    async with proctree.open_root():
        p = await started(server)
        assert p.state is State.RUNNING
        assert server.port != 0
        assert server.ports == (server.port,)
        assert [lst.socket.getsockname()[1] for lst in server.listeners] == [
            server.port
        ]
        with trio.fail_after(LIMIT):
            async with await connect(server.port) as client:
                await client.send_all(b"ping")
                assert await client.receive_some() == b"ping"
        await p.stop()
    assert server.ports == ()
    assert server.listeners == ()


async def test_each_connection_is_a_child_process_named_after_its_peer() -> None:
    entered = trio.Semaphore(0)

    async def handler(proc: proctree.Process, stream: trio.SocketStream) -> None:
        entered.release()
        await proc.closing.wait()

    server = tcp_server(handler, 0, host="127.0.0.1")
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            clients = [await connect(server.port) for _ in range(3)]
            for _ in clients:
                await entered.acquire()
        names = sorted(c.name for c in children(p))
        expected = sorted(
            f"connection 127.0.0.1:{c.socket.getsockname()[1]}" for c in clients
        )
        assert names == expected
        assert all(c.state is State.RUNNING for c in children(p))
        with trio.fail_after(LIMIT):
            await p.stop()
        for client in clients:
            await client.aclose()
    assert p.state is State.CLOSED


async def test_a_connection_that_ends_leaves_the_tree() -> None:
    server = tcp_server(echo, 0, host="127.0.0.1")
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            async with await connect(server.port) as client:
                await client.send_all(b"x")
                await client.receive_some()
                (conn,) = children(p)
            await conn.wait()
        assert children(p) == []
        await p.stop()


async def test_a_graceful_stop_refuses_new_connections_and_lets_open_ones_finish() -> (
    None
):
    request_in = trio.Event()
    release = trio.Event()
    log: list[str] = []

    async def handler(proc: proctree.Process, stream: trio.SocketStream) -> None:
        request = await stream.receive_some()
        request_in.set()
        await release.wait()
        await stream.send_all(b"answer to " + request)
        log.append("handler done")

    server = tcp_server(handler, 0, host="127.0.0.1")
    async with proctree.open_root() as root:
        p = await started(server)
        port = server.port
        with trio.fail_after(LIMIT):
            async with await connect(port) as client:
                await client.send_all(b"question")
                await request_in.wait()
                stopping = root.go(stop, p)
                await p.closing.wait()
                await trio.testing.wait_all_tasks_blocked()
                # No longer accepting: a new connection is refused.
                with pytest.raises(OSError, match="all attempts to connect"):
                    await connect(port)
                assert p.state is State.CLOSING
                # The connection in flight still gets its answer.
                release.set()
                assert await client.receive_some() == b"answer to question"
                assert await client.receive_some() == b""
                await stopping.wait()
    assert log == ["handler done"]
    assert p.state is State.CLOSED
    assert p.error is None


async def test_a_handler_sees_closing_when_the_server_stops() -> None:
    seen = trio.Event()

    entered = trio.Event()

    async def handler(proc: proctree.Process, stream: trio.SocketStream) -> None:
        entered.set()
        await proc.closing.wait()
        seen.set()
        await stream.send_all(b"bye")

    server = tcp_server(handler, 0, host="127.0.0.1")
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            async with await connect(server.port) as client:
                await entered.wait()
                await p.stop()
                assert seen.is_set()
                assert await client.receive_some() == b"bye"


@pytest.mark.parametrize("how", ["runner grace", "stop grace"])
async def test_connections_still_open_at_the_servers_grace_are_cancelled(
    how: str,
) -> None:
    cancelled: list[proctree.Process] = []
    entered = trio.Event()

    async def stubborn(proc: proctree.Process, stream: trio.SocketStream) -> None:
        entered.set()
        try:
            await trio.sleep_forever()  # ignores closing
        except trio.Cancelled:
            cancelled.append(proc)
            raise

    grace = 0.3
    if how == "runner grace":
        server = tcp_server(stubborn, 0, host="127.0.0.1", grace=grace)
        stop_grace = None
    else:
        server = tcp_server(stubborn, 0, host="127.0.0.1")
        stop_grace = grace
    async with proctree.open_root():
        p = await started(server)
        assert p.state is State.RUNNING
        with trio.fail_after(LIMIT):
            async with await connect(server.port) as client:
                await entered.wait()
                (conn,) = children(p)
                begin = trio.current_time()
                await p.stop(grace=stop_grace)
                took = trio.current_time() - begin
                assert await client.receive_some() == b""  # closed by the server
    assert grace <= took < grace + 2
    assert cancelled == [conn]
    assert conn.state is State.CLOSED
    assert p.error is None


async def test_work_a_handler_starts_is_waited_for_by_the_server() -> None:
    log: list[str] = []

    async def job(proc: proctree.Process) -> None:
        await proc.closing.wait()
        await trio.lowlevel.checkpoint()
        log.append("job done")

    async def handler(proc: proctree.Process, stream: trio.SocketStream) -> None:
        proc.go(job)
        await stream.send_all(b"started")

    server = tcp_server(handler, 0, host="127.0.0.1")
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            async with await connect(server.port) as client:
                assert await client.receive_some() == b"started"
            await p.stop()
        log.append(f"server {p.state.name}")
    assert log == ["job done", "server CLOSED"]


async def test_a_handler_failure_is_the_servers_failure() -> None:
    async def faulty(proc: proctree.Process, stream: trio.SocketStream) -> None:
        raise Boom("bad request")

    server = tcp_server(faulty, 0, host="127.0.0.1", name="api")
    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = await started(server)
            with trio.fail_after(LIMIT):
                async with await connect(server.port):
                    await p.wait()
    assert isinstance(p.error, Boom)
    assert any("/api'" in note for note in p.error.__notes__)


async def test_a_handler_failure_stops_the_other_connections() -> None:
    second_in = trio.Event()
    fail_now = trio.Event()
    log: list[str] = []

    async def handler(proc: proctree.Process, stream: trio.SocketStream) -> None:
        if await stream.receive_some() == b"fail":
            await fail_now.wait()
            raise Boom("bad request")
        second_in.set()
        await proc.closing.wait()
        log.append("other connection saw closing")

    server = tcp_server(handler, 0, host="127.0.0.1")
    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = await started(server)
            with trio.fail_after(LIMIT):
                a, b = await connect(server.port), await connect(server.port)
                async with a, b:
                    await a.send_all(b"fail")
                    await b.send_all(b"fine")
                    await second_in.wait()
                    fail_now.set()
                    await p.closed.wait()
    assert log == ["other connection saw closing"]


async def test_binding_a_port_in_use_fails_the_start_not_the_root() -> None:
    first = tcp_server(echo, 0, host="127.0.0.1")
    async with proctree.open_root() as root:
        await started(first)
        second = proctree.new_process(tcp_server(echo, first.port, host="127.0.0.1"))
        with trio.fail_after(LIMIT), pytest.raises(OSError, match="in use"):
            await second.start()
        assert second.state is State.CLOSED
        assert root.state is State.RUNNING


async def test_the_port_is_known_only_while_serving() -> None:
    server = tcp_server(echo, 0, host="127.0.0.1")
    with pytest.raises(proctree.InvalidStateError, match="not serving"):
        _ = server.port
    async with proctree.open_root():
        p = await started(server)
        assert server.port > 0
        await p.stop()
    with pytest.raises(proctree.InvalidStateError, match="not serving"):
        _ = server.port


def test_listeners_on_different_ports_have_no_single_port() -> None:
    # Two listeners with port 0 get two ports; host=None would do this with
    # IPv4 and IPv6, which not every test machine has.
    server = tcp_server(echo, 0, host="127.0.0.1")
    server._ports = (1234, 5678)
    with pytest.raises(proctree.ProctreeError, match=r"several ports \[1234, 5678\]"):
        _ = server.port


async def test_a_server_runs_in_one_process_at_a_time_and_may_run_again() -> None:
    server = tcp_server(echo, 0, host="127.0.0.1")
    async with proctree.open_root():
        p = await started(server)
        again = proctree.new_process(server)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(proctree.InvalidStateError, match="already running"),
        ):
            await again.start()
        await p.stop()
        p2 = await started(server)
        with trio.fail_after(LIMIT):
            async with await connect(server.port) as client:
                await client.send_all(b"again")
                assert await client.receive_some() == b"again"
        await p2.stop()


async def test_servers_start_and_stop_in_order_inside_sequential() -> None:
    log: list[str] = []

    def logging_echo(label: str) -> proctree.RunnerObject:
        server = tcp_server(echo, 0, host="127.0.0.1", name=label)
        inner = server.run

        async def run(ready: Callable[[], Awaitable[None]]) -> None:
            log.append(f"start {label}")
            try:
                await inner(ready)
            finally:
                log.append(f"stop {label}")

        return proctree.prefixed_error(label, run)

    async with proctree.open_root():
        p = proctree.new_process(
            proctree.sequential(logging_echo("a"), logging_echo("b"))
        )
        with trio.fail_after(LIMIT):
            await p.start()
            await p.stop()
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_closing_the_root_stops_the_server() -> None:
    server = tcp_server(echo, 0, host="127.0.0.1")
    with trio.fail_after(LIMIT):
        async with proctree.open_root():
            p = await started(server)
            client = await connect(server.port)
    assert p.state is State.CLOSED
    with trio.fail_after(LIMIT):
        assert await client.receive_some() == b""
    await client.aclose()


async def test_a_stopped_server_and_its_connections_leave_no_garbage() -> None:
    async def serve(proc: proctree.Process, stream: trio.SocketStream) -> None:
        await stream.send_all(await stream.receive_some())

    async def scenario() -> list[weakref.ref[proctree.Process]]:
        server = tcp_server(serve, 0, host="127.0.0.1")
        async with proctree.open_root():
            p = await started(server)
            refs = [weakref.ref(p)]
            with trio.fail_after(LIMIT):
                for _ in range(5):
                    async with await connect(server.port) as client:
                        await client.send_all(b"x")
                        await client.receive_some()
                        refs.extend(weakref.ref(c) for c in children(p))
                await p.stop()
        return refs

    await scenario()  # first use warms up caches (trio's threads, imports)
    with no_garbage():
        refs = await scenario()
    assert len(refs) == 6
    assert [r() for r in refs] == [None] * 6


def test_bad_input_is_refused_with_a_clear_error() -> None:
    def not_async(proc: proctree.Process, stream: trio.SocketStream) -> None:
        pass

    with pytest.raises(TypeError, match="async function"):
        tcp_server(not_async, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port must be an int"):
        tcp_server(echo, "80")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port must be an int"):
        tcp_server(echo, True)
    for port in (-1, 65536):
        with pytest.raises(ValueError, match=r"0\.\.65535"):
            tcp_server(echo, port)
    with pytest.raises(TypeError, match="host"):
        tcp_server(echo, 0, host=127)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backlog"):
        tcp_server(echo, 0, backlog=-1)
    with pytest.raises(ValueError, match="grace"):
        tcp_server(echo, 0, grace=-1)
    with pytest.raises(TypeError, match="name"):
        tcp_server(echo, 0, name=3)  # type: ignore[arg-type]


async def test_running_outside_a_process_is_a_clear_error() -> None:
    async def ready() -> None:
        pass

    with pytest.raises(proctree.ProctreeError, match="inside a proctree process"):
        await tcp_server(echo, 0).run(ready)


def test_the_default_name_is_the_handlers() -> None:
    assert tcp_server(echo, 0).name == "echo"
    assert tcp_server(echo, 0, name="api").name == "api"
