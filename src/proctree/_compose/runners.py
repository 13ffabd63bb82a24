"""The leaf runners: leaf, start_stop, nop and prefixed_error.

A runner is ``async def run(ready)`` (or an object with such a ``run``): it
initialises, awaits ``ready()`` once it serves, and shuts down gracefully
when ``ready()`` returns. These runners wrap plain async functions; the
dependency combinators (``combinators.py``) build runners out of runners.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import final

import attrs
import trio

from .._core import (
    Process,
    ProctreeError,
    Ready,
    RunFn,
    Runner,
    RunnerObject,
    cancel_on_closing,
    check_async_callable,
    describe,
    forget_on_closing,
    is_cancellation,
    is_closing,
    join_failures,
    mark_ready,
    on_closing,
    one_failure,
    runner_callable,
    runner_name,
    runner_of,
)

__all__ = ["AsyncFn", "leaf", "nop", "prefixed_error", "start_stop"]

AsyncFn = Callable[[], Awaitable[object]]
"""A zero-argument async function, as ``leaf`` and ``start_stop`` take."""


def _ride_along(winner: BaseException, others: list[BaseException]) -> None:
    """Keep ``others`` with the error that wins: its context, else a note."""
    for other in others:
        if winner.__context__ is None:
            winner.__context__ = other
        else:
            winner.add_note(f"proctree: also failed meanwhile: {describe(other)}")


# ------------------------------------------------------------------ leaf


@final
@attrs.frozen
class Leaf:
    """The runner :func:`leaf` returns."""

    run_in_foreground: AsyncFn
    graceful_stop: AsyncFn | None
    name: str

    async def run(self, ready: Ready) -> None:
        """Run the foreground, report ready, stop gracefully when asked."""
        if self.graceful_stop is None:
            p = mark_ready(ready)
            if p is not None:
                await self._run_alone(p)
                return
        await self._run_beside(ready)

    async def _run_alone(self, p: Process) -> None:
        """The fast path: the foreground in this task, cancelled by the close.

        With no graceful stop, stopping is cancelling the foreground; so it
        needs no task, nursery or event of its own: the process is already
        reported ready, and the start of its close cancels the process's
        own scope (``docs/design-compose.md``, section 8).
        """
        if runner_of(p) is self:
            # The process's own runner: its own scope is cancelled as its
            # close begins (at once if it already has), which ends the
            # foreground and this runner, as it must with no graceful stop.
            scope = None
            stop = cancel_on_closing(p)
        else:
            # Run by another runner of the process, with the core's ready:
            # a scope of its own, so that its caller goes on after it.
            scope = trio.CancelScope()
            stop = scope.cancel
            if not on_closing(p, stop):
                stop()  # stopped before it began: the foreground is cancelled
        try:
            if scope is None:
                await self.run_in_foreground()
            else:
                with scope:
                    await self.run_in_foreground()
        finally:
            forget_on_closing(p, stop)
        if not is_closing(p):  # it ended by itself, not by a stop
            raise ProctreeError(
                f"leaf {self.name!r}: run_in_foreground returned while the "
                "process was running; a leaf must run until it is stopped"
            )

    async def _run_beside(self, ready: Ready) -> None:
        """The foreground in a task of its own, beside the wait on ``ready()``."""
        failures: list[BaseException] = []
        ended = trio.Event()
        foreground_scope = trio.CancelScope()
        ready_scope = trio.CancelScope()

        async def foreground(*, task_status: trio.TaskStatus[None]) -> None:
            # Reported started as its first step runs: ready() comes after
            # the foreground's first lines, so a sequential's next part,
            # launched from ready(), starts after them.
            task_status.started()
            try:
                with foreground_scope:
                    await self.run_in_foreground()
            except BaseException as exc:
                if is_cancellation(exc):
                    raise
                failures.append(exc)
            finally:
                ended.set()
                # Ending on its own first: wake the wait on ready().
                ready_scope.cancel()

        ready_error: BaseException | None = None
        stop_error: BaseException | None = None
        ended_first = False
        # Errors are raised after the nursery, so they keep their own type.
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(foreground, name=self.name)
                with ready_scope:
                    try:
                        await ready()
                    except BaseException as exc:
                        if is_cancellation(exc):
                            raise
                        ready_error = exc
                ended_first = ended.is_set() and ready_error is None
                if ended_first:
                    pass
                elif ready_error is not None or self.graceful_stop is None:
                    foreground_scope.cancel()
                else:
                    try:
                        await self.graceful_stop()
                    except BaseException as exc:
                        if is_cancellation(exc):
                            raise
                        stop_error = exc
                    # pact's Leaf: once the graceful stop has returned, what
                    # is left of the foreground is cancelled at once.
                    foreground_scope.cancel()
                await ended.wait()
        except BaseException as exc:
            # Forced (cancelled) while stopping: what already failed goes
            # with the cancellation instead of being dropped.
            pending = [
                *failures,
                *(e for e in (ready_error, stop_error) if e is not None),
            ]
            joined = join_failures(
                exc, pending, f"leaf {self.name!r} failed while stopping"
            )
            if joined is exc:
                raise
            raise joined from None
        if ended_first:
            if failures:
                raise failures[0]
            raise ProctreeError(
                f"leaf {self.name!r}: run_in_foreground returned while the "
                "process was running; a leaf must run until it is stopped"
            )
        if ready_error is not None:
            # The callback's error wins; the foreground's rides along.
            _ride_along(ready_error, failures)
            raise ready_error
        errors = [*failures, *([stop_error] if stop_error is not None else [])]
        if errors:
            raise one_failure(errors, f"leaf {self.name!r} failed while stopping")


def leaf(
    run_in_foreground: AsyncFn,
    graceful_stop: AsyncFn | None = None,
    *,
    name: str | None = None,
) -> RunnerObject:
    """A runner that runs ``run_in_foreground()`` until it is stopped.

    ``ready()`` is called as soon as ``run_in_foreground`` has begun (its
    first step has run: in a :func:`sequential`, the next part starts
    after the foreground's first lines).
    When the process is stopped, ``graceful_stop()`` is called: it should
    return once the work has wound down (a server's shutdown that waits for
    its requests, say). As soon as it returns, whatever is left of the
    foreground is cancelled (pact's Leaf); with no ``graceful_stop``, the
    foreground is cancelled at once. Past the process's grace, everything
    is cancelled.

    A failure of the foreground is the leaf's failure; the foreground
    returning while the process runs is a failure too (a
    :class:`~proctree.ProctreeError`). If the ``ready`` callback itself
    raises, that error wins.

    Args:
        run_in_foreground: ``async def fn() -> None``, the work.
        graceful_stop: ``async def fn() -> None`` that makes the work end
            and returns once it has.
        name: the name of its process; by default the foreground's name.

    Raises:
        TypeError: an argument is not an async function.
    """
    check_async_callable(run_in_foreground, "leaf", "run_in_foreground()", nargs=0)
    if graceful_stop is not None:
        check_async_callable(graceful_stop, "leaf", "graceful_stop()", nargs=0)
    return Leaf(run_in_foreground, graceful_stop, _name(name, run_in_foreground))


def _name(name: str | None, fn: object) -> str:
    if name is None:
        return runner_name(fn)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    return name


# ------------------------------------------------------------ start_stop


@final
@attrs.frozen
class StartStop:
    """The runner :func:`start_stop` returns."""

    start_in_background: AsyncFn
    graceful_stop: AsyncFn
    name: str

    async def run(self, ready: Ready) -> None:
        """Start, report ready, then stop; a start failure skips the stop.

        When ``ready()`` raises (a failure further along a chain) and the
        graceful stop fails too, the error from ``ready()`` wins and the
        stop's rides along as its context (pact's StartStop).
        """
        await self.start_in_background()
        try:
            await ready()
        except BaseException as exc:
            if is_cancellation(exc):
                await self.graceful_stop()
                raise
            try:
                await self.graceful_stop()
            except BaseException as stop_error:
                if is_cancellation(stop_error):
                    raise
                _ride_along(exc, [stop_error])
            raise
        await self.graceful_stop()


def start_stop(
    start_in_background: AsyncFn,
    graceful_stop: AsyncFn,
    *,
    name: str | None = None,
) -> RunnerObject:
    """A runner for a service that starts itself in the background.

    ``start_in_background()`` is awaited (its failure fails the start, and
    then ``graceful_stop`` is not called), ``ready()`` is called, and when
    the process is stopped ``graceful_stop()`` is awaited; its failure is
    the process's failure.

    Args:
        start_in_background: ``async def fn() -> None`` that starts the
            service and returns once it serves.
        graceful_stop: ``async def fn() -> None`` that stops it.
        name: the name of its process; by default the start function's.

    Raises:
        TypeError: an argument is not an async function.
    """
    check_async_callable(
        start_in_background, "start_stop", "start_in_background()", nargs=0
    )
    check_async_callable(graceful_stop, "start_stop", "graceful_stop()", nargs=0)
    return StartStop(
        start_in_background, graceful_stop, _name(name, start_in_background)
    )


# --------------------------------------------------- nop, prefixed_error


@final
@attrs.frozen
class Nop:
    """The runner :func:`nop` returns."""

    name: str = "nop"

    async def run(self, ready: Ready) -> None:
        """Be ready at once; return as soon as asked to stop."""
        await ready()


def nop(*, name: str | None = None) -> RunnerObject:
    """A runner that does nothing: ready at once, stops at once.

    Args:
        name: the name of its process; by default ``"nop"``.

    Raises:
        TypeError: ``name`` is not a str.
    """
    return Nop() if name is None else Nop(_name(name, None))


@final
@attrs.frozen
class PrefixedError:
    """The runner :func:`prefixed_error` returns."""

    prefix: str
    inner: RunFn
    name: str
    default_grace: float | None

    async def run(self, ready: Ready) -> None:
        """Run the inner runner; note the prefix on its failure."""
        try:
            await self.inner(ready)
        except BaseException as exc:
            if not is_cancellation(exc):
                text = str(exc)
                exc.add_note(f"{self.prefix}: {text}" if text else self.prefix)
            raise


def prefixed_error(
    prefix: str, runner: Runner, *, name: str | None = None
) -> RunnerObject:
    """Wrap ``runner`` so that its failure carries ``prefix``.

    The prefix is added as a note (``add_note``), so the exception keeps its
    type and ``except*`` still matches it.

    Args:
        prefix: the text put before the failure's message.
        runner: the runner to wrap.
        name: the name of its process; by default ``runner``'s.

    Raises:
        TypeError: ``prefix`` or ``name`` is not a str, or ``runner`` not a
            runner.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefixed_error(): prefix must be a str, got {prefix!r}")
    inner = runner_callable(runner, "prefixed_error")
    return PrefixedError(
        prefix,
        inner,
        runner_name(runner) if name is None else _name(name, None),
        getattr(runner, "default_grace", None),
    )
