"""One host of the chaos tests: ``python -m proctree run ...fleet_host:host``.

The host reads its settings from the environment (``CHAOS_DSN``,
``CHAOS_NAME``, ``CHAOS_HOST``, ``CHAOS_TTL``) and supervises the keys of
the shared table. Each key's child is a :func:`recorder`: it writes what it
does into the database, with its lease's key, epoch and host and the
server's ``clock_timestamp()``, so a checker that trusts nothing of the
hosts can prove that no two runs of a key overlapped.

A record is written only if the lease is still the key's live lease *on the
server* (checked in the same statement); an attempt that the server refuses
goes to ``<name>_rejected``: a child acting under a lease it had lost,
which self-fencing must make impossible.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable

import trio

import proctree
from proctree._supervision.pg_connection import PgConnection, PgLost

BEAT = 0.05
"""Seconds between two records of a running child."""


def runs_schema(name: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {name}_runs (key text NOT NULL,"
        " epoch bigint NOT NULL, host text NOT NULL, what text NOT NULL,"
        " at timestamptz NOT NULL);"
        f" CREATE TABLE IF NOT EXISTS {name}_rejected (key text NOT NULL,"
        " epoch bigint NOT NULL, host text NOT NULL, what text NOT NULL,"
        " at timestamptz NOT NULL)"
    )


def _record_sql(name: str) -> str:
    return (
        f"INSERT INTO {name}_runs (key, epoch, host, what, at)"
        " SELECT $1, $2::bigint, $3, $4, clock_timestamp() WHERE EXISTS ("
        f" SELECT 1 FROM {name}_keys k JOIN {name}_sessions s ON s.id = k.owner"
        " WHERE k.key = $1 AND k.epoch = $2::bigint"
        " AND s.expires > clock_timestamp()) RETURNING 1"
    )


def _rejected_sql(name: str) -> str:
    return (
        f"INSERT INTO {name}_rejected (key, epoch, host, what, at)"
        " VALUES ($1, $2::bigint, $3, $4, clock_timestamp())"
    )


def recorder(dsn: str, name: str, stop_delay: float = 0.0) -> proctree.Runner:
    """A child that records its start, a beat every 50 ms, and its stop."""
    record_sql, rejected_sql = _record_sql(name), _rejected_sql(name)

    async def run(ready: Callable[[], Awaitable[None]]) -> None:
        lease = proctree.current_lease()
        conn: PgConnection | None = None

        async def record(what: str) -> None:
            nonlocal conn
            if lease.remaining() <= 0:
                return  # fencing: this host must not act under the lease
            try:
                if conn is None or conn.closed:
                    with trio.fail_after(1):
                        conn = await PgConnection.connect(dsn)
                params = [lease.key, lease.epoch, lease.host, what]
                with trio.fail_after(1):
                    if not await conn.execute(record_sql, params):
                        await conn.execute(rejected_sql, params)
            except (PgLost, trio.TooSlowError):
                if conn is not None:
                    conn.close()  # the server is away: try again next beat

        async def beat() -> None:
            while True:
                await record("beat")
                await trio.sleep(BEAT)

        try:
            await record("start")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(beat)
                await ready()
                nursery.cancel_scope.cancel()
            await trio.sleep(stop_delay)  # a slow stop: the move takes longer
            await record("stop")
        finally:
            if conn is not None:
                conn.close()

    return run


async def host(ready: Callable[[], Awaitable[None]]) -> None:
    """The host program: a supervisor over the shared table."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s {os.environ['CHAOS_HOST']} %(name)s: %(message)s",
    )
    table = proctree.PostgresTable(
        os.environ["CHAOS_DSN"],
        name=os.environ["CHAOS_NAME"],
        host=os.environ["CHAOS_HOST"],
        ttl=float(os.environ["CHAOS_TTL"]),
    )
    supervisor = proctree.Supervisor(
        table,
        name=os.environ["CHAOS_HOST"],
        policy=proctree.RestartPolicy.exponential(initial=0.05, cap=0.5),
        interval=0.5,
    )
    await supervisor.start()
    print("ready", flush=True)
    await ready()
    await supervisor.stop()
