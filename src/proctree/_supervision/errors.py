"""The errors a supervisor raises."""

from __future__ import annotations

from .._core import ProctreeError

__all__ = [
    "GaveUpError",
    "NotRunningError",
    "ProcessExistsError",
    "ProcessNotFoundError",
]


class ProcessExistsError(ProctreeError):
    """``start_child(key)``: the key already has a live (or starting) process."""


class ProcessNotFoundError(ProctreeError):
    """The key has no live process, or the table has no runner for it."""


class NotRunningError(ProctreeError):
    """A per-key operation was called while the supervisor is not running."""


class GaveUpError(ProctreeError):
    """The failure count passed the policy's threshold with ``give_up``.

    Raised by the supervisor's process (its failure travels up the tree);
    ``__cause__`` is the child failure that tipped it over.
    """
