"""The process node: a DAG of processes with ordered, exactly-once teardown.

See ``docs/design.md`` for the design this module implements. In short:
the tree is data, the tasks are flat (one host nursery per root), and every
state change goes through one synchronous driver loop, :func:`_drive`, that
carries close requests down the tree and completions up it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import types
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    NoReturn,
    Protocol,
    TypeVar,
    TypeVarTuple,
    final,
)

import attrs
import trio

from ._errors import (
    CycleError,
    InvalidStateError,
    ProctreeError,
    StartError,
    StartTimeoutError,
)
from ._state import State

if TYPE_CHECKING:
    from typing import Unpack

__all__ = [
    "DEFAULT_GRACE",
    "Process",
    "Runner",
    "background",
    "go",
    "go_child",
    "new_process",
    "with_parent",
    "with_teardown",
]

DEFAULT_GRACE: Final = 5.0
"""Seconds a ``go`` function gets to end by itself once its process closes,
before its cancel scope is cancelled (see ``docs/design.md``, section 4)."""

# Edge bits, stored per child in the parent's ``_children`` dict.
_CLOSE: Final = 1  # closing the parent closes the child
_WAIT: Final = 2  # the parent is not CLOSED before the child is


_INITIAL: Final = State.INITIAL
_STARTING: Final = State.STARTING
_RUNNING: Final = State.RUNNING
_CLOSING: Final = State.CLOSING
_CLOSED: Final = State.CLOSED

_Ts = TypeVarTuple("_Ts")
_T = TypeVar("_T")

Teardown = Callable[[], Awaitable[object]]
"""A teardown: ``async def fn() -> None``, called once when the process closes."""

Ready = Callable[[], Awaitable[None]]
"""The callback a runner awaits once it is serving; it returns when the
process starts closing."""

RunFn = Callable[[Ready], Awaitable[object]]
"""``async def run(ready) -> None``: the function form of a runner."""


class RunnerObject(Protocol):
    """The object form of a runner: anything with an async ``run(ready)``.

    It may also carry ``name`` (the default process name) and
    ``default_grace`` (seconds; the default grace of its process).
    """

    def run(self, ready: Ready, /) -> Awaitable[object]:
        """Initialise, ``await ready()``, then shut down gracefully."""
        ...


Runner = RunFn | RunnerObject
"""What :func:`new_process` runs: ``async def run(ready)`` or a RunnerObject."""


class _NoPublicConstructor(type):
    """Metaclass that keeps ``Process(...)`` from being called by users."""

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor: "
            "make processes with proctree.go(), with_parent(), with_teardown() "
            "or open_root()"
        )

    def _create(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


_logger = logging.getLogger("proctree")
# A library logs, the application decides where to: no output by default.
_logger.addHandler(logging.NullHandler())


class Keeper(Protocol):
    """Who looks after a process it made: a combinator, a service, a supervisor.

    Package-private. ``take`` is offered the process's failure first and
    returns True to keep it from travelling up the tree; ``closed`` is told
    when the process is CLOSED. Both run synchronously inside the driver
    and must not raise. A keeper may also define ``restarts(p) -> int``,
    which tree views show.
    """

    def take(self, p: Process, exc: BaseException) -> bool:
        """Return True to take ``exc`` (a failure of ``p``) off the tree."""
        ...

    def closed(self, p: Process) -> None:
        """``p`` has become CLOSED."""
        ...


@final
@attrs.define(eq=False, repr=False, slots=True)
class Host:
    """What a root owns and lends to every process below it.

    Private to the package: the root creates it, processes use it to start
    tasks and to record failures.
    """

    nursery: trio.Nursery
    grace: float
    instruments: tuple[Any, ...] = ()
    failures: list[BaseException] = attrs.field(factory=list)
    strays: set[Process] = attrs.field(factory=set)
    signals_seen: int = 0

    def record(self, exc: BaseException) -> bool:
        """Record a failure once; return False if it was already recorded."""
        for known in self.failures:
            if known is exc:
                return False
        self.failures.append(exc)
        return True


@final
@attrs.define(eq=False, repr=False, slots=True, init=False)
class Process(metaclass=_NoPublicConstructor):
    """A node of the process tree (a DAG): something that runs and is torn down once.

    Processes are made by :func:`open_root`, :func:`go`, :func:`with_parent`,
    :func:`with_teardown` and :meth:`Process.go`, never by calling the class.

    Closing a process closes its children concurrently, waits for them and
    for the processes it waits for and for its own task, then runs its
    teardown exactly once, then sets :attr:`closed`.
    """

    name: str
    """The process's name, for error messages and tree views."""
    _host: Host | None
    _grace: float
    _state: State
    _forced: float
    _children: dict[Process, int] | None
    _ups: Process | list[Process] | None  # one parent, or a list of several
    _open_waits: int
    _task_alive: bool
    _auto_close: bool
    _torn: bool
    _teardown: Teardown | None
    _scope: trio.CancelScope | None
    _error: BaseException | None
    _closing_ev: trio.Event | None
    _watchers: list[Callable[[], object]] | None
    _closed_ev: trio.Event | None
    _keeper: Keeper | None
    _overran: bool
    _run: RunFn | None
    _startup: _Startup | None  # while a start() may still raise
    _kind: str
    _born: float

    def __init__(
        self, name: str, host: Host | None, grace: float, state: State
    ) -> None:
        self.name = name
        self._host = host
        self._grace = grace
        self._state = state
        self._forced = math.inf
        self._children = None
        self._ups = None
        self._open_waits = 0
        self._task_alive = False
        self._auto_close = False
        self._torn = False
        self._teardown = None
        self._scope = None
        self._error = None
        self._closing_ev = None
        self._watchers = None
        self._closed_ev = None
        self._keeper = None
        self._overran = False
        self._run = None
        self._startup = None
        self._kind = "process"
        self._born = 0.0

    def __repr__(self) -> str:
        return f"<proctree.Process {self.name!r} {self._state.name}>"

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """The process's current :class:`State`."""
        return self._state

    @property
    def error(self) -> BaseException | None:
        """This process's own failure, or None.

        The exception its function or teardown raised (a
        :class:`BaseExceptionGroup` of both if both failed). Failures of its
        children are theirs, not this process's.
        """
        return self._error

    @property
    def closing(self) -> trio.Event:
        """Set once closing has begun (``state`` is CLOSING or CLOSED)."""
        ev = self._closing_ev
        if ev is None:
            ev = self._closing_ev = trio.Event()
            if self._state is _CLOSING or self._state is _CLOSED:
                ev.set()
        return ev

    @property
    def closed(self) -> trio.Event:
        """Set once the teardown has finished and the process is CLOSED."""
        ev = self._closed_ev
        if ev is None:
            ev = self._closed_ev = trio.Event()
            if self._state is _CLOSED:
                ev.set()
        return ev

    # ------------------------------------------------------------- structure

    def go(
        self,
        fn: Callable[[Process, Unpack[_Ts]], Awaitable[object]],
        *args: *_Ts,
        name: str | None = None,
        grace: float | None = None,
    ) -> Process:
        """Start ``await fn(child, *args)`` in a new child process and return it.

        The child is added as with :meth:`add_child`: closing this process
        closes it and waits for it. When ``fn`` returns, the child closes
        once the children it waits for have closed.

        Args:
            fn: an async function taking the new process as first argument.
            *args: further positional arguments for ``fn``.
            name: the child's name; by default ``fn``'s name.
            grace: seconds ``fn`` may run on once the child is closing
                before it is cancelled; by default the tree's grace.

        Returns:
            The new child process, RUNNING (CLOSING if this process is).

        Raises:
            InvalidStateError: this process is CLOSED.
            TypeError: ``fn`` is not an async function.
        """
        return _spawn(self, fn, args, name, grace)

    def add_child(self, q: Process) -> None:
        """Make ``q`` a child: closing this process closes ``q`` and waits for it.

        If this process is CLOSING, ``q`` is closed at once and this process
        does not become CLOSED before ``q`` does. Adding a CLOSED ``q`` does
        nothing.

        Raises:
            InvalidStateError: this process is CLOSED.
            CycleError: ``q`` already waits (directly or not) for this process.
            TypeError: ``q`` is not a :class:`Process`.
        """
        check_process(q, "add_child")
        if self is _BACKGROUND:
            return
        self._check_open("add_child")
        _check_not_background(q, "a child")
        if _waits_on(q, self):
            raise CycleError(
                f"add_child would make {q.name!r} wait for itself through "
                f"{self.name!r}: the processes would wait for each other forever"
            )
        _link(self, q, _CLOSE | _WAIT)

    def add_child_no_wait(self, q: Process) -> None:
        """Make ``q`` a child that this process closes but does not wait for.

        ``q`` has begun closing before this process's teardown runs. If this
        process is CLOSING or CLOSED, ``q`` is closed at once.

        Raises:
            CycleError: ``q`` is this process.
            TypeError: ``q`` is not a :class:`Process`.
        """
        check_process(q, "add_child_no_wait")
        if self is _BACKGROUND:
            return
        _check_not_background(q, "a child")
        if q is self:
            raise CycleError(f"process {self.name!r} cannot be its own child")
        if self._state is _CLOSING or self._state is _CLOSED:
            _drive([(q, None)], [])
            return
        _link(self, q, _CLOSE)

    def wait_for(self, q: Process) -> None:
        """Do not let this process become CLOSED before ``q`` is, without closing ``q``.

        Honoured while CLOSING too (also from this process's teardown).

        Raises:
            InvalidStateError: this process is CLOSED.
            CycleError: ``q`` already waits (directly or not) for this process.
            TypeError: ``q`` is not a :class:`Process`.
        """
        check_process(q, "wait_for")
        if self is _BACKGROUND:
            return
        self._check_open("wait_for")
        _check_not_background(q, "waited for")
        if _waits_on(q, self):
            raise CycleError(
                f"wait_for would make {q.name!r} wait for itself through "
                f"{self.name!r}: the processes would wait for each other forever"
            )
        _link(self, q, _WAIT)

    def set_teardown(self, fn: Teardown) -> None:
        """Set (or replace) the teardown, ``async def fn() -> None``.

        It runs once, after children, waited-for processes and the process's
        own task have ended, and is never cancelled by a grace period.

        Raises:
            InvalidStateError: the teardown already started, or this is
                :func:`background`, which never closes.
            TypeError: ``fn`` is not an async function.
        """
        check_async_callable(fn, "set_teardown", "teardown()")
        if self is _BACKGROUND:
            raise InvalidStateError(
                "background() never closes, so a teardown on it would never run"
            )
        if self._torn:
            raise InvalidStateError(
                f"process {self.name!r} is {self._state.name} and its teardown "
                "has already started; set the teardown before it closes"
            )
        self._teardown = fn

    # ---------------------------------------------------------------- closing

    async def aclose(self, *, grace: float | None = None) -> None:
        """Close this process and wait until it is CLOSED. Idempotent.

        The close runs in the tree's own nursery: if the caller is cancelled
        while waiting, the close goes on. Called from this process's own
        function (or one it must wait for), that function is cancelled
        instead of waiting; called from such a teardown, it returns at once.

        Args:
            grace: if given, every process of the subtree is cancelled at the
                latest ``grace`` seconds from now; otherwise each uses its own.

        Raises:
            BaseException: this process's own failure (:attr:`error`), if any.
            InvalidStateError: this is :func:`background`.
        """
        if self is _BACKGROUND:
            raise InvalidStateError(
                "background() never closes; close the processes under it instead"
            )
        if self._state is not _CLOSED:
            deadline = None
            if grace is not None:
                deadline = trio.current_time() + check_grace(grace)
            _drive([(self, deadline)], [])
        await self._await_closed(by_close=True)

    async def close_after_children(self) -> None:
        """Close once every process this one waits for has closed by itself.

        Children are not closed or forced; when the last one is CLOSED, this
        process closes and the call returns once it is CLOSED.

        Raises:
            BaseException: this process's own failure, if any.
            InvalidStateError: this is :func:`background`.
        """
        if self is _BACKGROUND:
            raise InvalidStateError("background() never closes")
        if self._state is _RUNNING or self._state is _INITIAL:
            self._auto_close = True
            _drive([], [self])
        await self._await_closed(by_close=True)

    async def wait(self) -> None:
        """Wait until this process is CLOSED, without causing a close.

        Raises:
            BaseException: this process's own failure, if any.
        """
        if self is _BACKGROUND:
            await trio.sleep_forever()
        await self._await_closed(by_close=False)

    @property
    def overran_grace(self) -> bool:
        """Whether this process's task outlived its grace and was cancelled.

        A warning is logged on the ``proctree`` logger when that happens.
        A close that gives no grace at all (a grace of 0, or a deadline
        already past when the close begins) cancels the task at once, as
        asked: that is not an overrun. A later, tighter close that forces a
        task whose grace was already running is one.
        """
        return self._overran

    @property
    def path(self) -> str:
        """The names from the root down to this process, joined by ``/``.

        Follows each process's first parent (the one it was made under).
        A root (or a process made under :func:`background`) was made under
        no linked process, so its path is its name even when it was later
        added under another process. Once CLOSED, a
        process is out of the tree and its path is its name. A cycle of
        close-only edges (allowed) ends the walk where it would repeat.
        """
        names = [self.name]
        q = self
        seen: set[Process] | None = None
        while True:
            up = first_parent(q)
            if up is None:
                break
            q = up
            if seen is None:
                seen = {self}
            if q in seen:
                break
            seen.add(q)
            names.append(q.name)
        names.reverse()
        return "/".join(names)

    async def start(self, *, timeout: float | None = None) -> None:
        """Start the runner of a process made by :func:`new_process`.

        INITIAL -> STARTING -> RUNNING: returns once the runner has called
        ``ready()``. A startup failure is kept in :attr:`error`, raised here,
        and never reaches the root; the process is then CLOSED.

        Args:
            timeout: seconds to wait for ``ready()``; past it the runner is
                cancelled at once and :class:`StartTimeoutError` is raised.

        Raises:
            InvalidStateError: the process is not INITIAL (already started,
                stopped, or not made by :func:`new_process`), or it was
                stopped while starting.
            StartTimeoutError: the runner was not ready within ``timeout``.
            StartError: the runner returned before calling ``ready()``.
            BaseException: whatever the runner raised before ``ready()``.
        """
        if self._state is not _INITIAL or self._run is None:
            raise InvalidStateError(
                f"cannot start process {self.name!r}: it is {self._state.name}; "
                "only an INITIAL process made by proctree.new_process() can "
                "start, once"
            )
        limit = math.inf if timeout is None else check_seconds(timeout, "timeout")
        host = self._host
        assert host is not None
        run = self._run
        self._run = None
        self._state = _STARTING
        self._task_alive = True
        scope = self._scope = trio.CancelScope()
        if self._forced < math.inf:
            scope.deadline = self._forced
        progress = self._startup = _Startup()
        self._born = trio.current_time()
        if host.instruments:
            _emit(host, "started", self)
        host.nursery.start_soon(_runner_task, self, run, progress, name=self.name)
        # Where a failure goes if this start() is abandoned (by then the
        # process may be CLOSED and have forgotten both).
        progress.keeper, progress.host = self._keeper, host
        try:
            if limit == math.inf:
                await progress.event.wait()
                timed_out = False
            else:
                with trio.move_on_after(limit) as waiter:
                    await progress.event.wait()
                timed_out = waiter.cancelled_caught
        except BaseException:
            # The caller gave up (cancelled): abandon the startup. A failure
            # the runner has had (in the same instant) or still has is no
            # longer start()'s to raise: it travels up.
            progress.abandoned = True
            if self._error is not None:
                hand_up(self, self._error, progress.keeper, progress.host)
            scope.cancel()
            _drive([(self, None)], [])
            raise
        if timed_out:
            error = StartTimeoutError(
                f"process {self.name!r} did not call ready() within {limit:g}s "
                "and was cancelled"
            )
            self._error = error
            scope.cancel()
            _drive([(self, None)], [])
            await self._await_startup_end(progress, own=error)
            raise error
        if progress.running and self._error is None:
            return
        await self._await_startup_end(progress, own=None)
        if self._error is not None:
            raise self._error
        raise InvalidStateError(f"process {self.name!r} was stopped while starting")

    async def _await_startup_end(
        self, progress: _Startup, own: BaseException | None
    ) -> None:
        """Wait for CLOSED in start(); if the caller gives up, hand failures up.

        A startup failure is start()'s to raise only while start() is there
        to raise it: one it already holds (other than ``own``, its own
        timeout error) travels up as any failure would, and one the runner
        has yet to raise will (``progress.abandoned``).
        """
        try:
            await self.closed.wait()
        except BaseException:
            progress.abandoned = True
            error = self._error
            if error is not None and error is not own:
                hand_up(self, error, progress.keeper, progress.host)
            elif own is not None and own.__cause__ is not None:
                hand_up(self, own.__cause__, progress.keeper, progress.host)
            raise

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop the process: graceful first, forced after ``grace`` seconds.

        ``ready()`` returns (a go function sees :attr:`closing`), the
        process's task is cancelled after the grace, and the call returns
        once the process is CLOSED. In INITIAL, it prevents any later
        :meth:`start`. Unlike :meth:`aclose`, stopping a CLOSED process is
        an error.

        Args:
            grace: seconds before the whole subtree is forced; by default
                each process's own grace.

        Raises:
            InvalidStateError: the process is already CLOSED, or it is
                :func:`background`.
            BaseException: this process's own failure, if any.
        """
        if self._state is _CLOSED:
            raise InvalidStateError(
                f"cannot stop process {self.name!r}: it is already CLOSED"
            )
        await self.aclose(grace=grace)

    async def _await_closed(self, *, by_close: bool) -> None:
        if self._state is not _CLOSED:
            current = _current.get(None)
            if by_close and current is not None and _waits_on(self, _owner(current)):
                if isinstance(current, _InTeardown):
                    # Our own teardown holds the close up: it finishes later.
                    await trio.lowlevel.checkpoint()
                    return
                me = current
                if me._scope is not None:
                    # Waiting would deadlock: end the caller's function, as
                    # a nursery's body is cancelled when the nursery closes.
                    me._scope.cancel()
                    await trio.lowlevel.checkpoint()
            await self.closed.wait()
        else:
            await trio.lowlevel.checkpoint()
        error = self._error
        if error is not None:
            raise error

    def _check_open(self, what: str) -> None:
        if self._state is _CLOSED:
            raise InvalidStateError(
                f"cannot {what} on process {self.name!r}: it is CLOSED; "
                "use a process that is still running"
            )


@final
@attrs.frozen
class _InTeardown:
    """The current-process marker of a teardown task."""

    process: Process


# The process whose function, root body or teardown is running: the process
# itself for a function or a body (they behave alike), a marker for a
# teardown. A plain process keeps go tasks from allocating a frame object.
_current: ContextVar[Process | _InTeardown] = ContextVar("proctree_current")


def _owner(current: Process | _InTeardown) -> Process:
    return current.process if isinstance(current, _InTeardown) else current


_BACKGROUND: Final = Process._create("background", None, math.inf, _RUNNING)


def background() -> Process:
    """Return the one process that never closes.

    Processes made with ``parent=background()`` are not closed by any
    parent; they are hosted by the current root, which closes them when it
    exits. ``aclose()`` on it raises :class:`InvalidStateError`.
    """
    return _BACKGROUND


# ------------------------------------------------------------------ driver


def _drive(closes: list[tuple[Process, float | None]], settles: list[Process]) -> None:
    """Run close requests down and completions up until nothing is left.

    ``closes`` holds ``(process, deadline)`` pairs: the deadline is the
    absolute time at which the process's task is cancelled, or None for
    "now plus the process's own grace". ``settles`` holds processes whose
    dependencies changed. One loop, an explicit stack: no recursion, so the
    depth of the tree does not matter.
    """
    now: float | None = None
    while closes or settles:
        while closes:
            p, deadline = closes.pop()
            state = p._state
            if state is _CLOSED:
                continue
            if state is _CLOSING:
                if deadline is None or deadline >= p._forced:
                    continue
                forced = deadline
                first = False
            else:
                if p is _BACKGROUND:
                    continue
                if now is None:
                    now = trio.current_time()
                forced = deadline if deadline is not None else now + p._grace
                first = True
                p._state = _CLOSING
                ev = p._closing_ev
                if ev is not None:
                    ev.set()
                watchers = p._watchers
                if watchers is not None:
                    p._watchers = None
                    for watcher in watchers:
                        watcher()
                host = p._host
                if host is not None and host.instruments:
                    _emit(host, "closing", p)
                if not p._task_alive:
                    # A running task settles the process when it ends.
                    settles.append(p)
            p._forced = forced
            scope = p._scope
            if scope is not None:
                if now is None:
                    now = trio.current_time()
                if forced <= now and first:
                    # No grace at all: cancelled at once, as asked; not an
                    # overrun (its task had no time to end by itself).
                    scope.cancel()
                elif forced < scope.deadline:
                    # A grace, or a close that tightens one already running
                    # out: trio's deadline cancels the task, and the task's
                    # end sees the deadline passed (an overrun).
                    scope.deadline = forced
            children = p._children
            if children:
                for child, flags in children.items():
                    if flags & _CLOSE:
                        closes.append((child, deadline))
        if settles:
            _settle(settles.pop(), closes, settles)


def _settle(
    p: Process, closes: list[tuple[Process, float | None]], settles: list[Process]
) -> None:
    state = p._state
    if state is _RUNNING or state is _STARTING or state is _INITIAL:
        if p._auto_close and not p._open_waits:
            closes.append((p, None))
        return
    if state is not _CLOSING or p._open_waits or p._task_alive:
        return
    if not p._torn:
        p._torn = True
        teardown = p._teardown
        if teardown is not None:
            host = p._host
            assert host is not None
            p._task_alive = True
            host.nursery.start_soon(_teardown_task, p, teardown, name=p.name)
            return
    # CLOSED: tell every process above, then forget the tree.
    host = p._host
    if host is not None and host.instruments:
        # Before the links go, so that the hooks still see the path.
        _emit(host, "closed", p, trio.current_time() - p._born, p._error)
    p._state = _CLOSED
    ev = p._closed_ev
    if ev is not None:
        ev.set()
    if p._ups is not None:
        for u in _ups_of(p):
            siblings = u._children
            if siblings is not None and siblings.pop(p, 0) & _WAIT:
                u._open_waits -= 1
                settles.append(u)
        p._ups = None
    children = p._children
    if children is not None:
        # Only CLOSE-only edges can be left: WAIT edges were all closed.
        for child in children:
            _remove_up(child, p)
        p._children = None
    host = p._host
    if host is not None:
        if host.strays:
            host.strays.discard(p)
        p._host = None
    p._teardown = None
    p._scope = None
    p._startup = None
    keeper = p._keeper
    if keeper is not None:
        p._keeper = None
        keeper.closed(p)


def _ups_of(p: Process) -> list[Process] | tuple[Process, ...]:
    """The processes with an edge to ``p``."""
    ups = p._ups
    if ups is None:
        return ()
    if isinstance(ups, list):
        return ups
    return (ups,)


def _remove_up(child: Process, parent: Process) -> None:
    ups = child._ups
    if ups is parent:
        child._ups = None
    elif isinstance(ups, list):
        ups.remove(parent)
        if len(ups) == 1:
            child._ups = ups[0]


def _link(parent: Process, child: Process, flags: int) -> None:
    """Add the edge ``parent -> child`` with ``flags`` (parent is not CLOSED)."""
    if child._state is _CLOSED:
        return
    children = parent._children
    if children is None:
        children = parent._children = {}
    old = children.get(child, 0)
    children[child] = old | flags
    if not old:
        ups = child._ups
        if ups is None:
            child._ups = parent
        elif isinstance(ups, list):
            ups.append(parent)
        else:
            child._ups = [ups, parent]
    if flags & _WAIT and not old & _WAIT:
        parent._open_waits += 1
    if flags & _CLOSE and parent._state is _CLOSING:
        _drive([(child, None)], [])


def _waits_on(target: Process, me: Process) -> bool:
    """Whether ``target`` cannot be CLOSED before ``me`` is (walks up from ``me``)."""
    if target is me:
        return True
    if me._ups is None:
        return False
    stack = [me]
    seen: set[Process] = set()
    while stack:
        q = stack.pop()
        for u in _ups_of(q):
            siblings = u._children
            if siblings is None or not siblings.get(q, 0) & _WAIT:
                continue
            if u is target:
                return True
            if u not in seen:
                seen.add(u)
                stack.append(u)
    return False


# ----------------------------------------------------------- tasks, failures


def is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled):
        return True
    return (
        isinstance(exc, BaseExceptionGroup) and exc.subgroup(trio.Cancelled) is not None
    )


async def _go_task(
    p: Process, fn: Callable[..., Awaitable[object]], args: tuple[object, ...]
) -> None:
    _current.set(p)
    scope = p._scope
    assert scope is not None
    host = p._host
    if host is not None and host.instruments:
        _emit(host, "started", p)
    try:
        with scope:
            await fn(p, *args)
    except BaseException as exc:
        if is_cancellation(exc):
            raise
        fail(p, exc, "function")
        if not isinstance(exc, Exception):
            raise
    finally:
        _task_ended(p, scope)


def _task_ended(p: Process, scope: trio.CancelScope) -> None:
    """Bookkeeping when a process's own task ends, however it ends."""
    deadline = scope.deadline
    if (
        scope.cancelled_caught
        and deadline != math.inf
        and trio.current_time() >= deadline
    ):
        p._overran = True
        _logger.warning(
            "process %r did not end within its grace and was cancelled", p.path
        )
        host = p._host
        if host is not None and host.instruments:
            _emit(host, "grace_overrun", p)
    p._task_alive = False
    p._auto_close = True
    _drive([], [p])


