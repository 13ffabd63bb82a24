"""The demo application: a small tree that starts in order and stops in reverse.

``python -m proctree demo`` runs it under a root bound to SIGINT and
SIGTERM: a database pool, an HTTP server that needs the pool, and two
workers under the server. Ctrl-C closes the tree leaves first and prints
each teardown as it happens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from .._core import Process, go, with_signals, with_teardown

__all__ = ["run_demo"]


async def run_demo(
    *,
    duration: float | None,
    tick: float,
    write: Callable[[str], object],
) -> None:
    """Run the demo tree until a signal arrives or ``duration`` seconds pass.

    Args:
        duration: close the tree by itself after this many seconds; None
            waits for SIGINT or SIGTERM.
        tick: seconds between two jobs of a worker.
        write: where each line of output goes (one call per line).
    """
    start = trio.current_time()

    def say(text: str) -> None:
        write(f"[{trio.current_time() - start:6.2f}s] {text}")

    def teardown(label: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            say(f"{label}: teardown")
            await trio.sleep(tick / 10)

        return close

    async def worker(proc: Process) -> None:
        jobs = 0
        while not proc.closing.is_set():
            with trio.move_on_after(tick):
                await proc.closing.wait()
            if not proc.closing.is_set():
                jobs += 1
                say(f"{proc.name}: job {jobs} done")
        say(f"{proc.name}: closing seen, finished after {jobs} jobs")

    async def announce(proc: Process) -> None:
        await proc.closing.wait()
        say("closing the tree: leaves first")

    async with with_signals(name="demo") as root:
        root.set_teardown(teardown("demo (root)"))
        go(announce, parent=root, name="announce")
        db = with_teardown(teardown("db pool"), parent=root, name="db")
        say("db pool: open")
        http = with_teardown(teardown("http server"), parent=db, name="http")
        say("http server: listening (closes before the db pool)")
        for i in (1, 2):
            go(worker, parent=http, name=f"worker-{i}")
        if duration is None:
            say("running; press Ctrl-C to close the tree in order (twice to force)")
        else:
            say(f"running; closing by itself after {duration:g}s")
        await trio.sleep(float("inf") if duration is None else duration)
    say("every process is closed")
