"""The live page: an ASGI application that shows a tree document as it changes.

It serves the page (HTML, JavaScript and CSS shipped in ``_ops/page/``,
nothing fetched from elsewhere), the current document at ``tree.json``
and a stream of documents at ``events`` (server-sent events: a ``tree``
event whenever something but the uptimes changed, a ``gone`` event when
the source fails). It is a plain ASGI 3 application, so it can be served
by :func:`~proctree.asgi_server` on its own (``proctree tree PID
--serve``) or mounted under a prefix of another ASGI server (the
application only looks at the last part of the path).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Final, final

import trio

from .._core import ProctreeError
from .._leaves import ASGIApp

__all__ = ["TreePage", "tree_page_app"]

Source = Callable[[], Awaitable[Mapping[str, Any]]]
"""Where the page's documents come from: an async function returning one."""

_FILES: Final = {
    "": ("index.html", "text/html; charset=utf-8"),
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "page.js": ("page.js", "text/javascript; charset=utf-8"),
    "page.css": ("page.css", "text/css; charset=utf-8"),
}
_KEEPALIVE: Final = 15.0


def _page_file(name: str) -> bytes:
    return resources.files("proctree._ops").joinpath("page", name).read_bytes()


def _signature(doc: Mapping[str, Any]) -> int:
    """What makes two documents look different on the page (not uptimes)."""
    processes = doc.get("processes") or ()
    closed = doc.get("recently_closed") or ()
    return hash(
        (
            tuple(
                (
                    e.get("parent"),
                    e.get("name"),
                    e.get("state"),
                    e.get("restarts"),
                    e.get("key"),
                    e.get("close_reason"),
                    e.get("error"),
                    e.get("overran_grace"),
                )
                for e in processes
            ),
            len(closed),
            json.dumps(closed[-1], sort_keys=True) if closed else "",
        )
    )


@final
class TreePage:
    """The ASGI application :func:`tree_page_app` returns.

    One fetch of the source serves every browser watching at that moment:
    documents are kept for ``interval`` seconds.
    """

    def __init__(self, source: Source, interval: float) -> None:
        self.source = source
        self.interval = interval
        self._lock = trio.Lock()
        self._doc: Mapping[str, Any] | None = None
        self._error: str | None = None
        self._at = -1.0e18
        self._files = {name: _page_file(file) for name, (file, _) in _FILES.items()}

    async def latest(self) -> tuple[Mapping[str, Any] | None, str | None]:
        """The current document, or the source's error.

        The source is asked at most once per ``interval``.
        """
        async with self._lock:
            if trio.current_time() - self._at >= self.interval:
                try:
                    self._doc = await self.source()
                    self._error = None
                except ProctreeError as exc:
                    self._error = str(exc)
                self._at = trio.current_time()
            return self._doc, self._error

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Handle one ASGI connection."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        name = str(scope.get("path", "/")).rsplit("/", 1)[-1]
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond(send, 405, b"only GET\n", "text/plain")
        elif name in _FILES:
            await _respond(send, 200, self._files[name], _FILES[name][1])
        elif name == "tree.json":
            doc, error = await self.latest()
            if doc is None:
                body = json.dumps({"error": error}).encode()
                await _respond(send, 503, body, "application/json")
            else:
                await _respond(send, 200, json.dumps(doc).encode(), "application/json")
        elif name == "events":
            await self._events(receive, send)
        else:
            await _respond(send, 404, b"not found\n", "text/plain")

    async def _events(self, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )

        async def push(cancel: trio.CancelScope) -> None:
            last: int | None = None
            quiet = 0.0
            while True:
                doc, error = await self.latest()
                if error is not None:
                    message = f"event: gone\ndata: {json.dumps({'error': error})}\n\n"
                    await send(
                        {
                            "type": "http.response.body",
                            "body": message.encode(),
                            "more_body": True,
                        }
                    )
                    last = None
                elif doc is not None and (sig := _signature(doc)) != last:
                    last = sig
                    quiet = 0.0
                    message = f"event: tree\ndata: {json.dumps(doc)}\n\n"
                    await send(
                        {
                            "type": "http.response.body",
                            "body": message.encode(),
                            "more_body": True,
                        }
                    )
                elif quiet >= _KEEPALIVE:
                    quiet = 0.0
                    await send(
                        {
                            "type": "http.response.body",
                            "body": b": keepalive\n\n",
                            "more_body": True,
                        }
                    )
                await trio.sleep(self.interval)
                quiet += self.interval

        async with trio.open_nursery() as nursery:
            nursery.start_soon(push, nursery.cancel_scope)
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    nursery.cancel_scope.cancel()
                    return


async def _respond(send: Any, status: int, body: bytes, kind: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def tree_page_app(source: Source, *, interval: float = 1.0) -> ASGIApp:
    """The live page of a tree, as an ASGI application.

    Args:
        source: an async function returning the current tree document
            (:func:`tree_document`); a :class:`~proctree.ProctreeError` it
            raises shows on the page as "gone".
        interval: seconds between two looks at the source.

    Returns:
        The ASGI application.

    Raises:
        TypeError: ``source`` is not callable.
        ValueError: ``interval`` is not a positive number.
    """
    if not callable(source):
        raise TypeError(
            f"tree_page_app(): source must be an async function, got {source!r}"
        )
    if not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(
            f"tree_page_app(): interval must be > 0 seconds, got {interval!r}"
        )
    return TreePage(source, float(interval))
