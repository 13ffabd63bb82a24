"""The dependency combinators: sequential, chain and parallel.

Running one makes one child process per dependency, so the tree shows
``sequential[db, cache, http]`` and each node's state; the combinator
decides when each dependency's ``ready()`` returns, so when it stops.
A combinator's default name lists at most three of its parts, and a part
that is itself a combinator by its kind alone (``docs/design-compose.md``).
"""

from __future__ import annotations

import math
from typing import Final, final

import attrs
import trio

from .._core import (
    InvalidStateError,
    Process,
    Ready,
    Runner,
    RunnerObject,
    State,
    check_name,
    close_by,
    current_process,
    forced_at,
    forget_on_closing,
    is_closing,
    join_failures,
    launch,
    new_process,
    on_closing,
    one_failure,
    release_close,
    runner_callable,
    runner_name,
    set_keeper,
    startup_failure,
)

__all__ = ["chain", "parallel", "sequential"]


# ---------------------------------------------------------- dependencies


@final
@attrs.define(eq=False)
class _Dependencies:
    """Keeps a combinator's dependencies: takes their failures, sees them close."""

    owner: Process
    failures: list[BaseException] = attrs.field(factory=list[BaseException])
    # Failures of parts that did not start (parallel): raised by the
    # combinator's start, and never lost if that start is cancelled.
    startup: list[BaseException] = attrs.field(factory=list[BaseException])
    stopping: bool = False
    done: bool = False
    # A stop in order (sequential, chain): the dependencies left to stop,
    # the next first; each is closed as the one before it becomes CLOSED,
    # inside the driver, with no task step in between.
    order: list[Process] = attrs.field(factory=list[Process])
    deadline: float | None = None
    advancing: bool = False

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
        elif self.order:
            self.advance()

    def advance(self) -> None:
        """Close the next dependency of the order once those before it are CLOSED."""
        if self.advancing:
            return  # a close below made one CLOSED at once: the loop sees it
        self.advancing = True
        try:
            order = self.order
            while order:
                head = order[0]
                if not _is_closed(head):
                    close_by(head, self.deadline)
                    if not _is_closed(head):  # closing: its close calls back
                        break
                del order[0]
        finally:
            self.advancing = False


def _is_closed(p: Process) -> bool:
    return p.state is State.CLOSED


@final
@attrs.define(eq=False)
class _Starts:
    """Starts a stack's dependencies one after another, each from the last's ready().

    Each is launched (no ``start()`` waits for it) and the next is launched
    from the previous one's ready callback, in that dependency's own task:
    the combinator's task wakes once, when all are up or the run of starts
    broke off (a failure, a close; ``docs/design-compose.md``, section 8).
    A startup failure travels up to the keeper, which closes the
    combinator: it is the combinator's to raise, as any failure of a part.
    """

    me: Process
    keeper: _Dependencies
    deps: tuple[Runner, ...]
    nest: bool  # chain: each under the one before
    started: list[Process] = attrs.field(factory=list[Process])
    current: Process | None = None  # launched, not ready yet
    done: trio.Event = attrs.field(factory=trio.Event)

    def parent(self) -> Process:
        """Where the next part goes: under the last one in a chain."""
        return self.started[-1] if self.nest and self.started else self.me

    async def run(self) -> None:
        wake = self.done.set  # one bound method, to forget it by identity
        if not on_closing(self.me, wake):
            return
        try:
            self.launch_next()
            await self.done.wait()
        finally:
            forget_on_closing(self.me, wake)
            if self.current is not None:
                # Stopped (or failed) while starting: stopped with the rest.
                self.started.append(self.current)
                self.current = None

    def launch_next(self) -> None:
        index = len(self.started)
        if index == len(self.deps) or is_closing(self.me) or self.keeper.failures:
            self.done.set()
            return
        try:
            child = new_process(self.deps[index], parent=self.parent())
        except Exception as exc:
            self.keeper.failures.append(exc)
            self.done.set()
            return
        set_keeper(child, self.keeper)
        self.current = child
        launch(child, math.inf, self.ready)

    def ready(self, child: Process) -> None:
        """A dependency became RUNNING: keep it, launch the next one."""
        if child is not self.current:
            return
        release_close(self.parent(), child)
        self.started.append(child)
        self.current = None
        self.launch_next()


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
    named: bool = False
    """Whether ``name`` was given (else it is the short default)."""
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
            joined = join_failures(
                exc, [*keeper.startup, *keeper.failures], f"{self.name} failed"
            )
            if joined is exc:
                raise
            raise joined from None
        keeper.done = True
        if keeper.failures:
            raise one_failure(keeper.failures, f"{self.name} failed")

    async def _run_stack(
        self, me: Process, keeper: _Dependencies, ready: Ready
    ) -> None:
        starts = _Starts(me, keeper, self.deps, nest=self.kind == _CHAIN)
        try:
            await starts.run()
            if not is_closing(me) and not keeper.failures:
                await ready()
        finally:
            keeper.stopping = True
            await _stop_in_order(me, keeper, starts.started[::-1])

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
                raise one_failure(startup, f"{self.name} failed to start")
            if not is_closing(me) and not keeper.failures:
                await ready()
        finally:
            keeper.stopping = True
            await _stop_together(me, children)


