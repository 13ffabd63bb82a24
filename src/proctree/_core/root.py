"""Roots: the ``async with`` blocks that own a nursery and host a tree."""

from __future__ import annotations

import contextlib
import signal as _signal
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final, final

import trio

from .checks import check_grace, check_seconds
from .current import CURRENT
from .driver import drive, fail, is_cancellation
from .errors import InvalidStateError, ProctreeError, exception_tree, leaf_exceptions
from .host import DEFAULT_GRACE, Host, emit
from .instrument import Instrument
from .node import Process
from .reasons import BODY_ENDED, ROOT_CLOSED, SIGNAL
from .state import State

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

__all__ = ["close_hosted", "host_of", "open_root", "with_signals"]

_UNCATCHABLE: Final = frozenset({_signal.SIGKILL, _signal.SIGSTOP})


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
    return _Once(_root(_check_name(name), check_grace(grace), (), _check(instruments)))


def with_signals(
    *signals: int,
    name: str = "root",
    grace: float = DEFAULT_GRACE,
    instruments: Sequence[Instrument] = (),
    drain: float = 0.0,
) -> AbstractAsyncContextManager[Process]:
    """Open a root (see :func:`open_root`) that closes when a signal arrives.

    The first of ``signals`` closes the root gracefully: a normal shutdown,
    the block exits without an exception unless something failed. A second
    signal while closing forces the shutdown: everything still running,
    teardowns included, is cancelled.

    With a ``drain``, the first signal does not close the root at once:
    the instruments' :meth:`~proctree.Instrument.draining` hook is called
    (a readiness probe turns "not ready" there), everything keeps running
    for ``drain`` seconds, then the root closes. A second signal during
    the drain forces the shutdown too.

    Args:
        *signals: the signals to handle; by default SIGINT and SIGTERM.
        name: the root's name.
        grace: the default grace of ``go`` functions in this tree, in seconds.
        instruments: event hooks called for every process of this tree.
        drain: seconds between the first signal and the close.

    Raises:
        TypeError: a signal is not a signal number.
        ValueError: a signal number is not valid, or ``drain`` is negative.
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
        if sig in _UNCATCHABLE:
            raise ValueError(
                f"with_signals(): {_signal.Signals(sig).name} cannot be caught: the "
                "kernel stops or kills the program without telling it; bind the "
                "root to signals a program can handle, such as SIGTERM and SIGINT"
            )
    return _Once(
        _root(
            _check_name(name),
            check_grace(grace),
            tuple(chosen),
            _check(instruments),
            check_seconds(drain, "with_signals(): drain"),
        )
    )


@final
class _Once:
    """A root's ``async with``, which can be entered once.

    A root is one tree's lifetime: entering the same object again would
    reopen a tree that has ended. Raises a clear error instead of the
    ``AttributeError`` a spent generator-based context manager gives.
    """

    __slots__ = ("_cm", "_entered")

    def __init__(self, cm: AbstractAsyncContextManager[Process]) -> None:
        self._cm = cm
        self._entered = False

    async def __aenter__(self) -> Process:
        if self._entered:
            raise InvalidStateError(
                "this root was already entered once: a root is one tree's "
                "lifetime; call proctree.open_root() (or with_signals()) again "
                "for a new one"
            )
        self._entered = True
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            raise ProctreeError(
                "a proctree root needs trio: enter it inside trio.run() "
                "(asyncio is not supported; anyio programs: anyio.run(..., "
                'backend="trio"))'
            ) from None
        return await self._cm.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._cm.__aexit__(exc_type, exc, tb)


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
    drain: float = 0.0,
) -> AsyncGenerator[Process, None]:
    failures: list[BaseException] = []
    try:
        # The signal receiver outlives the nursery, so the watcher task can
        # never see it closed, even when the body ends before it starts.
        with contextlib.ExitStack() as stack:
            receiver = None
            if signals:
                receiver = stack.enter_context(trio.open_signal_receiver(*signals))
            async with trio.open_nursery() as nursery:
                root = _make_root(nursery, name, grace, instruments)
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
                        drain,
                        name=f"{name}:signals",
                    )
                token = _enter_body(root)
                try:
                    with _body_scope(root):
                        yield root
                except BaseException as exc:
                    if is_cancellation(exc):
                        raise
                    fail(root, exc, "body")
                finally:
                    _leave_body(root, token)
                await _wait_hosted(root, host)
                watcher.cancel()
    except BaseException as exc:
        if not failures:
            raise
        raise _group(name, failures, exc) from None
    if failures:
        # ``from None``: the body's own exception, which ``async with`` was
        # handling, is inside the group; printing it as the context too
        # would show it twice.
        raise _group(name, failures, None) from None


def _group(
    name: str, failures: list[BaseException], escaped: BaseException | None
) -> BaseException:
    """Every failure, plus what else escaped the nursery, each once.

    One group of them, except a lone ``KeyboardInterrupt``, which leaves
    bare as it would leave ``trio.run`` (so ``except KeyboardInterrupt``
    works and Python exits as for Ctrl-C; ``docs/design.md``, section 5).
    """
    extra: list[BaseException] = []
    if escaped is not None:
        # A failure may be a group whose members escape again one by one
        # (a function's own nursery holding a KeyboardInterrupt): those
        # members are already in, inside their group.
        known = {id(e) for f in failures for e in exception_tree(f)}
        extra = [e for e in leaf_exceptions(escaped) if id(e) not in known]
    everything = [*failures, *extra]
    if len(everything) == 1 and isinstance(everything[0], KeyboardInterrupt):
        return everything[0]
    return BaseExceptionGroup(f"proctree root {name!r} failed", everything)


async def _watch_signals(
    receiver: AsyncIterator[int],
    root: Process,
    host: Host,
    scope: trio.CancelScope,
    drain: float,
) -> None:
    with scope:
        await anext(receiver)
        host.signals_seen = 1
        if drain > 0:
            if host.instruments:
                emit(host, "draining", root, drain)
            with trio.move_on_after(drain):
                await anext(receiver)
                _force(host)
                return
        close_hosted(root, host, SIGNAL)
        await anext(receiver)
        _force(host)


def _force(host: Host) -> None:
    """A second signal: force the shutdown, teardowns included."""
    host.signals_seen = 2
    host.nursery.cancel_scope.cancel()


# ------------------------------------------- the root process and its host


def _make_root(
    nursery: trio.Nursery, name: str, grace: float, instruments: tuple[Any, ...]
) -> Process:
    """Make the root process of a new host; its body is its own task.

    The root's own grace is 0: when it closes for any reason but the end of
    its body, the body is cancelled at once, as a nursery's body is.
    """
    host = Host(nursery, grace, instruments)
    root = Process._create(name, host, 0.0, State.RUNNING)
    root._task_alive = True
    root._scope = trio.CancelScope()
    root._kind = "root"
    root._born = trio.current_time()
    if instruments:
        emit(host, "created", root)
    return root


def _body_scope(root: Process) -> trio.CancelScope:
    """The cancel scope the root's body runs in (closing the root cancels it)."""
    scope = root._scope
    assert scope is not None
    return scope


