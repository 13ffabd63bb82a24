"""The life cycle states of a process."""

from __future__ import annotations

import enum

__all__ = ["State"]


class State(enum.Enum):
    """Where a :class:`~proctree.Process` is in its life cycle.

    States only move forward: INITIAL -> STARTING -> RUNNING -> CLOSING ->
    CLOSED (a process may skip states, never go back).
    """

    INITIAL = "initial"
    """Made by ``proctree.new_process``, not started yet."""
    STARTING = "starting"
    """Its runner was started and has not reported ready."""
    RUNNING = "running"
    """Running; processes made by ``go``, ``with_parent`` and ``with_teardown``
    start here."""
    CLOSING = "closing"
    """A close has begun; children are being closed and the teardown is due."""
    CLOSED = "closed"
    """Teardown has finished; nothing of the process runs any more."""
