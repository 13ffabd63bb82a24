"""Grace overruns: one log line for a shutdown that forces many processes at once.

A process whose task outlives its grace is cancelled (``overran_grace``,
the instruments' ``grace_overrun`` hook). Logging a warning for each one
turns the forced stop of a server with 1,000 open connections into 1,000
lines, so the overruns of one host are gathered and logged as one summary:
how many, of which kinds, the first few paths.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Final, final

import attrs
import trio

from .host import logger

if TYPE_CHECKING:
    from .host import Host
    from .node import Process

__all__ = ["note_overrun"]

FIRST_PATHS: Final = 5
"""How many paths the summary names."""

_QUIET: Final = 3
"""Scheduler batches with no new overrun before the summary is logged: the
tasks forced at one deadline end over a few batches, not in one."""


@final
@attrs.define(eq=False, slots=True)
class OverrunBatch:
    """The overruns of one host that are not logged yet."""

    count: int = 0
    kinds: Counter[str] = attrs.field(factory=Counter[str])
    paths: list[str] = attrs.field(factory=list[str])


def note_overrun(host: Host | None, p: Process) -> None:
    """Count ``p``'s overrun in its host's summary (logged soon, once)."""
    if host is None:
        _log(1, Counter({p._kind: 1}), [p.path])
        return
    batch = host.overruns
    if batch is None:
        batch = host.overruns = OverrunBatch()
        host.nursery.start_soon(_flush, host, batch, name="proctree overruns")
    batch.count += 1
    batch.kinds[p._kind] += 1
    if len(batch.paths) < FIRST_PATHS:
        batch.paths.append(p.path)


async def _flush(host: Host, batch: OverrunBatch) -> None:
    try:
        seen = -1
        while seen != batch.count:
            seen = batch.count
            for _ in range(_QUIET):
                await trio.lowlevel.checkpoint()
    finally:
        # Also when a forced shutdown cancels this task: never lose the line.
        if host.overruns is batch:
            host.overruns = None
        _log(batch.count, batch.kinds, batch.paths)


def _log(count: int, kinds: Counter[str], paths: list[str]) -> None:
    fields = {
        "proctree_event": "grace_overrun",
        "proctree_count": count,
        "proctree_kinds": dict(kinds),
        "proctree_paths": list(paths),
    }
    if count == 1:
        fields["proctree_path"] = paths[0]
        logger.warning(
            "process %r did not end within its grace and was cancelled",
            paths[0],
            extra=fields,
        )
        return
    more = count - len(paths)
    named = ", ".join(repr(path) for path in paths)
    if more:
        named += f" and {more} more"
    logger.warning(
        "%d processes did not end within their grace and were cancelled (%s): %s",
        count,
        ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()),
        named,
        extra=fields,
    )