async def _teardown_task(p: Process, teardown: Teardown) -> None:
    if p._open_waits:
        # A wait_for/add_child came between scheduling and now: honour it,
        # the teardown is started again once those processes are CLOSED.
        p._torn = False
        p._task_alive = False
        return
    _current.set(_InTeardown(p))
    try:
        await teardown()
    except BaseException as exc:
        if is_cancellation(exc):
            raise
        fail(p, exc, "teardown")
        if not isinstance(exc, Exception):
            raise
    finally:
        p._task_alive = False
        _drive([], [p])


@final
@attrs.define(eq=False, slots=True)
class _Startup:
    """How far a starting runner got: shared by start() and the runner task."""

    event: trio.Event = attrs.field(factory=trio.Event)
    reached: bool = False  # the runner called ready()
    running: bool = False  # ... while STARTING, so the process became RUNNING
    abandoned: bool = False  # start()'s caller gave up: nobody will raise
    keeper: Keeper | None = None  # where a failure goes if abandoned
    host: Host | None = None


async def _runner_task(p: Process, run: RunFn, progress: _Startup) -> None:
    _current.set(p)
    scope = p._scope
    assert scope is not None

    async def ready() -> None:
        if not progress.reached:
            progress.reached = True
            if p._state is _STARTING:
                p._state = _RUNNING
                progress.running = True
                host = p._host
                if host is not None and host.instruments:
                    _emit(host, "ready", p)
            progress.event.set()
        await p.closing.wait()

    try:
        with scope:
            await run(ready)
        if not progress.reached and p._state is _STARTING:
            p._error = StartError(
                f"the runner of process {p.name!r} returned before calling ready()"
            )
    except BaseException as exc:
        if is_cancellation(exc):
            raise
        if progress.running or progress.abandoned:
            # Running, or starting for a start() that is no longer there to
            # raise it: a failure like any other, it travels up.
            fail(p, exc, "runner")
        else:
            # A startup failure is start()'s to raise: it does not travel up.
            # That includes a failure after ready() if the process was
            # stopped while starting (it never became RUNNING).
            _add_note(exc, "runner", p)
            _add_startup_error(p, exc)
            _drive([(p, None)], [])
        if not isinstance(exc, Exception):
            raise
    finally:
        progress.event.set()
        _task_ended(p, scope)


