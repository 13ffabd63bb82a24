"""The exceptions proctree raises: one base, one subclass per kind of misuse."""

from __future__ import annotations

from collections.abc import Sequence

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


def one_failure(errors: Sequence[BaseException], message: str) -> BaseException:
    """The single failure, or a group when there are several."""
    if len(errors) == 1:
        return errors[0]
    return BaseExceptionGroup(message, list(errors))


def join_failures(
    exc: BaseException, failures: Sequence[BaseException], message: str
) -> BaseException:
    """``exc``, joined by ``failures`` that would otherwise be lost.

    With a cancellation, the group holds the ``Cancelled`` itself: the
    cancel scope that caused it takes it out of the group, as it does for a
    nursery's, and the failures go on (nothing is swallowed).
    """
    known = exception_tree(exc)
    missing = [f for f in failures if not any(f is k for k in known)]
    if not missing:
        return exc
    return BaseExceptionGroup(message, [exc, *missing])


def describe(exc: BaseException) -> str:
    """One line naming the real cause: ``Type: message`` of each leaf.

    An exception group (a nursery's) is described by its members, not as
    "Exceptions from Trio nursery (1 sub-exception)"; an exception with an
    empty message is its type alone.
    """
    leaves = leaf_exceptions(exc)
    parts = [f"{type(e).__name__}: {e}" if str(e) else type(e).__name__ for e in leaves]
    if len(parts) == 1:
        return parts[0]
    return f"{len(parts)} failures: " + "; ".join(parts)