async def _stop_in_order(
    me: Process, keeper: _Dependencies, deps: list[Process]
) -> None:
    """Stop ``deps`` one after another; forced ones are all asked at once.

    The keeper closes each as the one before it is CLOSED (see
    :meth:`_Dependencies.advance`); this task only waits for the last.
    """
    keeper.deadline = forced_at(me)
    keeper.order = list(deps)
    keeper.advance()
    try:
        # The first started is the last to close: waiting for it first
        # wakes this task once, not once per dependency.
        for dep in reversed(deps):
            if not _is_closed(dep):
                await dep.closed.wait()
    except BaseException:
        now = trio.current_time()
        rest, keeper.order = keeper.order, []
        for dep in rest:
            close_by(dep, now)
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


_SHOWN: Final = 3
"""How many parts a combinator's default name lists."""


def _label(runner: Runner) -> str:
    """How a part appears in its combinator's default name."""
    if isinstance(runner, Dependencies) and not runner.named:
        return runner.kind  # the nested combinator's own name lists its parts
    return runner_name(runner)


def default_name(kind: str, runners: tuple[Runner, ...]) -> str:
    """``kind[a, b, c, +2]``: at most three parts, nested combinators by kind."""
    labels = [_label(r) for r in runners[:_SHOWN]]
    if len(runners) > _SHOWN:
        labels.append(f"+{len(runners) - _SHOWN}")
    return f"{kind}[{', '.join(labels)}]"


def _dependencies(
    kind: str, runners: tuple[Runner, ...], name: str | None
) -> RunnerObject:
    for runner in runners:
        runner_callable(runner, kind)
    check_name(name, kind)
    if name is None:
        return Dependencies(kind, runners, default_name(kind, runners))
    return Dependencies(kind, runners, name, named=True)


def sequential(*runners: Runner, name: str | None = None) -> RunnerObject:
    """A runner that starts ``runners`` one after another and stops them in reverse.

    Each dependency runs in a child process; the next starts once the
    previous is ready, and ``ready()`` is called once all are. When stopped,
    they are stopped last-started first, like a stack, each with its own
    grace (a grace given to ``stop()`` bounds them all). If one fails to
    start, those already started are stopped and the failure is raised; if
    one fails or ends while running, the others are stopped and the failure
    is this runner's.

    Args:
        *runners: the dependencies, in start order.
        name: the name of the combinator's process; by default the kind
            and the first parts' names (``KIND[db, http, +2]``).

    Raises:
        TypeError: an argument is not a runner, or ``name`` not a str.
    """
    return _dependencies(_SEQUENTIAL, runners, name)


def chain(*runners: Runner, name: str | None = None) -> RunnerObject:
    """Like :func:`sequential`, but each dependency runs under the previous one.

    The tree nests (``db`` holds ``cache`` holds ``http``), so each
    dependency is visibly inside the one it needs; order, stop and failure
    behave as in :func:`sequential`.

    Args:
        *runners: the dependencies, in start order.
        name: the name of the combinator's process; by default the kind
            and the first parts' names (``KIND[db, http, +2]``).

    Raises:
        TypeError: an argument is not a runner, or ``name`` not a str.
    """
    return _dependencies(_CHAIN, runners, name)


def parallel(*runners: Runner, name: str | None = None) -> RunnerObject:
    """A runner that starts ``runners`` together and stops them together.

    ``ready()`` is called once every dependency is ready. If one fails to
    start, the others are stopped and the failure is raised; if one fails
    or ends while running, the others are stopped and the failure is this
    runner's.

    Args:
        *runners: the dependencies, in start order.
        name: the name of the combinator's process; by default the kind
            and the first parts' names (``KIND[db, http, +2]``).

    Raises:
        TypeError: an argument is not a runner, or ``name`` not a str.
    """
    return _dependencies(_PARALLEL, runners, name)