def _add_note(exc: BaseException, part: str, p: Process) -> None:
    exc.add_note(f"proctree: raised by the {part} of process {p.path!r}")


def _add_startup_error(p: Process, exc: BaseException) -> None:
    """Make ``exc`` part of what ``p``'s start() raises."""
    previous = p._error
    if previous is None:
        p._error = exc
    elif isinstance(previous, StartTimeoutError):
        # start() gave up on its timeout and raises that error: it keeps
        # the runner's failures as its cause, so the type callers catch
        # stays the same.
        cause = previous.__cause__
        previous.__cause__ = (
            exc
            if cause is None
            else BaseExceptionGroup(f"process {p.name!r} failed to start", [cause, exc])
        )
    else:
        p._error = BaseExceptionGroup(
            f"process {p.name!r} failed more than once", [previous, exc]
        )


def startup_failure(p: Process, exc: BaseException) -> bool:
    """Give ``exc`` to ``p``'s start(), if one is still there to raise it.

    For a keeper whose own runner has ended while its process is still
    starting (a combinator rolled back or timed out): a failure of a part
    that comes late belongs to the same failed start. Returns False when
    no start() will raise it (never started, running, abandoned, closed):
    the caller then lets it travel up.
    """
    progress = p._startup
    if (
        progress is None
        or progress.running
        or progress.abandoned
        or p._state is _CLOSED
    ):
        return False
    _add_startup_error(p, exc)
    return True


