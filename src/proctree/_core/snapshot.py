"""Tree introspection: a frozen snapshot of a live tree, drawn as text or DOT."""

from __future__ import annotations

from collections.abc import Iterator
from typing import final

import attrs
import trio

from .edges import CLOSE, WAIT
from .errors import describe
from .node import Process, first_parent
from .state import State

__all__ = ["ProcessInfo", "render_dot", "render_text", "tree", "walk"]


@final
@attrs.frozen
class _Facts:
    """What introspection may read of a process (package-private)."""

    kind: str
    born: float
    first_parent: Process | None
    edges: tuple[tuple[Process, bool, bool], ...]
    """(process below, closed with this one, waited for by this one)"""
    restarts: int
    status: str | None
    key: str | None


def _facts(p: Process) -> _Facts:
    """A read-only look at ``p``'s links and bookkeeping, for tree views."""
    first = first_parent(p)
    children = p._children or {}
    edges = tuple(
        (q, bool(flags & CLOSE), bool(flags & WAIT)) for q, flags in children.items()
    )
    keeper = p._keeper
    counter = getattr(keeper, "restarts", None)
    restarts = counter(p) if counter is not None else 0
    say = getattr(keeper, "status", None)
    status = say(p) if say is not None else None
    key = getattr(keeper, "key", None)
    return _Facts(
        p._kind,
        p._born,
        first,
        edges,
        restarts,
        status,
        key if isinstance(key, str) else None,
    )


@final
@attrs.frozen
class ProcessInfo:
    """A snapshot of one process and, recursively, of the processes below it.

    Made by :func:`tree`; immutable, so it can be kept, compared, rendered
    or sent elsewhere after the tree has moved on.
    """

    name: str
    """The process's name."""
    path: str
    """Names from the snapshot's top down to this process, joined by ``/``."""
    state: State
    """Its state when the snapshot was taken."""
    kind: str
    """``"root"``, ``"go"``, ``"runner"`` or ``"process"`` (no task of its own)."""
    uptime: float
    """Seconds on trio's clock since it was made (for a runner, since ``start()``)."""
    children: tuple[ProcessInfo, ...]
    """The processes made under it, in the order they were added."""
    waits_for: tuple[str, ...]
    """Paths of other processes it waits for (DAG edges, not its children)."""
    closes: tuple[str, ...]
    """Paths of other processes it closes without waiting for them."""
    restarts: int
    """How many times it was restarted by whoever keeps it (0 if nobody)."""
    error: str | None
    """Its own failure as ``Type: message``, or None."""
    overran_grace: bool
    """Whether its task outlived its grace and was cancelled."""
    status: str | None = None
    """What its keeper says of it now, or None. A supervisor whose restarts
    are paused says ``"restarts paused until t=12.5 (3.5s from now)"``
    (times on trio's clock)."""
    key: str | None = None
    """The supervisor key it runs under, or None if no supervisor keeps it."""
    close_reason: str | None = None
    """Why it began closing (``"parent closed"``, ``"failed"``,
    ``"requested"`` ...; see :doc:`/tree-json`), or None while it is open."""

    def walk(self) -> Iterator[ProcessInfo]:
        """This snapshot and every one below it, depth first, in order."""
        stack: list[ProcessInfo] = [self]
        while stack:
            info = stack.pop()
            yield info
            stack.extend(reversed(info.children))


def walk(top: Process) -> Iterator[Process]:
    """``top`` and every process made under it, parents first, in order added.

    Iterative, as :func:`tree` is; each process once, under its first parent.
    """
    stack = [top]
    while stack:
        p = stack.pop()
        yield p
        below = [q for q in (p._children or ()) if first_parent(q) is p]
        stack.extend(reversed(below))


