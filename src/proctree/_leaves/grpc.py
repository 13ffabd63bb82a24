"""A runner for a grpcio server: bound, started and stopped off the trio thread.

grpcio is an optional dependency (``pip install 'proctree[grpc]'``): it is
imported when :func:`grpc_server` is called, never when proctree is.
grpcio serves from its own threads; every call that may block (binding,
starting, waiting for the stop) runs in a worker thread, so the trio
thread never waits on grpc.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast, final

import attrs
import trio

from .._core import InvalidStateError, Process, Ready, check_name, current_process
from .serving import (
    OneRun,
    optional_grace,
    require,
    single_port,
    time_left,
)

if TYPE_CHECKING:
    import grpc

__all__ = ["GRPCServer", "grpc_server"]


def _stop_and_wait(server: grpc.Server, grace: float | None) -> None:
    """Stop ``server`` (None: abort every call now) and wait until it has."""
    if grace is not None:
        # threading cannot wait forever by timeout; TIMEOUT_MAX is ~ 49 days.
        grace = min(grace, threading.TIMEOUT_MAX)
    server.stop(grace).wait()


def _abandon(server: grpc.Server, started: bool) -> None:
    """Release what a server that failed to start holds (its bound ports)."""
    if not started:
        # A server that never started ignores stop(); starting it lets the
        # stop release the ports it has bound.
        with contextlib.suppress(Exception):
            server.start()
    server.stop(None).wait()


@final
@attrs.define(eq=False)
class GRPCServer:
    """The runner :func:`grpc_server` returns: a grpcio server leaf.

    While it serves, :attr:`ports` and :attr:`port` say where. It runs in
    one process at a time. Made from a function that builds the server, it
    may run again once stopped; made from a server object, it runs once,
    since a grpc server cannot be started twice.
    """

    _make: Callable[[], grpc.Server] = attrs.field(alias="make")
    _once: bool = attrs.field(alias="once")
    addresses: tuple[str, ...]
    """The addresses it binds, in order."""
    credentials: grpc.ServerCredentials | None = None
    """The credentials of a secure port (None: insecure ports)."""
    name: str = "grpc_server"
    """The default name of its process."""
    default_grace: float | None = None
    """Seconds RPCs in flight get to finish once it is stopped (None: the
    tree's grace)."""
    _server_type: type = object
    _ports: tuple[int, ...] = attrs.field(init=False, default=())
    _used: bool = attrs.field(init=False, default=False)
    _run: OneRun = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._run = OneRun("grpc_server", self.name)

    @property
    def ports(self) -> tuple[int, ...]:
        """The port bound for each address while serving; empty otherwise."""
        return self._ports

    @property
    def port(self) -> int:
        """The port it serves on.

        Raises:
            InvalidStateError: it is not serving.
            ProctreeError: it serves on several different ports.
        """
        return single_port(self._ports, f"grpc_server {self.name!r}")

    async def run(self, ready: Ready) -> None:
        """Bind and start the server, report ready, stop it with the grace.

        Raises:
            InvalidStateError: it is already running in another process, or
                its server object has already run once.
            RuntimeError: grpc could not bind an address (a startup failure).
            TypeError: the function made something that is not a server.
        """
        me = current_process("grpc_server")
        self._run.claim(me)
        try:
            await self._serve(me, ready)
        finally:
            self._ports = ()
            self._run.release()

    def _server(self) -> grpc.Server:
        if self._once:
            if self._used:
                raise InvalidStateError(
                    f"grpc_server {self.name!r} has already run its server, and "
                    "a grpc server cannot be started twice: give grpc_server() "
                    "a function that makes the server instead"
                )
            self._used = True
        server = self._make()
        if not isinstance(server, self._server_type):
            raise TypeError(
                f"grpc_server {self.name!r}: the function must return a "
                f"grpc.Server (grpc.server(...)), got {type(server).__name__}"
            )
        return server

    def _bind(self, server: grpc.Server, address: str) -> int:
        if self.credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, self.credentials)

    async def _serve(self, me: Process, ready: Ready) -> None:
        server = self._server()
        started = False
        ports: list[int] = []
        try:
            for address in self.addresses:
                ports.append(await trio.to_thread.run_sync(self._bind, server, address))
            await trio.to_thread.run_sync(server.start)
            started = True
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_abandon, server, started)
            raise
        self._ports = tuple(ports)
        try:
            await ready()
            # grpc refuses new RPCs at once and aborts those still running
            # when the grace runs out: the process's forced time.
            await trio.to_thread.run_sync(
                _stop_and_wait, server, time_left(me), abandon_on_cancel=True
            )
        except BaseException:
            # Forced: abort every RPC now, and wait (briefly: grpc does not
            # wait for its handler threads) until the port is released, so
            # that a restart can bind it again.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_stop_and_wait, server, None)
            raise


