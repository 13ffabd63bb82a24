"""The process node: a DAG of processes with ordered, exactly-once teardown.

:class:`Process` holds a node's state and its public methods; the close
driver (``driver.py``) makes every state change, the edges (``edges.py``)
are plain data, and a runner's start lives in ``startup.py``. The node's
underscore fields are shared by the modules of ``_core`` and by nothing
outside it (``docs/design.md``, section 1).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    NoReturn,
    TypeVar,
    TypeVarTuple,
    final,
)

import attrs
import trio

from .checks import check_async_callable, check_grace
from .current import CURRENT, InTeardown, owner
from .driver import drive, go_task, link
from .edges import CLOSE, WAIT, waits_on
from .errors import CycleError, InvalidStateError, ProctreeError
from .host import Host, emit
from .protocols import Keeper, Teardown
from .results import R_co, result_of
from .startup import Startup, start
from .state import State

if TYPE_CHECKING:
    from typing import Unpack

__all__ = [
    "BACKGROUND",
    "Process",
    "adopt",
    "background",
    "check_process",
    "first_parent",
    "host_for",
    "spawn_go",
]

_INITIAL: Final = State.INITIAL
_STARTING: Final = State.STARTING
_RUNNING: Final = State.RUNNING
_CLOSING: Final = State.CLOSING
_CLOSED: Final = State.CLOSED

_Ts = TypeVarTuple("_Ts")
_T = TypeVar("_T")


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


@final
@attrs.define(eq=False, repr=False, slots=True, init=False)
class Process(Generic[R_co], metaclass=_NoPublicConstructor):
    """A node of the process tree (a DAG): something that runs and is torn down once.

    Processes are made by :func:`open_root`, :func:`go`, :func:`with_parent`,
    :func:`with_teardown` and :meth:`Process.go`, never by calling the class.

    Closing a process closes its children concurrently, waits for them and
    for the processes it waits for and for its own task, then runs its
    teardown exactly once, then sets :attr:`closed`.

    Generic in what its ``go`` function returns (:meth:`result`): a bare
    ``Process`` is ``Process[object]``.
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
    _run: object  # a runner until start(); a go function's value (results.py)
    _startup: Startup | None  # while a start() may still raise
    _kind: str
    _born: float
    _why: str | None  # why it began closing (reasons.py), once it has

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
        self._why = None

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
        fn: Callable[[Process, Unpack[_Ts]], Awaitable[_T]],
        *args: *_Ts,
        name: str | None = None,
        grace: float | None = None,
    ) -> Process[_T]:
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
            The new child process, RUNNING (CLOSING if this process is);
            ``await child.result()`` gives what ``fn`` returned.

        Raises:
            InvalidStateError: this process is CLOSED.
            TypeError: ``fn`` is not an async function.
        """
        check_async_callable(fn, "go", "fn(proc)", nargs=1 + len(args))
        return spawn_go(self, fn, args, name, grace)

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
        if self is BACKGROUND:
            return
        self._check_open("add_child")
        _check_not_background(q, "a child")
        if waits_on(q, self):
            raise CycleError(
                f"add_child would make {q.name!r} wait for itself through "
                f"{self.name!r}: the processes would wait for each other forever"
            )
        link(self, q, CLOSE | WAIT)

    def add_child_no_wait(self, q: Process) -> None:
        """Make ``q`` a child that this process closes but does not wait for.

        ``q`` has begun closing before this process's teardown runs. If this
        process is CLOSING or CLOSED, ``q`` is closed at once.

        Raises:
            CycleError: ``q`` is this process.
            TypeError: ``q`` is not a :class:`Process`.
        """
        check_process(q, "add_child_no_wait")
        if self is BACKGROUND:
            return
        _check_not_background(q, "a child")
        if q is self:
            raise CycleError(f"process {self.name!r} cannot be its own child")
        if self._state is _CLOSING or self._state is _CLOSED:
            drive([(q, None)], [])
            return
        link(self, q, CLOSE)

    def wait_for(self, q: Process) -> None:
        """Do not let this process become CLOSED before ``q`` is, without closing ``q``.

        Honoured while CLOSING too (also from this process's teardown).

        Raises:
            InvalidStateError: this process is CLOSED.
            CycleError: ``q`` already waits (directly or not) for this process.
            TypeError: ``q`` is not a :class:`Process`.
        """
        check_process(q, "wait_for")
        if self is BACKGROUND:
            return
        self._check_open("wait_for")
        _check_not_background(q, "waited for")
        if waits_on(q, self):
            raise CycleError(
                f"wait_for would make {q.name!r} wait for itself through "
                f"{self.name!r}: the processes would wait for each other forever"
            )
        link(self, q, WAIT)

    def set_teardown(self, fn: Teardown) -> None:
        """Set (or replace) the teardown, ``async def fn() -> None``.

        It runs once, after children, waited-for processes and the process's
        own task have ended, and is never cancelled by a grace period.

        Raises:
            InvalidStateError: the teardown already started, or this is
                :func:`background`, which never closes.
            TypeError: ``fn`` is not an async function.
        """
        check_async_callable(fn, "set_teardown", "teardown()", nargs=0)
        if self is BACKGROUND:
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
        if self is BACKGROUND:
            raise InvalidStateError(
                "background() never closes; close the processes under it instead"
            )
        if self._state is not _CLOSED:
            deadline = None
            if grace is not None:
                deadline = trio.current_time() + check_grace(grace)
            drive([(self, deadline)], [])
        await self._await_closed(by_close=True)

    async def close_after_children(self) -> None:
        """Close once every process this one waits for has closed by itself.

        Children are not closed or forced; when the last one is CLOSED, this
        process closes and the call returns once it is CLOSED.

        Raises:
            BaseException: this process's own failure, if any.
            InvalidStateError: this is :func:`background`.
        """
        if self is BACKGROUND:
            raise InvalidStateError("background() never closes")
        if self._state is _RUNNING or self._state is _INITIAL:
            self._auto_close = True
            drive([], [self])
        await self._await_closed(by_close=True)

    async def wait(self) -> None:
        """Wait until this process is CLOSED, without causing a close.

        Raises:
            BaseException: this process's own failure, if any.
        """
        if self is BACKGROUND:
            await trio.sleep_forever()
        await self._await_closed(by_close=False)

    async def result(self) -> R_co:
        """Wait as :meth:`wait` does, then return what the ``go`` function returned.

        Raises:
            InvalidStateError: this process was not made by ``go`` (it runs
                no function), so it has no result.
            NoResultError: the function was cancelled before it returned.
            BaseException: this process's own failure (:attr:`error`).
        """
        return await result_of(self)

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
        q: Process = self
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
        await start(self, timeout)

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
            current = CURRENT.get(None)
            if by_close and current is not None and waits_on(self, owner(current)):
                if isinstance(current, InTeardown):
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


BACKGROUND: Final = Process._create("background", None, math.inf, _RUNNING)
BACKGROUND._kind = "background"


def background() -> Process:
    """Return the one process that never closes.

    Processes made with ``parent=background()`` are not closed by any
    parent; they are hosted by the current root, which closes them when it
    exits. ``aclose()`` on it raises :class:`InvalidStateError`.
    """
    return BACKGROUND


def check_process(q: object, what: str) -> None:
    """``q`` must be a :class:`Process` (a clear TypeError for ``what()``)."""
    if not isinstance(q, Process):
        raise TypeError(
            f"{what}() takes a proctree.Process, got {type(q).__name__}; make one "
            "with proctree.go(), with_parent() or with_teardown()"
        )


def _check_not_background(q: Process, what: str) -> None:
    if q is BACKGROUND:
        raise InvalidStateError(
            f"background() never closes, so it cannot be {what}: "
            "the waiting process would never close"
        )


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


def host_for(parent: Process, what: str) -> Host:
    """The host a new process under ``parent`` belongs to.

    A process under :func:`background` is hosted by the current root.
    """
    host = parent._host
    if host is None:
        if parent is not BACKGROUND:
            raise InvalidStateError(
                f"{what}(): parent {parent.name!r} is CLOSED; "
                "use a process that is still running"
            )
        current = CURRENT.get(None)
        current_host = owner(current)._host if current is not None else None
        if current_host is None:
            raise ProctreeError(
                f"{what}(parent=background()) needs a root to host it: "
                "run it inside 'async with proctree.open_root():'"
            )
        host = current_host
    return host


def adopt(parent: Process, host: Host, p: Process) -> None:
    """Link a new process ``p`` under ``parent`` and tell the instruments.

    Under :func:`background`, ``p`` is a stray of the host instead: the
    root closes it when it exits.
    """
    if parent is BACKGROUND:
        host.strays.add(p)
    else:
        link(parent, p, CLOSE | WAIT)
    if host.instruments:
        emit(host, "created", p)


def spawn_go(
    parent: Process,
    fn: Callable[..., Awaitable[_T]],
    args: tuple[object, ...],
    name: str | None,
    grace: float | None,
) -> Process[_T]:
    """Make a ``go`` process under ``parent`` and start its task.

    ``fn`` has been checked by the caller; ``parent`` is a Process.
    """
    host = host_for(parent, "go")
    if name is None:
        name = getattr(fn, "__name__", None) or type(fn).__name__
    elif not isinstance(name, str):
        raise TypeError(f"go(): name must be a str, got {type(name).__name__}")
    p: Process[Any] = Process._create(
        name, host, host.grace if grace is None else check_grace(grace), _RUNNING
    )
    p._task_alive = True
    p._scope = trio.CancelScope()
    p._kind = "go"
    p._born = trio.current_time()
    adopt(parent, host, p)
    host.nursery.start_soon(go_task, p, fn, args, name=name)
    return p