def _emit(host: Host, hook: str, p: Process, *args: object) -> None:
    """Call ``hook`` on every instrument; a failing hook is logged, never raised."""
    for instrument in host.instruments:
        method = getattr(instrument, hook, None)
        if method is None:
            continue
        try:
            method(p, *args)
        except Exception:
            _logger.exception("instrument %r failed in %s(%r)", instrument, hook, p)


def fail(p: Process, exc: BaseException, part: str) -> None:
    """Record ``exc`` as a failure of ``p``'s ``part`` and close what it must.

    The failure becomes ``p.error``, is recorded once in the host, closes
    ``p`` and every ancestor along CLOSE edges. A ``BaseException`` that is
    not an ``Exception`` (KeyboardInterrupt...) also forces the host's
    shutdown. Used by the root for its body's failures too.
    """
    host = p._host
    taken = p._keeper is not None and p._keeper.take(p, exc)
    # A taken failure is its keeper's business, not the host's.
    fresh = taken or host is None or host.record(exc)
    if fresh:
        _add_note(exc, part, p)
        previous = p._error
        p._error = (
            exc
            if previous is None
            else BaseExceptionGroup(
                f"process {p.name!r} failed more than once", [previous, exc]
            )
        )
    _close_up(p, exc, taken)


def hand_up(
    p: Process, exc: BaseException, keeper: Keeper | None, host: Host | None
) -> None:
    """Send up a failure already recorded as ``p.error``.

    Used for a startup failure whose start() was abandoned: the keeper or
    host ``p`` had when it started gets it (``p`` may be CLOSED by now, its
    links gone), then its ancestors, if still linked, close as for any
    failure.
    """
    taken = keeper is not None and keeper.take(p, exc)
    if not taken and host is not None:
        host.record(exc)
    _close_up(p, exc, taken)


