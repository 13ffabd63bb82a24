"""Servers on the sockets a test hands over as systemd would (LISTEN_FDS)."""

from __future__ import annotations

import os
from typing import Any

import trio

import proctree


async def _pid(proc: proctree.Process, stream: trio.SocketStream) -> None:
    await stream.send_all(f"{os.getpid()}\n".encode())


tcp = proctree.tcp_server(_pid, sockets=proctree.systemd_sockets("web"))


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"{os.getpid()}\n".encode()})


http = proctree.asgi_server(_app, sockets=proctree.systemd_sockets("web"))
