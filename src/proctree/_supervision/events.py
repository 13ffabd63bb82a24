"""The typed events a supervisor reports, and the log level of each."""

from __future__ import annotations

import logging
from typing import Final, final

import attrs

__all__ = [
    "LEVELS",
    "ChildFailed",
    "ChildRestarting",
    "ChildStarted",
    "ChildStopped",
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
