"""PostgresTable across several hosts: failover, scale, steady load, the driver.

Every host is an OS process (``python -m proctree run cluster_host:host``)
on one throwaway PostgreSQL server (``tests/support/postgres.py``; or the
server ``PROCTREE_TEST_POSTGRES_DSN`` names). ``benchmarks/README.md`` says
what each section measures; ``--help`` gives the options.

    python benchmarks/cluster.py                 # everything, about 2 minutes
    python benchmarks/cluster.py --only failover --rounds 20
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from tests.support.postgres import make_database, throwaway_server  # noqa: E402

SECTIONS = ("driver", "failover", "scale", "load")


class Host:
    """A host program, with its count of running children (from its stdout)."""

    def __init__(self, dsn: str, name: str, ttl: float) -> None:
        env = {
            **os.environ,
            "BENCH_DSN": dsn,
            "BENCH_HOST": name,
            "BENCH_TTL": str(ttl),
            "PYTHONPATH": f"{HERE}{os.pathsep}{REPO / 'src'}",
        }
        self.name = name
        self.running = 0
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proctree", "run", "cluster_host:host"],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("running "):
                with self.changed:
                    self.running = int(line.split()[1])
                    self.changed.notify_all()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.running = 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(hosts: list[Host], done: object, timeout: float) -> float:
    """Seconds until ``done(hosts)`` holds; raise after ``timeout``."""
    start = time.perf_counter()
    while True:
        if done(hosts):  # type: ignore[operator]
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            counts = {h.name: h.running for h in hosts}
            raise TimeoutError(f"not within {timeout}s; running: {counts}")
        time.sleep(0.005)


def fill(dsn: str, n: int) -> None:
    """``n`` keys of ``proctree:nop`` runners, in one statement."""
    import psycopg
    import trio

    import proctree

    async def schema() -> None:
        table = proctree.PostgresTable(dsn)
        await table.specs()
        await table.aclose()

    trio.run(schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO proctree_keys (key, target, args)"
            " SELECT 'k' || lpad(i::text, 6, '0'), 'proctree:nop', '[]'"
            " FROM generate_series(1, %s) AS i",
            [n],
        )


# ------------------------------------------------------------------ driver


def driver(dsn: str, n: int) -> None:
    """One statement's round trip: libpq from trio vs psycopg in worker threads."""
    import psycopg
    import trio

    from proctree._supervision.pg_connection import PgConnection

    async def from_trio() -> float:
        conn = await PgConnection.connect(dsn)
        for _ in range(100):
            await conn.execute("SELECT $1::int", [1])
        start = time.perf_counter()
        for _ in range(n):
            await conn.execute("SELECT $1::int", [1])
        took = time.perf_counter() - start
        conn.close()
        return took / n

    async def in_threads() -> float:
        conn = psycopg.connect(dsn, autocommit=True)

        def one() -> None:
            conn.execute("SELECT %s::int", [1])

        for _ in range(100):
            await trio.to_thread.run_sync(one)
        start = time.perf_counter()
        for _ in range(n):
            await trio.to_thread.run_sync(one)
        took = time.perf_counter() - start
        conn.close()
        return took / n

    def blocking() -> float:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(100):
                conn.execute("SELECT %s::int", [1])
            start = time.perf_counter()
            for _ in range(n):
                conn.execute("SELECT %s::int", [1])
            return (time.perf_counter() - start) / n

    rows = []
    for _ in range(3):
        rows.append((trio.run(from_trio), trio.run(in_threads), blocking()))
    a, b, c = (statistics.median(col) for col in zip(*rows, strict=True))
    print(f"driver: one statement, median of 3 x {n}")
    print(f"  libpq driven from trio (chosen)   {a * 1e6:8.1f} us")
    print(f"  psycopg sync in trio.to_thread    {b * 1e6:8.1f} us  ({b / a:.2f}x)")
    print(f"  psycopg sync, blocking (floor)    {c * 1e6:8.1f} us  ({c / a:.2f}x)")


# ---------------------------------------------------------------- failover


def failover(dsn: str, rounds: int, ttl: float) -> None:
    """kill -9 of a host to its keys running elsewhere, over ``rounds``."""
    keys = 6
    fill(dsn, keys)
    hosts = [Host(dsn, f"h{i}", ttl) for i in range(3)]
    times = []
    try:
        for r in range(rounds):
            wait_for(hosts, lambda hs: all(h.running == 2 for h in hs), 60)
            victim = max(hosts, key=lambda h: h.running)
            others = [h for h in hosts if h is not victim]
            killed = time.perf_counter()
            victim.kill()
            wait_for(others, lambda hs: sum(h.running for h in hs) == keys, ttl + 30)
            times.append(time.perf_counter() - killed)
            print(f"  round {r + 1}: {times[-1]:.2f} s", file=sys.stderr)
            hosts[hosts.index(victim)] = Host(dsn, victim.name + "'", ttl)
    finally:
        for h in hosts:
            h.stop()
    med, worst = statistics.median(times), max(times)
    verdict = "PASS" if worst <= ttl + 1 else "FAIL"
    print(f"failover: kill -9 to running elsewhere, {rounds} rounds, ttl {ttl:g} s")
    print(f"  median {med:.2f} s, worst {worst:.2f} s; target ttl + 1 = {ttl + 1:g} s")
    print(
        f"  median - ttl {med - ttl:+.2f} s, worst - ttl {worst - ttl:+.2f}  {verdict}"
    )


