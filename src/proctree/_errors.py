"""The exceptions proctree raises: one base, one subclass per kind of misuse."""

from __future__ import annotations

__all__ = ["CycleError", "InvalidStateError", "ProctreeError"]


class ProctreeError(Exception):
    """Base class of every error proctree raises for a misuse of its API.

    Failures of your own code (a process function or teardown that raises)
    are never wrapped in a :class:`ProctreeError`: they keep their own type.
    """


class InvalidStateError(ProctreeError):
    """An operation is not allowed in the process's current state.

    For example adding a child to a CLOSED process, or closing
    :func:`proctree.background`. The message names the state.
    """


class CycleError(ProctreeError):
    """An ``add_child`` or ``wait_for`` would make a process wait for itself.

    goprocess deadlocks in that case; proctree refuses the edge instead.
    """
