"""Argument checks shared by every constructor: clear errors at the call.

Each check raises ``TypeError`` for a value of the wrong type and
``ValueError`` for a value out of range, with a message that says what to
pass instead.
"""

from __future__ import annotations

import functools
import inspect
import math
import types

__all__ = ["check_async_callable", "check_grace", "check_name", "check_seconds"]


def check_seconds(value: object, what: str) -> float:
    """``value`` as a number of seconds, at least 0 (``inf`` allowed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {value!r}")
    return float(value)


def check_grace(grace: object) -> float:
    """A grace period in seconds (see :func:`check_seconds`)."""
    return check_seconds(grace, "grace")


def check_name(name: object, what: str) -> None:
    """A process name given to ``what`` must be a str (or None: the default)."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{what}(): name must be a str, got {type(name).__name__}")


def check_async_callable(fn: object, what: str, example: str) -> None:
    """``fn`` must be an async function (or a callable object whose call is one).

    Args:
        fn: what the caller passed.
        what: the function that takes it, for the message (``"go"``).
        example: the signature to show (``"fn(proc)"``).
    """
    if type(fn) is types.FunctionType and fn.__code__.co_flags & inspect.CO_COROUTINE:
        return  # the common case, without inspect's unwrapping
    if not callable(fn):
        raise TypeError(
            f"{what}() needs an async function (async def {example}: ...), "
            f"got {fn!r}, which is not callable"
        )
    target: object = fn
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004
    ):
        return
    if (
        inspect.isfunction(target)
        or inspect.ismethod(target)
        or inspect.isbuiltin(target)
        or isinstance(target, type)
    ):
        label = getattr(target, "__qualname__", repr(target))
        raise TypeError(
            f"{what}() needs an async function (async def {example}: ...), "
            f"but {label} is not one; define it with 'async def'"
        )
