"""The shutdown timeline: an instrument that records how a tree closed.

For each process it notes when it began closing, when its teardown began,
when it was forced after its grace and when it became CLOSED, nested as
the tree is. :meth:`ShutdownTimeline.render` draws it (``timeline_svg.py``)
and :meth:`ShutdownTimeline.critical_path` says which chain of processes
made the shutdown as long as it was.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final, final

import attrs
import trio

from .._core import (
    Instrument,
    Process,
    close_reason,
    first_parent,
    forced_at,
    leaf_exceptions,
)

__all__ = ["ShutdownSpan", "ShutdownTimeline", "describe"]

_NEVER: Final = math.inf


class _Span:
    """One process's close, as recorded (mutable, package-private)."""

    __slots__ = (
        "children",
        "closed_at",
        "closing_at",
        "error",
        "forced_at",
        "name",
        "overrun_at",
        "parent",
        "reason",
        "teardown_at",
    )

    def __init__(self, name: str, parent: _Span | None) -> None:
        self.name = name
        self.parent = parent
        self.children: dict[_Span, None] = {}
        self.closing_at = _NEVER
        self.teardown_at = _NEVER
        self.closed_at = _NEVER
        self.forced_at = _NEVER
        self.overrun_at = _NEVER
        self.error: str | None = None
        self.reason: str | None = None
        if parent is not None:
            parent.children[self] = None


def describe(error: BaseException) -> str:
    """``Type: message`` of each exception inside ``error``, joined by ``; ``."""
    return "; ".join(f"{type(e).__name__}: {e}" for e in leaf_exceptions(error))


def _opt(value: float, start: float) -> float | None:
    return None if value == _NEVER else value - start


@final
@attrs.frozen
class ShutdownSpan:
    """One process in a shutdown timeline. Times are seconds from its start.

    The shutdown starts when the first process the timeline saw made (the
    root it was given to) begins closing.
    """

    name: str
    """The process's name."""
    path: str
    """Names from the top of the timeline down to it, joined by ``/``."""
    depth: int
    """0 for a top process, 1 for its children, and so on."""
    closing: float | None
    """When it began closing, or None if that was not seen."""
    teardown: float | None
    """When its teardown began, or None if it had none (or not yet)."""
    closed: float | None
    """When it became CLOSED, or None if it is still open."""
    forced: float | None
    """When it was forced after its grace, or None if it ended in time."""
    ended_forced: float | None
    """When its task, forced, ended at last (None if it was not forced)."""
    error: str | None
    """Its failure as ``Type: message``, or None."""
    reason: str | None
    """Why it began closing (see :attr:`proctree.ProcessInfo.close_reason`)."""
    critical: bool
    """Whether it is on the critical path."""

    @property
    def duration(self) -> float | None:
        """Seconds from closing to CLOSED, or None if either is unknown."""
        if self.closing is None or self.closed is None:
            return None
        return self.closed - self.closing


