"""A Supervisor and a Service made at import time, as ``proctree run`` targets."""

from __future__ import annotations

import trio

import proctree


async def _work() -> None:
    await trio.sleep_forever()


async def _stop_sync() -> None:
    pass


async def _sync() -> None:
    await trio.sleep_forever()


fleet = proctree.Supervisor(
    proctree.MemoryTable(
        {f"worker-{n}": proctree.leaf(_work, name=f"worker-{n}") for n in range(2)}
    ),
    name="fleet",
)

app = proctree.sequential(
    proctree.leaf(_work, name="db"),
    proctree.Service(_sync, _stop_sync, name="sync"),
    proctree.Supervisor(
        proctree.MemoryTable({"job": proctree.leaf(_work, name="job")}), name="jobs"
    ),
)
