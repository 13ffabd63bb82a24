"""trio's ``task_status`` protocol, both ways: startable() and from_task_status().

trio starts a task and waits until it is ready with ``await
nursery.start(fn)``: ``fn`` calls ``task_status.started(value)`` once it
serves. :func:`startable` makes a runner look like such a function;
:func:`from_task_status` makes such a function (``trio.serve_tcp`` and
everything built on it) a runner. See ``docs/design-compose.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, final

import attrs
import trio

from .._core import (
    Process,
    ProctreeError,
    Ready,
    Runner,
    RunnerObject,
    StartError,
    check_async_callable,
    check_name,
    check_seconds,
    close_by,
    is_cancellation,
    join_failures,
    new_process,
    one_failure,
    runner_callable,
    runner_name,
    set_keeper,
)

__all__ = ["from_task_status", "startable"]


# ------------------------------------------------------------- startable


@final
@attrs.define(eq=False)
class _Relay:
    """The keeper of a startable's process: its failures go to the waiting task."""

    listening: bool = False  # from started() on: the task raises them
    failures: list[BaseException] = attrs.field(factory=list[BaseException])

    def take(self, p: Process, exc: BaseException) -> bool:
        if not self.listening:
            return False  # a startup failure is start()'s: it never gets here
        self.failures.append(exc)
        return True

    def closed(self, p: Process) -> None:
        pass


@final
@attrs.frozen
class Startable:
    """The async function :func:`startable` returns, for ``nursery.start()``."""

    runner: Runner
    parent: Process | None
    name: str | None
    timeout: float | None

    async def __call__(
        self, *, task_status: trio.TaskStatus[Process] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the runner, report its process, wait until it is CLOSED.

        Raises:
            BaseException: the runner's startup failure (before
                ``started()``), or its failure while running.
        """
        p = new_process(self.runner, parent=self.parent, name=self.name)
        relay = _Relay()
        set_keeper(p, relay)
        await p.start(timeout=self.timeout)
        relay.listening = True
        task_status.started(p)
        try:
            await p.closed.wait()
        except BaseException as exc:
            # Cancelled: for a runner, cancellation is the forced stop.
            close_by(p, trio.current_time())
            with trio.CancelScope(shield=True):
                await p.closed.wait()
            joined = join_failures(exc, relay.failures, f"{p.name} failed")
            if joined is not exc:
                raise joined from None
            del joined  # a frame holding its own exception is a cycle
            raise
        if relay.failures:
            raise one_failure(relay.failures, f"{p.name} failed")


def startable(
    runner: Runner,
    *,
    parent: Process | None = None,
    name: str | None = None,
    timeout: float | None = None,
) -> Callable[..., Awaitable[None]]:
    """An async function that runs ``runner`` for ``await nursery.start(...)``.

    ``await nursery.start(proctree.startable(runner))`` makes the runner's
    process (as :func:`new_process` does), starts it, and returns once the
    runner called ``ready()``, with the :class:`Process` as the value
    ``task_status.started()`` was given: ``await proc.stop()`` stops it
    gracefully. The task then waits in the nursery until the process is
    CLOSED. A startup failure is raised by ``nursery.start()``; a failure
    while running is raised by the task, so by the nursery, as a trio
    task's would be (it does not also travel up the process tree).
    Cancelling the task (the nursery closing, say) is the forced stop: the
    runner is cancelled at once, and the task returns once its process is
    CLOSED.

    Args:
        runner: ``async def run(ready)``, or an object with such a ``run``.
        parent: the parent of the runner's process; None means the
            current process when the task starts.
        name: the process's name; by default the runner's.
        timeout: seconds the runner may take to call ``ready()``; past it
            :class:`StartTimeoutError` is raised.

    Returns:
        An async function taking only ``task_status``.

    Raises:
        TypeError: ``runner`` is not a runner, or an argument has the wrong
            type.
        ValueError: ``timeout`` is negative.
    """
    runner_callable(runner, "startable")
    check_name(name, "startable")
    if parent is not None and not isinstance(parent, Process):
        raise TypeError(
            "startable(): parent must be a proctree.Process or None, "
            f"got {type(parent).__name__}"
        )
    if timeout is not None:
        timeout = check_seconds(timeout, "startable(): timeout")
    return Startable(runner, parent, name, timeout)


# ------------------------------------------------------ from_task_status


@final
class _Reporter:
    """The ``task_status`` the function sees: it notes when it was used."""

    __slots__ = ("_real", "started_value", "was_started")

    def __init__(self, real: trio.TaskStatus[object]) -> None:
        self._real = real
        self.was_started = False
        self.started_value: object = None

    def started(self, value: object = None) -> None:
        """Pass ``value`` on to the nursery's ``task_status``."""
        self.was_started = True
        self.started_value = value
        self._real.started(value)


