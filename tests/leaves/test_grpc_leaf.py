"""The gRPC leaf, with a real grpcio server and client on 127.0.0.1.

Needs the ``grpc`` extra and grpcio-health-checking (the standard health
service is what the client calls); CI installs both, so these tests run
there. grpc's client is blocking: calls run in a worker thread. Real I/O:
trio's real clock, every wait bounded.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent import futures

import pytest
import trio

import proctree
from proctree import State

pytest.importorskip("grpc")
pytest.importorskip("grpc_health.v1.health")

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from proctree._leaves.grpc import GRPCServer, grpc_server

# grpc keeps process-wide file descriptors (its pollers) once used, so
# the leak check of tests/leaves/conftest.py checks only zombies here.
CHECK_FDS = False

LIMIT = 10
WAIT_METHOD = "/proctree.test.Slow/Wait"


class Slow:
    """A unary method that holds its RPC until released; counts its calls."""

    def __init__(self) -> None:
        self.in_flight = threading.Event()
        self.release = threading.Event()

    def wait(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.in_flight.set()
        self.release.wait(timeout=LIMIT)
        return b"done " + request

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "proctree.test.Slow",
            {"Wait": grpc.unary_unary_rpc_method_handler(self.wait)},
        )


@pytest.fixture
def executor() -> Iterator[futures.ThreadPoolExecutor]:
    pool = futures.ThreadPoolExecutor(max_workers=4)
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
def slow() -> Iterator[Slow]:
    methods = Slow()
    yield methods
    methods.release.set()  # let a held handler thread end


def maker(
    executor: futures.ThreadPoolExecutor, slow: Slow | None = None
) -> Callable[[], grpc.Server]:
    """A function that makes a server with the health service (and Slow)."""

    def make() -> grpc.Server:
        server = grpc.server(executor)
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        if slow is not None:
            server.add_generic_rpc_handlers((slow.handler(),))
        return server

    return make


async def check_health(port: int) -> int:
    """Call grpc.health.v1.Health/Check; return the status."""

    def call() -> int:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            return int(reply.status)

    return await trio.to_thread.run_sync(call)


async def started(server: GRPCServer) -> proctree.Process:
    p = proctree.new_process(server)
    with trio.fail_after(LIMIT):
        await p.start()
    return p


async def stop(proc: proctree.Process, target: proctree.Process) -> None:
    await target.stop()


async def test_a_health_check_is_answered_once_started(
    executor: futures.ThreadPoolExecutor,
) -> None:
    server = grpc_server(maker(executor), "127.0.0.1:0")
    async with proctree.open_root():
        p = await started(server)
        assert p.state is State.RUNNING
        assert server.port > 0
        assert server.ports == (server.port,)
        with trio.fail_after(LIMIT):
            assert (
                await check_health(server.port)
                == health_pb2.HealthCheckResponse.SERVING
            )
        with trio.fail_after(LIMIT):
            await p.stop()
    assert server.ports == ()
    assert p.error is None


async def test_after_the_stop_the_port_is_released(
    executor: futures.ThreadPoolExecutor,
) -> None:
    server = grpc_server(maker(executor), "127.0.0.1:0")
    async with proctree.open_root():
        p = await started(server)
        port = server.port
        with trio.fail_after(LIMIT):
            await p.stop()
            with pytest.raises(OSError, match="all attempts to connect"):
                await trio.open_tcp_stream("127.0.0.1", port)


async def test_a_graceful_stop_lets_an_rpc_in_flight_finish(
    executor: futures.ThreadPoolExecutor, slow: Slow
) -> None:
    server = grpc_server(maker(executor, slow), "127.0.0.1:0")
    async with proctree.open_root() as root:
        p = await started(server)
        port = server.port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(WAIT_METHOD).future(b"job", timeout=LIMIT)
            with trio.fail_after(LIMIT):
                await trio.to_thread.run_sync(slow.in_flight.wait)
                stopping = root.go(stop, p)
                await p.closing.wait()
                # Once grpc has begun its stop (in a worker thread, just
                # after closing is set), it refuses new RPCs...
                codes: list[grpc.StatusCode] = []
                while not codes:
                    try:
                        await check_health(port)
                    except grpc.RpcError as refused:
                        codes.append(refused.code())
                    await trio.sleep(0.01)
                # (CANCELLED when the RPC races grpc's shutdown.)
                assert codes[0] in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.CANCELLED,
                )
                assert p.state is State.CLOSING
                # ...and the one in flight still completes.
                slow.release.set()
                assert await trio.to_thread.run_sync(call.result) == b"done job"
                await stopping.wait()
    assert p.state is State.CLOSED
    assert p.error is None


async def test_an_rpc_still_running_at_the_grace_is_aborted(
    executor: futures.ThreadPoolExecutor, slow: Slow
) -> None:
    server = grpc_server(maker(executor, slow), "127.0.0.1:0", grace=0.3)
    async with proctree.open_root():
        p = await started(server)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = channel.unary_unary(WAIT_METHOD).future(b"job", timeout=LIMIT)
            with trio.fail_after(LIMIT):
                await trio.to_thread.run_sync(slow.in_flight.wait)
                begin = trio.current_time()
                await p.stop()
                took = trio.current_time() - begin
                with pytest.raises(grpc.RpcError) as aborted:
                    await trio.to_thread.run_sync(call.result)
    assert 0.3 <= took < 3
    assert aborted.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    )
    assert p.error is None


async def test_a_zero_grace_is_forced_at_once_and_still_waits_for_grpc(
    executor: futures.ThreadPoolExecutor, slow: Slow
) -> None:
    # With no grace the wait is cancelled at once: the runner then aborts
    # every RPC and waits (shielded) until grpc has released the port.
    server = grpc_server(maker(executor, slow), "127.0.0.1:0")
    async with proctree.open_root():
        p = await started(server)
        port = server.port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(WAIT_METHOD).future(b"job", timeout=LIMIT)
            with trio.fail_after(LIMIT):
                await trio.to_thread.run_sync(slow.in_flight.wait)
                await p.stop(grace=0)
                with pytest.raises(OSError, match="all attempts to connect"):
                    await trio.open_tcp_stream("127.0.0.1", port)
                with pytest.raises(grpc.RpcError):
                    await trio.to_thread.run_sync(call.result)
    assert p.state is State.CLOSED


async def test_made_by_a_function_it_can_run_again(
    executor: futures.ThreadPoolExecutor,
) -> None:
    server = grpc_server(maker(executor), "127.0.0.1:0")
    async with proctree.open_root():
        for _ in range(2):
            p = await started(server)
            with trio.fail_after(LIMIT):
                assert await check_health(server.port) == 1
                await p.stop()


async def test_a_server_object_runs_only_once(
    executor: futures.ThreadPoolExecutor,
) -> None:
    server = grpc_server(maker(executor)(), "127.0.0.1:0")
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            assert await check_health(server.port) == 1
            await p.stop()
        again = proctree.new_process(server)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(proctree.InvalidStateError, match="cannot be started twice"),
        ):
            await again.start()


async def test_a_grpc_server_runs_in_one_process_at_a_time(
    executor: futures.ThreadPoolExecutor,
) -> None:
    server = grpc_server(maker(executor), "127.0.0.1:0")
    async with proctree.open_root():
        p = await started(server)
        again = proctree.new_process(server)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(proctree.InvalidStateError, match="already running"),
        ):
            await again.start()
        await p.stop()


async def test_an_address_that_cannot_be_bound_fails_the_start(
    executor: futures.ThreadPoolExecutor,
) -> None:
    server = grpc_server(maker(executor), ["127.0.0.1:0", "not an address"])
    async with proctree.open_root() as root:
        p = proctree.new_process(server)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(
                RuntimeError, match="Failed to bind to address not an address"
            ),
        ):
            await p.start()
        assert root.state is State.RUNNING
    assert server.ports == ()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def can_bind(port: int) -> bool:
    """Whether a plain socket can bind ``port``: nothing else listens on it.

    grpc's listeners set SO_REUSEPORT; a socket without it cannot share.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_a_failed_start_releases_the_ports_already_bound(
    executor: futures.ThreadPoolExecutor,
) -> None:
    port = free_port()
    server = grpc_server(maker(executor), [f"127.0.0.1:{port}", "not an address"])
    async with proctree.open_root():
        p = proctree.new_process(server)
        with trio.fail_after(LIMIT), pytest.raises(RuntimeError):
            await p.start()
    assert can_bind(port)


