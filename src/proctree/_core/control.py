"""What the layers above may do to a process beyond its public methods.

Combinators, services, supervisors, schedules and leaves build on these:
keepers, closing callbacks, closes with a deadline, and the current
process. Each is a small, named operation on the node; nothing above
``_core`` touches a process's fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .current import CURRENT, owner
from .driver import drive
from .edges import CLOSE
from .errors import InvalidStateError, ProctreeError
from .host import emit
from .node import BACKGROUND, Process, first_parent
from .protocols import Keeper
from .state import State

__all__ = [
    "cancel_on_closing",
    "close_by",
    "close_reason",
    "current_or_none",
    "current_process",
    "forced_at",
    "forget_on_closing",
    "has_instruments",
    "instrument_hook",
    "is_closing",
    "keeper_of",
    "kind_of",
    "on_closing",
    "parent_of",
    "release_close",
    "runner_of",
    "set_keeper",
]


def current_process(what: str) -> Process:
    """The process whose code is running; a clear error outside every one."""
    current = CURRENT.get(None)
    if current is None:
        raise ProctreeError(
            f"{what} must run inside a proctree process: start it with "
            "proctree.new_process(runner).start() under a root"
        )
    return owner(current)


def current_or_none() -> Process | None:
    """The process whose code is running, or None outside every process."""
    current = CURRENT.get(None)
    return None if current is None else owner(current)


def kind_of(p: Process) -> str:
    """``"root"``, ``"go"``, ``"runner"``, ``"process"`` or ``"background"``."""
    return p._kind


def parent_of(p: Process) -> Process | None:
    """The process ``p`` was made under, while linked (None for a root)."""
    return first_parent(p)


def runner_of(p: Process) -> object | None:
    """The runner a runner process runs (the object, for a bound ``run``).

    None for a process that is not a runner's, or once it is CLOSED.
    """
    if p._kind != "runner":
        return None  # a go process keeps its function's value there
    progress = p._startup
    run: object = p._run if progress is None else progress.run
    return getattr(run, "__self__", run)


def has_instruments(p: Process) -> bool:
    """Whether ``p``'s tree has instruments (so a hook would be heard)."""
    host = p._host
    return host is not None and bool(host.instruments)


def instrument_hook(p: Process, hook: str, *args: object) -> None:
    """Call ``hook(p, *args)`` on the instruments of ``p``'s tree (never raises)."""
    host = p._host
    if host is not None and host.instruments:
        emit(host, hook, p, *args)


def is_closing(p: Process) -> bool:
    """Whether ``p`` is CLOSING or CLOSED (without making its ``closing`` event)."""
    return p._state is State.CLOSING or p._state is State.CLOSED


def on_closing(p: Process, callback: Callable[[], object]) -> bool:
    """Call ``callback()`` once, synchronously, when ``p`` starts closing.

    Returns False, keeping nothing, if ``p`` is already CLOSING or CLOSED.
    The callback runs inside the close's driver: it must be quick, must not
    raise, and must not close processes (cancelling a trio scope is its
    intended use). :func:`background` never closes, so nothing is kept for
    it. Undo with :func:`forget_on_closing`.
    """
    if p._state is State.CLOSING or p._state is State.CLOSED:
        return False
    if p is not BACKGROUND:
        watchers = p._watchers
        if watchers is None:
            p._watchers = [callback]
        else:
            watchers.append(callback)
    return True


def cancel_on_closing(p: Process) -> Callable[[], object]:
    """Cancel ``p``'s own task's cancel scope as soon as ``p`` starts closing.

    For a runner that stops by being cancelled at once (a leaf with no
    graceful stop), from inside that runner: its task needs no scope of its
    own. At once if ``p`` is already closing. Returns the callback, for
    :func:`forget_on_closing` once the cancellable part is over.
    """
    scope = p._scope
    if scope is None:
        raise InvalidStateError(
            f"process {p.name!r} has no task of its own to cancel: "
            "cancel_on_closing() is for a runner's own process"
        )
    stop = scope.cancel
    if not on_closing(p, stop):
        stop()
    return stop


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


def keeper_of(p: Process) -> Keeper | None:
    """``p``'s keeper, if it has one (to wrap it: see the supervisor's)."""
    return p._keeper


def release_close(parent: Process, child: Process) -> None:
    """Keep ``parent`` waiting for ``child`` but stop closing it with the parent.

    Combinators use it once a dependency is up: from then on they decide
    when it is stopped (a stack's reverse order).
    """
    children = parent._children
    if children is not None and child in children:
        children[child] &= ~CLOSE


def close_by(p: Process, deadline: float | None) -> None:
    """Ask ``p`` to close; its subtree is forced at ``deadline`` (None: own graces)."""
    drive([(p, deadline)], [])


def close_reason(p: Process) -> str | None:
    """Why ``p`` began closing (a phrase from ``reasons.py``), or None if open."""
    return p._why


def forced_at(p: Process) -> float | None:
    """When ``p`` will be forced, if a finite deadline applies."""
    return p._forced if p._forced < math.inf else None


# ------------------------------------------------------ what a root needs
