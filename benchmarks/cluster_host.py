"""One host of ``cluster.py``: ``python -m proctree run cluster_host:host``.

Settings come from the environment (``BENCH_DSN``, ``BENCH_HOST``,
``BENCH_TTL``); every 50 ms the host prints ``running N``: how many
children it has running (started, not stopping).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import trio

import proctree


async def host(ready: Callable[[], Awaitable[None]]) -> None:
    table = proctree.PostgresTable(
        os.environ["BENCH_DSN"],
        host=os.environ["BENCH_HOST"],
        ttl=float(os.environ["BENCH_TTL"]),
        batch=int(os.environ.get("BENCH_BATCH", "1000")),
    )
    supervisor = proctree.Supervisor(table, name=os.environ["BENCH_HOST"])
    await supervisor.start()

    async def report() -> None:
        last = -1
        while True:
            n = sum(
                1
                for key in list(supervisor.keys())
                if supervisor.child(key).state is proctree.State.RUNNING
            )
            if n != last:
                print(f"running {n}", flush=True)
                last = n
            await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report)
        await ready()
        nursery.cancel_scope.cancel()
    await supervisor.stop()
