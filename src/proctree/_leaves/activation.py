"""Socket activation: the listening sockets systemd hands over (``LISTEN_FDS``).

With a ``.socket`` unit, systemd opens the listening sockets itself and
passes them to the service as file descriptors 3, 4, ...; it keeps them
open while the service restarts, so connections that arrive meanwhile
wait in the backlog instead of being refused. :func:`systemd_sockets`
reads them; :func:`~proctree.tcp_server` and :func:`~proctree.asgi_server`
serve them (``sockets=``) instead of binding.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from typing import Final, cast

from .._core import ProctreeError

__all__ = ["LISTEN_FDS_START", "ActivationError", "check_sockets", "systemd_sockets"]

LISTEN_FDS_START: Final = 3
"""The first file descriptor systemd passes (``SD_LISTEN_FDS_START``)."""


class ActivationError(ProctreeError):
    """The sockets systemd said it passed are not there or not usable."""


def systemd_sockets(
    name: str | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[socket.socket, ...]:
    """The sockets systemd passed to this process, in order.

    Reads ``LISTEN_PID`` (the sockets are for this process only when it is
    our pid), ``LISTEN_FDS`` (how many, from descriptor 3) and
    ``LISTEN_FDNAMES`` (their ``FileDescriptorName=``, ``:``-separated).
    Each call returns new socket objects, duplicates of the passed
    descriptors: they are the caller's to close, and the passed descriptors
    themselves stay open (and are no longer inherited by programs this one
    starts) for the life of the process, as systemd keeps them on its side.

    Args:
        name: only the sockets of that ``FileDescriptorName=``.
        environ: the environment to read; by default ``os.environ``.

    Returns:
        The sockets; empty when systemd passed none to this process.

    Raises:
        ActivationError: ``LISTEN_FDS`` is not a count, or a passed
            descriptor is not an open socket.
        TypeError: ``name`` is not a str.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"systemd_sockets(): name must be a str, got {name!r}")
    env = os.environ if environ is None else environ
    count_text = env.get("LISTEN_FDS")
    if not count_text or env.get("LISTEN_PID") != str(os.getpid()):
        return ()
    try:
        count = int(count_text)
    except ValueError:
        raise ActivationError(
            f"LISTEN_FDS={count_text!r} is not a number of file descriptors"
        ) from None
    names = env.get("LISTEN_FDNAMES", "").split(":") if "LISTEN_FDNAMES" in env else []
    found: list[socket.socket] = []
    for i in range(max(0, count)):
        fd = LISTEN_FDS_START + i
        fd_name = names[i] if i < len(names) else "unknown"
        if name is not None and fd_name != name:
            continue
        try:
            os.set_inheritable(fd, False)
            found.append(socket.socket(fileno=os.dup(fd)))
        except OSError as exc:
            for sock in found:
                sock.close()
            raise ActivationError(
                f"systemd passed file descriptor {fd} ({fd_name}), but it is not "
                f"an open socket: {exc}"
            ) from None
    return tuple(found)


def check_sockets(sockets: object, what: str) -> tuple[socket.socket, ...]:
    """``sockets`` as a tuple of listening stream sockets, or a clear error."""
    if isinstance(sockets, socket.socket) or not isinstance(sockets, Sequence):
        raise TypeError(
            f"{what}(): sockets must be a sequence of listening sockets (such as "
            f"proctree.systemd_sockets()), got {sockets!r}"
        )
    chosen = tuple(cast("Sequence[object]", sockets))
    for sock in chosen:
        if not isinstance(sock, socket.socket):
            raise TypeError(f"{what}(): sockets must be socket.socket, got {sock!r}")
        if sock.fileno() < 0:
            raise ValueError(f"{what}(): socket {sock!r} is closed")
        listening = sock.type == socket.SOCK_STREAM and sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_ACCEPTCONN
        )
        if not listening:
            raise ValueError(
                f"{what}(): {sock!r} is not a listening stream socket: call "
                "listen() on it first (systemd's ListenStream= sockets are)"
            )
    return cast("tuple[socket.socket, ...]", chosen)
