"""A TCP server stopped with 1,000 open connections logs one line, not 1,001."""

from __future__ import annotations

import logging

import pytest
import trio

import proctree

N = 1000


async def test_stopping_with_many_stubborn_connections_logs_one_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="proctree")
    connected = 0

    async def stubborn(proc: proctree.Process, stream: trio.SocketStream) -> None:
        nonlocal connected
        connected += 1
        await trio.sleep_forever()  # ignores the graceful stop

    server = proctree.tcp_server(stubborn, 0, host="127.0.0.1", grace=0.5)
    clients: list[trio.SocketStream] = []
    try:
        async with proctree.open_root(name="app") as root:
            p = proctree.new_process(server, parent=root, name="tcp")
            await p.start()
            with trio.fail_after(60):
                for _ in range(N):
                    clients.append(await trio.open_tcp_stream("127.0.0.1", server.port))
                while connected < N:
                    await trio.sleep(0.01)
                await p.stop()
    finally:
        for client in clients:
            await client.aclose()
    lines = [r for r in caplog.records if r.name == "proctree"]
    assert len(lines) == 1, [r.getMessage() for r in lines[:5]]
    message = lines[0].getMessage()
    # The connections, and the server that waited for them.
    assert message.startswith(f"{N + 1} processes did not end within their grace")
    assert f"({N} go, 1 runner)" in message
    assert "'app/tcp/connection 127.0.0.1:" in message
    assert lines[0].proctree_count == N + 1  # type: ignore[attr-defined]