def _close_up(p: Process, exc: BaseException, taken: bool) -> None:
    """Close ``p`` and, unless a keeper took ``exc``, its CLOSE ancestors."""
    host = p._host
    closes: list[tuple[Process, float | None]] = [(p, None)]
    seen = {p}
    stack = [] if taken else [p]
    while stack:
        q = stack.pop()
        for u in _ups_of(q):
            siblings = u._children
            if u in seen or siblings is None or not siblings.get(q, 0) & _CLOSE:
                continue
            seen.add(u)
            closes.append((u, None))
            stack.append(u)
    _drive(closes, [])
    if host is not None and not isinstance(exc, Exception):
        host.nursery.cancel_scope.cancel()


# ------------------------------------------------------------- constructors


def check_process(q: object, what: str) -> None:
    if not isinstance(q, Process):
        raise TypeError(
            f"{what}() takes a proctree.Process, got {type(q).__name__}; make one "
            "with proctree.go(), with_parent() or with_teardown()"
        )


def _check_not_background(q: Process, what: str) -> None:
    if q is _BACKGROUND:
        raise InvalidStateError(
            f"background() never closes, so it cannot be {what}: "
            "the waiting process would never close"
        )


def check_seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {value!r}")
    return float(value)


def check_grace(grace: object) -> float:
    return check_seconds(grace, "grace")


