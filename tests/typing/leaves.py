"""Pins the types of the server and program leaves: checked by mypy, never run."""

from __future__ import annotations

import re
import socket
import sys
from concurrent import futures
from typing import Any, assert_type

import grpc
import hypercorn.config
import trio

import proctree


async def handler(proc: proctree.Process, stream: trio.SocketStream) -> None:
    await stream.send_all(b"hi")


async def app(scope: Any, receive: Any, send: Any) -> None:
    pass


def make_server() -> grpc.Server:
    return grpc.server(futures.ThreadPoolExecutor(max_workers=1))


async def ready_check() -> bool:
    return True


async def check() -> None:
    tcp = proctree.tcp_server(handler, 0, host="127.0.0.1", backlog=10, grace=1)
    assert_type(tcp, proctree.TCPServer)
    assert_type(tcp.port, int)
    assert_type(tcp.ports, tuple[int, ...])
    assert_type(tcp.listeners, tuple[trio.SocketListener, ...])

    web = proctree.asgi_server(
        app, bind=["127.0.0.1:0"], config=hypercorn.config.Config(), grace=1
    )
    assert_type(web, proctree.ASGIServer)
    assert_type(web.binds, tuple[str, ...])
    assert_type(web.port, int)

    rpc = proctree.grpc_server(make_server, "127.0.0.1:0", grace=1)
    assert_type(rpc, proctree.GRPCServer)
    assert_type(proctree.grpc_server(make_server(), ["[::]:0"]), proctree.GRPCServer)
    assert_type(rpc.ports, tuple[int, ...])

    child = proctree.os_process(
        [sys.executable, "-c", "pass"],
        ready_line=re.compile(r"port (\d+)"),
        grace=1,
    )
    assert_type(child, proctree.OSProcess)
    assert_type(child.pid, int | None)
    assert_type(child.returncode, int | None)
    assert_type(child.ready_match, re.Match[str] | None)
    assert_type(
        proctree.os_process(["true"], ready_check=ready_check), proctree.OSProcess
    )

    error = proctree.OSProcessError("failed", ("true",), 1, "")
    assert_type(error.returncode, int)
    assert_type(error.stderr_tail, str)
    assert_type(error.command, tuple[str, ...])

    # Socket activation: handed-over sockets instead of a port or binds.
    handed = proctree.systemd_sockets("web")
    assert_type(handed, tuple[socket.socket, ...])
    assert_type(proctree.tcp_server(handler, sockets=handed), proctree.TCPServer)
    assert_type(proctree.asgi_server(app, sockets=list(handed)), proctree.ASGIServer)

    # Probes and metrics.
    health, metrics = proctree.Health(), proctree.PrometheusInstrument()
    probes = proctree.health_server(health, bind="127.0.0.1:0", metrics=metrics)
    assert_type(probes, proctree.ASGIServer)
    assert_type(health.is_ready, bool)
    assert_type(health.not_ready_reason(), str | None)
    proctree.HealthApp(health, metrics).mount("/tree", app)
    otel = proctree.OpenTelemetryInstrument(spans=False)
    async with proctree.with_signals(drain=10, instruments=[health, metrics, otel]):
        pass
    proctree.health_server(metrics)  # type: ignore[arg-type]

    # Every leaf is a runner.
    for runner in (tcp, web, rpc, child):
        assert_type(proctree.new_process(runner), proctree.Process)

    # Wrong argument types are type errors.
    proctree.tcp_server(handler, "80")  # type: ignore[arg-type]
