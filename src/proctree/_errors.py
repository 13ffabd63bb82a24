"""The exceptions proctree raises: one base, one subclass per kind of misuse."""

from __future__ import annotations

__all__ = [
    "CycleError",
    "InvalidStateError",
    "ProctreeError",
    "StartError",
    "StartTimeoutError",
]


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


class StartError(ProctreeError):
    """A runner returned before calling ``ready()``: it never started.

    Kept in the process's ``error`` and raised by ``start()``.
    """


class StartTimeoutError(ProctreeError, TimeoutError):
    """A runner did not call ``ready()`` within ``start(timeout=...)``.

    The runner was cancelled at once; the process is CLOSED.
    """


def exception_tree(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything inside it, groups included, depth first in order.

    Package-private; iterative, so deep nesting costs no recursion.
    """
    found: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        found.append(e)
        if isinstance(e, BaseExceptionGroup):
            stack.extend(reversed(e.exceptions))
    return found


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc`` that are not groups, in order."""
    return [e for e in exception_tree(exc) if not isinstance(e, BaseExceptionGroup)]
