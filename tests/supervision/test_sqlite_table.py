"""SqliteTable: durable keys and runner specs, with a real file."""

from __future__ import annotations

import pathlib

import pytest
import trio
import trio.testing

import proctree
from proctree._supervision import Supervisor
from proctree._supervision.sqlite_table import RunnerSpec, SqliteTable, TableError


async def test_specs_survive_a_close_and_reopen(
    autojump_clock: trio.testing.MockClock, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "supervised.db"
    table = SqliteTable(path)
    await table.set("b", "proctree:nop", [])
    await table.set("a", "proctree:nop")
    await table.set("gone", "proctree:nop")
    await table.delete("gone")
    del table
    again = SqliteTable(path)
    assert await again.specs() == {
        "a": RunnerSpec("proctree:nop", None),
        "b": RunnerSpec("proctree:nop", []),
    }
    assert [k async for k in again] == ["a", "b"]
    assert await again.get("missing") is None


async def test_a_supervisor_restores_exactly_the_committed_set(
    autojump_clock: trio.testing.MockClock, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "supervised.db"
    await SqliteTable(path).set("w1", "proctree:nop", [])
    await SqliteTable(path).set("w2", "proctree:nop", [])
    async with proctree.open_root():
        sup = Supervisor(SqliteTable(path))
        await sup.start()
        assert sup.keys() == ["w1", "w2"]
        await sup.stop()


async def test_concurrent_writers_all_commit(
    autojump_clock: trio.testing.MockClock, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "supervised.db"
    tables = [SqliteTable(path) for _ in range(4)]

    async def write(i: int) -> None:
        await tables[i % 4].set(f"k{i:02}", "proctree:nop", [i])

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(write, i)
    specs = await SqliteTable(path).specs()
    assert list(specs) == [f"k{i:02}" for i in range(40)]
    assert specs["k07"].args == [7]


async def test_a_garbage_file_is_a_clear_error_and_is_left_alone(
    autojump_clock: trio.testing.MockClock, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "garbage.db"
    garbage = b"this is not sqlite at all " * 200
    path.write_bytes(garbage)
    table = SqliteTable(path)
    with pytest.raises(TableError, match="not a usable SQLite database"):
        await table.set("a", "proctree:nop")
    with pytest.raises(TableError, match=r"garbage\.db"):
        await table.specs()
    assert path.read_bytes() == garbage


async def test_a_held_lock_times_out_with_a_clear_error_and_loses_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: pathlib.Path
) -> None:
    import sqlite3

    path = tmp_path / "supervised.db"
    await SqliteTable(path).set("kept", "proctree:nop")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(TableError, match="locked"):
            await SqliteTable(path, lock_timeout=0.05).set("new", "proctree:nop")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert list(await SqliteTable(path).specs()) == ["kept"]


async def test_bad_specs_say_what_to_give(
    autojump_clock: trio.testing.MockClock, tmp_path: pathlib.Path
) -> None:
    table = SqliteTable(tmp_path / "t.db")
    with pytest.raises(TypeError, match=r"package\.module:attribute"):
        await table.set("a", "proctree.nop")
    with pytest.raises(TypeError, match="JSON"):
        await table.set("a", "proctree:nop", {"x": object()})  # type: ignore[dict-item]
    await table.set("a", "proctree:no_such_thing")
    with pytest.raises(TableError, match="cannot be imported"):
        await table.get("a")
    await table.set("b", "proctree:DEFAULT_GRACE")
    with pytest.raises(TableError, match="DEFAULT_GRACE"):
        await table.get("b")
