"""A worker fleet across several hosts, on one PostgreSQL database.

Run the same program on each host (three here, on one machine)::

    export FLEET_DSN=postgresql://postgres@127.0.0.1:5432/postgres
    python fleet.py add 6                      # six keys in the shared table
    python -m proctree run fleet:fleet &       # host 1
    python -m proctree run fleet:fleet &       # host 2
    python -m proctree run fleet:fleet &       # host 3

Each key runs on exactly one host; kill a host and its keys move to the
others within the ttl; start another and it takes its share.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable

import trio

import proctree

DSN = os.environ.get("FLEET_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TTL = float(os.environ.get("FLEET_TTL", "10"))

Ready = Callable[[], Awaitable[None]]


def worker(n: int) -> proctree.Runner:
    """The runner of one key: the table holds ``("fleet:worker", [n])``."""

    async def run(ready: Ready) -> None:
        lease = proctree.current_lease()  # key, epoch, host
        print(f"{lease.host} runs {lease.key} (epoch {lease.epoch})", flush=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(jobs, lease, n)
            await ready()  # returns when the key must stop here
            nursery.cancel_scope.cancel()
        print(f"{lease.host} stops {lease.key}", flush=True)

    return run


async def jobs(lease: proctree.Lease, n: int) -> None:
    while lease.remaining() > 0:  # this host still holds the key
        # Real work goes here; a write elsewhere carries lease.epoch, so a
        # store can refuse a stale writer (one with a lower epoch).
        await trio.sleep(1)


async def fleet(ready: Ready) -> None:
    """One host: a supervisor over the shared table."""
    table = proctree.PostgresTable(DSN, ttl=TTL)
    supervisor = proctree.Supervisor(table, child_grace=1.0)
    await supervisor.start()
    await ready()  # until SIGTERM or SIGINT
    await supervisor.stop()  # stops its children, then gives the keys back


async def add(count: int) -> None:
    table = proctree.PostgresTable(DSN)
    for n in range(count):
        await table.set(f"worker-{n}", "fleet:worker", [n])
    await table.aclose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["add"]:
        trio.run(add, int(sys.argv[2]))
