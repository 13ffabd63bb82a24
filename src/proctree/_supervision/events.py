"""The typed events a supervisor reports, and the log level of each."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, final

import attrs
import trio

from .._core import Process, describe, has_instruments, instrument_hook

__all__ = [
    "LEVELS",
    "ChildFailed",
    "ChildRestarting",
    "ChildStarted",
    "ChildStopped",
    "EventReporter",
    "RestartsPaused",
    "RestartsResumed",
    "SupervisorEvent",
    "SupervisorGaveUp",
]


@final
@attrs.frozen(kw_only=True)
class ChildStarted:
    """A child called ``ready()``: it runs."""

    key: str
    """The child's key."""
    time: float
    """When it happened, on trio's clock."""
    restarts: int
    """How many times the key was restarted before this event."""


@final
@attrs.frozen(kw_only=True)
class ChildStopped:
    """A child became CLOSED without a failure (stopped, or returned)."""

    key: str
    """The child's key."""
    time: float
    """When it happened, on trio's clock."""
    restarts: int
    """How many times the key was restarted before this event."""


@final
@attrs.frozen(kw_only=True)
class ChildFailed:
    """A child failed, while starting or while running."""

    key: str
    """The child's key."""
    time: float
    """When it happened, on trio's clock."""
    restarts: int
    """How many times the key was restarted before this event."""
    error: BaseException
    """The child's failure."""

    @property
    def reason(self) -> str:
        """The real cause in one line (a nursery group's members, not the group)."""
        return describe(self.error)


@final
@attrs.frozen(kw_only=True)
class ChildRestarting:
    """A child will be started again after ``delay`` seconds."""

    key: str
    """The child's key."""
    time: float
    """When it happened, on trio's clock."""
    restarts: int
    """How many times the key was restarted, this restart included."""
    delay: float
    """Seconds until the restart (longer if restarts are paused meanwhile)."""


@final
@attrs.frozen(kw_only=True)
class RestartsPaused:
    """The failure count passed the threshold: restarts pause for ``delay``."""

    key: str
    """The key whose failure passed the threshold."""
    time: float
    """When it happened, on trio's clock."""
    restarts: int
    """How many times that key was restarted."""
    delay: float
    """Seconds the restarts pause."""


@final
@attrs.frozen(kw_only=True)
class RestartsResumed:
    """The pause is over: restarts go on, the failure count starts from 0."""

    key: str
    """The key whose failure caused the pause."""
    time: float
    """When it happened, on trio's clock."""
    restarts: int
    """How many times that key was restarted."""


@final
@attrs.frozen(kw_only=True)
class SupervisorGaveUp:
    """The supervisor stops every child and fails upward with ``error``."""

    key: str
    """The key whose end made it give up."""
    time: float
    """When it happened, on trio's clock."""
    restarts: int
    """How many times that key was restarted."""
    error: BaseException
    """What the supervisor fails with (:class:`GaveUpError` or
    :class:`TerminateTree`)."""

    @property
    def reason(self) -> str:
        """The real cause in one line (a nursery group's members, not the group)."""
        return describe(self.error)


SupervisorEvent = (
    ChildStarted
    | ChildStopped
    | ChildFailed
    | ChildRestarting
    | RestartsPaused
    | RestartsResumed
    | SupervisorGaveUp
)
"""Any of the events a :class:`Supervisor` reports."""

LEVELS: Final[dict[type[object], int]] = {
    ChildStarted: logging.INFO,
    ChildStopped: logging.INFO,
    ChildFailed: logging.WARNING,
    ChildRestarting: logging.INFO,
    RestartsPaused: logging.WARNING,
    RestartsResumed: logging.INFO,
    SupervisorGaveUp: logging.ERROR,
}

_logger = logging.getLogger("proctree.supervisor")


@final
class _Line:
    """An event's log line, formatted when (and if) the record is."""

    __slots__ = ("event",)

    def __init__(self, event: SupervisorEvent) -> None:
        self.event = event

    def __str__(self) -> str:
        return _line(self.event)


def _line(event: SupervisorEvent) -> str:
    """The event for a log line, its error described by its real cause."""
    fields = [f"key={event.key!r}", f"restarts={event.restarts}"]
    delay = getattr(event, "delay", None)
    if delay is not None:
        fields.append(f"delay={delay:g}s")
    error = getattr(event, "error", None)
    if error is not None:
        fields.append(f"error={describe(error)}")
    return f"{type(event).__name__}({', '.join(fields)})"


@final
@attrs.define(eq=False)
class EventReporter:
    """Where a supervisor's events go: its logger, then its ``on_event`` hook."""

    name: str
    """The supervisor's name, for the log lines."""
    hook: Callable[[SupervisorEvent], object] | None
    process: Process | None = None
    """The supervisor's process: its tree's instruments see every event."""

    def report(
        self, kind: type[SupervisorEvent], key: str, restarts: int, **fields: object
    ) -> None:
        """Make a ``kind`` event about ``key`` now and report it.

        A hook that raises is logged, never propagated (this runs inside the
        close driver). An event nobody would see (its level not logged, no
        instruments, no hook) is not made at all.
        """
        level = LEVELS[kind]
        logs = _logger.isEnabledFor(level)
        watched = self.process is not None and has_instruments(self.process)
        if not logs and not watched and self.hook is None:
            return
        event: SupervisorEvent = kind(
            key=key,
            time=trio.current_time(),
            restarts=restarts,
            **fields,  # type: ignore[arg-type]
        )
        if logs:
            # Made by hand: logging's search for the caller would only ever
            # find this line, and the message is formatted only if a
            # handler formats it (a failing child logs at every restart).
            _logger.handle(
                _logger.makeRecord(
                    _logger.name,
                    level,
                    __file__,
                    0,
                    "supervisor %r: %s",
                    (self.name, _Line(event)),
                    None,
                    "report",
                    _facts(self.name, event),
                )
            )
        if watched and self.process is not None:
            instrument_hook(self.process, "supervisor_event", event)
        hook = self.hook
        if hook is not None:
            try:
                hook(event)
            except Exception:
                _logger.exception(
                    "on_event hook %r failed on %r",
                    hook,
                    event,
                    extra=_facts(self.name, event),
                )


def _facts(name: str, event: SupervisorEvent) -> dict[str, object]:
    """The ``extra`` fields of an event's log record (docs/production.rst)."""
    fields: dict[str, object] = {
        "proctree_event": type(event).__name__,
        "proctree_supervisor": name,
        "proctree_key": event.key,
        "proctree_restarts": event.restarts,
    }
    delay = getattr(event, "delay", None)
    if delay is not None:
        fields["proctree_delay"] = delay
    error = getattr(event, "error", None)
    if isinstance(error, BaseException):
        fields["proctree_error_type"] = type(error).__name__
        fields["proctree_error"] = describe(error)
    return fields
