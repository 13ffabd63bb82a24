"""Probes: liveness, startup and readiness of a tree, and the ASGI app serving them.

:class:`Health` is an instrument that follows a tree's runners and its
drain; :class:`HealthApp` answers ``/livez``, ``/startupz``, ``/readyz`` and
``/metrics`` as an ASGI application, on which other applications can be
mounted; :func:`health_server` serves it with :func:`~proctree.asgi_server`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, final

import attrs

from .._core import Instrument, Process, State, kind_of
from .._leaves import ASGIApp, ASGIServer, asgi_server, require

if TYPE_CHECKING:
    from .metrics import PrometheusInstrument

__all__ = ["DEFAULT_HEALTH_BIND", "Health", "HealthApp", "health_server"]

DEFAULT_HEALTH_BIND: Final = "127.0.0.1:8080"
"""Where :func:`health_server` listens by default: loopback only."""

_PENDING: Final = (State.INITIAL, State.STARTING)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@final
class Health(Instrument):
    """An instrument that knows whether a tree has started and is ready.

    Pass it to the root (``open_root(instruments=[health])``); ``proctree
    run --health`` does it. The tree is

    * **started** once, for the first time, no runner of the tree is INITIAL
      or STARTING: every runner made so far has called ``ready()`` (or
      failed). It stays started, also while a supervisor restarts a child.
      Make the application's process before starting anything else (or put
      everything in one combinator), so that startup does not end too soon.
    * **ready** while started, not draining (after the first signal of a
      root with a ``drain``) and not stopping (a root is closing).
    """

    def __init__(self) -> None:
        self._pending: set[Process] = set()
        self._started = False
        self._draining = False
        self._stopping = False
        self._root: Process | None = None

    @property
    def root(self) -> Process | None:
        """The first root this instrument saw made (None before)."""
        return self._root

    @property
    def is_started(self) -> bool:
        """Whether startup is over (see the class)."""
        return self._started

    @property
    def is_ready(self) -> bool:
        """Whether the tree is started, and neither draining nor stopping."""
        return self._started and not self._draining and not self._stopping

    def not_ready_reason(self) -> str | None:
        """Why the tree is not ready, in a few words.

        Returns:
            ``"stopping"``, ``"draining"``, ``"starting: N runners not ready
            yet"``, or None when it is ready.
        """
        if self._stopping:
            return "stopping"
        if self._draining:
            return "draining"
        if not self._started:
            waiting = len(self._pending)
            return f"starting: {waiting} runner{'s' * (waiting != 1)} not ready yet"
        return None

    # ------------------------------------------------------------- hooks

    def created(self, process: Process) -> None:
        """Follow a runner until it is ready."""
        kind = kind_of(process)
        if kind == "runner" and process.state in _PENDING:
            self._pending.add(process)
        elif kind == "root" and self._root is None:
            self._root = process

    def ready(self, process: Process) -> None:
        """A runner is ready."""
        self._settle(process)

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """A runner that closed is no longer waited for."""
        self._settle(process)

    def closing(self, process: Process) -> None:
        """A closing root is not ready any more."""
        if kind_of(process) == "root":
            self._stopping = True

    def draining(self, process: Process, seconds: float) -> None:
        """A draining root is not ready any more."""
        self._draining = True

    def _settle(self, process: Process) -> None:
        pending = self._pending
        if process in pending:
            pending.discard(process)
            if not pending:
                self._started = True


@final
@attrs.define(eq=False)
class HealthApp:
    """The ASGI application of the probes; other applications mount on it.

    ``GET`` (or ``HEAD``) answers, with a short ``text/plain`` body:

    ============  =================================================
    path          answer
    ============  =================================================
    /livez        200 ``ok``: the trio loop answers
    /startupz     200 ``started``, or 503 ``starting: ...``
    /readyz       200 ``ready``, or 503 with the reason
                  (``starting: ...``, ``draining``, ``stopping``)
    /metrics      the Prometheus exposition of ``metrics`` (404
                  without one)
    ============  =================================================

    Any other method gets 405; any other path 404, unless an application is
    mounted at a prefix of it (:meth:`mount`), which then gets the request
    with ``root_path`` extended and ``path`` made relative, as ASGI asks
    (the prefix alone is redirected to the prefix with a ``/``, so that the
    application's relative links work).

    Args:
        health: what the probes report.
        metrics: the instrument whose registry ``/metrics`` serves.
    """

    health: Health
    metrics: PrometheusInstrument | None = None
    _mounts: dict[str, ASGIApp] = attrs.field(init=False, factory=dict[str, "ASGIApp"])

    def mount(self, prefix: str, app: ASGIApp) -> None:
        """Serve ``app`` for every path under ``prefix`` (such as ``/tree``).

        Mounted applications get HTTP and WebSocket scopes, not the
        lifespan, which the health application answers itself.

        Raises:
            ValueError: ``prefix`` does not start with ``/``, ends with one,
                is a probe's path, or is mounted already.
            TypeError: ``app`` is not callable.
        """
        if (
            not isinstance(prefix, str)
            or not prefix.startswith("/")
            or (prefix.endswith("/"))
        ):
            raise ValueError(
                f"HealthApp.mount(): prefix must look like '/tree', got {prefix!r}"
            )
        if prefix in _ROUTES or prefix in self._mounts:
            raise ValueError(f"HealthApp.mount(): {prefix!r} is already served")
        if not callable(app):
            raise TypeError(f"HealthApp.mount(): app must be ASGI, got {app!r}")
        self._mounts[prefix] = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer one ASGI connection (or the lifespan)."""
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        path: str = scope.get("path", "/")
        for prefix, app in self._mounts.items():
            if path == prefix and kind == "http":
                # Relative links of the mounted page resolve under the prefix.
                where = scope.get("root_path", "") + prefix + "/"
                await _respond(
                    send, scope, 308, b"see " + where.encode() + b"\n", location=where
                )
                return
            if path.startswith(prefix + "/"):
                inner = dict(scope)
                inner["root_path"] = scope.get("root_path", "") + prefix
                inner["path"] = path[len(prefix) :] or "/"
                await app(inner, receive, send)
                return
        if kind != "http":
            return  # a WebSocket on no mounted path: refused by the server
        route = _ROUTES.get(path)
        if route is None:
            await _respond(send, scope, 404, b"not found\n")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, scope, 405, b"method not allowed\n", allow=True)
            return
        status, body, content_type = route(self)
        await _respond(send, scope, status, body, content_type=content_type)