def _enter_body(root: Process) -> object:
    """Make ``root`` the current process of the body; returns a reset token."""
    return CURRENT.set(root)


def _leave_body(root: Process, token: object) -> None:
    """The body has ended: close the root and every stray process it hosts."""
    CURRENT.reset(token)  # type: ignore[arg-type]
    host = root._host
    root._task_alive = False
    close_hosted(root, host, BODY_ENDED)


def close_hosted(root: Process, host: Host | None, why: str) -> None:
    """Close the root and every stray it hosts (each with its own grace).

    ``why`` is the root's close reason (``reasons.py``), unless it already
    has one.
    """
    if root._why is None and root._state is not State.CLOSED:
        root._why = why
    closes: list[tuple[Process, float | None]] = [(root, None)]
    if host is not None:
        for stray in host.strays:
            if stray._why is None:
                stray._why = ROOT_CLOSED
            closes.append((stray, None))
    drive(closes, [root])


def host_of(root: Process) -> Host:
    """The host of a root that has not closed yet."""
    host = root._host
    assert host is not None
    return host


async def _wait_hosted(root: Process, host: Host) -> None:
    """Wait until the root and every stray the host holds are CLOSED."""
    await root.closed.wait()
    while host.strays:
        stray = next(iter(host.strays))
        if stray._state is not State.CLOSING:
            if stray._why is None:
                stray._why = ROOT_CLOSED
            drive([(stray, None)], [])
        await stray.closed.wait()
