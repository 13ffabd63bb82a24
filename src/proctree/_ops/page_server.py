"""``proctree tree PID --serve HOST:PORT``: the live page of another program.

The page application (``tree_page.py``) asks the program's control socket
for its tree; proctree's own :func:`~proctree.asgi_server` leaf serves it
under a root bound to SIGINT and SIGTERM. When the program exits, the page
says so and keeps showing the last tree until this command is stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from .._core import new_process, with_signals
from .._leaves import asgi_server
from .tree_command import BadTarget, fetch
from .tree_page import tree_page_app

__all__ = ["check_bind", "serve_page"]


def check_bind(text: str) -> str:
    """``HOST:PORT`` as hypercorn takes it; the port may be 0 (any free one).

    Raises:
        BadTarget: not of that form.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise BadTarget(
            f"--serve takes HOST:PORT, such as 127.0.0.1:8700, got {text!r}"
        )
    return text


async def _serve(path: Path, bind: str, timeout: float) -> None:
    async def source() -> Mapping[str, Any]:
        return await fetch(path, "tree", timeout=timeout)

    server = asgi_server(tree_page_app(source), bind=bind, name="tree_page", grace=1)
    async with with_signals(name="proctree-tree") as root:
        page = new_process(server, parent=root)
        await page.start()
        print(
            f"proctree tree: serving the live tree of {path} on "
            f"http://{bind.rpartition(':')[0]}:{server.port}/ (Ctrl-C stops)",
            flush=True,
        )
        await page.wait()


def serve_page(path: Path, bind: str, *, timeout: float) -> int:
    """Serve the live page of the program at ``path`` on ``bind`` until a signal.

    Returns:
        0 after a signal stopped it; 1 if it could not listen.

    Raises:
        BadTarget: ``bind`` is not ``HOST:PORT``.
    """
    check_bind(bind)
    try:
        import hypercorn  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        print(
            "proctree tree: --serve needs hypercorn: pip install 'proctree[http]'",
            file=sys.stderr,
        )
        return 1
    try:
        trio.run(_serve, path, bind, timeout)
    except BaseExceptionGroup as group:
        for exc in group.exceptions:
            print(f"proctree tree: cannot serve on {bind}: {exc}", file=sys.stderr)
        return 1
    return 0
