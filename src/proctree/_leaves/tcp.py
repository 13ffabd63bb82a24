"""A runner that serves TCP on trio's listeners, one child process per connection."""

from __future__ import annotations

import errno
import logging
import math
import socket
from collections.abc import Awaitable, Sequence
from typing import Final, Protocol, final

import attrs
import trio

from .._core import (
    Process,
    Ready,
    check_async_callable,
    check_name,
    close_by,
    current_process,
    forced_at,
    is_cancellation,
    one_failure,
    runner_name,
    set_keeper,
)
from .activation import check_sockets
from .serving import OneRun, optional_grace, single_port

__all__ = ["ConnectionHandler", "TCPServer", "tcp_server"]


class ConnectionHandler(Protocol):
    """The connection handler of :func:`tcp_server`, one call per connection.

    Any ``async def handler(proc, stream) -> None``. ``proc`` is the
    connection's own process (its :attr:`~Process.closing` is set when the
    server stops); ``stream`` is closed when the handler returns.
    """

    def __call__(
        self, proc: Process, stream: trio.SocketStream, /
    ) -> Awaitable[object]:
        """Serve the connection ``stream``."""
        ...


# What trio.serve_listeners treats as "out of resources, try again later":
# the server must not die because the process ran out of file descriptors.
_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_RETRY_SECONDS: Final = 0.1

_logger = logging.getLogger("proctree")


@final
@attrs.define(eq=False)
class _Connections:
    """Keeps a server's connection processes: their failures, which are open."""

    server: Process
    live: set[Process] = attrs.field(factory=set[Process])
    failures: list[BaseException] = attrs.field(factory=list[BaseException])
    done: bool = False

    def take(self, p: Process, exc: BaseException) -> bool:
        if self.done:
            return False
        # A failed connection fails the server, as in trio.serve_tcp; the
        # server raises it as its own failure once it has stopped.
        self.failures.append(exc)
        close_by(self.server, None)
        return True

    def closed(self, p: Process) -> None:
        self.live.discard(p)


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        peer = stream.socket.getpeername()
    except OSError:  # the peer is already gone
        return "connection"
    host, port = peer[0], peer[1]
    if ":" in host:
        host = f"[{host}]"
    return f"connection {host}:{port}"


@final
@attrs.define(eq=False)
class TCPServer:
    """The runner :func:`tcp_server` returns: a TCP server leaf.

    While it serves, :attr:`listeners`, :attr:`ports` and :attr:`port` say
    where; each accepted connection is a child process of the server's
    process, named after the peer (``connection 127.0.0.1:50312``).

    A TCPServer runs in one process at a time; once that process has
    stopped it may run again (and may get another port if it asked for 0).
    """

    handler: ConnectionHandler
    """The connection handler."""
    _port: int | None = attrs.field(alias="port")
    host: str | None = None
    """The address to bind (None: every interface, IPv4 and IPv6)."""
    backlog: int | None = None
    """The listen backlog (None: trio's default, the system's maximum)."""
    name: str = "tcp_server"
    """The default name of its process."""
    default_grace: float | None = None
    """Seconds its process, and so its connections, get to end once stopped
    (None: the tree's grace)."""
    sockets: tuple[socket.socket, ...] = ()
    """Listening sockets to serve instead of binding (socket activation)."""
    _listeners: tuple[trio.SocketListener, ...] = attrs.field(init=False, default=())
    _ports: tuple[int, ...] = attrs.field(init=False, default=())
    _run: OneRun = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._run = OneRun("tcp_server", self.name)

    @property
    def listeners(self) -> tuple[trio.SocketListener, ...]:
        """The listeners it accepts on while serving; empty otherwise."""
        return self._listeners

    @property
    def ports(self) -> tuple[int, ...]:
        """The bound port of each listener while serving; empty otherwise."""
        return self._ports

    @property
    def port(self) -> int:
        """The port it listens on.

        Raises:
            InvalidStateError: it is not serving (not started, or stopped).
            ProctreeError: its listeners have different ports (port 0 with
                several addresses, such as ``host=None``); read :attr:`ports`.
        """
        return single_port(self._ports, f"tcp_server {self.name!r}")

    async def run(self, ready: Ready) -> None:
        """Bind, report ready, serve; stop accepting when ready() returns.

        Raises:
            InvalidStateError: it is already running in another process.
            OSError: the address could not be bound (a startup failure).
            BaseException: the first failure of a connection handler or of
                accepting (a group if there were several).
        """
        me = current_process("tcp_server")
        self._run.claim(me)
        try:
            await self._serve(me, ready)
        finally:
            self._run.release()

    async def _open_listeners(self) -> list[trio.SocketListener]:
        if not self.sockets:
            assert self._port is not None
            return await trio.open_tcp_listeners(
                self._port, host=self.host, backlog=self.backlog
            )
        # A duplicate per run: closing it when the run ends leaves the
        # handed-over socket listening, so a restart refuses nothing.
        return [
            trio.SocketListener(trio.socket.from_stdlib_socket(sock.dup()))
            for sock in self.sockets
        ]

    async def _serve(self, me: Process, ready: Ready) -> None:
        listeners = await self._open_listeners()
        keeper = _Connections(me)
        failures: list[BaseException] = []
        waker = trio.CancelScope()
        try:
            self._listeners = tuple(listeners)
            self._ports = tuple(
                lst.socket.getsockname()[1]
                for lst in listeners
                if lst.socket.family in (socket.AF_INET, socket.AF_INET6)
            )
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(
                        self._accept, me, listener, keeper, failures, waker
                    )
                with waker:
                    await ready()
                nursery.cancel_scope.cancel()
        finally:
            self._listeners = self._ports = ()
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()
            await self._drain(me, keeper)
        if failures or keeper.failures:
            raise one_failure([*failures, *keeper.failures], f"{self.name} failed")

    async def _drain(self, me: Process, keeper: _Connections) -> None:
        """Let open connections finish by the server's forced time."""
        try:
            # Closing is a no-op when we are being stopped; it matters when
            # accepting failed, so that the connections get a deadline too.
            close_by(me, None)
            deadline = forced_at(me)
            for conn in list(keeper.live):
                close_by(conn, deadline)
            while keeper.live:
                await next(iter(keeper.live)).closed.wait()
        finally:
            keeper.done = True

    async def _accept(
        self,
        me: Process,
        listener: trio.SocketListener,
        keeper: _Connections,
        failures: list[BaseException],
        waker: trio.CancelScope,
    ) -> None:
        try:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _CAPACITY_ERRNOS:
                        raise
                    _logger.error(
                        "tcp_server %r: accept failed (%s); retrying in %ss",
                        self.name,
                        errno.errorcode[exc.errno],
                        _RETRY_SECONDS,
                        extra={
                            "proctree_event": "accept_failed",
                            "proctree_path": me.path,
                            "proctree_error_type": type(exc).__name__,
                            "proctree_error": str(exc),
                        },
                    )
                    await trio.sleep(_RETRY_SECONDS)
                    continue
                # Accepted as the stop began (the cancel of this loop is
                # on its way): the kernel gave it to us, so it is served,
                # within the server's grace, never dropped unanswered.
                # Its grace is the server's: _drain gives it the server's
                # forced time, so it is never forced before the server is.
                conn = me.go(
                    self._connection, stream, name=_peer_name(stream), grace=math.inf
                )
                set_keeper(conn, keeper)
                keeper.live.add(conn)
        except BaseException as exc:
            if is_cancellation(exc):
                raise
            failures.append(exc)
            waker.cancel()

    async def _connection(self, proc: Process, stream: trio.SocketStream) -> None:
        async with stream:
            await self.handler(proc, stream)


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"tcp_server(): port must be an int, got {port!r}")
    if not 0 <= port <= 65535:
        raise ValueError(
            f"tcp_server(): port must be in 0..65535 (0: any free port), got {port}"
        )
    return port


