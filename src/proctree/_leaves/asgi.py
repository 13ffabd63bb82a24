"""A runner that serves an ASGI application with hypercorn's trio worker.

hypercorn is an optional dependency (``pip install 'proctree[http]'``): it
is imported when :func:`asgi_server` is called, never when proctree is.
"""

from __future__ import annotations

import copy
import logging
import socket
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast, final

import attrs
import trio

from .._core import (
    Process,
    ProctreeError,
    Ready,
    check_name,
    current_process,
    is_cancellation,
    one_failure,
    runner_name,
)
from .activation import check_sockets
from .serving import (
    OneRun,
    optional_grace,
    require,
    single_port,
    time_left,
)

if TYPE_CHECKING:
    import hypercorn.config
    from hypercorn.typing import (
        ASGIFramework,
        ASGIReceiveCallable,
        ASGISendCallable,
        ASGISendEvent,
        Scope,
    )

__all__ = ["ASGIApp", "ASGIServer", "asgi_server"]


class ASGIApp(Protocol):
    """The ASGI 3 application :func:`asgi_server` serves.

    Any ``async def app(scope, receive, send) -> None``. The types of the
    arguments are left open on purpose: frameworks type the scope and the
    messages each their own way (Starlette as ``MutableMapping[str, Any]``,
    hypercorn as typed dicts), and every one of them must fit.
    """

    def __call__(self, scope: Any, receive: Any, send: Any, /) -> Awaitable[object]:
        """Handle one ASGI connection (or the lifespan)."""
        ...


def _port_of(bind: str) -> int | None:
    """The port of a bind hypercorn reports (``http://127.0.0.1:8000``)."""
    address = bind.partition("://")[2]
    if address.startswith("unix:") or ":" not in address:
        return None
    try:
        return int(address.rsplit(":", 1)[1])
    except ValueError:
        return None


@final
@attrs.define(eq=False)
class _Bound:
    """The task status hypercorn's ``serve`` reports its binds to."""

    binds: list[str] | None = None
    event: trio.Event = attrs.field(factory=trio.Event)

    def started(self, value: list[str] | None = None) -> None:
        self.binds = list(value or ())
        self.event.set()