async def test_a_function_that_makes_no_server_fails_the_start() -> None:
    server = grpc_server(lambda: "not a server", "127.0.0.1:0")  # type: ignore[arg-type, return-value]
    async with proctree.open_root():
        p = proctree.new_process(server)
        with trio.fail_after(LIMIT), pytest.raises(TypeError, match=r"grpc\.Server"):
            await p.start()


async def test_grpc_servers_stop_in_reverse_order_inside_sequential(
    executor: futures.ThreadPoolExecutor,
) -> None:
    first = grpc_server(maker(executor), "127.0.0.1:0", name="first")
    second = grpc_server(maker(executor), "127.0.0.1:0", name="second")
    async with proctree.open_root():
        p = proctree.new_process(proctree.sequential(first, second))
        with trio.fail_after(LIMIT):
            await p.start()
            assert await check_health(first.port) == 1
            assert await check_health(second.port) == 1
            await p.stop()
    assert p.name == "sequential[first, second]"


async def test_a_stopped_grpc_server_is_freed_by_refcount(
    executor: futures.ThreadPoolExecutor,
) -> None:
    server = grpc_server(maker(executor), "127.0.0.1:0")
    gc.disable()
    try:
        async with proctree.open_root():
            p = await started(server)
            with trio.fail_after(LIMIT):
                await p.stop()
        ref = weakref.ref(p)
        del p
        # trio's worker thread hands the stop's result back, then drops its
        # own reference to the calling task (whose context names p) when its
        # job function returns: a moment later, on another thread. Give it
        # that moment; gc stays off, so only refcounting can free p.
        give_up = time.monotonic() + LIMIT
        while ref() is not None and time.monotonic() < give_up:
            await trio.sleep(0.001)
        assert ref() is None
    finally:
        gc.enable()


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="function that makes one"):
        grpc_server("server", "127.0.0.1:0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="address"):
        grpc_server(lambda: None, "")  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="address"):
        grpc_server(lambda: None, [])  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="ServerCredentials"):
        grpc_server(lambda: None, "127.0.0.1:0", credentials="tls")  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="grace"):
        grpc_server(lambda: None, "127.0.0.1:0", grace=-1)  # type: ignore[arg-type, return-value]