def grpc_server(
    server: grpc.Server | Callable[[], grpc.Server],
    address: str | Sequence[str],
    *,
    credentials: grpc.ServerCredentials | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> GRPCServer:
    """A runner that serves a grpcio server on ``address``.

    It binds each address (``server.add_insecure_port``, or
    ``add_secure_port`` with ``credentials``), starts the server, and is
    ready once it serves: after ``start()`` returns, :attr:`GRPCServer.port`
    tells which port was bound (useful with ``"127.0.0.1:0"``).

    Stopping it is ``server.stop(grace)``: new RPCs are refused at once,
    RPCs in flight get the process's grace to finish and are aborted when
    it runs out; the process is CLOSED once grpc has stopped. The waiting
    happens in a worker thread, never on the trio thread.

    The server's thread pool is the caller's: grpc does not shut it down,
    and neither does this runner.

    Needs the ``grpc`` extra: ``pip install 'proctree[grpc]'``.

    Args:
        server: a function that makes the server (``grpc.server(...)`` with
            its servicers added), called at each start, so the runner can
            be restarted; or a server object, which can run only once.
        address: where to listen (``"127.0.0.1:50051"``, ``"[::]:0"``), or a
            list of addresses.
        credentials: ``grpc.ServerCredentials`` for secure ports; None for
            insecure ones.
        name: the name of its process (default ``"grpc_server"``).
        grace: seconds RPCs in flight get once it is stopped; by default
            the tree's grace.

    Returns:
        The runner, to pass to :func:`new_process` or a combinator.

    Raises:
        ModuleNotFoundError: grpcio is not installed.
        TypeError: ``server`` is neither a server nor a function, or an
            argument has the wrong type.
        ValueError: ``address`` is empty, or ``grace`` < 0.
    """
    grpc_module = require("grpc", "grpc", "grpc_server")
    server_type: type = grpc_module.Server
    make: Callable[[], grpc.Server]
    if isinstance(server, server_type):
        # isinstance against the lazily imported class does not narrow.
        instance = cast("grpc.Server", server)

        def make_instance() -> grpc.Server:
            return instance

        make, once = make_instance, True
    elif callable(server):
        make, once = server, False
    else:
        raise TypeError(
            "grpc_server(): server must be a grpc.Server or a function that "
            f"makes one, got {type(server).__name__}"
        )
    addresses = (address,) if isinstance(address, str) else tuple(address)
    if not addresses or not all(isinstance(a, str) and a for a in addresses):
        raise ValueError(
            "grpc_server(): address must be an address such as "
            f"'127.0.0.1:50051' or a non-empty list of them, got {address!r}"
        )
    if credentials is not None and not isinstance(
        credentials, grpc_module.ServerCredentials
    ):
        raise TypeError(
            "grpc_server(): credentials must be grpc.ServerCredentials "
            f"(grpc.ssl_server_credentials(...)), got {type(credentials).__name__}"
        )
    check_name(name, "grpc_server")
    return GRPCServer(
        make,
        once,
        addresses,
        credentials,
        "grpc_server" if name is None else name,
        optional_grace(grace),
        server_type,
    )
