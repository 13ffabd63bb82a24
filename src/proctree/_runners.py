"""Runner combinators: leaf, start_stop, nop, prefixed_error and the dependency ones.

A runner is ``async def run(ready)`` (or an object with such a ``run``): it
initialises, awaits ``ready()`` once it serves, and shuts down gracefully
when ``ready()`` returns. The combinators build runners out of runners.
Running a dependency combinator makes one child process per dependency,
so the tree shows ``sequential[db, cache, http]`` and each node's state;
the combinator decides when each dependency stops.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, final

import attrs
import trio

from ._errors import InvalidStateError, ProctreeError, exception_tree
from ._process import (
    Process,
    Ready,
    RunFn,
    Runner,
    RunnerObject,
    check_async_callable,
    close_by,
    current_process,
    forced_at,
    is_cancellation,
    is_closing,
    new_process,
    release_close,
    runner_callable,
    runner_name,
    set_keeper,
    startup_failure,
)

__all__ = [
    "chain",
    "leaf",
    "nop",
    "parallel",
    "prefixed_error",
    "sequential",
    "start_stop",
]

AsyncFn = Callable[[], Awaitable[object]]


def _one(errors: Sequence[BaseException], message: str) -> BaseException:
    """The single failure, or a group when there are several."""
    if len(errors) == 1:
        return errors[0]
    return BaseExceptionGroup(message, list(errors))


def _also(
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
        failures: list[BaseException] = []
        ended = trio.Event()
        foreground_scope = trio.CancelScope()
        ready_scope = trio.CancelScope()

        async def foreground() -> None:
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
                nursery.start_soon(foreground, name=self.name)
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
                        foreground_scope.cancel()
                await ended.wait()
        except BaseException as exc:
            # Forced (cancelled) while stopping: what already failed goes
            # with the cancellation instead of being dropped.
            pending = [
                *failures,
                *(e for e in (ready_error, stop_error) if e is not None),
            ]
            joined = _also(exc, pending, f"leaf {self.name!r} failed while stopping")
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
            if failures and ready_error.__context__ is None:
                ready_error.__context__ = failures[0]
            raise ready_error
        errors = [*failures, *([stop_error] if stop_error is not None else [])]
        if errors:
            raise _one(errors, f"leaf {self.name!r} failed while stopping")


def leaf(
    run_in_foreground: AsyncFn,
    graceful_stop: AsyncFn | None = None,
    *,
    name: str | None = None,
) -> RunnerObject:
    """A runner that runs ``run_in_foreground()`` until it is stopped.

    ``ready()`` is called as soon as ``run_in_foreground`` has been launched.
    When the process is stopped, ``graceful_stop()`` is called (it should
    make ``run_in_foreground`` return) and the leaf waits for the foreground;
    with no ``graceful_stop``, the foreground is cancelled at once. Past the
    process's grace, everything is cancelled.

    A failure of the foreground is the leaf's failure; the foreground
    returning while the process runs is a failure too (a
    :class:`~proctree.ProctreeError`). If the ``ready`` callback itself
    raises, that error wins.

    Args:
        run_in_foreground: ``async def fn() -> None``, the work.
        graceful_stop: ``async def fn() -> None`` that asks the work to end.
        name: the name of its process; by default the foreground's name.

    Raises:
        TypeError: an argument is not an async function.
    """
    check_async_callable(run_in_foreground, "leaf", "run_in_foreground()")
    if graceful_stop is not None:
        check_async_callable(graceful_stop, "leaf", "graceful_stop()")
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
        """Start, report ready, then stop; a start failure skips the stop."""
        await self.start_in_background()
        try:
            await ready()
        finally:
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

    Raises:
        TypeError: an argument is not an async function.
    """
    check_async_callable(start_in_background, "start_stop", "start_in_background()")
    check_async_callable(graceful_stop, "start_stop", "graceful_stop()")
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


def nop() -> RunnerObject:
    """A runner that does nothing: ready at once, stops at once."""
    return Nop()


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


def prefixed_error(prefix: str, runner: Runner) -> RunnerObject:
    """Wrap ``runner`` so that its failure carries ``prefix``.

    The prefix is added as a note (``add_note``), so the exception keeps its
    type and ``except*`` still matches it.

    Raises:
        TypeError: ``prefix`` is not a str or ``runner`` not a runner.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefixed_error(): prefix must be a str, got {prefix!r}")
    inner = runner_callable(runner, "prefixed_error")
    return PrefixedError(
        prefix, inner, runner_name(runner), getattr(runner, "default_grace", None)
    )


# ---------------------------------------------------------- dependencies


@final
@attrs.define(eq=False)
class _Dependencies:
    """Keeps a combinator's dependencies: takes their failures, sees them close."""

    owner: Process
    failures: list[BaseException] = attrs.field(factory=list)
    # Failures of parts that did not start (parallel): raised by the
    # combinator's start, and never lost if that start is cancelled.
    startup: list[BaseException] = attrs.field(factory=list)
    stopping: bool = False
    done: bool = False

    def take(self, p: Process, exc: BaseException) -> bool:
        if self.done:
            # Our runner has ended: a late failure of a part belongs to our
            # start if it is still being waited for, else it travels up.
            return startup_failure(self.owner, exc)
        self.failures.append(exc)
        close_by(self.owner, None)
        return True

    def closed(self, p: Process) -> None:
        if not self.stopping and not self.done:
            # A dependency ended by itself: the others are stopped too.
            close_by(self.owner, None)


_SEQUENTIAL: Final = "sequential"
_CHAIN: Final = "chain"
_PARALLEL: Final = "parallel"


