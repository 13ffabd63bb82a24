"""Why a process began closing: one short word or phrase, kept on the node.

The driver picks the reason the moment a process moves to CLOSING, from
what it knows then (docs/design-seeing.md); tree views and instruments
read it with :func:`close_reason`.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BODY_ENDED",
    "FAILED",
    "FAILURE_BELOW",
    "PARENT",
    "REASONS",
    "REQUESTED",
    "RETURNED",
    "ROOT_CLOSED",
    "SIGNAL",
]

FAILED: Final = "failed"
"""Its own function, runner or teardown raised."""
FAILURE_BELOW: Final = "failure below"
"""A process below it failed, and the failure closed its ancestors."""
PARENT: Final = "parent closed"
"""A process above it closed, and closing it was part of that close."""
RETURNED: Final = "returned"
"""Its own work ended: its function or runner returned, or
``close_after_children()`` saw its last child close."""
SIGNAL: Final = "signal"
"""A root closed by one of ``with_signals``' signals."""
BODY_ENDED: Final = "body ended"
"""A root whose ``async with`` body ended."""
ROOT_CLOSED: Final = "root closed"
"""A process under ``background()``, closed as its root ended."""
REQUESTED: Final = "requested"
"""Closed by a call: ``aclose()``, ``stop()``, or a keeper (a combinator
stopping a dependency, a supervisor stopping or restarting a child)."""

REASONS: Final = (
    FAILED,
    FAILURE_BELOW,
    PARENT,
    RETURNED,
    SIGNAL,
    BODY_ENDED,
    ROOT_CLOSED,
    REQUESTED,
)
"""Every reason, for documentation and for tests."""
