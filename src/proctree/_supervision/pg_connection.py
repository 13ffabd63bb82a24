"""One PostgreSQL connection driven from trio through psycopg's libpq layer.

libpq does the protocol; this module only waits for its socket with trio
(``wait_readable`` / ``wait_writable``) instead of blocking a thread. So a
statement is cancellable like any trio call, notifications (LISTEN) arrive
without a thread parked on the socket, and a dead server costs a timeout,
not a stuck worker thread. ``docs/design-cluster.md`` (the driver) says why
this was chosen over psycopg's synchronous connection in worker threads,
with the figures.

Parameters go as text and results come back as text (``str | None`` per
column): the table's statements pass keys, numbers and JSON only, and cast
in SQL where a type matters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, final

import attrs
import trio

from .._core import ProctreeError

if TYPE_CHECKING:
    from psycopg.pq.abc import PGconn, PGresult

__all__ = ["PgConnection", "PgError", "PgLost", "import_psycopg", "make_conninfo"]

Row = tuple[str | None, ...]

_CONNECT_OK: Final = 3  # pq.PollingStatus.OK
_POLL_READING: Final = 1
_POLL_WRITING: Final = 2
_POLL_FAILED: Final = 0
_CONN_BAD: Final = 1  # pq.ConnStatus.BAD
_SQLSTATE: Final = ord("C")  # pq.DiagnosticField.SQLSTATE
_OK_STATUSES: Final = frozenset({0, 1, 2})  # EMPTY_QUERY, COMMAND_OK, TUPLES_OK


class PgError(ProctreeError):
    """The server answered a statement with an error (``sqlstate`` says which)."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class PgLost(ProctreeError):
    """The connection could not be made, or broke (the server went away)."""


def import_psycopg(what: str) -> None:
    """Check that the ``postgres`` extra is installed.

    Raises:
        ModuleNotFoundError: psycopg is missing; the message names the extra.
    """
    try:
        import psycopg.pq  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"{what} needs psycopg 3: pip install 'proctree[postgres]'",
            name="psycopg",
        ) from exc


def make_conninfo(dsn: str, **extra: str | int) -> str:
    """``dsn`` (a conninfo string or URI) checked, with ``extra`` merged in.

    Keys the user already gave win over ``extra`` (the defaults).

    Raises:
        ValueError: ``dsn`` is not a valid connection string.
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.conninfo import make_conninfo as merge

    try:
        given = conninfo_to_dict(dsn)
    except ProgrammingError as exc:
        raise ValueError(str(exc).strip()) from None
    defaults = {k: v for k, v in extra.items() if k not in given}
    return merge(dsn, **defaults)


@final
@attrs.define(eq=False)
class PgConnection:
    """A libpq connection whose waits are trio's. Not shared between tasks.

    A statement interrupted half-way (cancelled, timed out) leaves the
    connection in an unknown state, so it is closed at once; the caller
    makes a new one.
    """

    _pgconn: PGconn | None
    backend_pid: int

    @classmethod
    async def connect(cls, conninfo: str) -> PgConnection:
        """Connect (waiting with trio); bound the wait with a trio timeout.

        Raises:
            PgLost: the server refused or could not be reached; the message
                is libpq's.
        """
        from psycopg import pq

        pgconn = pq.PGconn.connect_start(conninfo.encode())
        try:
            if pgconn.status == _CONN_BAD:
                raise PgLost(_message(pgconn.get_error_message()))
            while True:
                poll = pgconn.connect_poll()
                if poll == _CONNECT_OK:
                    break
                if poll == _POLL_FAILED:
                    raise PgLost(_message(pgconn.get_error_message()))
                # libpq may move to another socket between polls (several hosts).
                if poll == _POLL_READING:
                    await trio.lowlevel.wait_readable(pgconn.socket)
                elif poll == _POLL_WRITING:
                    await trio.lowlevel.wait_writable(pgconn.socket)
            pgconn.nonblocking = 1
        except BaseException:
            _finish(pgconn)
            raise
        return cls(pgconn, pgconn.backend_pid)

    @property
    def closed(self) -> bool:
        """True once closed (by :meth:`close` or after a broken statement)."""
        return self._pgconn is None

    def close(self) -> None:
        """Close the connection (idempotent, never raises)."""
        pgconn, self._pgconn = self._pgconn, None
        if pgconn is not None:
            _finish(pgconn)

    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement with text parameters; its rows, as text.

        ``params`` are sent with ``str()`` (None as SQL NULL). With no
        parameters, ``sql`` may hold several statements (simple protocol).

        Raises:
            PgError: the server refused the statement (the connection stays
                usable).
            PgLost: the connection broke; it is now closed.
        """
        pgconn = self._live()
        try:
            if params:
                pgconn.send_query_params(
                    sql.encode(),
                    [None if p is None else str(p).encode() for p in params],
                )
            else:
                pgconn.send_query(sql.encode())
            await self._flush(pgconn)
            results = await self._results(pgconn)
        except BaseException as exc:
            self.close()
            if isinstance(exc, _psycopg_error()):
                raise PgLost(_message(str(exc))) from None
            raise
        rows: list[Row] = []
        error: PgError | None = None
        for res in results:
            if res.status not in _OK_STATUSES:
                if error is None:
                    state = res.error_field(_SQLSTATE)
                    error = PgError(
                        _message(res.get_error_message()),
                        None if state is None else state.decode(),
                    )
                continue
            for r in range(res.ntuples):
                rows.append(
                    tuple(_text(res.get_value(r, c)) for c in range(res.nfields))
                )
        if error is not None:
            if pgconn.status == _CONN_BAD:
                self.close()
                raise PgLost(str(error))
            raise error
        return rows

    async def notifications(self) -> list[tuple[str, str]]:
        """Wait for one or more notifications; ``(channel, payload)`` pairs.

        Raises:
            PgLost: the connection broke; it is now closed.
        """
        pgconn = self._live()
        try:
            while True:
                found = _drain(pgconn)
                if found:
                    return found
                await trio.lowlevel.wait_readable(pgconn.socket)
                pgconn.consume_input()
                if pgconn.status == _CONN_BAD:
                    raise PgLost("the server closed the connection")
        except BaseException as exc:
            if not isinstance(exc, trio.Cancelled):
                self.close()
            if isinstance(exc, _psycopg_error()):
                raise PgLost(_message(str(exc))) from None
            raise

    def _live(self) -> PGconn:
        if self._pgconn is None:
            raise PgLost("the connection is closed")
        return self._pgconn

    async def _flush(self, pgconn: PGconn) -> None:
        while pgconn.flush() == 1:
            await trio.lowlevel.wait_writable(pgconn.socket)

    async def _results(self, pgconn: PGconn) -> list[PGresult]:
        results: list[PGresult] = []
        while True:
            while pgconn.is_busy():
                await trio.lowlevel.wait_readable(pgconn.socket)
                pgconn.consume_input()
            res = pgconn.get_result()
            if res is None:
                return results
            results.append(res)


def _drain(pgconn: PGconn) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    while (n := pgconn.notifies()) is not None:
        found.append((n.relname.decode(), n.extra.decode()))
    return found


def _finish(pgconn: PGconn) -> None:
    with contextlib.suppress(Exception):
        fd = pgconn.socket
        trio.lowlevel.notify_closing(fd)
    with contextlib.suppress(Exception):
        pgconn.finish()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _message(text: str) -> str:
    return " ".join(text.split()) or "no message from libpq"


def _psycopg_error() -> type[Exception]:
    from psycopg import Error

    return Error
