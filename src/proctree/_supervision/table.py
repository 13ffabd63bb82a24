"""The table protocol a supervisor reads, and the in-memory table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol, final, runtime_checkable

import attrs
import trio

from .._core import Runner, runner_callable

__all__ = ["MemoryTable", "Table", "check_key", "check_table"]


@runtime_checkable
class Table(Protocol):
    """Where a supervisor reads its desired set: keys and their runners.

    Iterating (``async for key in table``) gives the keys in the table's
    order; ``await table.get(key)`` gives the runner, or None if the key is
    not (or no longer) there. Both are async so that a table may live in a
    database (:class:`~proctree.SqliteTable`).

    A table that can answer at once may also have a synchronous
    ``get_nowait(key)`` (as :class:`MemoryTable` has): a supervisor then
    starts a due restart right where the failed child's close is reported,
    with no task of its own (``docs/design-compose.md``, section 8).
    """

    async def get(self, key: str, /) -> Runner | None:
        """The runner for ``key``, or None."""
        ...

    def __aiter__(self) -> AsyncIterator[str]:
        """The keys, in the table's order."""
        ...


def check_key(key: object, what: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{what}: a key must be a str, got {key!r}")
    return key


def check_table(table: object, what: str) -> Table:
    """``table`` as a :class:`Table` (None: a new empty :class:`MemoryTable`)."""
    if table is None:
        return MemoryTable()
    if not isinstance(table, Table):
        raise TypeError(
            f"{what}: table must have an async get(key) and async "
            f"iteration over its keys (a proctree.Table), got {table!r}"
        )
    return table


@final
@attrs.define(eq=False, init=False)
class MemoryTable:
    """A :class:`Table` in memory, in insertion order: the default table.

    Args:
        entries: initial ``{key: runner}`` pairs.

    Raises:
        TypeError: a key is not a str or a runner is not a runner.
    """

    _entries: dict[str, Runner]

    def __init__(self, entries: Mapping[str, Runner] | None = None) -> None:
        self._entries = {}
        for key, runner in (entries or {}).items():
            self.set(key, runner)

    def set(self, key: str, runner: Runner) -> None:
        """Add ``key`` (or replace its runner; a running child keeps its own).

        Raises:
            TypeError: ``key`` is not a str or ``runner`` not a runner.
        """
        check_key(key, "MemoryTable.set()")
        runner_callable(runner, "MemoryTable.set")
        self._entries[key] = runner

    def delete(self, key: str) -> None:
        """Remove ``key``; the supervisor stops its child on its next loop.

        Raises:
            KeyError: ``key`` is not in the table.
        """
        try:
            del self._entries[key]
        except KeyError:
            raise KeyError(f"MemoryTable has no key {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str, /) -> Runner | None:
        """The runner for ``key``, or None."""
        await trio.lowlevel.checkpoint()
        return self._entries.get(key)

    def get_nowait(self, key: str, /) -> Runner | None:
        """The runner for ``key``, or None, without a checkpoint."""
        return self._entries.get(key)

    async def _keys(self) -> AsyncIterator[str]:
        for key in list(self._entries):
            yield key

    def __aiter__(self) -> AsyncIterator[str]:
        """The keys, in insertion order (a snapshot)."""
        return self._keys()
