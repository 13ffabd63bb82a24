"""A restartable service: start, stop, restart, uptime and an error history."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from typing import final

import attrs
import trio

from .._core import (
    Process,
    State,
    check_async_callable,
    check_grace,
    describe,
    logger,
    new_process,
    resolve_parent,
    runner_name,
    set_keeper,
)
from .runners import leaf

__all__ = ["DEFAULT_MAX_ERRORS", "Service"]

DEFAULT_MAX_ERRORS = 100
"""How many errors a :class:`Service` remembers by default (the oldest go)."""


def _check_max_errors(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_errors must be an int >= 1, got {value!r}")


@attrs.define(eq=False)
class _ServiceState:
    """The parts of a service its keeper writes to."""

    errors: collections.deque[BaseException]
    runs: int = 0
    stop_errors: list[Exception] = attrs.field(factory=list)

    def take(self, p: Process, exc: BaseException) -> bool:
        self.errors.append(exc)
        return True

    def restarts(self, p: Process) -> int:
        return max(0, self.runs - 1)

    def closed(self, p: Process) -> None:
        pass


@final
@attrs.define(eq=False, init=False)
class Service:
    """A service that can be started, stopped and restarted (golib's startStop).

    ``start_fn`` runs while the service runs (it blocks, like a serve loop);
    ``stop_fn`` asks it to end. Each run is a process under ``parent``, so
    closing the parent stops the service. An error of ``start_fn`` or
    ``stop_fn`` goes to :attr:`errors`, never to the root; an error of
    ``stop_fn`` is also raised by :meth:`stop`.

    Calls are serialised: concurrent ``start`` / ``stop`` / ``restart`` calls
    take turns. As golib's startStop does, ``start`` of a running service
    stops it and starts it again, and each start begins a fresh
    :attr:`errors` list for its run; ``stop`` of a stopped service does
    nothing. ``stop`` calls ``stop_fn`` and waits for ``start_fn`` to end,
    within the grace.

    Args:
        start_fn: ``async def serve() -> None``, runs until asked to stop.
        stop_fn: ``async def stop() -> None``, asks ``start_fn`` to return.
        parent: the parent of each run's process; None means the current
            process (when the service is made).
        name: the name of each run's process; by default ``start_fn``'s.
        max_errors: how many errors :attr:`errors` keeps (oldest dropped).
        grace: seconds ``start_fn`` gets to end after ``stop_fn`` before it
            is cancelled; by default the tree's grace.

    Raises:
        TypeError: ``start_fn`` or ``stop_fn`` is not an async function.
        ValueError: ``max_errors`` is not a positive int, or ``grace`` < 0.
        ProctreeError: no ``parent`` and no current process.
    """

    _start_fn: Callable[[], Awaitable[object]]
    _stop_fn: Callable[[], Awaitable[object]]
    _parent: Process
    _name: str
    _grace: float | None
    _state: _ServiceState
    _process: Process | None
    _started_at: float
    _lock: trio.Lock

    def __init__(
        self,
        start_fn: Callable[[], Awaitable[object]],
        stop_fn: Callable[[], Awaitable[object]],
        parent: Process | None = None,
        *,
        name: str | None = None,
        max_errors: int = DEFAULT_MAX_ERRORS,
        grace: float | None = None,
    ) -> None:
        check_async_callable(start_fn, "Service", "start_fn()", nargs=0)
        check_async_callable(stop_fn, "Service", "stop_fn()", nargs=0)
        _check_max_errors(max_errors)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Service: name must be a str, got {type(name).__name__}")
        self._start_fn = start_fn
        self._stop_fn = stop_fn
        self._parent = resolve_parent(parent, "Service")[0]
        self._name = runner_name(start_fn) if name is None else name
        self._grace = None if grace is None else check_grace(grace)
        self._state = _ServiceState(collections.deque(maxlen=max_errors))
        self._process = None
        self._started_at = 0.0
        self._lock = trio.Lock()

    @property
    def is_running(self) -> bool:
        """Whether ``start_fn`` is running (started and not stopped or ended)."""
        p = self._process
        return p is not None and p.state is State.RUNNING

    @property
    def uptime(self) -> float:
        """Seconds (on trio's clock) since the current run started; 0 if stopped."""
        if not self.is_running:
            return 0.0
        return trio.current_time() - self._started_at

    @property
    def errors(self) -> list[BaseException]:
        """The errors of ``start_fn`` and ``stop_fn``, oldest first (bounded)."""
        return list(self._state.errors)

    @property
    def last_error(self) -> BaseException | None:
        """The most recent error, or None."""
        errors = self._state.errors
        return errors[-1] if errors else None

    @property
    def process(self) -> Process | None:
        """The process of the current (or last) run, if any."""
        return self._process

    async def start(self) -> None:
        """Launch ``start_fn`` and return once it runs.

        A running service is stopped first (a failure of ``stop_fn`` then is
        logged on the ``proctree`` logger, not raised: the new run starts
        anyway, as golib's ``Start`` does). The new run begins with an empty
        :attr:`errors` list.

        Raises:
            InvalidStateError: the parent is closed.
        """
        async with self._lock:
            await self._start()

    async def stop(self) -> None:
        """Call ``stop_fn``, wait for ``start_fn`` to end; nothing if stopped.

        ``start_fn`` is cancelled if it does not end within the grace.

        Raises:
            BaseException: the error of ``stop_fn`` (also kept in
                :attr:`errors`).
        """
        async with self._lock:
            await self._stop()

    async def restart(self) -> None:
        """Stop (if running), then start again.

        Raises:
            BaseException: the error of ``stop_fn``; the service then stays
                stopped.
        """
        async with self._lock:
            await self._stop()
            await self._start()

    async def _start(self) -> None:
        if self.is_running:
            try:
                await self._stop()
            except Exception as exc:
                logger.warning(
                    "service %r: stop_fn failed while start() restarted it: %s",
                    self._name,
                    describe(exc),
                    exc_info=exc,
                )
        self._state.errors.clear()
        ended = trio.Event()

        async def serve() -> None:
            try:
                await self._start_fn()
            finally:
                ended.set()

        async def stop() -> None:
            await self._call_stop_fn()
            # golib's Stop waits for the start function to end: the leaf
            # cancels the foreground as soon as this returns.
            await ended.wait()

        runner = leaf(serve, stop, name=self._name)
        p = new_process(runner, parent=self._parent, name=self._name, grace=self._grace)
        set_keeper(p, self._state)
        self._state.runs += 1
        self._process = p
        await p.start()
        self._started_at = trio.current_time()

    async def _call_stop_fn(self) -> None:
        try:
            await self._stop_fn()
        except Exception as exc:
            # Marked, so that stop() raises this and not start_fn's errors.
            self._state.stop_errors.append(exc)
            raise

    async def _stop(self) -> None:
        p = self._process
        if p is None or p.state is State.CLOSED:
            return
        self._state.stop_errors.clear()
        try:
            await p.aclose()
        except Exception:
            # Every error is in self.errors already; only stop_fn's is ours
            # to raise, start_fn's were the run's own business.
            stop_errors = list(self._state.stop_errors)
            self._state.stop_errors.clear()
            if len(stop_errors) == 1:
                raise stop_errors[0] from None
            if stop_errors:
                raise ExceptionGroup(
                    f"stop function of {self._name!r} failed", stop_errors
                ) from None
