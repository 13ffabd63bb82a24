"""Bridges between processes and trio's cancellation (goprocess's ``context`` package).

trio has no callbacks: a cancel scope cannot be told to watch an event,
and a task's end cannot be watched from outside. So each bridge has a small
task of its own that does the watching:

* :func:`move_on_closing` starts a watcher task in the nursery of the
  tree that hosts the process it watches; the task waits for ``closing``
  and cancels the block's scope.
* :func:`with_deadline` is a process whose task sleeps until the deadline
  and then closes its own process.
* :func:`open_child` is a process whose task stands in for the ``async
  with`` body: the process is not CLOSED while the body still runs, and
  the task cancels the body when the process starts closing.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, final

import attrs
import trio

from .._core import (
    Process,
    ProctreeError,
    State,
    check_grace,
    check_process,
    close_by,
    current_process,
    forget_on_closing,
    go,
    on_closing,
    resolve_parent,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager, AbstractContextManager

__all__ = ["move_on_closing", "open_child", "with_deadline", "with_timeout"]


def _check_name(name: object, what: str, default: str) -> str:
    if name is None:
        return default
    if not isinstance(name, str):
        raise TypeError(f"{what}(): name must be a str, got {type(name).__name__}")
    return name


# ------------------------------------------------ process closing -> trio


def move_on_closing(
    proc: Process | None = None,
) -> AbstractContextManager[trio.CancelScope, bool]:
    """Run a block that is cancelled as soon as ``proc`` starts closing.

    ``with proctree.move_on_closing(proc) as scope:`` is to ``proc``'s
    :attr:`~proctree.Process.closing` what ``trio.move_on_at(deadline)`` is
    to a deadline: when ``proc`` starts closing, the block is cancelled, the
    cancellation ends at the block (the code after it runs), and
    ``scope.cancelled_caught`` tells whether that happened. If ``proc`` is
    already closing or closed, the block is cancelled at its first
    checkpoint. No grace applies: use it for waits that should give up the
    moment a close begins.

    The block may run in any task, inside a proctree process or not. It
    costs no task: the close that marks ``proc`` CLOSING cancels the
    block's scope directly, and leaving the block unregisters it. It does
    not keep ``proc`` open.

    Args:
        proc: the process to watch; None means the current process (the
            one whose function, teardown or root body is running).

    Returns:
        A context manager whose ``with`` gives the block's
        :class:`trio.CancelScope`.

    Raises:
        TypeError: ``proc`` is not a Process.
        ProctreeError: ``proc`` is None and no process is running.
    """
    if proc is None:
        try:
            proc = current_process("move_on_closing()")
        except ProctreeError:
            raise ProctreeError(
                "move_on_closing() was called outside every proctree process "
                "without a process to watch: pass one, as in "
                "move_on_closing(proc), or call it inside a go function, "
                "teardown or root body"
            ) from None
    else:
        check_process(proc, "move_on_closing")
    return _MoveOnClosing(proc)


@final
@attrs.define(eq=False)
class _MoveOnClosing:
    """What :func:`move_on_closing` returns: a one-use ``with`` block."""

    proc: Process
    scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    # The one bound method given to the process (forget_on_closing matches
    # it by identity), or None when nothing is registered.
    watching: Callable[[], object] | None = attrs.field(init=False, default=None)

    def __enter__(self) -> trio.CancelScope:
        scope = self.scope
        if self.watching is None:
            cancel = scope.cancel
            if on_closing(self.proc, cancel):
                self.watching = cancel
            else:
                scope.cancel()
        return scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        watching = self.watching
        if watching is not None:
            # The block is over: the process has nothing left to cancel.
            self.watching = None
            forget_on_closing(self.proc, watching)
        return self.scope.__exit__(exc_type, exc, tb)


# ------------------------------------------------ trio time -> process


def _check_deadline(deadline: object) -> float:
    if isinstance(deadline, bool) or not isinstance(deadline, int | float):
        raise TypeError(
            "with_deadline(): deadline must be a time on trio's clock "
            f"(a number, such as trio.current_time() + 30), got {deadline!r}"
        )
    if math.isnan(deadline):
        raise ValueError("with_deadline(): deadline must be a number, got nan")
    return float(deadline)


def with_deadline(
    deadline: float,
    parent: Process | None = None,
    name: str | None = None,
    *,
    grace: float | None = None,
) -> Process:
    """Make a new process that closes by itself at ``deadline`` (trio's clock).

    Put work under it (``p.go(...)``, ``p.add_child(q)``) to have that work
    closed at the deadline; close it earlier by hand if the work is done.
    Reaching the deadline is a normal close, not a failure: the process's
    :attr:`~proctree.Process.error` stays None. A deadline already past
    closes it at once.

    Args:
        deadline: when to close, on trio's clock (``trio.current_time()``).
        parent: the parent process; None means the current process.
        name: the process's name (default ``"deadline"``).
        grace: if given, everything under the process is cancelled at the
            latest ``grace`` seconds after the deadline, as
            ``aclose(grace=...)`` does; by default each process below uses
            its own grace.

    Returns:
        The new process, RUNNING until the deadline.

    Raises:
        TypeError: ``deadline`` is not a number, or ``parent`` not a Process.
        ValueError: ``deadline`` is NaN, or ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    when = _check_deadline(deadline)
    return _closing_at(when, parent, name, grace, "with_deadline", "deadline")


def with_timeout(
    seconds: float,
    parent: Process | None = None,
    name: str | None = None,
    *,
    grace: float | None = None,
) -> Process:
    """Make a new process that closes by itself ``seconds`` from now.

    The same as ``with_deadline(trio.current_time() + seconds, ...)``; see
    :func:`with_deadline`. Timing out is a normal close, not a failure.

    Args:
        seconds: how long from now until the process closes; 0 closes it
            at once.
        parent: the parent process; None means the current process.
        name: the process's name (default ``"timeout"``).
        grace: if given, everything under the process is cancelled at the
            latest ``grace`` seconds after the timeout; by default each
            process below uses its own grace.

    Returns:
        The new process, RUNNING until the time is up.

    Raises:
        TypeError: ``seconds`` is not a number, or ``parent`` not a Process.
        ValueError: ``seconds`` is negative or NaN, or ``grace`` is negative.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(
            f"with_timeout(): seconds must be a number of seconds, got {seconds!r}"
        )
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(
            f"with_timeout(): seconds must be >= 0, got {seconds!r}; "
            "for a deadline on trio's clock, use with_deadline()"
        )
    when = trio.current_time() + seconds
    return _closing_at(when, parent, name, grace, "with_timeout", "timeout")


def _closing_at(
    when: float,
    parent: Process | None,
    name: str | None,
    grace: float | None,
    what: str,
    default: str,
) -> Process:
    late = None if grace is None else check_grace(grace)
    label = _check_name(name, what, default)
    parent_p = resolve_parent(parent, what)[0]
    return go(_close_at, when, late, parent=parent_p, name=label)


async def _close_at(proc: Process, when: float, grace: float | None) -> None:
    with trio.move_on_at(when):
        await proc.closing.wait()
    if proc.state is State.RUNNING:
        close_by(proc, None if grace is None else trio.current_time() + grace)


# ------------------------------------------------ a block <-> a process


def open_child(
    parent: Process | None = None, name: str | None = None
) -> AbstractAsyncContextManager[Process, bool]:
    """Open a child process that lives exactly as long as an ``async with`` block.

    ``async with proctree.open_child(parent) as p:`` makes ``p``, a child of
    ``parent``, and binds it to the block both ways:

    * When the block ends, however it ends (its code returns, raises, or is
      cancelled: a cancel scope around it fires, a deadline passes, the
      task it runs in is cancelled), ``p`` is closed: its children first,
      then its teardown. The block exits once ``p`` is CLOSED; if the block
      was cancelled, it does not wait, and the close goes on in the tree.
    * When ``p`` starts closing for another reason (its parent closes, a
      child of it fails, someone calls ``p.aclose()``), the block's code is
      cancelled at once, as a root's body is, and the block exits without
      an exception once ``p`` is CLOSED.

    ``p`` is not CLOSED while the block's code still runs, so a parent's
    teardown never runs under it. Run the block as a task's whole body to
    make a process that closes when that task ends.

    Inside the block, ``parent=None`` still means the enclosing process,
    not ``p``: start work under ``p`` with ``p.go(...)``.

    Args:
        parent: the parent process; None means the current process.
        name: the child's name (default ``"child"``).

    Returns:
        An async context manager whose ``async with`` gives the child.

    Raises:
        TypeError: ``parent`` is not a Process or ``name`` not a str.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
        BaseException: when the block exits, ``p``'s own failure (of its
            teardown), as ``p.aclose()`` would raise it; an exception of the
            block's code leaves the block unchanged instead.
    """
    label = _check_name(name, "open_child", "child")
    parent_p = resolve_parent(parent, "open_child")[0]
    return _OpenChild(parent_p, label)


@final
@attrs.define(eq=False)
class _OpenChild:
    """What :func:`open_child` returns: a one-use ``async with`` block."""

    parent: Process
    name: str
    body: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    ended: trio.Event = attrs.field(init=False, factory=trio.Event)
    child: Process | None = attrs.field(init=False, default=None)

    async def __aenter__(self) -> Process:
        if self.child is not None:
            raise RuntimeError("an open_child() block can be entered only once")
        # An infinite grace: the stand-in ends when the block does, and only
        # a deadline given to the close (aclose(grace=...)) may cut that short.
        child = self.child = self.parent.go(
            _stand_in, self.body, self.ended, name=self.name, grace=math.inf
        )
        if child.state is not State.RUNNING:
            self.body.cancel()
        self.body.__enter__()
        return child

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        child = self.child
        assert child is not None
        try:
            swallowed = self.body.__exit__(exc_type, exc, tb)
        finally:
            self.ended.set()
            close_by(child, None)
            # Cancelled here, the close goes on in the tree (contract 4).
            await child.closed.wait()
        if (exc is None or swallowed) and child.error is not None:
            raise child.error
        return swallowed


async def _stand_in(child: Process, body: trio.CancelScope, ended: trio.Event) -> None:
    await child.closing.wait()
    body.cancel()
    await ended.wait()