@final
@attrs.frozen
class TaskStatusRunner:
    """The runner :func:`from_task_status` returns."""

    fn: Callable[..., Awaitable[object]]
    args: tuple[object, ...]
    name: str
    on_started: Callable[[Any], object] | None

    async def run(self, ready: Ready) -> None:
        """Start the function, report ready once it called ``started()``.

        When ``ready()`` returns the function is cancelled: cancellation is
        the only stop such a function knows.
        """
        failures: list[BaseException] = []
        ended = trio.CancelScope()  # cancelled when the function ends

        async def serve(*, task_status: trio.TaskStatus[object]) -> None:
            reporter = _Reporter(task_status)
            try:
                await self.fn(*self.args, task_status=reporter)
            except BaseException as exc:
                if is_cancellation(exc) or not reporter.was_started:
                    raise  # before started(): nursery.start() raises it
                failures.append(exc)
            finally:
                if reporter.was_started:
                    ended.cancel()
            if not reporter.was_started:
                raise StartError(
                    f"{self.name}: the function returned before calling "
                    "task_status.started()"
                )

        stopped = False
        own: BaseException | None = None
        # Errors are raised after the nursery, so they keep their own type.
        try:
            async with trio.open_nursery() as nursery:
                try:
                    value = await nursery.start(serve, name=self.name)
                    with ended:
                        if self.on_started is not None:
                            self.on_started(value)
                        await ready()
                        stopped = True
                except Exception as exc:
                    own = exc  # a start failure, on_started's, or ready()'s
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            pending = [*failures, *([own] if own is not None else [])]
            joined = join_failures(exc, pending, f"{self.name} failed")
            if joined is not exc:
                raise joined from None
            del joined  # a frame holding its own exception is a cycle
            raise
        if own is not None:
            raise own
        if failures:
            raise one_failure(failures, f"{self.name} failed")
        if not stopped:
            raise ProctreeError(
                f"{self.name}: the function returned while its process was "
                "running; a runner must run until it is stopped"
            )


def _fn_name(fn: object) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func  # pyright: ignore[reportUnknownMemberType]
    return runner_name(fn)


def from_task_status(
    fn: Callable[..., Awaitable[object]],
    *args: object,
    name: str | None = None,
    on_started: Callable[[Any], object] | None = None,
) -> RunnerObject:
    """A runner of ``fn``, a function in trio's ``task_status`` style.

    ``fn(*args, task_status=...)`` is what ``await nursery.start(fn,
    *args)`` would run: it calls ``task_status.started(value)`` once it
    serves, as ``trio.serve_tcp`` does. The runner calls ``ready()`` then;
    ``on_started(value)`` is called first with what ``fn`` gave
    ``started()`` (``serve_tcp``'s listeners, say, to learn the port).
    When the process is stopped, ``fn`` is cancelled at once: such a
    function has no other way to be told to stop, so waiting out a grace
    first would only delay the stop. Use :func:`functools.partial` for
    keyword arguments, as for ``nursery.start``.

    A failure of ``fn`` before ``started()`` fails the start; returning
    before it is a :class:`StartError`. A failure afterwards is the
    process's failure, and returning while the process runs is a failure
    too (a :class:`ProctreeError`), as for a :func:`leaf`.

    Args:
        fn: an async function that takes a ``task_status`` keyword.
        *args: its positional arguments.
        name: the process's name; by default ``fn``'s.
        on_started: called with the value ``fn`` passed to ``started()``.

    Raises:
        TypeError: ``fn`` is not an async function, or ``on_started`` not
            callable, or ``name`` not a str.
    """
    check_async_callable(fn, "from_task_status", "fn(*args, task_status)")
    check_name(name, "from_task_status")
    if on_started is not None and not callable(on_started):
        raise TypeError(
            f"from_task_status(): on_started must be callable, got {on_started!r}"
        )
    label = _fn_name(fn) if name is None else name
    return TaskStatusRunner(fn, args, label, on_started)