_TEXT: Final = "text/plain; charset=utf-8"


def _livez(app: HealthApp) -> tuple[int, bytes, str]:
    return 200, b"ok\n", _TEXT


def _startupz(app: HealthApp) -> tuple[int, bytes, str]:
    if app.health.is_started:
        return 200, b"started\n", _TEXT
    reason = app.health.not_ready_reason() or "starting"
    return 503, reason.encode() + b"\n", _TEXT


def _readyz(app: HealthApp) -> tuple[int, bytes, str]:
    reason = app.health.not_ready_reason()
    if reason is None:
        return 200, b"ready\n", _TEXT
    return 503, reason.encode() + b"\n", _TEXT


def _metrics(app: HealthApp) -> tuple[int, bytes, str]:
    if app.metrics is None:
        return 404, b"no metrics: give health_server() a PrometheusInstrument\n", _TEXT
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return 200, generate_latest(app.metrics.registry), CONTENT_TYPE_LATEST


_ROUTES: Final[dict[str, Callable[[HealthApp], tuple[int, bytes, str]]]] = {
    "/livez": _livez,
    "/startupz": _startupz,
    "/readyz": _readyz,
    "/metrics": _metrics,
}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(
    send: Send,
    scope: Mapping[str, Any],
    status: int,
    body: bytes,
    *,
    content_type: str = _TEXT,
    allow: bool = False,
    location: str | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if allow:
        headers.append((b"allow", b"GET, HEAD"))
    if location is not None:
        headers.append((b"location", location.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {
            "type": "http.response.body",
            "body": b"" if scope["method"] == "HEAD" else body,
        }
    )


def health_server(
    health: Health,
    *,
    bind: str = DEFAULT_HEALTH_BIND,
    metrics: PrometheusInstrument | None = None,
    mounts: Mapping[str, ASGIApp] | None = None,
    name: str = "health",
    grace: float | None = None,
) -> ASGIServer:
    """A runner serving the probes of ``health`` (and ``metrics``) over HTTP.

    It is :func:`~proctree.asgi_server` serving a :class:`HealthApp`
    (reach it, to mount more, as the runner's ``app``). Keep it out of the
    tree it watches, or make the application's process before starting
    it: see :class:`Health` for when startup is over.

    Needs the ``http`` extra (hypercorn), and ``metrics`` the ``metrics``
    extra (prometheus_client).

    Args:
        health: the :class:`Health` instrument of the tree to report.
        bind: where to listen; loopback by default. ``"0.0.0.0:8080"``
            lets a kubelet on another address probe it.
        metrics: served at ``/metrics`` when given.
        mounts: more ASGI applications, by path prefix (:meth:`HealthApp.mount`).
        name: the name of its process.
        grace: seconds requests in flight get once it is stopped.

    Returns:
        The runner, to pass to :func:`~proctree.new_process` or a combinator.

    Raises:
        ModuleNotFoundError: hypercorn is not installed.
        TypeError: ``health`` is not a :class:`Health`, or ``metrics`` not
            a :class:`~proctree.PrometheusInstrument`.
        ValueError: a bad ``bind`` or mount prefix.
    """
    if not isinstance(health, Health):
        raise TypeError(
            f"health_server(): health must be a proctree.Health, got {health!r}"
        )
    if metrics is not None:
        from .metrics import PrometheusInstrument

        if not isinstance(metrics, PrometheusInstrument):
            raise TypeError(
                "health_server(): metrics must be a proctree.PrometheusInstrument, "
                f"got {metrics!r}"
            )
    require("hypercorn", "http", "health_server")
    app = HealthApp(health, metrics)
    for prefix, mounted in (mounts or {}).items():
        app.mount(prefix, mounted)
    return asgi_server(app, bind=bind, name=name, grace=grace)
