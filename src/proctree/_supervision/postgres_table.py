"""PostgresTable: a supervisor table in PostgreSQL that several hosts share.

The table is :class:`~proctree.SqliteTable`'s (keys and runner specs) and
also a :class:`~proctree.LeasingTable`: a :class:`~proctree.Supervisor`
over it on each of several programs runs each key on exactly one of them.
The statements are in ``postgres_sql.py``, the connection in
``pg_connection.py``, the lease logic in ``lease_keeper.py``; the design,
with the reasons, is ``docs/design-cluster.md``.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final, final

import attrs
import trio

from .._core import Runner, check_seconds
from .leases import Lease, LeaseStore, LeaseTiming, Renewal, Survey
from .pg_connection import (
    PgConnection,
    PgError,
    PgLost,
    Row,
    import_psycopg,
    make_conninfo,
)
from .postgres_sql import SCHEMA_VERSION, Statements, check_name
from .spec import JSON, RunnerSpec, TableError, check_spec

__all__ = ["PostgresTable"]

_WHAT: Final = "PostgresTable"


@final
@attrs.define(eq=False, init=False)
class PostgresTable:
    """A supervisor table in PostgreSQL, shared by several hosts.

    Keys and runner specs, as :class:`~proctree.SqliteTable` keeps them,
    in a PostgreSQL database. A :class:`~proctree.Supervisor` over it runs
    only the keys its host holds a lease on: each key runs on exactly one
    live host, at most about ``keys / hosts`` (rounded up) per host, and
    moves when its host dies or leaves, or when a host joins. A key is
    stopped on its old host before it starts on the new one. A child reads
    its lease with :func:`~proctree.current_lease`.

    The schema (prefixed by ``name``) is made on first use if missing.

    Args:
        dsn: a libpq connection string or URI
            (``postgresql://user@host:5432/db``).
        name: the prefix of the table's SQL names; hosts with the same
            ``dsn`` and ``name`` share keys.
        host: this host's name in the leases; by default
            ``"hostname:pid"``.
        ttl: seconds a lease lasts on the server's clock after each renewal.
        renew_every: seconds between two renewals; by default ``ttl / 4``.
        margin: a host that could not renew stops its children this long
            before its leases can expire on the server; by default
            ``ttl / 3``. Children are forced ``margin / 2`` after.
        poll_every: seconds between two looks at the table when no
            notification came; by default ``ttl``.
        batch: at most this many keys per claim statement.
        timeout: seconds a call of this table's own methods may take.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: the times do not fit (``renew_every + margin < ttl``).
        TableError: ``dsn`` is not a valid connection string.
        ModuleNotFoundError: psycopg is missing (``proctree[postgres]``).
    """

    _conninfo: str
    _sql: Statements
    _host: str
    _timing: LeaseTiming
    _timeout: float
    _link: _Link

    def __init__(
        self,
        dsn: str,
        *,
        name: str = "proctree",
        host: str | None = None,
        ttl: float = 10.0,
        renew_every: float | None = None,
        margin: float | None = None,
        poll_every: float | None = None,
        batch: int = 1000,
        timeout: float = 10.0,
    ) -> None:
        import_psycopg(_WHAT)
        if not isinstance(dsn, str):
            raise TypeError(f"{_WHAT}: dsn must be a str, got {dsn!r}")
        if host is None:
            host = f"{socket.gethostname()}:{os.getpid()}"
        elif not isinstance(host, str) or not host:
            raise TypeError(f"{_WHAT}: host must be a non-empty str, got {host!r}")
        self._sql = Statements(check_name(name))
        self._host = host
        self._timing = LeaseTiming.make(
            ttl,
            renew_every=renew_every,
            margin=margin,
            poll_every=poll_every,
            batch=batch,
            what=_WHAT,
        )
        self._timeout = check_seconds(timeout, f"{_WHAT}: timeout")
        keepalive = max(1, math.floor(self._timing.ttl / 4))
        try:
            self._conninfo = make_conninfo(
                dsn,
                application_name=f"proctree {host}"[:63],
                keepalives=1,
                keepalives_idle=keepalive,
                keepalives_interval=keepalive,
                keepalives_count=3,
                tcp_user_timeout=int(self._timing.ttl * 500),
            )
        except ValueError as exc:
            raise TableError(
                f"{_WHAT}: dsn is not a valid connection string ({exc}); give "
                "'postgresql://user@host:5432/dbname' or 'host=... dbname=...'"
            ) from None
        self._link = _Link(self, self._timeout)

    @property
    def host(self) -> str:
        """This host's name in the leases."""
        return self._host

    @property
    def name(self) -> str:
        """The prefix of the table's SQL names."""
        return self._sql.name

    @property
    def timing(self) -> LeaseTiming:
        """The lease times (ttl, renewal interval, margin, poll interval, batch)."""
        return self._timing

    # -------------------------------------------------------- the table API

    async def set(self, key: str, target: str, args: JSON = None) -> None:
        """Add ``key`` or replace its spec (a running child keeps its own).

        Raises:
            TypeError: ``key`` is not a str, or the spec is not valid.
            TableError: the server cannot be reached or refused.
        """
        if not isinstance(key, str):
            raise TypeError(f"{_WHAT}.set(): a key must be a str, got {key!r}")
        text = check_spec(target, args, _WHAT)
        await self._link.execute(self._sql.set, [key, target, text])

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing if absent); its host stops its child.

        Raises:
            TableError: the server cannot be reached or refused.
        """
        await self._link.execute(self._sql.mark_deleted, [key])
        await self._link.execute(self._sql.purge_one, [key])

    async def spec(self, key: str) -> RunnerSpec | None:
        """The spec of ``key``, or None.

        Raises:
            TableError: the server cannot be reached or refused.
        """
        rows = await self._link.execute(self._sql.spec, [key])
        return _spec(rows[0][0], rows[0][1]) if rows else None

    async def specs(self) -> dict[str, RunnerSpec]:
        """Every key and its spec, in key order.

        Raises:
            TableError: the server cannot be reached or refused.
        """
        rows = await self._link.execute(self._sql.specs)
        return {_str(k): _spec(t, a) for k, t, a in rows}

    async def get(self, key: str, /) -> Runner | None:
        """The runner built from ``key``'s spec, or None.

        Raises:
            TableError: the server cannot be reached, or the spec cannot
                be built.
        """
        spec = await self.spec(key)
        return None if spec is None else spec.build()

    async def _keys(self) -> AsyncIterator[str]:
        for key in await self.specs():
            yield key

    def __aiter__(self) -> AsyncIterator[str]:
        """Every key of the table, sorted (a snapshot), whichever host runs it."""
        return self._keys()

    async def leases(self) -> dict[str, Lease]:
        """Where each key runs now: the live leases, by key.

        Raises:
            TableError: the server cannot be reached or refused.
        """
        rows = await self._link.execute(self._sql.leases)
        return {_str(k): Lease(_str(k), int(_str(e)), _str(h)) for k, e, h in rows}

    async def aclose(self) -> None:
        """Close this table's own connection (a later call opens a new one)."""
        await trio.lowlevel.checkpoint()
        self._link.close()

    # ------------------------------------------------------------ the leases

    @asynccontextmanager
    async def open_leases(self) -> AsyncGenerator[LeaseStore, None]:
        """This host's lease session (see :class:`~proctree.LeasingTable`).

        Raises:
            TableError: the server cannot be reached or refused.
        """
        store = _Store(self, _Link(self, self._timing.ttl), _Link(self, math.inf))
        try:
            yield store
        finally:
            store.close()

    # ------------------------------------------------------------- internals

    async def _connect(self) -> PgConnection:
        """A new connection with the session settings, the schema checked."""
        conn = await PgConnection.connect(self._conninfo)
        try:
            ms = int(min(self._timeout, self._timing.ttl) * 1000)
            await conn.execute(
                f"SET statement_timeout = {ms}; SET lock_timeout = {ms};"
                f" SET idle_in_transaction_session_timeout = {ms}"
            )
            await self._check_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _check_schema(self, conn: PgConnection) -> None:
        try:
            rows = await conn.execute(self._sql.version)
        except PgError as exc:
            if exc.sqlstate != "42P01":  # undefined_table: make it
                raise
            await conn.execute(self._sql.create)
            rows = await conn.execute(self._sql.version)
        version = rows[0][0] if rows else None
        if version is None or int(version) > SCHEMA_VERSION:
            raise TableError(
                f"{_WHAT} {self.name!r}: the schema has version {version}, and "
                f"this proctree knows version {SCHEMA_VERSION} at most: upgrade "
                "proctree on this host, or give another name="
            )


