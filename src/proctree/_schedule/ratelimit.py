"""Limit how many children run at once: goprocess's ``ratelimit`` package, on trio.

A slot is taken when ``limited_go`` starts a child and given back when that
child is CLOSED: not when its function returns, so the child's own
children (which it waits for) and its teardown run inside the slot. The
hand-back is the child's keeper being told it closed, inside the close
machinery itself, so no task and no teardown of the user's can lose it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVarTuple, final

import attrs
import trio

from .._core import (
    InvalidStateError,
    Process,
    State,
    check_async_callable,
    go,
    resolve_parent,
    set_keeper,
)

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["RateLimiter", "RateLimiterStatistics"]

_Ts = TypeVarTuple("_Ts")


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(
            f"RateLimiter(): limit must be an int, the number of children that "
            f"may run at once, got {limit!r}"
        )
    if limit < 1:
        raise ValueError(
            f"RateLimiter(): limit must be at least 1, got {limit!r}; with no "
            "slot, limited_go() would wait forever"
        )
    return limit


@final
@attrs.frozen
class RateLimiterStatistics:
    """A snapshot of a :class:`RateLimiter`, from :meth:`RateLimiter.statistics`."""

    limit: int
    """How many slots there are."""
    in_use: int
    """How many slots are held by children that are not CLOSED yet."""
    tasks_waiting: int
    """How many tasks wait in :meth:`RateLimiter.limited_go` for a slot."""


@final
@attrs.define(eq=False)
class _SlotKeeper:
    """Keeper of each limited child: gives its slot back once it is CLOSED."""

    slots: trio.Semaphore

    def take(self, p: Process, exc: BaseException) -> bool:
        # A failure of a limited child travels up like any other.
        return False

    def closed(self, p: Process) -> None:
        self.slots.release()


@final
@attrs.define(eq=False, init=False, repr=False)
class RateLimiter:
    """Starts children under one process, at most ``limit`` of them at a time.

    The limiter is a process of its own (:attr:`process`), a child of
    ``parent``; the children it starts are its children, so closing the
    limiter's process (or its parent) closes them all.

    :meth:`limited_go` waits for one of ``limit`` slots; the child holds it
    until it is CLOSED, so whatever the child waits for (its own children,
    its teardown) counts against its slot. :meth:`go` starts a child
    without a slot, as goprocess's ``RateLimiter.Go`` does.

    Args:
        parent: the parent of the limiter's process; None means the
            current process.
        limit: how many children started by :meth:`limited_go` may be open
            at once.
        name: the name of the limiter's process (default ``"ratelimit"``).

    Raises:
        TypeError: ``limit`` is not an int, or ``parent`` not a Process.
        ValueError: ``limit`` is less than 1.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """

    _process: Process
    _limit: int
    _slots: trio.Semaphore
    _keeper: _SlotKeeper
    _waiting: set[trio.CancelScope]

    def __init__(
        self, parent: Process | None, limit: int, *, name: str | None = None
    ) -> None:
        self._limit = _check_limit(limit)
        if name is None:
            name = "ratelimit"
        elif not isinstance(name, str):
            raise TypeError(
                f"RateLimiter(): name must be a str, got {type(name).__name__}"
            )
        parent_p = resolve_parent(parent, "RateLimiter")[0]
        self._slots = trio.Semaphore(self._limit)
        self._keeper = _SlotKeeper(self._slots)
        self._waiting = set()
        self._process = go(self._watch_closing, parent=parent_p, name=name)

    def __repr__(self) -> str:
        return (
            f"<proctree.ratelimit.RateLimiter {self._process.name!r} "
            f"{self._limit - self._slots.value}/{self._limit} in use>"
        )

    @property
    def process(self) -> Process:
        """The limiter's own process, the parent of every child it starts."""
        return self._process

    @property
    def limit(self) -> int:
        """How many children started by :meth:`limited_go` may be open at once."""
        return self._limit

    async def limited_go(
        self,
        fn: Callable[[Process, Unpack[_Ts]], Awaitable[object]],
        *args: *_Ts,
        name: str | None = None,
        grace: float | None = None,
    ) -> Process:
        """Wait for a free slot, then start ``await fn(child, *args)`` in a child.

        Waiters are served first come, first served. The child holds its
        slot until it is CLOSED. If the limiter's process starts closing
        while the caller waits, the wait ends with
        :class:`~proctree.InvalidStateError` instead of hanging.

        Args:
            fn: an async function taking the new child first.
            *args: further positional arguments for ``fn``.
            name: the child's name; by default ``fn``'s name.
            grace: seconds ``fn`` may run on once the child is closing
                before it is cancelled; by default the tree's grace.

        Returns:
            The new child, RUNNING.

        Raises:
            TypeError: ``fn`` is not an async function (raised at once,
                without waiting for a slot).
            InvalidStateError: the limiter's process is closing or closed,
                before or while waiting.
        """
        check_async_callable(fn, "limited_go", "fn(proc)", nargs=1 + len(args))
        self._check_running()
        scope = trio.CancelScope()
        self._waiting.add(scope)
        try:
            with scope:
                await self._slots.acquire()
        finally:
            self._waiting.discard(scope)
        if scope.cancelled_caught:
            raise self._closing_error(waited=True)
        if self._process.state is not State.RUNNING:
            # The slot came in the same instant as the close: give it back.
            self._slots.release()
            raise self._closing_error(waited=True)
        try:
            child = self._process.go(fn, *args, name=name, grace=grace)
        except BaseException:
            self._slots.release()
            raise
        set_keeper(child, self._keeper)
        return child

    def go(
        self,
        fn: Callable[[Process, Unpack[_Ts]], Awaitable[object]],
        *args: *_Ts,
        name: str | None = None,
        grace: float | None = None,
    ) -> Process:
        """Start ``await fn(child, *args)`` in a child at once, without a slot.

        The same as ``limiter.process.go(...)``: the child is closed with
        the limiter but neither waits for nor takes a slot.

        Args:
            fn: an async function taking the new child first.
            *args: further positional arguments for ``fn``.
            name: the child's name; by default ``fn``'s name.
            grace: seconds ``fn`` may run on once the child is closing
                before it is cancelled; by default the tree's grace.

        Returns:
            The new child (RUNNING, or CLOSING if the limiter is).

        Raises:
            TypeError: ``fn`` is not an async function.
            InvalidStateError: the limiter's process is CLOSED.
        """
        return self._process.go(fn, *args, name=name, grace=grace)

    def statistics(self) -> RateLimiterStatistics:
        """Return a snapshot of the slots in use and the tasks waiting for one."""
        return RateLimiterStatistics(
            limit=self._limit,
            in_use=self._limit - self._slots.value,
            tasks_waiting=self._slots.statistics().tasks_waiting,
        )

    # ------------------------------------------------------------ private

    async def _watch_closing(self, proc: Process) -> None:
        # The limiter's own function: once it closes, nobody waiting may
        # ever get a slot that means anything, so wake them all.
        try:
            await proc.closing.wait()
        finally:
            for scope in self._waiting:
                scope.cancel()

    def _check_running(self) -> None:
        if self._process.state is not State.RUNNING:
            raise self._closing_error(waited=False)

    def _closing_error(self, *, waited: bool) -> InvalidStateError:
        p = self._process
        what = (
            "started closing while limited_go() waited for a slot"
            if waited
            else f"is {p.state.name}"
        )
        return InvalidStateError(
            f"limited_go(): rate limiter {p.name!r} {what}, so it gives no more "
            "slots; start work only while its process runs, or make a new "
            "RateLimiter"
        )