@final
@attrs.define(eq=False)
class ASGIServer:
    """The runner :func:`asgi_server` returns: an ASGI application on hypercorn.

    While it serves, :attr:`binds`, :attr:`ports` and :attr:`port` say
    where. It runs in one process at a time; once stopped it may run again.
    """

    app: ASGIApp
    """The ASGI application."""
    config: hypercorn.config.Config
    """The hypercorn configuration; each run uses its own copy."""
    name: str = "asgi_server"
    """The default name of its process."""
    default_grace: float | None = None
    """Seconds requests in flight get to finish once it is stopped (None:
    the tree's grace)."""
    sockets: tuple[socket.socket, ...] = ()
    """Listening sockets served instead of the binds (socket activation)."""
    _binds: tuple[str, ...] = attrs.field(init=False, default=())
    _run: OneRun = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._run = OneRun("asgi_server", self.name)

    @property
    def binds(self) -> tuple[str, ...]:
        """Where it serves, as hypercorn says (``http://127.0.0.1:8000``).

        Empty when it is not serving.
        """
        return self._binds

    @property
    def ports(self) -> tuple[int, ...]:
        """The TCP port of each bind while serving (UNIX sockets have none)."""
        return tuple(p for p in map(_port_of, self._binds) if p is not None)

    @property
    def port(self) -> int:
        """The TCP port it serves on.

        Raises:
            InvalidStateError: it is not serving.
            ProctreeError: it serves on several different ports.
        """
        return single_port(self.ports, f"asgi_server {self.name!r}")

    async def run(self, ready: Ready) -> None:
        """Serve; ready once bound; shut hypercorn down gracefully when stopped.

        Raises:
            InvalidStateError: it is already running in another process.
            ProctreeError: hypercorn returned while it was serving.
            BaseException: whatever hypercorn raised (a bind error such as
                :exc:`OSError` fails the start).
        """
        me = current_process("asgi_server")
        self._run.claim(me)
        try:
            await self._serve(me, ready)
        finally:
            self._binds = ()
            self._run.release()

    async def _serve(self, me: Process, ready: Ready) -> None:
        config = copy.copy(self.config)
        if config.errorlog == "-":
            # hypercorn's default puts a stderr handler of its own on a
            # logger that also propagates: under an application's logging
            # setup every line came out twice. Its logger, no handler.
            config.errorlog = logging.getLogger("hypercorn.error")
        lifespan = _LifespanWatch(cast("ASGIFramework", self.app))
        handed = [sock.dup() for sock in self.sockets]
        if handed:
            # hypercorn's serve() takes no sockets, its config makes them:
            # this run's config hands it duplicates, closed after the run,
            # so the caller's sockets keep listening across restarts.
            from hypercorn.config import Sockets

            made = Sockets([], [], [])
            if config.ssl_enabled:
                made.secure_sockets = handed
            else:
                made.insecure_sockets = handed
            config.create_sockets = lambda: made  # type: ignore[method-assign]
        try:
            await self._serve_with(me, ready, config, lifespan)
        finally:
            for sock in handed:
                sock.close()

    async def _serve_with(
        self,
        me: Process,
        ready: Ready,
        config: hypercorn.config.Config,
        lifespan: _LifespanWatch,
    ) -> None:
        # hypercorn's own annotations leave parts of serve's type unknown.
        from hypercorn.trio import serve  # pyright: ignore[reportUnknownVariableType]

        async def shutdown_trigger() -> None:
            # Also when the process is stopped while hypercorn is starting.
            await me.closing.wait()
            # One knob, not two: hypercorn lets requests in flight run for
            # graceful_timeout seconds, and that is the process's grace.
            config.graceful_timeout = time_left(me)

        failures: list[BaseException] = []
        ended = trio.Event()
        waker = trio.CancelScope()
        bound = _Bound()
        was_ready = False

        async def serve_task() -> None:
            try:
                await serve(
                    lifespan,
                    config,
                    shutdown_trigger=shutdown_trigger,
                    task_status=bound,
                    mode="asgi",
                )
            except BaseException as exc:
                if is_cancellation(exc):
                    raise
                failures.append(_collapse(exc))
            finally:
                ended.set()
                waker.cancel()

        # Failures are raised after the nursery, so they keep their type.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_task, name=self.name)
            with waker:
                await bound.event.wait()
                # hypercorn reports its binds even when the lifespan startup
                # has just failed; it then ends with that failure.
                if not lifespan.startup_failed:
                    self._binds = tuple(bound.binds or ())
                    was_ready = True
                    await ready()
            await ended.wait()
        if failures:
            raise one_failure(failures, f"asgi_server {self.name!r} failed")
        if not was_ready:
            raise ProctreeError(
                f"asgi_server {self.name!r}: hypercorn returned before it was serving"
            )
        if not me.closing.is_set():
            raise ProctreeError(
                f"asgi_server {self.name!r}: hypercorn stopped serving while the "
                "process was running"
            )


def _collapse(exc: BaseException) -> BaseException:
    """The one exception inside hypercorn's nested nursery groups, if just one.

    hypercorn runs in nurseries of its own, so a bind error comes out as a
    group of a group of one OSError; the nesting says nothing to a caller.
    """
    while isinstance(exc, BaseExceptionGroup):
        members = cast("BaseExceptionGroup[BaseException]", exc).exceptions
        if len(members) != 1:
            return cast("BaseException", exc)
        exc = members[0]
    return exc


class _NoLifespan(Exception):
    """The application returned from the lifespan scope without answering."""