def check_async_callable(fn: object, what: str, example: str) -> None:
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


def resolve_parent(parent: object, what: str) -> tuple[Process, Host]:
    """Find the parent (None: the current process) and the host to use."""
    if parent is None:
        current = _current.get(None)
        if current is None:
            raise ProctreeError(
                f"{what}() was called outside every proctree root and without "
                "parent=: run it inside 'async with proctree.open_root():' "
                "or pass parent="
            )
        parent = _owner(current)
    elif not isinstance(parent, Process):
        raise TypeError(
            f"{what}(): parent must be a proctree.Process or None, "
            f"got {type(parent).__name__}"
        )
    host = parent._host
    if host is None:
        if parent is not _BACKGROUND:
            raise InvalidStateError(
                f"{what}(): parent {parent.name!r} is CLOSED; "
                "use a process that is still running"
            )
        current = _current.get(None)
        current_host = _owner(current)._host if current is not None else None
        if current_host is None:
            raise ProctreeError(
                f"{what}(parent=background()) needs a root to host it: "
                "run it inside 'async with proctree.open_root():'"
            )
        host = current_host
    return parent, host


def _adopt(parent: Process, host: Host, p: Process) -> None:
    if parent is _BACKGROUND:
        host.strays.add(p)
    else:
        _link(parent, p, _CLOSE | _WAIT)


