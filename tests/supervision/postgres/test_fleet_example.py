"""The how-to's example, run as it says: three ``proctree run`` hosts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

import proctree
from tests.support.postgres import Server, make_database

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


async def test_the_fleet_example_runs_each_key_on_one_of_three_hosts(
    postgres_server: Server, tmp_path: Path
) -> None:
    dsn = make_database(postgres_server, "fleet_example")
    env = {**os.environ, "FLEET_DSN": dsn, "FLEET_TTL": "1.5"}
    await trio.run_process(
        [sys.executable, "fleet.py", "add", "6"], cwd=EXAMPLES, env=env
    )
    logs = [tmp_path / f"host{i}.log" for i in range(3)]
    hosts = []
    for log in logs:
        with log.open("wb") as out:
            hosts.append(
                await trio.lowlevel.open_process(
                    [sys.executable, "-m", "proctree", "run", "fleet:fleet"],
                    cwd=EXAMPLES,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    table = proctree.PostgresTable(dsn)
    try:
        with trio.fail_after(30):
            while True:
                where = await table.leases()
                per_host = sorted(
                    sum(1 for x in where.values() if x.host == h)
                    for h in {x.host for x in where.values()}
                )
                if per_host == [2, 2, 2]:
                    break
                await trio.sleep(0.05)
        for p in hosts:
            p.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            codes = [await p.wait() for p in hosts]
        assert codes == [0, 0, 0]
        assert await table.leases() == {}  # each gave its keys back
        runs = "".join(log.read_text() for log in logs)
        for n in range(6):
            assert f"runs worker-{n} (epoch" in runs
            assert f"stops worker-{n}" in runs
    finally:
        for p in hosts:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await table.aclose()
