"""A ``go`` function's return value: kept on its process, awaited by result().

A ``go`` process has no runner, so the node's ``_run`` field, which holds a
runner until ``start()`` takes it, holds the function's value instead:
:data:`NO_VALUE` while the function runs, or if it was cancelled or
failed. Keeping it costs no field of its own (``docs/design-compose.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeVar, cast, final

from .errors import InvalidStateError, NoResultError

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultedTypeVar

    from .node import Process

    # What a go function returns: the type parameter of Process, whose
    # default makes a bare ``Process`` mean ``Process[object]``.
    R_co = DefaultedTypeVar("R_co", covariant=True, default=object)
else:
    R_co = TypeVar("R_co", covariant=True)

__all__ = ["NO_VALUE", "R_co", "result_of"]

_T = TypeVar("_T")


@final
class _NoValue:
    """The marker of a function that has not returned (or never will)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Final = _NoValue()


async def result_of(p: Process[_T]) -> _T:
    """The body of :meth:`Process.result`."""
    if p._kind != "go":
        raise InvalidStateError(
            f"process {p.name!r} runs no function, so it has no result: only "
            "a process made by go() has one (wait() waits for any process)"
        )
    await p.wait()
    value = p._run
    if value is NO_VALUE:
        raise NoResultError(
            f"process {p.name!r} closed before its function returned: it was "
            "cancelled (its grace ran out, or the close gave it none)"
        )
    return cast("_T", value)