def _spawn(
    parent: object,
    fn: Callable[..., Awaitable[object]],
    args: tuple[object, ...],
    name: str | None,
    grace: float | None,
) -> Process:
    check_async_callable(fn, "go", "fn(proc)")
    parent_p, host = resolve_parent(parent, "go")
    if name is None:
        name = getattr(fn, "__name__", None) or type(fn).__name__
    elif not isinstance(name, str):
        raise TypeError(f"go(): name must be a str, got {type(name).__name__}")
    p = Process._create(
        name, host, host.grace if grace is None else check_grace(grace), _RUNNING
    )
    p._task_alive = True
    p._scope = trio.CancelScope()
    p._kind = "go"
    p._born = trio.current_time()
    _adopt(parent_p, host, p)
    if host.instruments:
        _emit(host, "created", p)
    host.nursery.start_soon(_go_task, p, fn, args, name=name)
    return p


def _plain(
    parent: object,
    name: str | None,
    what: str,
    default: str,
    teardown: Teardown | None = None,
) -> Process:
    parent_p, host = resolve_parent(parent, what)
    if name is None:
        name = default
    elif not isinstance(name, str):
        raise TypeError(f"{what}(): name must be a str, got {type(name).__name__}")
    p = Process._create(name, host, host.grace, _RUNNING)
    p._teardown = teardown
    p._born = trio.current_time()
    _adopt(parent_p, host, p)
    if host.instruments:
        _emit(host, "created", p)
    return p


def go(
    fn: Callable[[Process, Unpack[_Ts]], Awaitable[object]],
    *args: *_Ts,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc, *args)`` in a new process under ``parent``.

    Args:
        fn: an async function taking the new process first.
        *args: further positional arguments for ``fn``.
        parent: the parent process; None means the current process.
        name: the process's name; by default ``fn``'s name.
        grace: seconds ``fn`` may run on once the process is closing; by
            default the tree's grace (:data:`DEFAULT_GRACE` unless the root
            said otherwise).

    Returns:
        The new process (RUNNING, or CLOSING if the parent is).

    Raises:
        ProctreeError: no ``parent`` and no current process (outside roots).
        InvalidStateError: the parent is CLOSED.
        TypeError: ``fn`` is not an async function or ``parent`` not a Process.
    """
    return _spawn(parent, fn, args, name, grace)


def go_child(
    parent: Process,
    fn: Callable[[Process, Unpack[_Ts]], Awaitable[object]],
    *args: *_Ts,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc, *args)`` in a new child of ``parent``.

    The same as ``go(fn, *args, parent=parent)``; see :func:`go`.
    """
    return _spawn(parent, fn, args, name, grace)


def with_parent(parent: Process | None, name: str | None = None) -> Process:
    """Make a new process, a child of ``parent``, with no task and no teardown.

    Useful to group processes: closing it closes the ones added under it.

    Args:
        parent: the parent process; None means the current process.
        name: the process's name (default ``"process"``).

    Raises:
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
        TypeError: ``parent`` is not a Process.
    """
    return _plain(parent, name, "with_parent", "process")


def with_teardown(
    fn: Teardown, parent: Process | None = None, name: str | None = None
) -> Process:
    """Make a new process whose teardown is ``async def fn() -> None``.

    Args:
        fn: the teardown, run exactly once when the process closes.
        parent: the parent process; None means the current process.
        name: the process's name; by default ``fn``'s name.

    Raises:
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
        TypeError: ``fn`` is not an async function or ``parent`` not a Process.
    """
    check_async_callable(fn, "with_teardown", "teardown()")
    default = getattr(fn, "__name__", None) or "process"
    return _plain(parent, name, "with_teardown", default, fn)


def runner_callable(runner: object, what: str) -> RunFn:
    """The ``run`` of a runner (a function, or an object with ``run``)."""
    run = getattr(runner, "run", None)
    if run is None or not callable(run):
        run = runner
    check_async_callable(run, what, "run(ready)")
    return run  # type: ignore[return-value]