@final
@attrs.define(eq=False)
class _Link:
    """One connection, made on first use and again after it broke."""

    table: PostgresTable
    timeout: float
    conn: PgConnection | None = None
    lock: trio.Lock = attrs.field(factory=trio.Lock)

    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement (connecting first if needed).

        Raises:
            TableError: what went wrong, and what to do.
        """
        async with self.lock:
            try:
                with trio.fail_after(self.timeout):
                    fresh = self.conn is None or self.conn.closed
                    if self.conn is None or self.conn.closed:
                        self.conn = await self.table._connect()  # pyright: ignore[reportPrivateUsage]
                    try:
                        return await self.conn.execute(sql, params)
                    except PgLost:
                        if fresh:
                            raise
                    # A connection kept from before broke (the server was
                    # restarted, or the backend ended): once more on a new
                    # one. Every statement of the table may run twice.
                    self.conn = await self.table._connect()  # pyright: ignore[reportPrivateUsage]
                    return await self.conn.execute(sql, params)
            except trio.TooSlowError:
                self.close()
                raise TableError(
                    f"{_WHAT}: the server did not answer within "
                    f"{self.timeout:g}s; is it up and reachable?"
                ) from None
            except (PgError, PgLost) as exc:
                if isinstance(exc, PgLost):
                    self.close()
                raise table_error(exc) from None

    async def notifications(self, channel: str) -> list[tuple[str, str]]:
        """Wait for notifications on ``channel`` (listening first if needed).

        Raises:
            TableError: the connection could not be made or broke.
        """
        try:
            if self.conn is None or self.conn.closed:
                with trio.fail_after(self.table.timing.ttl):
                    conn = await self.table._connect()  # pyright: ignore[reportPrivateUsage]
                    await conn.execute(f'LISTEN "{channel}"')
                self.conn = conn
                return []  # listening now; what came before is looked at
            return await self.conn.notifications()
        except trio.TooSlowError:
            self.close()
            raise TableError(f"{_WHAT}: LISTEN did not connect in time") from None
        except (PgError, PgLost) as exc:
            self.close()
            raise table_error(exc) from None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


@final
@attrs.define(eq=False)
class _Store:
    """One host's lease session: a :class:`LeaseStore` on two connections."""

    table: PostgresTable
    link: _Link
    listener: _Link
    session: int | None = None
    specs: dict[str, RunnerSpec] = attrs.field(factory=dict[str, RunnerSpec])

    @property
    def host(self) -> str:
        return self.table.host

    @property
    def timing(self) -> LeaseTiming:
        return self.table.timing

    @property
    def _sql(self) -> Statements:
        return self.table._sql  # pyright: ignore[reportPrivateUsage]

    def _me(self) -> int:
        if self.session is None:
            raise TableError(f"{_WHAT}: this host has not joined")
        return self.session

    async def join(self) -> None:
        rows = await self.link.execute(
            self._sql.join, [self.host, self.timing.ttl, self.session]
        )
        self.session = int(_str(rows[0][0]))
        self.specs.clear()

    async def renew(self) -> Renewal:
        rows = await self.link.execute(self._sql.renew, [self._me(), self.timing.ttl])
        renewed, reaped, hosts, _ = rows[0]
        return Renewal(_str(renewed) == "1", int(_str(hosts)), int(_str(reaped)))

    async def survey(self) -> Survey:
        rows = await self.link.execute(self._sql.survey, [self._me()])
        keys, hosts, claimable, mine = rows[0]
        held = json.loads(_str(mine))
        return Survey(
            keys=int(_str(keys)),
            hosts=int(_str(hosts)),
            claimable=int(_str(claimable)),
            mine={k: int(e) for k, e, _ in held},
            deleted=frozenset(k for k, _, d in held if d),
        )

    async def claim(self, limit: int) -> list[Lease]:
        rows = await self.link.execute(self._sql.claim, [self._me(), limit])
        got: list[Lease] = []
        for key, epoch, target, args in rows:
            self.specs[_str(key)] = _spec(target, args)
            got.append(Lease(_str(key), int(_str(epoch)), self.host))
        return got

    async def finish(self, leases: Sequence[Lease]) -> None:
        batch = [{"key": x.key, "epoch": x.epoch} for x in leases]
        await self.link.execute(self._sql.finish, [self._me(), json.dumps(batch)])

    async def leave(self) -> None:
        if self.session is not None:
            await self.link.execute(self._sql.leave, [self.session])
            self.session = None

    async def changed(self) -> None:
        # Returns after a (re)connect too: what came before it is looked at.
        await self.listener.notifications(self._sql.channel)

    async def runner(self, key: str) -> Runner | None:
        spec = self.specs.pop(key, None)  # a restart reads the table again
        if spec is None:
            rows = await self.link.execute(self._sql.spec, [key])
            if not rows:
                return None
            spec = _spec(rows[0][0], rows[0][1])
        return spec.build()

    def close(self) -> None:
        self.link.close()
        self.listener.close()