@final
@attrs.frozen
class Dependencies:
    """The runner :func:`sequential`, :func:`chain` and :func:`parallel` return."""

    kind: str
    deps: tuple[Runner, ...]
    name: str
    default_grace: float = math.inf
    """A combinator waits for its dependencies, each stopped with its own
    grace; only an explicit grace bounds it."""

    async def run(self, ready: Ready) -> None:
        """Start the dependencies, report ready, stop them when asked."""
        me = current_process(f"{self.kind}()")
        keeper = _Dependencies(me)
        try:
            if self.kind == _PARALLEL:
                await self._run_parallel(me, keeper, ready)
            else:
                await self._run_stack(me, keeper, ready)
        except BaseException as exc:
            keeper.done = True
            # A dependency's failure taken while this runner was failing or
            # being forced is still this runner's: never dropped.
            joined = _also(
                exc, [*keeper.startup, *keeper.failures], f"{self.name} failed"
            )
            if joined is exc:
                raise
            raise joined from None
        keeper.done = True
        if keeper.failures:
            raise _one(keeper.failures, f"{self.name} failed")

    async def _run_stack(
        self, me: Process, keeper: _Dependencies, ready: Ready
    ) -> None:
        started: list[Process] = []
        try:
            parent = me
            for dep in self.deps:
                if is_closing(me) or keeper.failures:
                    break
                child = new_process(dep, parent=parent)
                set_keeper(child, keeper)
                try:
                    await child.start()
                except InvalidStateError as exc:
                    if not is_closing(me):
                        keeper.startup.append(exc)
                        raise
                    # We are being stopped: it was stopped while starting.
                    started.append(child)
                    break
                except BaseException as exc:
                    if not is_cancellation(exc):
                        # Kept, in case the roll-back below is forced.
                        keeper.startup.append(exc)
                    raise
                release_close(parent, child)
                started.append(child)
                if self.kind == _CHAIN:
                    parent = child
            if not is_closing(me) and not keeper.failures:
                await ready()
        finally:
            keeper.stopping = True
            await _stop_in_order(me, started[::-1])

    async def _run_parallel(
        self, me: Process, keeper: _Dependencies, ready: Ready
    ) -> None:
        children = [new_process(dep, parent=me) for dep in self.deps]
        for child in children:
            set_keeper(child, keeper)
        startup = keeper.startup
        rolled_back = False

        async def start_one(child: Process) -> None:
            nonlocal rolled_back
            try:
                await child.start()
            except Exception as exc:
                if isinstance(exc, InvalidStateError) and (
                    rolled_back or is_closing(me)
                ):
                    return  # stopped while starting, by a roll-back or a stop
                startup.append(exc)
                if not rolled_back:
                    rolled_back = True
                    for other in children:
                        close_by(other, None)

        try:
            async with trio.open_nursery() as nursery:
                for child in children:
                    nursery.start_soon(start_one, child, name=child.name)
            if startup:
                raise _one(startup, f"{self.name} failed to start")
            if not is_closing(me) and not keeper.failures:
                await ready()
        finally:
            keeper.stopping = True
            await _stop_together(me, children)


async def _stop_in_order(me: Process, deps: list[Process]) -> None:
    """Stop ``deps`` one after another; forced ones are all asked at once."""
    deadline = forced_at(me)
    for i, dep in enumerate(deps):
        close_by(dep, deadline)
        try:
            await dep.closed.wait()
        except BaseException:
            now = trio.current_time()
            for rest in deps[i + 1 :]:
                close_by(rest, now)
            raise


async def _stop_together(me: Process, deps: list[Process]) -> None:
    deadline = forced_at(me)
    for dep in deps:
        close_by(dep, deadline)
    try:
        for dep in deps:
            await dep.closed.wait()
    except BaseException:
        now = trio.current_time()
        for dep in deps:
            close_by(dep, now)
        raise


def _dependencies(kind: str, runners: tuple[Runner, ...]) -> RunnerObject:
    for runner in runners:
        runner_callable(runner, kind)
    names = ", ".join(runner_name(r) for r in runners)
    return Dependencies(kind, runners, f"{kind}[{names}]")


def sequential(*runners: Runner) -> RunnerObject:
    """A runner that starts ``runners`` one after another and stops them in reverse.

    Each dependency runs in a child process; the next starts once the
    previous is ready, and ``ready()`` is called once all are. When stopped,
    they are stopped last-started first, like a stack, each with its own
    grace (a grace given to ``stop()`` bounds them all). If one fails to
    start, those already started are stopped and the failure is raised; if
    one fails or ends while running, the others are stopped and the failure
    is this runner's.

    Raises:
        TypeError: an argument is not a runner.
    """
    return _dependencies(_SEQUENTIAL, runners)


def chain(*runners: Runner) -> RunnerObject:
    """Like :func:`sequential`, but each dependency runs under the previous one.

    The tree nests (``db`` holds ``cache`` holds ``http``), so each
    dependency is visibly inside the one it needs; order, stop and failure
    behave as in :func:`sequential`.

    Raises:
        TypeError: an argument is not a runner.
    """
    return _dependencies(_CHAIN, runners)


def parallel(*runners: Runner) -> RunnerObject:
    """A runner that starts ``runners`` together and stops them together.

    ``ready()`` is called once every dependency is ready. If one fails to
    start, the others are stopped and the failure is raised; if one fails
    or ends while running, the others are stopped and the failure is this
    runner's.

    Raises:
        TypeError: an argument is not a runner.
    """
    return _dependencies(_PARALLEL, runners)
