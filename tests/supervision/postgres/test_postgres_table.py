"""PostgresTable as a table: specs, the schema, and clear errors, on a real server."""

from __future__ import annotations

import psycopg
import pytest
import trio

import proctree
from proctree import PostgresTable, RunnerSpec, TableError
from tests.support.postgres import Server, free_port, replace_dbname


async def test_specs_are_kept_in_key_order_and_deletes_remove_them(
    pg_dsn: str, pg_name: str
) -> None:
    table = PostgresTable(pg_dsn, name=pg_name)
    await table.set("b", "proctree:nop", [])
    await table.set("a", "proctree:nop")
    await table.set("gone", "proctree:nop")
    await table.delete("gone")
    await table.delete("never there")
    await table.set("b", "proctree:nop", {"x": [1, 2]})
    again = PostgresTable(pg_dsn, name=pg_name)
    assert await again.specs() == {
        "a": RunnerSpec("proctree:nop", None),
        "b": RunnerSpec("proctree:nop", {"x": [1, 2]}),
    }
    assert [k async for k in again] == ["a", "b"]
    assert await again.spec("gone") is None
    assert await again.get("missing") is None
    await table.aclose()
    await again.aclose()


async def test_get_builds_the_runner_from_its_spec(pg_dsn: str, pg_name: str) -> None:
    table = PostgresTable(pg_dsn, name=pg_name)
    await table.set("w", "proctree:nop", [])
    runner = await table.get("w")
    assert runner is not None
    async with proctree.open_root():
        p = proctree.new_process(runner)
        await p.start()
        await p.stop()
    await table.set("bad", "proctree:no_such_thing")
    with pytest.raises(TableError, match="cannot be imported"):
        await table.get("bad")
    await table.aclose()


async def test_the_schema_is_made_once_and_carries_its_version(
    pg_dsn: str, pg_name: str
) -> None:
    tables = [PostgresTable(pg_dsn, name=pg_name) for _ in range(4)]
    for i, table in enumerate(tables):
        await table.set(f"k{i}", "proctree:nop", [])
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(f"SELECT version FROM {pg_name}_schema").fetchall()
    assert rows == [(1,)]
    for table in tables:
        await table.aclose()


async def test_a_newer_schema_is_refused_with_what_to_do(
    pg_dsn: str, pg_name: str
) -> None:
    table = PostgresTable(pg_dsn, name=pg_name)
    await table.set("k", "proctree:nop", [])
    await table.aclose()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {pg_name}_schema SET version = 99")
    with pytest.raises(TableError, match=r"version 99.*upgrade proctree"):
        await table.specs()


def test_a_bad_dsn_is_a_table_error_at_the_call() -> None:
    with pytest.raises(TableError, match="not a valid connection string"):
        PostgresTable("host=127.0.0.1 this is not a dsn")


def test_bad_arguments_are_refused_at_the_call() -> None:
    with pytest.raises(TypeError, match="dsn must be a str"):
        PostgresTable(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be lower-case"):
        PostgresTable("host=x", name="Robert'); DROP TABLE")
    with pytest.raises(ValueError, match="must be less than ttl"):
        PostgresTable("host=x", ttl=1, renew_every=0.5, margin=0.5)
    with pytest.raises(ValueError, match="ttl must be > 0"):
        PostgresTable("host=x", ttl=0)


async def test_an_unreachable_server_is_a_clear_table_error() -> None:
    table = PostgresTable(f"postgresql://u@127.0.0.1:{free_port()}/db", timeout=5)
    with pytest.raises(TableError, match="cannot be reached"):
        await table.set("k", "proctree:nop")


async def test_a_refused_login_is_a_clear_table_error(pg_dsn: str) -> None:
    dsn = pg_dsn.replace("postgres@", "nobody_here@", 1)
    table = PostgresTable(dsn)
    with pytest.raises(TableError, match="refused the login"):
        await table.specs()


async def test_a_missing_database_is_a_clear_table_error(pg_dsn: str) -> None:
    table = PostgresTable(replace_dbname(pg_dsn, "no_such_db"))
    with pytest.raises(TableError, match="database does not exist"):
        await table.specs()


async def test_missing_permissions_are_a_clear_table_error(
    postgres_server: Server, pg_name: str
) -> None:
    role = f"{pg_name}_weak"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
    dsn = postgres_server.dsn.replace("postgres@", f"{role}@", 1)
    table = PostgresTable(dsn, name=pg_name)
    with pytest.raises(TableError, match="lacks a permission"):
        await table.set("k", "proctree:nop")
    # With the schema made by its owner, reading still needs grants.
    owner = PostgresTable(postgres_server.dsn, name=pg_name)
    await owner.set("k", "proctree:nop")
    await owner.aclose()
    with pytest.raises(TableError, match="lacks a permission"):
        await table.specs()


async def test_a_connection_the_server_ended_is_made_again_at_the_next_call(
    pg_dsn: str, pg_name: str
) -> None:
    table = PostgresTable(pg_dsn, name=pg_name)
    await table.set("k", "proctree:nop", [])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            [f"proctree {table.host}"],
        ).fetchone()
    assert ended == (1,)
    assert list(await table.specs()) == ["k"]
    await table.aclose()


async def test_a_lost_server_is_a_clear_table_error(postgres_server: Server) -> None:
    from tests.support.postgres import throwaway_server

    if postgres_server.restartable is False:
        pytest.skip("needs a server of its own to stop")
    with throwaway_server() as own:
        table = PostgresTable(own.dsn, timeout=5)
        await table.set("k", "proctree:nop", [])
        await trio.to_thread.run_sync(own.stop)
        with pytest.raises(TableError, match=r"went away|cannot be reached"):
            await table.specs()
        await table.aclose()


def test_it_is_a_leasing_table() -> None:
    assert isinstance(PostgresTable("host=x"), proctree.LeasingTable)
    assert not isinstance(proctree.MemoryTable(), proctree.LeasingTable)