def runner_name(runner: object) -> str:
    """The default name of a runner's process."""
    name = getattr(runner, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(runner, "__name__", None)
    return name if isinstance(name, str) else type(runner).__name__


def new_process(
    runner: Runner,
    parent: Process | None = None,
    name: str | None = None,
    *,
    grace: float | None = None,
) -> Process:
    """Make an INITIAL process that will run ``runner`` once started.

    Call :meth:`Process.start` to start it; :meth:`Process.stop` (or a
    close of its parent) stops it. The runner's ``ready()`` returns when the
    process starts closing; its task is cancelled after its grace.

    Args:
        runner: ``async def run(ready)``, or an object with such a ``run``.
        parent: the parent process; None means the current process.
        name: the process's name; by default the runner's ``name`` or
            function name.
        grace: seconds the runner may take to stop once asked; by default
            the runner's ``default_grace`` if it has one (combinators wait
            for their dependencies, so theirs is infinite), else the tree's.

    Returns:
        The new process, INITIAL (CLOSED at once if the parent is closing).

    Raises:
        TypeError: ``runner`` is not a runner, or ``parent`` not a Process.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    run = runner_callable(runner, "new_process")
    parent_p, host = resolve_parent(parent, "new_process")
    if name is None:
        name = runner_name(runner)
    elif not isinstance(name, str):
        raise TypeError(f"new_process(): name must be a str, got {type(name).__name__}")
    if grace is None:
        preferred = getattr(runner, "default_grace", None)
        chosen = host.grace if preferred is None else check_grace(preferred)
    else:
        chosen = check_grace(grace)
    p = Process._create(name, host, chosen, _INITIAL)
    p._run = run
    p._kind = "runner"
    p._born = trio.current_time()
    _adopt(parent_p, host, p)
    if host.instruments:
        _emit(host, "created", p)
    return p


# -------------------------------------------- what combinators and keepers use


def current_process(what: str) -> Process:
    """The process whose code is running; a clear error outside every one."""
    current = _current.get(None)
    if current is None:
        raise ProctreeError(
            f"{what} must run inside a proctree process: start it with "
            "proctree.new_process(runner).start() under a root"
        )
    return _owner(current)


def is_closing(p: Process) -> bool:
    """Whether ``p`` is CLOSING or CLOSED (without making its ``closing`` event)."""
    return p._state is _CLOSING or p._state is _CLOSED


def on_closing(p: Process, callback: Callable[[], object]) -> bool:
    """Call ``callback()`` once, synchronously, when ``p`` starts closing.

    Returns False, keeping nothing, if ``p`` is already CLOSING or CLOSED.
    The callback runs inside the close's driver: it must be quick, must not
    raise, and must not close processes (cancelling a trio scope is its
    intended use). :func:`background` never closes, so nothing is kept for
    it. Undo with :func:`forget_on_closing`.
    """
    if p._state is _CLOSING or p._state is _CLOSED:
        return False
    if p is not _BACKGROUND:
        watchers = p._watchers
        if watchers is None:
            p._watchers = [callback]
        else:
            watchers.append(callback)
    return True


def forget_on_closing(p: Process, callback: Callable[[], object]) -> None:
    """Drop a callback given to :func:`on_closing` (no-op if it ran or is gone)."""
    watchers = p._watchers
    if watchers is not None:
        for i, known in enumerate(watchers):
            if known is callback:
                del watchers[i]
                break
        if not watchers:
            p._watchers = None


def set_keeper(p: Process, keeper: Keeper) -> None:
    """Make ``keeper`` the one offered ``p``'s failures and told of its close."""
    p._keeper = keeper


def release_close(parent: Process, child: Process) -> None:
    """Keep ``parent`` waiting for ``child`` but stop closing it with the parent.

    Combinators use it once a dependency is up: from then on they decide
    when it is stopped (a stack's reverse order).
    """
    children = parent._children
    if children is not None and child in children:
        children[child] &= ~_CLOSE


def close_by(p: Process, deadline: float | None) -> None:
    """Ask ``p`` to close; its subtree is forced at ``deadline`` (None: own graces)."""
    _drive([(p, deadline)], [])


def forced_at(p: Process) -> float | None:
    """When ``p`` will be forced, if a finite deadline applies."""
    return p._forced if p._forced < math.inf else None


# ------------------------------------------------------ what a root needs


def make_root(
    nursery: trio.Nursery, name: str, grace: float, instruments: tuple[Any, ...]
) -> Process:
    """Make the root process of a new host; its body is its own task.

    The root's own grace is 0: when it closes for any reason but the end of
    its body, the body is cancelled at once, as a nursery's body is.
    """
    host = Host(nursery, grace, instruments)
    root = Process._create(name, host, 0.0, _RUNNING)
    root._task_alive = True
    root._scope = trio.CancelScope()
    root._kind = "root"
    root._born = trio.current_time()
    if instruments:
        _emit(host, "created", root)
    return root


@final
@attrs.frozen
class Facts:
    """What introspection may read of a process (package-private)."""

    kind: str
    born: float
    first_parent: Process | None
    edges: tuple[tuple[Process, bool, bool], ...]
    """(process below, closed with this one, waited for by this one)"""
    restarts: int


def first_parent(p: Process) -> Process | None:
    """The process ``p`` was made under (while it is linked), or None.

    None for a root or a process made under :func:`background`, which were
    made under no linked process, even if they were later added under
    another one (their edges show that link instead).
    """
    ups = p._ups
    if ups is None or p._kind == "root":
        return None
    host = p._host
    if host is not None and host.strays and p in host.strays:
        return None
    return ups if isinstance(ups, Process) else ups[0]


def facts(p: Process) -> Facts:
    """A read-only look at ``p``'s links and bookkeeping, for tree views."""
    first = first_parent(p)
    children = p._children or {}
    edges = tuple(
        (q, bool(flags & _CLOSE), bool(flags & _WAIT)) for q, flags in children.items()
    )
    counter = getattr(p._keeper, "restarts", None)
    restarts = counter(p) if counter is not None else 0
    return Facts(p._kind, p._born, first, edges, restarts)


def body_scope(root: Process) -> trio.CancelScope:
    """The cancel scope the root's body runs in (closing the root cancels it)."""
    scope = root._scope
    assert scope is not None
    return scope


def enter_body(root: Process) -> object:
    """Make ``root`` the current process of the body; returns a reset token."""
    return _current.set(root)


def leave_body(root: Process, token: object) -> None:
    """The body has ended: close the root and every stray process it hosts."""
    _current.reset(token)  # type: ignore[arg-type]
    host = root._host
    root._task_alive = False
    close_hosted(root, host)


def close_hosted(root: Process, host: Host | None) -> None:
    """Close the root and every stray it hosts (each with its own grace)."""
    closes: list[tuple[Process, float | None]] = [(root, None)]
    if host is not None:
        closes.extend((stray, None) for stray in host.strays)
    _drive(closes, [root])


def host_of(root: Process) -> Host:
    """The host of a root that has not closed yet."""
    host = root._host
    assert host is not None
    return host


async def wait_hosted(root: Process, host: Host) -> None:
    """Wait until the root and every stray the host holds are CLOSED."""
    await root.closed.wait()
    while host.strays:
        stray = next(iter(host.strays))
        if stray._state is not _CLOSING:
            _drive([(stray, None)], [])
        await stray.closed.wait()
