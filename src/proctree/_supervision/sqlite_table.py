"""SqliteTable: a durable supervisor table of keys and runner specs (stdlib sqlite3).

Every call opens its own connection in a worker thread (``trio.to_thread``),
so the trio thread never blocks on the disk and two writers never share a
connection. Writes are single transactions taken with ``BEGIN IMMEDIATE``:
a writer waits for another (up to ``lock_timeout``) instead of failing
half-way, and a failed write leaves the database as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Final, TypeVar, final

import attrs
import trio

from .._core import Runner, check_seconds
from .spec import JSON, RunnerSpec, TableError, check_spec

__all__ = ["RunnerSpec", "SqliteTable", "TableError"]

_T = TypeVar("_T")

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS proctree_supervised ("
    " key TEXT PRIMARY KEY, target TEXT NOT NULL, args TEXT NOT NULL)"
)


@final
@attrs.define(eq=False, init=False)
class SqliteTable:
    """A durable :class:`~proctree.Table`: keys and runner specs in SQLite.

    A program restarted after a crash brings back exactly the supervised set
    it had committed. Keys come in sorted order.

    Args:
        path: the database file (made if missing).
        lock_timeout: seconds a call waits for another writer's lock before
            it fails with :class:`TableError`.

    Raises:
        TypeError: ``path`` is not a path.
        ValueError: ``lock_timeout`` is negative.
    """

    _path: str
    _lock_timeout: float

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 5.0):
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"SqliteTable: path must be a path, got {path!r}")
        self._path = os.fspath(path)
        self._lock_timeout = check_seconds(lock_timeout, "SqliteTable: lock_timeout")

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    async def set(self, key: str, target: str, args: JSON = None) -> None:
        """Add ``key`` or replace its spec, in one transaction.

        Raises:
            TypeError: ``key`` is not a str, or the spec is not valid.
            TableError: the database is corrupt or stayed locked.
        """
        if not isinstance(key, str):
            raise TypeError(f"SqliteTable.set(): a key must be a str, got {key!r}")
        text = check_spec(target, args, "SqliteTable")
        sql = "INSERT OR REPLACE INTO proctree_supervised VALUES (?, ?, ?)"
        await self._run(lambda c: c.execute(sql, (key, target, text)), write=True)

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing if absent), in one transaction.

        Raises:
            TableError: the database is corrupt or stayed locked.
        """
        sql = "DELETE FROM proctree_supervised WHERE key = ?"
        await self._run(lambda c: c.execute(sql, (key,)), write=True)

    async def spec(self, key: str) -> RunnerSpec | None:
        """The spec of ``key``, or None.

        Raises:
            TableError: the database is corrupt or stayed locked.
        """
        sql = "SELECT target, args FROM proctree_supervised WHERE key = ?"
        row = await self._run(lambda c: c.execute(sql, (key,)).fetchone())
        if row is None:
            return None
        return RunnerSpec(row[0], json.loads(row[1]))

    async def specs(self) -> dict[str, RunnerSpec]:
        """Every key and its spec, in key order.

        Raises:
            TableError: the database is corrupt or stayed locked.
        """
        sql = "SELECT key, target, args FROM proctree_supervised ORDER BY key"
        rows = await self._run(lambda c: c.execute(sql).fetchall())
        return {k: RunnerSpec(t, json.loads(a)) for k, t, a in rows}

    async def get(self, key: str, /) -> Runner | None:
        """The runner built from ``key``'s spec, or None.

        Raises:
            TableError: the database is corrupt or locked, or the spec
                cannot be built.
        """
        spec = await self.spec(key)
        return None if spec is None else spec.build()

    async def _keys(self) -> AsyncIterator[str]:
        sql = "SELECT key FROM proctree_supervised ORDER BY key"
        rows = await self._run(lambda c: c.execute(sql).fetchall())
        for (key,) in rows:
            yield key

    def __aiter__(self) -> AsyncIterator[str]:
        """The keys, in sorted order (a snapshot)."""
        return self._keys()

    async def _run(
        self, fn: Callable[[sqlite3.Connection], _T], *, write: bool = False
    ) -> _T:
        return await trio.to_thread.run_sync(self._in_thread, fn, write)

    def _in_thread(self, fn: Callable[[sqlite3.Connection], _T], write: bool) -> _T:
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._lock_timeout, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise TableError(
                f"SqliteTable {self._path!r} cannot be opened: {exc}"
            ) from exc
        with contextlib.closing(conn):
            try:
                # IMMEDIATE for reads too: the schema may be created on the
                # first call, and a read upgraded to a write can deadlock.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(_SCHEMA)
                    result = fn(conn)
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise TableError(
                        f"SqliteTable {self._path!r} stayed locked by another "
                        f"writer for {self._lock_timeout:g}s; nothing was "
                        "changed, try again (or raise lock_timeout)"
                    ) from exc
                raise TableError(
                    f"SqliteTable {self._path!r}: {exc}; nothing was changed"
                ) from exc
            except sqlite3.DatabaseError as exc:
                raise TableError(
                    f"SqliteTable {self._path!r} is not a usable SQLite database "
                    f"({exc}); nothing was changed: restore it from a backup or "
                    "give another path"
                ) from exc
