"""The host: what a root owns and lends to every process below it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, final

import attrs
import trio

if TYPE_CHECKING:
    from .node import Process
    from .overruns import OverrunBatch

__all__ = ["DEFAULT_GRACE", "Host", "emit", "logger"]

DEFAULT_GRACE: Final = 5.0
"""Seconds a ``go`` function gets to end by itself once its process closes,
before its cancel scope is cancelled (see ``docs/design.md``, section 4)."""

logger = logging.getLogger("proctree")
# A library logs, the application decides where to: no output by default.
logger.addHandler(logging.NullHandler())


@final
@attrs.define(eq=False, repr=False, slots=True)
class Host:
    """What a root owns and lends to every process below it.

    Private to the package: the root creates it, processes use it to start
    tasks, to record failures and to call instruments.
    """

    nursery: trio.Nursery
    grace: float
    instruments: tuple[Any, ...] = ()
    failures: list[BaseException] = attrs.field(factory=list[BaseException])
    strays: set[Process] = attrs.field(factory=set["Process"])
    signals_seen: int = 0
    overruns: OverrunBatch | None = None

    def record(self, exc: BaseException) -> bool:
        """Record a failure once; return False if it was already recorded."""
        for known in self.failures:
            if known is exc:
                return False
        self.failures.append(exc)
        return True


def emit(host: Host, hook: str, p: Process, *args: object) -> None:
    """Call ``hook`` on every instrument; a failing hook is logged, never raised."""
    for instrument in host.instruments:
        method = getattr(instrument, hook, None)
        if method is None:
            continue
        try:
            method(p, *args)
        except Exception:
            logger.exception(
                "instrument %r failed in %s(%r)",
                instrument,
                hook,
                p,
                extra={"proctree_event": "instrument_failed", "proctree_hook": hook},
            )
