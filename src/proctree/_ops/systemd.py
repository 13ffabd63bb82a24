"""systemd's notify protocol on a plain datagram socket (no dependency)."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import final

import attrs

__all__ = ["SystemdNotifier"]

_logger = logging.getLogger("proctree")


@final
@attrs.define(eq=False)
class SystemdNotifier:
    """Sends ``READY=1``, ``STOPPING=1``, ``RELOADING=1``, ``STATUS=``... to systemd.

    Made from the environment with :meth:`from_environment`; when
    ``NOTIFY_SOCKET`` is not set (not run by systemd with ``Type=notify``),
    it is disabled and :meth:`notify` does nothing.

    Args:
        address: the ``NOTIFY_SOCKET`` path (``@`` starts an abstract name),
            or None for a disabled notifier.
        watchdog_usec: ``WATCHDOG_USEC``, if the watchdog is on for us.
    """

    address: str | None
    watchdog_usec: int | None = None
    _sock: socket.socket | None = attrs.field(default=None, init=False)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None
    ) -> SystemdNotifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC") and (pid is None or pid == str(os.getpid())):
            try:
                usec = int(env["WATCHDOG_USEC"])
            except ValueError:
                _logger.warning(
                    "ignoring WATCHDOG_USEC=%r",
                    env["WATCHDOG_USEC"],
                    extra={"proctree_event": "systemd_bad_environment"},
                )
            else:
                usec = usec if usec > 0 else None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to notify."""
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two ``WATCHDOG=1`` pings: half the timeout."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2_000_000

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one datagram; False if disabled or it failed.

        Never blocks and never raises: a notification that cannot be sent
        is logged and dropped, as a lost notification must not stop the
        program.
        """
        if self.address is None:
            return False
        try:
            if self._sock is None:
                target = self.address
                if target.startswith("@"):
                    target = "\0" + target[1:]
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                try:
                    sock.setblocking(False)
                    sock.connect(target)
                except OSError:
                    sock.close()
                    raise
                self._sock = sock
            self._sock.send(("\n".join(lines) + "\n").encode())
        except OSError as exc:
            _logger.warning(
                "systemd notification %r not sent: %s",
                lines,
                exc,
                extra={
                    "proctree_event": "systemd_notify_failed",
                    "proctree_error_type": type(exc).__name__,
                    "proctree_error": str(exc),
                },
            )
            return False
        return True

    def reloading(self) -> bool:
        """Send ``RELOADING=1`` with ``MONOTONIC_USEC``, as systemd asks.

        Send ``READY=1`` once the reload is over. Returns what
        :meth:`notify` returns.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask systemd to wait ``seconds`` more from now (``EXTEND_TIMEOUT_USEC``).

        While starting (before ``READY=1``) or stopping, systemd then does not
        kill the service at ``TimeoutStartSec`` / ``TimeoutStopSec``, as long
        as the extensions keep coming. Returns what :meth:`notify` returns.
        """
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(1, round(seconds * 1e6))}")

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
