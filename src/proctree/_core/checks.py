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


def check_async_callable(
    fn: object, what: str, example: str, nargs: int | None = None
) -> None:
    """``fn`` must be an async function (or a callable object whose call is one).

    Args:
        fn: what the caller passed.
        what: the function that takes it, for the message (``"go"``).
        example: the signature to show (``"fn(proc)"``).
        nargs: if given, the number of positional arguments ``fn`` will be
            called with: a function that cannot take them is refused now,
            not when it is called.
    """
    if type(fn) is types.FunctionType and fn.__code__.co_flags & inspect.CO_COROUTINE:
        # The common case, without inspect's unwrapping.
        if nargs is not None:
            _check_arity_fast(fn, what, example, nargs)
        return
    if type(fn) is types.MethodType:
        func = fn.__func__
        if type(func) is types.FunctionType and (
            func.__code__.co_flags & inspect.CO_COROUTINE
        ):
            # A runner object's run: its function, with self as one more
            # argument.
            if nargs is not None and not _arity_fits(func, nargs + 1):
                _check_arity(fn, what, example, nargs)
            return
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
        if nargs is not None:
            _check_arity(fn, what, example, nargs)
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


def _arity_fits(fn: types.FunctionType, n: int) -> bool:
    """Whether ``n`` positional arguments fit ``fn``'s own parameters."""
    code = fn.__code__
    if code.co_kwonlyargcount > len(fn.__kwdefaults__ or ()):
        return False  # a required keyword-only parameter: let inspect say
    required = code.co_argcount - len(fn.__defaults__ or ())
    if code.co_flags & inspect.CO_VARARGS:
        return n >= required
    return required <= n <= code.co_argcount


def _check_arity_fast(fn: types.FunctionType, what: str, example: str, n: int) -> None:
    if not _arity_fits(fn, n):
        _check_arity(fn, what, example, n)


def _check_arity(fn: object, what: str, example: str, n: int) -> None:
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # no signature to read (some builtins): the call will tell
    try:
        signature.bind(*([None] * n))
    except TypeError as exc:
        label = getattr(fn, "__qualname__", None) or repr(fn)
        given = "1 positional argument" if n == 1 else f"{n} positional arguments"
        shown = signature.replace(return_annotation=inspect.Signature.empty)
        raise TypeError(
            f"{what}() will call {label}{shown} with {given} "
            f"({exc}); define it as async def {example}: ..."
        ) from None