def tcp_server(
    handler: ConnectionHandler,
    port: int | None = None,
    *,
    host: str | None = None,
    backlog: int | None = None,
    name: str | None = None,
    grace: float | None = None,
    sockets: Sequence[socket.socket] | None = None,
) -> TCPServer:
    """A runner that serves TCP connections on ``port``, each in its own process.

    It binds with :func:`trio.open_tcp_listeners` and is ready once bound:
    after ``start()`` returns, :attr:`TCPServer.port` (or ``ports``) tells
    where it listens, which matters with ``port=0``. Each accepted
    connection runs ``await handler(proc, stream)`` in a child process of
    the server's, so the tree shows the open connections and closing the
    server waits for them; the stream is closed when the handler returns.

    Stopping it stops accepting at once (the listeners are closed, so new
    connections are refused) and sets each connection's ``proc.closing``: a
    handler that watches it finishes the request in hand and returns. At
    the server's forced time (its grace after the stop) the handlers still
    running are cancelled.

    A handler's failure is the server's failure, as with
    :func:`trio.serve_tcp`: the server stops and raises it. A handler that
    must survive a misbehaving peer catches what it expects (such as
    :exc:`trio.BrokenResourceError`).

    Args:
        handler: ``async def handler(proc, stream) -> None``.
        port: the port to listen on; 0 lets the system pick a free one.
        host: the address to bind; None binds every interface (IPv4 and
            IPv6, which with ``port=0`` get different ports).
        backlog: the listen backlog; None for trio's default.
        name: the name of its process; by default the handler's name.
        grace: seconds open connections get to finish once it is stopped;
            by default the tree's grace (``new_process(grace=)`` overrides).
        sockets: listening sockets to serve instead of binding ``port``,
            such as :func:`~proctree.systemd_sockets` (socket activation).
            When it is empty, ``port`` is bound, so one program runs both
            under systemd and without it. The server serves a duplicate of
            each and never closes them: they stay the caller's.

    Returns:
        The runner, to pass to :func:`new_process` or a combinator.

    Raises:
        TypeError: ``handler`` is not an async function, or an argument has
            the wrong type.
        ValueError: ``port`` is out of range, ``backlog`` or ``grace`` < 0,
            a socket is not listening, or neither ``port`` nor ``sockets``.
    """
    check_async_callable(handler, "tcp_server", "handler(proc, stream)", nargs=2)
    handed = () if sockets is None else check_sockets(sockets, "tcp_server")
    if port is not None or not handed:
        if port is None:
            raise ValueError(
                "tcp_server(): give a port to listen on, or listening sockets "
                "(sockets=proctree.systemd_sockets() was empty: not started by "
                "systemd with sockets?)"
            )
        _check_port(port)
    if host is not None and not isinstance(host, str):
        raise TypeError(f"tcp_server(): host must be a str or None, got {host!r}")
    if backlog is not None:
        if isinstance(backlog, bool) or not isinstance(backlog, int):
            raise TypeError(f"tcp_server(): backlog must be an int, got {backlog!r}")
        if backlog < 0:
            raise ValueError(f"tcp_server(): backlog must be >= 0, got {backlog}")
    check_name(name, "tcp_server")
    return TCPServer(
        handler,
        port,
        host,
        backlog,
        runner_name(handler) if name is None else name,
        optional_grace(grace),
        handed,
    )
