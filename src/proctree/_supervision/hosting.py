"""Where a supervisor runs: its own process, or the runner process that runs it.

A :class:`~proctree.Supervisor` is a runner. ``sup.start()`` runs it in a
process of its own, made the first time one is needed (INITIAL, under the
parent it was given); passed to ``sequential``, ``new_process`` or
``proctree run``, it runs in the process made for it there. Either way
the process it runs in is *its* process while it runs, and its children
are that process's children (``docs/design-compose.md``).
"""

from __future__ import annotations

import math
from typing import final

import attrs

from .._core import (
    InvalidStateError,
    Process,
    Runner,
    State,
    current_or_none,
    is_closing,
    keeper_of,
    new_process,
    resolve_parent,
    set_keeper,
)
from .restarts import FailureCount, PauseStatus

__all__ = ["Hosting"]


@final
@attrs.define(eq=False)
class Hosting:
    """The process a supervisor runs in, and the parent of its own one."""

    name: str
    parent: Process | None  # of its own process; None: the current one then
    count: FailureCount  # what its tree views show (PauseStatus)
    process: Process | None = None
    runs: int = 0

    @classmethod
    def make(cls, name: object, parent: object, count: FailureCount) -> Hosting:
        """Check ``parent`` now; without one, outside every root, defer it."""
        if not isinstance(name, str):
            raise TypeError(f"Supervisor: name must be a str, got {name!r}")
        if parent is None and current_or_none() is None:
            # Made at import time, say, to be a runner of `proctree run`.
            return cls(name, None, count)
        return cls(name, resolve_parent(parent, "Supervisor")[0], count)

    def own(self, runner: Runner) -> Process:
        """The process the supervisor runs in; its own (INITIAL) if none yet."""
        p = self.process
        if p is None:
            parent = self.parent
            if parent is None:
                parent = resolve_parent(None, "Supervisor.start")[0]
            # It runs no user code: its stop is its children's, each with
            # its own grace, so its own grace is infinite.
            p = self.process = new_process(
                runner, parent=parent, name=self.name, grace=math.inf
            )
        return p

    def enter(self, me: Process) -> bool:
        """A run begins in ``me``; True if an earlier run ended (start afresh).

        Raises:
            InvalidStateError: the supervisor already runs, or has a process
                of its own that is not ``me``.
        """
        p = self.process
        if p is not None and p is not me and p.state is not State.CLOSED:
            raise InvalidStateError(
                f"supervisor {self.name!r} already has a process, {p.path!r} "
                f"({p.state.name}); a supervisor runs in one process at a "
                "time: start that one, or make another Supervisor"
            )
        self.process = me
        # The keeper the runner's maker gave (a combinator's, a slot's) goes
        # on; the wrapper adds what tree views show of a pause.
        set_keeper(me, PauseStatus(self.count, keeper_of(me)))
        self.runs += 1
        return self.runs > 1

    def state(self) -> State:
        """The state of the process it runs in (INITIAL before there is one)."""
        p = self.process
        return State.INITIAL if p is None else p.state

    def closing(self) -> bool:
        """Whether the process it runs in is closing (or closed)."""
        p = self.process
        return p is not None and is_closing(p)

    def running(self) -> bool:
        """Whether it is starting or running, so per-key calls make sense."""
        return self.state() in (State.STARTING, State.RUNNING)
