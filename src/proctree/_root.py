"""Roots: the ``async with`` blocks that own a nursery and host a tree."""

from __future__ import annotations

import contextlib
import signal as _signal
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import trio

from ._errors import leaf_exceptions
from ._instruments import Instrument
from ._process import (
    DEFAULT_GRACE,
    Host,
    Process,
    body_scope,
    check_grace,
    close_hosted,
    enter_body,
    fail,
    host_of,
    is_cancellation,
    leave_body,
    make_root,
    wait_hosted,
)

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

__all__ = ["open_root", "with_signals"]


def open_root(
    name: str = "root",
    *,
    grace: float = DEFAULT_GRACE,
    instruments: Sequence[Instrument] = (),
) -> AbstractAsyncContextManager[Process]:
    """Open a root process that owns a trio nursery and hosts a tree.

    The ``async with`` body is the root's own task. When the body ends, the
    root is closed (children first) and the block exits once everything it
    hosted is CLOSED. When the root closes for another reason (a failure
    below it, ``root.aclose()``), the body is cancelled, as a nursery's body
    is. Failures of processes below it leave the block as one
    :class:`BaseExceptionGroup` (each failure once).

    Args:
        name: the root's name.
        grace: the default grace of ``go`` functions in this tree, in seconds.
        instruments: event hooks called for every process of this tree.

    Returns:
        An async context manager yielding the root :class:`Process`.

    Raises:
        TypeError: ``name`` is not a str or ``grace`` not a number.
        ValueError: ``grace`` is negative.
    """
    return _root(_check_name(name), check_grace(grace), (), _check(instruments))


def with_signals(
    *signals: int,
    name: str = "root",
    grace: float = DEFAULT_GRACE,
    instruments: Sequence[Instrument] = (),
) -> AbstractAsyncContextManager[Process]:
    """Open a root (see :func:`open_root`) that closes when a signal arrives.

    The first of ``signals`` closes the root gracefully: a normal shutdown,
    the block exits without an exception unless something failed. A second
    signal while closing forces the shutdown: everything still running,
    teardowns included, is cancelled.

    Args:
        *signals: the signals to handle; by default SIGINT and SIGTERM.
        name: the root's name.
        grace: the default grace of ``go`` functions in this tree, in seconds.
        instruments: event hooks called for every process of this tree.

    Raises:
        TypeError: a signal is not a signal number.
        ValueError: a signal number is not valid.
    """
    chosen = signals or (_signal.SIGINT, _signal.SIGTERM)
    valid = _signal.valid_signals()
    for sig in chosen:
        if isinstance(sig, bool) or not isinstance(sig, int):
            raise TypeError(
                f"with_signals() takes signal numbers such as signal.SIGTERM, "
                f"got {sig!r}"
            )
        if sig not in valid:
            raise ValueError(f"with_signals(): {sig!r} is not a valid signal number")
    return _root(
        _check_name(name), check_grace(grace), tuple(chosen), _check(instruments)
    )


def _check(instruments: Sequence[Instrument]) -> tuple[Instrument, ...]:
    chosen = tuple(instruments)
    for instrument in chosen:
        if not isinstance(instrument, Instrument):
            raise TypeError(
                "instruments must be proctree.Instrument instances (subclass it "
                f"and override the hooks you need), got {instrument!r}"
            )
    return chosen


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"the root's name must be a str, got {type(name).__name__}")
    return name


@contextlib.asynccontextmanager
async def _root(
    name: str,
    grace: float,
    signals: tuple[int, ...],
    instruments: tuple[Instrument, ...],
) -> AsyncIterator[Process]:
    failures: list[BaseException] = []
    try:
        # The signal receiver outlives the nursery, so the watcher task can
        # never see it closed, even when the body ends before it starts.
        with contextlib.ExitStack() as stack:
            receiver = None
            if signals:
                receiver = stack.enter_context(trio.open_signal_receiver(*signals))
            async with trio.open_nursery() as nursery:
                root = make_root(nursery, name, grace, instruments)
                host = host_of(root)
                failures = host.failures
                watcher = trio.CancelScope()
                if receiver is not None:
                    nursery.start_soon(
                        _watch_signals,
                        receiver,
                        root,
                        host,
                        watcher,
                        name=f"{name}:signals",
                    )
                token = enter_body(root)
                try:
                    with body_scope(root):
                        yield root
                except BaseException as exc:
                    if is_cancellation(exc):
                        raise
                    fail(root, exc, "body")
                finally:
                    leave_body(root, token)
                await wait_hosted(root, host)
                watcher.cancel()
    except BaseException as exc:
        if not failures:
            raise
        raise _group(name, failures, exc) from None
    if failures:
        raise _group(name, failures, None)


def _group(
    name: str, failures: list[BaseException], escaped: BaseException | None
) -> BaseExceptionGroup[BaseException]:
    """One group of every failure, plus what else escaped the nursery, once."""
    extra: list[BaseException] = []
    if escaped is not None:
        leaves = leaf_exceptions(escaped)
        extra = [e for e in leaves if not any(e is f for f in failures)]
    return BaseExceptionGroup(f"proctree root {name!r} failed", [*failures, *extra])


async def _watch_signals(
    receiver: AsyncIterator[int],
    root: Process,
    host: Host,
    scope: trio.CancelScope,
) -> None:
    with scope:
        seen = 0
        async for _ in receiver:
            seen += 1
            host.signals_seen = seen
            if seen == 1:
                close_hosted(root, host)
            else:
                # A second signal while closing: force, teardowns included.
                host.nursery.cancel_scope.cancel()
                return
