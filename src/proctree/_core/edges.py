"""The edges of the DAG: who closes whom, who waits for whom.

A parent keeps its children in a dict, child -> edge bits; a child keeps
the processes above it as one process or, rarely, a list. Only data here:
the driver decides what an edge makes happen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .node import Process

__all__ = ["CLOSE", "WAIT", "add_edge", "remove_up", "ups_of", "waits_on"]

CLOSE: Final = 1
"""Edge bit: closing the parent closes the child."""
WAIT: Final = 2
"""Edge bit: the parent is not CLOSED before the child is."""


def ups_of(p: Process) -> list[Process] | tuple[Process, ...]:
    """The processes with an edge to ``p``."""
    ups = p._ups
    if ups is None:
        return ()
    if isinstance(ups, list):
        return ups
    return (ups,)


def remove_up(child: Process, parent: Process) -> None:
    """Forget that ``parent`` is above ``child`` (its edge is gone)."""
    ups = child._ups
    if ups is parent:
        child._ups = None
    elif isinstance(ups, list):
        ups.remove(parent)
        if len(ups) == 1:
            child._ups = ups[0]


def add_edge(parent: Process, child: Process, flags: int) -> None:
    """Add ``flags`` to the edge ``parent -> child`` (neither is CLOSED)."""
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
    if flags & WAIT and not old & WAIT:
        parent._open_waits += 1


def waits_on(target: Process, me: Process) -> bool:
    """Whether ``target`` cannot be CLOSED before ``me`` is (walks up from ``me``).

    The cost is the number of processes above ``me``, whatever the size of
    the tree below.
    """
    if target is me:
        return True
    if me._ups is None:
        return False
    stack = [me]
    seen: set[Process] = set()
    while stack:
        q = stack.pop()
        for u in ups_of(q):
            siblings = u._children
            if siblings is None or not siblings.get(q, 0) & WAIT:
                continue
            if u is target:
                return True
            if u not in seen:
                seen.add(u)
                stack.append(u)
    return False