@final
class ShutdownTimeline(Instrument):
    """An instrument that records each process's close, for a timeline picture.

    Give it to the root (``open_root(instruments=[timeline])``, or
    ``proctree run --shutdown-report FILE``); when the tree has closed,
    :meth:`render` returns a self-contained HTML page (and
    :meth:`render_svg` the picture alone): a bar per process nested as the
    tree is, teardowns marked, the time a forced process overran its grace
    in another colour, and the critical path highlighted, with the figures
    in text beside it.

    By default it keeps only what closed during the shutdown (processes
    that closed before the root began closing are counted, not kept), so a
    long-lived server that closes a process per connection does not grow
    it. ``record_all=True`` keeps every close (the pytest plugin does).

    Args:
        record_all: keep the closes from before the shutdown too.
    """

    def __init__(self, *, record_all: bool = False) -> None:
        self._record_all = bool(record_all)
        self._open: dict[int, _Span] = {}
        self._tops: dict[_Span, None] = {}
        self._first: int | None = None
        self._top: _Span | None = None
        self._start = _NEVER
        self._dropped = 0

    # ----------------------------------------------------------------- hooks

    def created(self, process: Process) -> None:
        """Remember the first process made: the root whose close starts it."""
        if self._first is None:
            self._first = id(process)

    def _span(self, process: Process) -> _Span:
        span = self._open.get(id(process))
        if span is not None:
            return span
        # Usually the parent was seen first (a close travels down); if not,
        # make the missing ancestors too, without recursion (deep chains).
        unseen = [process]
        parent: _Span | None = None
        up = first_parent(process)
        while up is not None:
            parent = self._open.get(id(up))
            if parent is not None:
                break
            unseen.append(up)
            up = first_parent(up)
        for p in reversed(unseen):
            span = self._open[id(p)] = _Span(p.name, parent)
            if parent is None:
                self._tops[span] = None
            parent = span
        assert parent is not None
        return parent

    def closing(self, process: Process) -> None:
        """Note when it began closing (and whether the shutdown begins)."""
        span = self._span(process)
        now = trio.current_time()
        span.closing_at = now
        span.reason = close_reason(process)
        if self._top is None and id(process) == self._first:
            self._top = span
            self._start = now

    def teardown_started(self, process: Process) -> None:
        """Note when its teardown began."""
        self._span(process).teardown_at = trio.current_time()

    def grace_overrun(self, process: Process) -> None:
        """Note that it was forced after its grace, and when."""
        span = self._span(process)
        span.overrun_at = trio.current_time()
        deadline = forced_at(process)
        span.forced_at = span.overrun_at if deadline is None else deadline

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """Note when it became CLOSED; forget it if that was before the shutdown."""
        span = self._open.pop(id(process), None) or _Span(process.name, None)
        span.closed_at = trio.current_time()
        if error is not None:
            span.error = describe(error)
        if not self._record_all and self._top is None and not span.children:
            # Closed before the shutdown began: not part of it.
            self._dropped += 1
            parent = span.parent
            if parent is not None:
                del parent.children[span]
            else:
                self._tops.pop(span, None)

    # ---------------------------------------------------------------- reading

    @property
    def start(self) -> float | None:
        """Trio's clock when the shutdown began, or None if it has not."""
        return None if self._start == _NEVER else self._start

    @property
    def closed_before(self) -> int:
        """How many processes closed before the shutdown began (not kept)."""
        return self._dropped

    def _origin(self) -> float:
        if self._start != _NEVER:
            return self._start
        times = [s.closing_at for s in self._walk() if s.closing_at != _NEVER]
        return min(times, default=0.0)

    def _walk(self) -> list[_Span]:
        out: list[_Span] = []
        stack = list(reversed(self._tops))
        while stack:
            span = stack.pop()
            out.append(span)
            stack.extend(reversed(span.children))
        return out

    def _critical(self) -> list[_Span]:
        top = self._top
        if top is None:
            tops = [s for s in self._tops if s.closed_at != _NEVER]
            if not tops:
                return []
            top = max(tops, key=lambda s: s.closed_at)
        path = [top]
        span = top
        while span.children:
            last = max(span.children, key=lambda s: s.closed_at)
            # Follow the child only if waiting for it was most of this
            # process's close; else its own task or teardown held it up.
            if span.closing_at != _NEVER and span.closed_at != _NEVER:
                waited = last.closed_at - span.closing_at
                if waited * 2 < span.closed_at - span.closing_at:
                    break
            path.append(last)
            span = last
        return path

    def spans(self) -> list[ShutdownSpan]:
        """Every recorded process, depth first as the tree is nested.

        Siblings come in the order they began closing.
        """
        start = self._origin()
        critical = set(self._critical())
        out: list[ShutdownSpan] = []
        stack: list[tuple[_Span, str, int]] = [
            (s, s.name, 0) for s in reversed(self._tops)
        ]
        while stack:
            span, path, depth = stack.pop()
            out.append(self._info(span, path, depth, start, span in critical))
            stack.extend(
                (c, f"{path}/{c.name}", depth + 1) for c in reversed(span.children)
            )
        return out

    def critical_path(self) -> list[ShutdownSpan]:
        """The chain, top down, whose closes made the shutdown as long as it was.

        From the top process, each step goes to the child that became
        CLOSED last (the one its parent waited for longest), as long as
        waiting for it took at least half of the parent's close; otherwise
        the parent's own task or teardown held it up, and the path ends
        there.
        """
        start = self._origin()
        path = self._critical()
        out: list[ShutdownSpan] = []
        names: list[str] = []
        for depth, span in enumerate(path):
            names.append(span.name)
            out.append(self._info(span, "/".join(names), depth, start, True))
        return out

    @staticmethod
    def _info(
        span: _Span, path: str, depth: int, start: float, critical: bool
    ) -> ShutdownSpan:
        return ShutdownSpan(
            name=span.name,
            path=path,
            depth=depth,
            closing=_opt(span.closing_at, start),
            teardown=_opt(span.teardown_at, start),
            closed=_opt(span.closed_at, start),
            forced=_opt(span.forced_at, start),
            ended_forced=_opt(span.overrun_at, start),
            error=span.error,
            reason=span.reason,
            critical=critical,
        )

    def summary(self) -> str:
        """The figures, as text.

        The shutdown's length, its critical path, the slowest teardowns and
        who was forced after their grace.
        """
        from .timeline_svg import figures

        return "\n".join(figures(self.spans(), self.critical_path(), self._dropped))

    def render_svg(self, *, max_rows: int = 400) -> str:
        """The timeline as one self-contained SVG document.

        Args:
            max_rows: draw at most this many bars; the critical path is
                always drawn, and the other children of a wide process are
                summed up in one row.
        """
        from .timeline_svg import render_svg

        return render_svg(
            self.spans(), self.critical_path(), self._dropped, max_rows=max_rows
        )

    def render(self, *, max_rows: int = 400) -> str:
        """The timeline as a self-contained HTML page (the SVG and the figures).

        Nothing in it is fetched from elsewhere when it is viewed.
        """
        from .timeline_svg import render_html

        return render_html(
            self.spans(), self.critical_path(), self._dropped, max_rows=max_rows
        )

    def write(self, path: str | Path, *, max_rows: int = 400) -> Path:
        """Write :meth:`render_svg` to a ``.svg`` path, else :meth:`render`.

        Returns:
            The path written.
        """
        where = Path(path)
        if where.suffix.lower() == ".svg":
            where.write_text(self.render_svg(max_rows=max_rows), encoding="utf-8")
        else:
            where.write_text(self.render(max_rows=max_rows), encoding="utf-8")
        return where
