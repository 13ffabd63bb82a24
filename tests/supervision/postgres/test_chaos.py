"""Chaos: several hosts (OS processes) on one database, faults, and the checker.

Each case asserts where every key runs afterwards and how long the move
took, and ends with the independent checker (no two runs of a key overlap,
no child acted under a lease it had lost). ttl is 1.5 s, so each case takes
a few seconds.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import random
import signal
from pathlib import Path

import pytest
import trio

from tests.supervision.postgres.harness import Fleet, open_fleet
from tests.support.postgres import Server

TTL = 1.5
BOUND = 1.0
"""A move must be done within ttl + this (detection, claim, start)."""

KEYS = [f"k{i}" for i in range(6)]


async def start(fleet: Fleet, *hosts: str) -> float:
    since = await fleet.db_now()
    for name in hosts:
        await fleet.start_host(name)
    await fleet.wait_until(
        f"all keys running on {hosts}",
        lambda: fleet.all_running(KEYS, hosts, since),
        timeout=20,
    )
    await fleet.wait_until("a fair share each", lambda: fair(fleet, hosts), 10)
    return since


async def fair(fleet: Fleet, hosts: tuple[str, ...]) -> bool:
    where = await fleet.placement()
    counts = collections.Counter(host for host, _ in where.values())
    share = math.ceil(len(KEYS) / len(hosts))
    return len(where) == len(KEYS) and all(0 < counts[h] <= share for h in hosts)


async def test_kill_9_of_a_host_moves_its_keys_within_ttl_and_a_bound(
    pg_dsn: str, pg_name: str, tmp_path: Path
) -> None:
    async with open_fleet(pg_dsn, pg_name, tmp_path, keys=KEYS, ttl=TTL) as fleet:
        await start(fleet, "a", "b", "c")
        before = await fleet.placement()
        moved = sorted(k for k, (h, _) in before.items() if h == "a")
        killed_at = await fleet.db_now()
        await fleet.kill("a")
        await fleet.wait_until(
            "a's keys running on b and c",
            lambda: fleet.all_running(KEYS, ("b", "c"), killed_at),
            timeout=TTL + 5,
        )
        after = await fleet.placement()
        assert {h for h, _ in after.values()} == {"b", "c"}
        for key in KEYS:
            if key in moved:
                assert after[key][1] > before[key][1]  # a new epoch
            else:
                assert after[key] == before[key]  # untouched
        runs = await fleet.check()
        first_new = min(r.start for r in runs if r.key in moved and r.start > killed_at)
        assert first_new - killed_at <= TTL + BOUND


async def test_a_host_paused_past_its_ttl_fences_and_does_no_work_on_waking(
    pg_dsn: str, pg_name: str, tmp_path: Path
) -> None:
    async with open_fleet(pg_dsn, pg_name, tmp_path, keys=KEYS, ttl=TTL) as fleet:
        await start(fleet, "a", "b", "c")
        before = await fleet.placement()
        paused = sorted(k for k, (h, _) in before.items() if h == "a")
        stopped_at = await fleet.db_now()
        fleet.signal("a", signal.SIGSTOP)
        took = await fleet.wait_until(
            "a's keys running on b and c",
            lambda: fleet.all_running(KEYS, ("b", "c"), stopped_at),
            timeout=TTL + 5,
        )
        assert took <= TTL + BOUND
        fleet.signal("a", signal.SIGCONT)
        # a wakes, finds its deadline gone, stops its children without a
        # single record, joins again and takes its share back.
        await fleet.wait_until(
            "a fair share each", lambda: fair(fleet, ("a", "b", "c")), 15
        )
        resumed = await fleet.db_now()
        await fleet.wait_until(
            "all keys running again",
            lambda: fleet.all_running(KEYS, ("a", "b", "c"), resumed),
            timeout=10,
        )
        runs = await fleet.check()
        stale = [
            r
            for r in runs
            if r.key in paused
            and r.epoch == before[r.key][1]
            and r.end > stopped_at + 0.2
        ]
        assert stale == []  # nothing recorded under the old leases after the pause


async def test_a_killed_connection_is_made_again_and_the_keys_stay(
    pg_dsn: str, pg_name: str, tmp_path: Path
) -> None:
    async with open_fleet(pg_dsn, pg_name, tmp_path, keys=KEYS, ttl=TTL) as fleet:
        await start(fleet, "a", "b", "c")
        before = await fleet.placement()
        rows = await fleet.conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'proctree a'"
        )
        assert int(str(rows[0][0])) >= 2  # its commands and its LISTEN
        killed_at = await fleet.db_now()
        await fleet.wait_until(
            "a renews on a new connection",
            lambda: renewed_since(fleet, "a", killed_at),
            timeout=TTL,
        )
        await fleet.wait_until(
            "everything running", lambda: fleet.all_running(KEYS, "abc", killed_at), 5
        )
        assert await fleet.placement() == before  # nothing moved: same epochs
        await fleet.check()


async def renewed_since(fleet: Fleet, host: str, since: float) -> bool:
    rows = await fleet.conn.execute(
        f"SELECT count(*) FROM {fleet.name}_sessions WHERE host = $1"
        " AND expires > to_timestamp($2::float8) + make_interval(secs => $3::float8)",
        [host, since, fleet.ttl],
    )
    return int(str(rows[0][0])) == 1


async def test_a_restart_of_the_server_leaves_every_key_running_once(
    pg_dsn: str, pg_name: str, tmp_path: Path, postgres_server: Server
) -> None:
    if not postgres_server.restartable:
        import pytest

        pytest.skip(
            "the server comes from PROCTREE_TEST_POSTGRES_DSN: not ours to restart"
        )
    async with open_fleet(pg_dsn, pg_name, tmp_path, keys=KEYS, ttl=TTL) as fleet:
        await start(fleet, "a", "b", "c")
        fleet.conn.close()
        await trio.to_thread.run_sync(postgres_server.stop)
        await trio.sleep(TTL)  # down for longer than the hosts' margin: they fence
        await trio.to_thread.run_sync(postgres_server.start)
        fleet.conn = await type(fleet.conn).connect(pg_dsn)
        back = await fleet.db_now()
        took = await fleet.wait_until(
            "every key running again",
            lambda: fleet.all_running(KEYS, "abc", back),
            timeout=TTL * 2 + 5,
        )
        assert took <= TTL * 2 + BOUND
        await fleet.wait_until(
            "a fair share each", lambda: fair(fleet, ("a", "b", "c")), 10
        )
        await fleet.check()


async def test_a_host_joining_and_leaving_moves_keys_stopped_before_started(
    pg_dsn: str, pg_name: str, tmp_path: Path
) -> None:
    async with open_fleet(
        pg_dsn, pg_name, tmp_path, keys=KEYS, ttl=TTL, stop_delay=0.3
    ) as fleet:
        await start(fleet, "a", "b")
        before = await fleet.placement()
        joined_at = await fleet.db_now()
        await fleet.start_host("c")
        took = await fleet.wait_until(
            "c takes its share", lambda: fair(fleet, ("a", "b", "c")), 10
        )
        await fleet.wait_until(
            "all running", lambda: fleet.all_running(KEYS, "abc", joined_at), 5
        )
        moved = await fleet.placement()
        to_c = sorted(k for k, (h, _) in moved.items() if h == "c")
        assert len(to_c) == 2
        runs = await fleet.check()
        for key in to_c:
            old = [r for r in runs if r.key == key and r.epoch == before[key][1]]
            new = [r for r in runs if r.key == key and r.epoch == moved[key][1]]
            assert old[0].stopped  # a graceful stop, recorded under its lease
            assert old[0].end < new[0].start
        assert took < TTL * 4
        # Leaving: c's keys go back at once, not after its leases expire.
        left_at = await fleet.db_now()
        assert await fleet.stop_host("c") == 0
        took = await fleet.wait_until(
            "c's keys back on a and b",
            lambda: fleet.all_running(KEYS, "ab", left_at),
            timeout=TTL + 5,
        )
        assert took < TTL
        assert {h for h, _ in (await fleet.placement()).values()} == {"a", "b"}
        await fleet.check()


async def test_a_key_deleted_and_added_again_while_it_moves_runs_once(
    pg_dsn: str, pg_name: str, tmp_path: Path
) -> None:
    async with open_fleet(
        pg_dsn, pg_name, tmp_path, keys=KEYS, ttl=TTL, stop_delay=0.5
    ) as fleet:
        await start(fleet, "a")
        joined_at = await fleet.db_now()
        await fleet.start_host("b")

        # a gives half its keys to b, each stopping for 0.5 s: delete one of
        # those while it stops and add it again at once.
        def moving() -> object:
            return fleet.conn.execute(
                f"SELECT key FROM {fleet.name}_runs WHERE what = 'beat'"
                " AND at > to_timestamp($1::float8) GROUP BY key"
                " HAVING max(at) < clock_timestamp() - interval '0.15 seconds'",
                [joined_at],
            )

        rows: list[tuple[str | None, ...]] = []

        async def one_moving() -> bool:
            rows[:] = await moving()  # type: ignore[misc]
            return bool(rows)

        await fleet.wait_until("a key being stopped on a", one_moving, 10)
        key = str(rows[0][0])
        spec = await fleet.table.spec(key)
        assert spec is not None
        await fleet.table.delete(key)
        await fleet.table.set(key, spec.target, spec.args)
        await fleet.wait_until("a fair share each", lambda: fair(fleet, ("a", "b")), 10)
        await fleet.wait_until(
            "all running", lambda: fleet.all_running(KEYS, "ab", joined_at), 10
        )
        await fleet.check()


CHAOS_ROUNDS = int(os.environ.get("PROCTREE_CHAOS_ROUNDS", "8"))
"""Rounds of :func:`test_random_chaos_never_runs_a_key_twice`; ``nox -s chaos``
sets many more."""


@pytest.mark.slow
async def test_random_chaos_never_runs_a_key_twice(
    pg_dsn: str, pg_name: str, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("PROCTREE_CHAOS_SEED", "0")) or None)
    names = iter(f"h{i}" for i in itertools.count())
    async with open_fleet(
        pg_dsn, pg_name, tmp_path, keys=KEYS, ttl=TTL, stop_delay=0.1
    ) as fleet:
        await start(fleet, next(names), next(names), next(names))
        for _ in range(CHAOS_ROUNDS):
            live = sorted(fleet.hosts)
            victim = rng.choice(live)
            action = rng.choice(
                ["kill", "pause", "connection", "churn", "join", "leave"]
            )
            if action == "kill" and len(live) > 1:
                await fleet.kill(victim)
            elif action == "pause":
                fleet.signal(victim, signal.SIGSTOP)
                await trio.sleep(rng.uniform(0.2, 2 * TTL))
                fleet.signal(victim, signal.SIGCONT)
            elif action == "connection":
                await fleet.conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = $1",
                    [f"proctree {victim}"],
                )
            elif action == "churn":
                key = rng.choice(KEYS)
                spec = await fleet.table.spec(key)
                assert spec is not None
                await fleet.table.delete(key)
                await trio.sleep(rng.uniform(0, 0.3))
                await fleet.table.set(key, spec.target, spec.args)
            elif action == "leave" and len(live) > 1:
                assert await fleet.stop_host(victim) == 0
            elif len(live) < 4:
                name = next(names)
                await fleet.start_host(name)
                await fleet.wait_until(
                    f"{name} joins", lambda name=name: fleet.joined(name), 20
                )
            since = await fleet.db_now()
            hosts = tuple(sorted(fleet.hosts))
            await fleet.wait_until(
                f"all running after {action} of {victim}",
                lambda hosts=hosts, since=since: fleet.all_running(KEYS, hosts, since),
                timeout=20,
            )
        await fleet.check()
