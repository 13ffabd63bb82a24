"""The schema and the statements of :class:`~proctree.PostgresTable`.

Every name is the table's prefix (``name=``, ``proctree`` by default) plus
a suffix, so several fleets can share a database. Times are the server's
(``clock_timestamp()``), never a host's. ``docs/design-cluster.md`` says
why each statement is shaped as it is; the rules, in short:

* A key is free when it has no owner. A session that expired is only
  ever removed by a ``DELETE`` that takes its row lock, and the same
  statement frees its keys; a renewal racing with it either commits first
  (and the session lives) or finds it gone: no key is taken from a session
  that a renewal kept alive. "Free" is a test of the key's own row, so a
  claim's re-check of a row another host changed meanwhile is exact (a
  test through the sessions table would read that table as of the claim's
  snapshot, and miss a session that joined since).
* Session ids and epochs come from sequences: never reused, so a fencing
  token only grows, even across a delete and re-add of the key.
* A key deleted while a host runs it stays as a *tombstone* until that
  host has stopped its child (or its session is gone), so the key cannot
  start elsewhere first.
"""

from __future__ import annotations

import re
from typing import Final, final

import attrs

__all__ = ["SCHEMA_VERSION", "Statements", "check_name"]

SCHEMA_VERSION: Final = 1
"""The version this release writes and reads; a later release migrates."""

_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,39}")


def check_name(name: object) -> str:
    """``name`` if it is a valid prefix for the table's SQL names.

    Raises:
        TypeError: not a str.
        ValueError: not lower-case letters, digits and ``_`` (at most 40).
    """
    if not isinstance(name, str):
        raise TypeError(f"PostgresTable: name must be a str, got {name!r}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            "PostgresTable: name must be lower-case letters, digits and '_' "
            f"(a letter or '_' first, at most 40), got {name!r}"
        )
    return name