def tree(top: Process) -> ProcessInfo:
    """Take a snapshot of ``top`` and every process below it.

    A process appears once, under the parent it was made under; its other
    links show as :attr:`ProcessInfo.waits_for` and :attr:`ProcessInfo.closes`.
    Must be called from trio (it reads trio's clock).

    Raises:
        TypeError: ``top`` is not a :class:`~proctree.Process`.
    """
    if not isinstance(top, Process):
        raise TypeError(f"tree() takes a proctree.Process, got {type(top).__name__}")
    now = trio.current_time()
    # Iterative on purpose: trees 100,000 deep must not hit the recursion limit.
    paths: dict[Process, str] = {top: top.name}
    # Each process's facts are read once, then reused bottom-up.
    order: list[tuple[Process, _Facts, list[Process]]] = []
    stack = [top]
    while stack:
        p = stack.pop()
        f = _facts(p)
        mine: list[Process] = []
        for q, _closes, _waits in f.edges:
            if q not in paths and first_parent(q) is p:
                paths[q] = f"{paths[p]}/{q.name}"
                mine.append(q)
        order.append((p, f, mine))
        stack.extend(reversed(mine))
    infos: dict[Process, ProcessInfo] = {}
    for p, f, mine in reversed(order):
        waits_for: tuple[str, ...] = ()
        closes: tuple[str, ...] = ()
        if len(mine) != len(f.edges):  # DAG edges besides the tree's (rare)
            # A set: a process may have 100,000 children.
            tree_children = set(mine)
            others = [(q, c, w) for q, c, w in f.edges if q not in tree_children]
            waits_for = tuple(_where(q, paths) for q, _c, w in others if w)
            closes = tuple(_where(q, paths) for q, c, w in others if c and not w)
        error = p._error
        infos[p] = ProcessInfo(
            name=p.name,
            path=paths[p],
            state=p._state,
            kind=f.kind,
            uptime=max(0.0, now - f.born),
            children=tuple([infos[q] for q in mine]),
            waits_for=waits_for,
            closes=closes,
            restarts=f.restarts,
            error=None if error is None else describe(error),
            overran_grace=p._overran,
            status=f.status,
            key=f.key,
            close_reason=p._why,
        )
    return infos[top]


def _where(q: Process, paths: dict[Process, str]) -> str:
    return paths.get(q) or q.path


_COLOURS = {
    State.INITIAL: "\x1b[2m",
    State.STARTING: "\x1b[33m",
    State.RUNNING: "\x1b[32m",
    State.CLOSING: "\x1b[35m",
    State.CLOSED: "\x1b[2m",
}
_RESET = "\x1b[0m"


def _label(info: ProcessInfo, colour: bool) -> str:
    state = info.state.name
    if colour:
        state = f"{_COLOURS[info.state]}{state}{_RESET}"
    parts = [f"{info.name} [{state}] {info.kind}, up {info.uptime:.1f}s"]
    if info.key is not None and info.key != info.name:
        parts.append(f"key {info.key}")
    if info.close_reason is not None:
        parts.append(f"closing: {info.close_reason}")
    if info.restarts:
        parts.append(f"restarts {info.restarts}")
    if info.status is not None:
        parts.append(info.status)
    if info.overran_grace:
        parts.append("overran grace")
    if info.error is not None:
        parts.append(f"failed: {info.error}")
    if info.waits_for:
        parts.append("waits for " + ", ".join(info.waits_for))
    if info.closes:
        parts.append("closes " + ", ".join(info.closes))
    return "; ".join(parts)


def render_text(snapshot: ProcessInfo, *, colour: bool = False) -> str:
    """Draw a snapshot as an indented tree, as ``pstree`` does.

    Args:
        snapshot: what :func:`tree` returned.
        colour: colour the states with ANSI escapes (for a terminal).

    Returns:
        The tree, one process per line, with a final newline.
    """
    lines = [_label(snapshot, colour)]
    # (info, prefix for its children)
    stack: list[tuple[ProcessInfo, str, bool]] = [
        (child, "", i == len(snapshot.children) - 1)
        for i, child in reversed(list(enumerate(snapshot.children)))
    ]
    while stack:
        info, prefix, last = stack.pop()
        lines.append(f"{prefix}{'└── ' if last else '├── '}{_label(info, colour)}")
        inner = prefix + ("    " if last else "│   ")
        n = len(info.children)
        stack.extend(
            (child, inner, i == n - 1)
            for i, child in reversed(list(enumerate(info.children)))
        )
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(snapshot: ProcessInfo) -> str:
    """Draw a snapshot as a Graphviz DOT digraph.

    Tree edges (a process and the ones made under it) are solid; the other
    DAG edges are dashed: ``waits for`` in blue, ``closes`` (without waiting)
    in grey.

    Returns:
        The DOT source, ready for ``dot -Tsvg``.
    """
    lines = [
        "digraph proctree {",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="monospace"];',
    ]
    for info in snapshot.walk():
        parts = [info.name, info.state.name]
        if info.error is not None:
            parts.append("failed")
        # DOT's line break inside a label is the two characters backslash, n.
        label = '"' + "\\n".join(_quote(part)[1:-1] for part in parts) + '"'
        lines.append(f"  {_quote(info.path)} [label={label}];")
    for info in snapshot.walk():
        for child in info.children:
            lines.append(f"  {_quote(info.path)} -> {_quote(child.path)};")
        for other in info.waits_for:
            lines.append(
                f"  {_quote(info.path)} -> {_quote(other)} "
                '[style=dashed, color=blue, label="waits for"];'
            )
        for other in info.closes:
            lines.append(
                f"  {_quote(info.path)} -> {_quote(other)} "
                '[style=dashed, color=gray, label="closes"];'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