# ------------------------------------------------------------------- scale


def scale(dsn: str, keys: int, ttl: float) -> None:
    """``keys`` keys, 3 hosts started together, from empty to all running."""
    fill(dsn, keys)
    start = time.perf_counter()
    hosts = [Host(dsn, f"h{i}", ttl) for i in range(3)]
    try:
        took = wait_for(hosts, lambda hs: sum(h.running for h in hs) == keys, 120)
        took = time.perf_counter() - start
        fair = wait_for(
            hosts,
            lambda hs: (
                sum(h.running for h in hs) == keys
                and max(h.running for h in hs) <= math.ceil(keys / 3)
            ),
            60,
        )
        counts = [h.running for h in hosts]
    finally:
        for h in hosts:
            h.stop()
    share = keys / 3
    spread = max(counts) / share
    print(f"scale: {keys:,} keys, 3 hosts, from an empty start")
    print(
        f"  all running after {took:.2f} s (processes started at 0; target < 10 s)"
        f"  {'PASS' if took < 10 else 'FAIL'}"
    )
    print(
        f"  all running at a fair share after {took + fair:.2f} s: per host "
        f"{counts}; the most is {spread:.3f}x its share (target <= 1.1x)  "
        f"{'PASS' if spread <= 1.1 and took + fair < 10 else 'FAIL'}"
    )


# -------------------------------------------------------------------- load


def load(server_dsn: str, ttl: float, window: float) -> None:
    """Statements per second per host at steady state, at 10 and 10,000 keys."""

    results = {}
    for keys in (10, 10_000):
        results[keys] = _load_at(server_dsn, keys, ttl, window)
    print(f"load: statements per second per host, steady, ttl {ttl:g} s")

    for keys, rate in results.items():
        print(f"  {keys:>6,} keys: {rate:.2f}")
    ratio = results[10_000] / results[10]
    verdict = "PASS" if ratio < 2 else "FAIL"
    print(f"  10,000 keys / 10 keys = {ratio:.2f}x (target: same order)  {verdict}")


def _load_at(server_dsn: str, keys: int, ttl: float, window: float) -> float:
    import psycopg

    dbname = f"bench_load_{keys}"
    dsn = make_database_dsn(server_dsn, dbname)
    fill(dsn, keys)
    hosts = [Host(dsn, f"h{i}", ttl) for i in range(3)]
    try:
        wait_for(hosts, lambda hs: sum(h.running for h in hs) == keys, 120)
        wait_for(
            hosts,
            lambda hs: (
                sum(h.running for h in hs) == keys
                and max(h.running for h in hs) <= math.ceil(keys / 3)
            ),
            60,
        )
        time.sleep(2 * ttl)  # settled: no moves in flight

        def commits() -> int:
            with psycopg.connect(server_dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_force_next_flush()")
                row = conn.execute(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                    " WHERE datname = %s",
                    [dbname],
                ).fetchone()
                assert row is not None
                return int(row[0])

        before = commits()
        time.sleep(window)
        time.sleep(1.0)  # the server flushes its statistics each second
        after = commits()
    finally:
        for h in hosts:
            h.stop()
    return (after - before) / window / len(hosts)


def make_database_dsn(server_dsn: str, name: str) -> str:
    from tests.support.postgres import Server

    return make_database(Server(server_dsn), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS)
    parser.add_argument("--rounds", type=int, default=10, help="failover rounds")
    parser.add_argument("--ttl", type=float, default=2.0, help="lease ttl, seconds")
    parser.add_argument("--keys", type=int, default=10_000, help="scale: keys")
    parser.add_argument("--window", type=float, default=10.0, help="load: seconds")
    parser.add_argument("--statements", type=int, default=5000, help="driver")
    args = parser.parse_args(argv)
    with throwaway_server() as server:
        for section in args.only:
            dsn = make_database(server, f"bench_{section}")
            if section == "driver":
                driver(dsn, args.statements)
            elif section == "failover":
                failover(dsn, args.rounds, args.ttl)
            elif section == "scale":
                scale(dsn, args.keys, args.ttl)
            else:
                load(server.dsn, args.ttl, args.window)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
