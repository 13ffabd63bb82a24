"""A restartable service: start, stop, restart, uptime and an error history."""

from __future__ import annotations

import collections
import math
from collections.abc import Awaitable, Callable
from typing import ClassVar, final

import attrs
import trio

from .._core import (
    InvalidStateError,
    Process,
    Ready,
    State,
    check_async_callable,
    check_grace,
    close_by,
    current_or_none,
    current_process,
    describe,
    forced_at,
    logger,
    new_process,
    release_close,
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
    stop_errors: list[Exception] = attrs.field(factory=list[Exception])

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

    A service is also a runner: pass it to :func:`sequential`,
    :func:`new_process` or ``proctree run`` and it is started when that
    process starts (ready once ``start_fn`` runs) and stopped when that
    process stops. While it is run that way, each run's process is a child
    of the runner's process, and a run that fails or ends still leaves the
    runner running: its errors stay in :attr:`errors`, and :meth:`start`
    or :meth:`restart` bring it back.

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
            process when the service is made, or, made outside every root,
            when it is first started. Ignored while the service is run as
            a runner: the runner's process is then the parent.
        name: the name of each run's process; by default ``start_fn``'s.
        max_errors: how many errors :attr:`errors` keeps (oldest dropped).
        grace: seconds ``start_fn`` gets to end after ``stop_fn`` before it
            is cancelled; by default the tree's grace.

    Raises:
        TypeError: ``start_fn`` or ``stop_fn`` is not an async function, or
            ``parent`` not a Process.
        ValueError: ``max_errors`` is not a positive int, or ``grace`` < 0.
        InvalidStateError: ``parent`` is CLOSED.
    """

    default_grace: ClassVar[float] = math.inf
    """Run as a runner, a service's stop is its run's (``grace=``): the
    runner's process itself never times out on its own."""

    _start_fn: Callable[[], Awaitable[object]]
    _stop_fn: Callable[[], Awaitable[object]]
    _parent: Process | None
    _host: Process | None  # the runner process running it, if any
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
        if parent is not None or current_or_none() is not None:
            self._parent = resolve_parent(parent, "Service")[0]
        else:
            self._parent = None  # made outside every root: found at start()
        self._host = None
        self._name = runner_name(start_fn) if name is None else name
        self._grace = None if grace is None else check_grace(grace)
        self._state = _ServiceState(collections.deque(maxlen=max_errors))
        self._process = None
        self._started_at = 0.0
        self._lock = trio.Lock()

    @property
    def name(self) -> str:
        """The name of each run's process (and of a runner process's default)."""
        return self._name

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
            ProctreeError: the service was made outside every root, with
                no ``parent``, and is started outside every root too.
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

    async def run(self, ready: Ready) -> None:
        """Run the service as a runner: start it, ``ready()``, then stop it.

        The calling runner's process becomes the parent of each run while
        this runs. A failure of ``stop_fn`` when it stops is raised here.

        Raises:
            InvalidStateError: another runner process runs this service.
            BaseException: the error of ``stop_fn`` at the stop.
        """
        me = current_process("Service.run()")
        host = self._host
        if host is not None:
            raise InvalidStateError(
                f"service {self._name!r} is already run by process {host.path!r}; "
                "a service runs in one runner process at a time"
            )
        self._host = me
        try:
            async with self._lock:
                await self._start()
            await ready()
            async with self._lock:
                # The bound of our own stop (stop(grace=) above) goes on.
                await self._stop(forced_at(me))
        except BaseException:
            # Forced (or failing): the run is forced with us, never left
            # running (its close no longer comes down from our process).
            run = self._process
            if run is not None:
                close_by(run, trio.current_time())
            raise
        finally:
            self._host = None

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
        host = self._host
        parent = host if host is not None else self._parent
        if parent is None:
            parent = self._parent = resolve_parent(None, "Service.start")[0]
        p = new_process(runner, parent=parent, name=self._name, grace=self._grace)
        set_keeper(p, self._state)
        self._state.runs += 1
        self._process = p
        await p.start()
        if host is not None:
            # Run as a runner, we stop our runs ourselves (run()'s stop
            # raises stop_fn's error); the runner still waits for them.
            release_close(host, p)
        self._started_at = trio.current_time()

    async def _call_stop_fn(self) -> None:
        try:
            await self._stop_fn()
        except Exception as exc:
            # Marked, so that stop() raises this and not start_fn's errors.
            self._state.stop_errors.append(exc)
            raise

    async def _stop(self, deadline: float | None = None) -> None:
        p = self._process
        if p is None or p.state is State.CLOSED:
            return
        self._state.stop_errors.clear()
        try:
            close_by(p, deadline)
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
