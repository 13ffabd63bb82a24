"""Runners for the tests of seeing the tree (run by a ``proctree run`` subprocess).

``commanded`` reads its standard input: ``close NAME`` closes that job,
``spawn N`` makes N more jobs, and each command is answered on stdout
(``done ...``) once it has happened, so a test knows when to look.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

import proctree

Ready = Callable[[], Awaitable[None]]


async def _job(proc: proctree.Process) -> None:
    await proc.closing.wait()


async def _slow_teardown() -> None:
    await trio.sleep(0.3)


async def _say(text: str) -> None:
    print(text, flush=True)


async def _lines() -> AsyncIterator[str]:
    """Standard input, line by line, cancellable (a thread's read is not)."""
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        pending = b""
        while True:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode()


async def commanded(ready: Ready) -> None:
    jobs = proctree.with_parent(None, name="jobs")
    named: dict[str, proctree.Process] = {}
    for i in range(int(os.environ.get("SEEING_JOBS", "3"))):
        named[f"job-{i}"] = jobs.go(_job, name=f"job-{i}")
    db = proctree.with_teardown(_slow_teardown, name="db")
    db.go(_job, name="pool")
    async with trio.open_nursery() as nursery:

        async def until_stopped() -> None:
            await ready()
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_stopped)
        async for line in _lines():
            words = line.split()
            if words[:1] == ["close"] and words[1] in named:
                await named[words[1]].aclose()
                await _say(f"done close {words[1]}")
            elif words[:1] == ["spawn"]:
                start = len(named)
                for i in range(start, start + int(words[1])):
                    named[f"job-{i}"] = jobs.go(_job, name=f"job-{i}")
                await _say(f"done spawn {words[1]}")


async def wide(ready: Ready) -> None:
    """SEEING_JOBS jobs (default 100,000) under one parent, for scale tests."""
    jobs = proctree.with_parent(None, name="jobs")
    for i in range(int(os.environ.get("SEEING_JOBS", "100000"))):
        jobs.go(_job, name=f"job-{i}")
    await _say("ready")
    await ready()


async def stubborn_shutdown(ready: Ready) -> None:
    """A slow shutdown: a worker that ignores the stop, a slow teardown."""

    async def ignores(proc: proctree.Process) -> None:
        with trio.CancelScope(shield=False):
            await trio.sleep_forever()

    db = proctree.with_teardown(_slow_teardown, name="db")
    db.go(ignores, name="stubborn", grace=0.2)
    db.go(_job, name="polite")
    await ready()


async def failing(ready: Ready) -> None:
    """Ready, then a part fails once its stdin closes."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ready)
        async for _ in _lines():
            pass
        raise ValueError("the disk is full")