@final
@attrs.define(eq=False)
class _LifespanWatch:
    """Wraps the application to follow its lifespan startup.

    It sees whether the startup failed, and turns an application that just
    returns from the lifespan scope (``if scope["type"] != "http":
    return``) into one that raises, the ASGI way to say "no lifespan
    support": hypercorn (0.18) handles a raise, but a quick return makes it
    send the startup message on a channel it has already closed.
    """

    app: ASGIFramework
    startup_failed: bool = False

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        answered = False

        async def watched_send(message: ASGISendEvent) -> None:
            nonlocal answered
            if message["type"] == "lifespan.startup.failed":
                self.startup_failed = True
            if message["type"].startswith("lifespan.startup."):
                answered = True
            await send(message)

        await self.app(scope, receive, watched_send)
        if not answered:
            raise _NoLifespan("the application does not support ASGI lifespan")


def asgi_server(
    app: ASGIApp,
    *,
    bind: str | Sequence[str] | None = None,
    config: hypercorn.config.Config | None = None,
    name: str | None = None,
    grace: float | None = None,
    sockets: Sequence[socket.socket] | None = None,
) -> ASGIServer:
    """A runner that serves the ASGI application ``app`` with hypercorn on trio.

    It runs ``hypercorn.trio.serve()`` and is ready once hypercorn has run
    the application's lifespan startup and bound its sockets: after
    ``start()`` returns, :attr:`ASGIServer.port` tells where it listens
    (useful with ``bind="127.0.0.1:0"``).

    Stopping it is hypercorn's graceful shutdown: it stops accepting, closes
    idle keep-alive connections, lets requests in flight finish, then runs
    the lifespan shutdown. The process's grace is hypercorn's
    ``graceful_timeout``: requests still running at the process's forced
    time are cancelled. (The ``graceful_timeout`` of ``config`` is replaced
    by that time; the process's grace is the one setting that counts.)

    Needs the ``http`` extra: ``pip install 'proctree[http]'``.

    Args:
        app: the ASGI application.
        bind: where to listen (``"127.0.0.1:8000"``, ``"unix:/run/app.sock"``,
            or a list of them); by default ``config``'s binds.
        config: a ``hypercorn.config.Config``; by default hypercorn's
            defaults. It is copied for each run, never changed.
        name: the name of its process; by default the application's name.
        grace: seconds requests in flight get once it is stopped; by default
            the tree's grace.
        sockets: listening sockets to serve instead of the binds, such as
            :func:`~proctree.systemd_sockets` (socket activation); when it is
            empty, the binds are used. Each run serves duplicates of them
            and closes only those: they stay the caller's.

    Returns:
        The runner, to pass to :func:`new_process` or a combinator.

    Raises:
        ModuleNotFoundError: hypercorn is not installed.
        TypeError: ``app`` is not callable, or an argument has the wrong type.
        ValueError: ``bind`` is empty, ``grace`` < 0, or a socket is not
            listening.
    """
    config_module = require("hypercorn.config", "http", "asgi_server")
    require("hypercorn.trio", "http", "asgi_server")
    if not callable(app):
        raise TypeError(
            f"asgi_server(): app must be an ASGI application "
            f"(async def app(scope, receive, send)), got {app!r}"
        )
    if config is None:
        config = cast("hypercorn.config.Config", config_module.Config())
    elif not isinstance(config, config_module.Config):
        raise TypeError(
            "asgi_server(): config must be a hypercorn.config.Config, "
            f"got {type(config).__name__}"
        )
    else:
        config = copy.copy(config)
    if bind is not None:
        binds = [bind] if isinstance(bind, str) else list(bind)
        if not binds or not all(isinstance(b, str) for b in binds):
            raise ValueError(
                "asgi_server(): bind must be an address such as '127.0.0.1:8000' "
                f"or a non-empty list of them, got {bind!r}"
            )
        config.bind = binds
    check_name(name, "asgi_server")
    return ASGIServer(
        app,
        config,
        runner_name(app) if name is None else name,
        optional_grace(grace),
        () if sockets is None else check_sockets(sockets, "asgi_server"),
    )