def table_error(exc: PgError | PgLost) -> TableError:
    """The :class:`TableError` for a server's or libpq's error: what to do."""
    text = str(exc)
    state = exc.sqlstate if isinstance(exc, PgError) else None
    if state == "42501" or "permission denied" in text:
        advice = (
            "the role lacks a permission: grant it CREATE on the schema (the "
            "table makes its tables on first use) and SELECT, INSERT, UPDATE, "
            "DELETE on them, and USAGE on the sequences"
        )
    elif (state or "").startswith("28") or any(
        s in text for s in ("authentication failed", "role", "pg_hba.conf", "password")
    ):
        advice = "the server refused the login: check the user and password"
    elif state == "3D000" or ("database" in text and "does not exist" in text):
        advice = "the database does not exist: create it, or fix the DSN"
    elif isinstance(exc, PgLost):
        advice = "the server cannot be reached or went away: is it running?"
    else:
        advice = "the statement failed; nothing was changed"
    return TableError(f"{_WHAT}: {advice} ({text})")


def _str(value: str | None) -> str:
    if value is None:
        raise TableError(f"{_WHAT}: the server answered NULL where a value was due")
    return value


def _spec(target: str | None, args: str | None) -> RunnerSpec:
    return RunnerSpec(_str(target), json.loads(_str(args)))
