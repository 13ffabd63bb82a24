"""The program behind the pictures of docs/seeing.rst (``docs/make_pictures.py``).

A small service: a database pool with a slow teardown, an HTTP server with
a few connections (one closes early), a supervisor of workers, and a
cache flusher that ignores the stop until its grace runs out.
"""

from __future__ import annotations

import trio

import proctree


async def _close_pool() -> None:
    await trio.sleep(0.8)  # the pool waits for its last queries


async def _connection(proc: proctree.Process) -> None:
    await proc.closing.wait()
    await trio.sleep(0.2)  # finish the response in flight


async def _flusher(proc: proctree.Process) -> None:
    await trio.sleep_forever()  # ignores the stop: forced after its grace


async def _worker(ready: proctree.Ready) -> None:
    await ready()


async def app(ready: proctree.Ready) -> None:
    db = proctree.with_teardown(_close_pool, name="db-pool")
    http = proctree.with_parent(db, name="http")
    conns = [http.go(_connection, name=f"conn-{i}") for i in range(1, 5)]
    table = proctree.MemoryTable({f"worker-{i}": _worker for i in range(1, 4)})
    workers = proctree.Supervisor(table, parent=db, name="workers")
    await workers.start()
    db.go(_flusher, name="cache-flusher", grace=1.0)
    await trio.sleep(0.3)
    await conns[0].aclose()
    print("serving", flush=True)
    await ready()