@final
@attrs.frozen
class Statements:
    """The SQL of one table prefix."""

    name: str

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of the table's changes."""
        return f"{self.name}_changes"

    def _n(self, sql: str) -> str:
        return sql.replace("{p}", self.name).replace("{chan}", self.channel)

    @property
    def version(self) -> str:
        return self._n("SELECT max(version) FROM {p}_schema")

    @property
    def create(self) -> str:
        """The schema, made if missing (several statements, one transaction).

        The transaction-scoped advisory lock only serialises hosts that
        create it at the same moment; it ends with the transaction.
        """
        return self._n(
            "BEGIN;"
            " SELECT pg_advisory_xact_lock(hashtext('proctree schema {p}'));"
            " CREATE TABLE IF NOT EXISTS {p}_schema (version integer NOT NULL);"
            " CREATE TABLE IF NOT EXISTS {p}_keys ("
            "  key text PRIMARY KEY,"
            "  target text NOT NULL,"
            "  args text NOT NULL,"
            "  owner bigint,"
            "  epoch bigint NOT NULL DEFAULT 0,"
            "  deleted boolean NOT NULL DEFAULT false);"
            " CREATE INDEX IF NOT EXISTS {p}_keys_owner ON {p}_keys (owner);"
            " CREATE TABLE IF NOT EXISTS {p}_sessions ("
            "  id bigint PRIMARY KEY,"
            "  host text NOT NULL,"
            "  expires timestamptz NOT NULL,"
            "  joined timestamptz NOT NULL DEFAULT clock_timestamp());"
            " CREATE SEQUENCE IF NOT EXISTS {p}_epochs;"
            " CREATE SEQUENCE IF NOT EXISTS {p}_session_ids;"
            f" INSERT INTO {{p}}_schema (version) SELECT {SCHEMA_VERSION}"
            "  WHERE NOT EXISTS (SELECT 1 FROM {p}_schema);"
            " COMMIT"
        )

    # ------------------------------------------------------------ the table

    @property
    def set(self) -> str:
        """$1 key, $2 target, $3 args: add, replace, or revive a tombstone."""
        return self._n(
            "WITH up AS ("
            " INSERT INTO {p}_keys (key, target, args) VALUES ($1, $2, $3)"
            " ON CONFLICT (key) DO UPDATE SET target = EXCLUDED.target,"
            "  args = EXCLUDED.args, deleted = false RETURNING 1)"
            " SELECT pg_notify('{chan}', 'set') FROM up"
        )

    @property
    def mark_deleted(self) -> str:
        """$1 key: make it a tombstone (its owner stops it, then purges it)."""
        return self._n(
            "WITH d AS (UPDATE {p}_keys SET deleted = true WHERE key = $1"
            " RETURNING 1) SELECT pg_notify('{chan}', 'delete') FROM d"
        )

    @property
    def purge_one(self) -> str:
        """$1 key: remove its tombstone if no live session holds it."""
        return self._n(
            "DELETE FROM {p}_keys WHERE key = $1 AND deleted AND owner IS NULL"
        )

    @property
    def spec(self) -> str:
        return self._n(
            "SELECT target, args FROM {p}_keys WHERE key = $1 AND NOT deleted"
        )

    @property
    def specs(self) -> str:
        return self._n(
            "SELECT key, target, args FROM {p}_keys WHERE NOT deleted ORDER BY key"
        )

    @property
    def leases(self) -> str:
        """Every key a live session holds: key, epoch, host."""
        return self._n(
            "SELECT k.key, k.epoch, s.host FROM {p}_keys k"
            " JOIN {p}_sessions s ON s.id = k.owner"
            " WHERE NOT k.deleted AND s.expires > clock_timestamp() ORDER BY k.key"
        )

    # ------------------------------------------------------------ the leases

    @property
    def join(self) -> str:
        """$1 host, $2 ttl, $3 the last session of this host or NULL."""
        return self._n(
            "WITH gone AS (DELETE FROM {p}_sessions WHERE id = $3::bigint"
            "  RETURNING id),"
            " freed AS (UPDATE {p}_keys SET owner = NULL"
            "  WHERE owner IN (SELECT id FROM gone)),"
            " s AS (INSERT INTO {p}_sessions (id, host, expires)"
            "  VALUES (nextval('{p}_session_ids'), $1,"
            "   clock_timestamp() + make_interval(secs => $2::float8))"
            "  RETURNING id)"
            " SELECT id, pg_notify('{chan}', 'join') FROM s"
        )

    @property
    def renew(self) -> str:
        """$1 session, $2 ttl: renew it, end expired others; one row back.

        Columns: renewed (0 or 1), sessions ended, live hosts, (notify).
        """
        return self._n(
            "WITH reaped AS (DELETE FROM {p}_sessions"
            "  WHERE expires <= clock_timestamp() AND id <> $1 RETURNING id),"
            " freed AS (UPDATE {p}_keys SET owner = NULL"
            "  WHERE owner IN (SELECT id FROM reaped)),"
            " renewed AS (UPDATE {p}_sessions"
            "  SET expires = clock_timestamp() + make_interval(secs => $2::float8)"
            "  WHERE id = $1 AND expires > clock_timestamp() RETURNING id)"
            " SELECT (SELECT count(*) FROM renewed), (SELECT count(*) FROM reaped),"
            "  (SELECT count(*) FROM {p}_sessions WHERE expires > clock_timestamp()),"
            "  (SELECT pg_notify('{chan}', 'reaped')::text FROM reaped LIMIT 1)"
        )

    @property
    def survey(self) -> str:
        """$1 session: keys, hosts, free keys, and what $1 holds (JSON)."""
        return self._n(
            "WITH purge AS (DELETE FROM {p}_keys WHERE deleted AND owner IS NULL)"
            " SELECT (SELECT count(*) FROM {p}_keys WHERE NOT deleted),"
            "  (SELECT count(*) FROM {p}_sessions WHERE expires > clock_timestamp()),"
            "  (SELECT count(*) FROM {p}_keys WHERE NOT deleted AND owner IS NULL),"
            "  (SELECT coalesce(json_agg(json_build_array(key, epoch, deleted)),"
            "   '[]') FROM {p}_keys WHERE owner = $1)"
        )

    @property
    def claim(self) -> str:
        """$1 session, $2 limit: take free keys, each with a new epoch."""
        return self._n(
            "WITH cand AS (SELECT k.key FROM {p}_keys k"
            "  WHERE NOT k.deleted AND k.owner IS NULL"
            "  AND EXISTS (SELECT 1 FROM {p}_sessions"
            "   WHERE id = $1 AND expires > clock_timestamp())"
            "  ORDER BY k.key LIMIT $2 FOR UPDATE OF k SKIP LOCKED)"
            " UPDATE {p}_keys k SET owner = $1, epoch = nextval('{p}_epochs')"
            " FROM cand WHERE k.key = cand.key"
            " RETURNING k.key, k.epoch, k.target, k.args"
        )

    @property
    def finish(self) -> str:
        """$1 session, $2 JSON [{key, epoch}]: give them back (purge tombstones)."""
        return self._n(
            "WITH x AS (SELECT * FROM json_to_recordset($2::json)"
            "  AS x(key text, epoch bigint)),"
            " gone AS (DELETE FROM {p}_keys k USING x WHERE k.key = x.key"
            "  AND k.epoch = x.epoch AND k.owner = $1 AND k.deleted),"
            " freed AS (UPDATE {p}_keys k SET owner = NULL FROM x"
            "  WHERE k.key = x.key AND k.epoch = x.epoch AND k.owner = $1"
            "  AND NOT k.deleted)"
            " SELECT pg_notify('{chan}', 'freed')"
        )

    @property
    def leave(self) -> str:
        """$1 session: end it; its keys are free at once."""
        return self._n(
            "WITH s AS (DELETE FROM {p}_sessions WHERE id = $1 RETURNING id),"
            " freed AS (UPDATE {p}_keys SET owner = NULL"
            "  WHERE owner IN (SELECT id FROM s))"
            " SELECT pg_notify('{chan}', 'leave') FROM s"
        )
