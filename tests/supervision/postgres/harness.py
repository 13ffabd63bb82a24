"""Several hosts as OS processes on one database, and the checker.

``open_fleet`` fills a fresh table with keys whose children are
``fleet_host.recorder``s, and gives a :class:`Fleet` that starts, kills,
pauses and stops host programs (``python -m proctree run``), reads where
each key runs, and checks the records. Every host it started is killed and
reaped when the block ends.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import trio

import proctree
from proctree._supervision.pg_connection import PgConnection
from tests.supervision.postgres.fleet_host import runs_schema

REPO = Path(__file__).resolve().parents[3]
TARGET = "tests.supervision.postgres.fleet_host:host"
RECORDER = "tests.supervision.postgres.fleet_host:recorder"


@dataclass
class Run:
    """One run of a key: one epoch on one host, first to last record."""

    key: str
    epoch: int
    host: str
    start: float
    end: float
    stopped: bool


@dataclass
class Host:
    name: str
    process: trio.Process
    log: IO[bytes]
    log_path: Path


@dataclass
class Fleet:
    dsn: str
    name: str
    ttl: float
    tmp: Path
    table: proctree.PostgresTable
    conn: PgConnection
    hosts: dict[str, Host] = field(default_factory=dict)
    stop_delay: float = 0.0

    # ---------------------------------------------------------------- hosts

    async def start_host(self, name: str) -> Host:
        env = {
            **os.environ,
            "CHAOS_DSN": self.dsn,
            "CHAOS_NAME": self.name,
            "CHAOS_HOST": name,
            "CHAOS_TTL": str(self.ttl),
            "PYTHONPATH": str(REPO),
        }
        log_path = self.tmp / f"{name}.log"
        log = log_path.open("ab")
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "proctree", "run", TARGET],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        host = self.hosts[name] = Host(name, process, log, log_path)
        return host

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.hosts[name].process.send_signal(sig)

    async def kill(self, name: str) -> None:
        """``kill -9`` the host and reap it."""
        host = self.hosts.pop(name)
        host.process.kill()
        await host.process.wait()
        host.log.close()

    async def stop_host(self, name: str) -> int:
        """SIGTERM, then wait for a clean exit; its exit code."""
        host = self.hosts.pop(name)
        host.process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            code = await host.process.wait()
        host.log.close()
        return code

    def logs(self) -> str:
        parts = []
        tail = int(os.environ.get("PROCTREE_CHAOS_LOG", "4000"))
        for path in sorted(self.tmp.glob("*.log")):
            text = path.read_text(errors="replace")[-tail:]
            parts.append(f"--- {path.name}\n{text}")
        return "\n".join(parts)

    # --------------------------------------------------------------- looking

    async def placement(self) -> dict[str, tuple[str, int]]:
        """Each key with a live lease: its host and epoch."""
        return {k: (x.host, x.epoch) for k, x in (await self.table.leases()).items()}

    async def running(self, since: float = 0.0) -> dict[str, tuple[str, int]]:
        """Keys whose current lease's child recorded after ``since`` (db clock)."""
        rows = await self.conn.execute(
            f"SELECT r.key, r.host, r.epoch FROM {self.name}_runs r"
            f" JOIN {self.name}_keys k ON k.key = r.key AND k.epoch = r.epoch"
            f" JOIN {self.name}_sessions s ON s.id = k.owner"
            " WHERE r.at > to_timestamp($1::float8) AND NOT k.deleted"
            " AND s.expires > clock_timestamp()"
            " GROUP BY r.key, r.host, r.epoch",
            [since],
        )
        return {str(k): (str(h), int(str(e))) for k, h, e in rows}

    async def joined(self, host: str) -> bool:
        """``host`` has a live session (it runs its supervisor)."""
        rows = await self.conn.execute(
            f"SELECT count(*) FROM {self.name}_sessions WHERE host = $1"
            " AND expires > clock_timestamp()",
            [host],
        )
        return int(str(rows[0][0])) > 0

    async def db_now(self) -> float:
        rows = await self.conn.execute("SELECT extract(epoch FROM clock_timestamp())")
        return float(str(rows[0][0]))

    async def wait_until(
        self, what: str, check: Callable[[], object], timeout: float
    ) -> float:
        """Poll ``check`` (sync or async) until true; the seconds it took."""
        start = trio.current_time()
        with trio.move_on_after(timeout):
            while True:
                result = check()
                if hasattr(result, "__await__"):
                    result = await result
                if result:
                    return trio.current_time() - start
                await trio.sleep(0.05)
        raise AssertionError(f"not within {timeout}s: {what}\n{self.logs()}")

    async def all_running(
        self, keys: Iterable[str], hosts: Iterable[str], since: float
    ) -> bool:
        """Every key beats under a live lease of one of ``hosts``."""
        now = await self.running(since)
        allowed = set(hosts)
        return all(k in now and now[k][0] in allowed for k in keys)

    # -------------------------------------------------------------- checking

    async def runs(self) -> list[Run]:
        rows = await self.conn.execute(
            "SELECT key, epoch, host, min(extract(epoch FROM at)),"
            " max(extract(epoch FROM at)), bool_or(what = 'stop')"
            f" FROM {self.name}_runs GROUP BY key, epoch, host ORDER BY key, 4"
        )
        return [
            Run(str(k), int(str(e)), str(h), float(str(a)), float(str(b)), s == "t")
            for k, e, h, a, b, s in rows
        ]

    async def check(self) -> list[Run]:
        """The independent checker: no two runs of a key overlap, none refused.

        Returns the runs (for the callers' own assertions).
        """
        runs = await self.runs()
        overlaps = []
        by_key: dict[str, list[Run]] = {}
        for run in runs:
            by_key.setdefault(run.key, []).append(run)
        for key_runs in by_key.values():
            key_runs.sort(key=lambda r: r.start)
            for before, after in itertools.pairwise(key_runs):
                if after.start <= before.end or after.epoch <= before.epoch:
                    overlaps.append((before, after))
        assert overlaps == [], f"runs of a key overlap: {overlaps}\n{self.logs()}"
        rejected = await self.conn.execute(
            f"SELECT key, epoch, host, what, at FROM {self.name}_rejected"
        )
        assert rejected == [], (
            f"children acted under lost leases: {rejected[:5]}\n{self.logs()}"
        )
        return runs


@asynccontextmanager
async def open_fleet(
    dsn: str,
    name: str,
    tmp: Path,
    *,
    keys: Iterable[str],
    ttl: float = 1.5,
    stop_delay: float = 0.0,
) -> AsyncIterator[Fleet]:
    table = proctree.PostgresTable(dsn, name=name, host="tester", ttl=ttl)
    conn = await PgConnection.connect(dsn)
    fleet = Fleet(dsn, name, ttl, tmp, table, conn, stop_delay=stop_delay)
    try:
        await table.specs()  # makes the schema
        await conn.execute(runs_schema(name))
        for key in keys:
            await table.set(key, RECORDER, [dsn, name, stop_delay])
        yield fleet
    finally:
        with trio.CancelScope(shield=True):
            for host in list(fleet.hosts):
                fleet.hosts[host].process.send_signal(signal.SIGCONT)
                await fleet.kill(host)
            conn.close()
            await table.aclose()
