"""The lease protocol: the optional part of the table protocol for shared tables.

A :class:`~proctree.Table` that several hosts share (each host a program
with its own :class:`~proctree.Supervisor` over the same table) must run
each key on one host at a time. Such a table also implements
:class:`LeasingTable`; the supervisor discovers it (``isinstance``) and, in
place of the whole table, runs the keys its host holds leases on. The
supervisor's lease keeper (``lease_keeper.py``) drives the protocol: it
renews, claims, gives back and fences; a backend only answers the calls of
:class:`LeaseStore`, one at a time. ``docs/design-cluster.md`` gives the
rules a backend must keep, and :class:`~proctree.PostgresTable` is the one
the package ships.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, final, runtime_checkable

import attrs

from .._core import ProctreeError, Runner
from .table import Table

__all__ = [
    "Lease",
    "LeaseStore",
    "LeaseTiming",
    "LeasingTable",
    "Renewal",
    "Survey",
    "bind_lease",
    "current_lease",
    "lease_context",
    "reset_lease",
]


class LeaseClock(Protocol):
    """What tells a :class:`Lease` how long it may still be acted under."""

    def remaining(self, lease: Lease, /) -> float:
        """Seconds left for ``lease`` (0 once lost)."""
        ...


@final
@attrs.frozen
class Lease:
    """One host's hold on one key: the fencing token a child can read.

    ``epoch`` grows at every claim of the key, whichever host makes it, and
    is never reused (not even after the key is deleted and added again), so
    a store that a child writes to can refuse any write that carries an
    epoch lower than the highest it has seen.
    """

    key: str
    """The key."""
    epoch: int
    """The fencing token of this claim."""
    host: str
    """The host (program) holding the lease."""
    _clock: LeaseClock | None = attrs.field(
        default=None, init=False, eq=False, repr=False
    )

    def remaining(self) -> float:
        """Seconds this host may still act under the lease, by its own clock.

        0 once the host has lost the lease or is fencing (its children are
        being stopped); a child should check it before work that another
        host must never do at the same time, and fence writes elsewhere with
        :attr:`epoch` as well (the check and the write are not atomic).
        """
        clock = self._clock
        return math.inf if clock is None else clock.remaining(self)


def bind_lease(lease: Lease, clock: LeaseClock) -> Lease:
    """A copy of ``lease`` whose :meth:`Lease.remaining` asks ``clock``."""
    bound = Lease(lease.key, lease.epoch, lease.host)
    object.__setattr__(bound, "_clock", clock)
    return bound


_CURRENT: contextvars.ContextVar[Lease | None] = contextvars.ContextVar(
    "proctree_lease", default=None
)


def current_lease() -> Lease:
    """The lease of the supervised child this code runs in.

    Works in the child's runner and in everything it starts (tasks,
    processes), when the child's supervisor runs over a
    :class:`LeasingTable` such as :class:`~proctree.PostgresTable`.

    Returns:
        The :class:`Lease`: key, epoch and host.

    Raises:
        ProctreeError: the code does not run under a leased child.
    """
    lease = _CURRENT.get()
    if lease is None:
        raise ProctreeError(
            "current_lease(): no lease here; it is set for the children of a "
            "Supervisor over a leasing table (proctree.PostgresTable)"
        )
    return lease


def lease_context(lease: Lease | None) -> contextvars.Token[Lease | None]:
    """Make ``lease`` the current one; give the token to :func:`reset_lease`."""
    return _CURRENT.set(lease)


def reset_lease(token: contextvars.Token[Lease | None]) -> None:
    """Undo :func:`lease_context`."""
    _CURRENT.reset(token)


@final
@attrs.frozen
class LeaseTiming:
    """The clock of a host's leases, in seconds.

    A renewal sent at local time ``t`` that succeeds keeps the host's
    leases until ``t + ttl`` on the store. The host acts under them until
    ``t + ttl - margin`` only (its local deadline); then it *fences*: it
    stops its children, forcing them after ``margin / 2``, so every child
    is stopped before the store can hand its key to another host.
    """

    ttl: float
    """How long a renewal keeps the leases, on the store's clock."""
    renew_every: float
    """Seconds between two renewals."""
    margin: float
    """How long before the store's expiry the host stops acting."""
    poll_every: float
    """Seconds between two full looks at the table when nothing notified."""
    batch: int
    """At most this many keys per claim statement."""

    @classmethod
    def make(
        cls,
        ttl: float,
        *,
        renew_every: float | None,
        margin: float | None,
        poll_every: float | None,
        batch: int,
        what: str,
    ) -> LeaseTiming:
        """Check the numbers and fill in the defaults.

        Raises:
            TypeError: a number is not a number.
            ValueError: they do not fit (``renew_every + margin < ttl`` and
                positive values are needed).
        """

        def seconds(value: object, name: str) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{what}: {name} must be seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{what}: {name} must be > 0 seconds, got {value!r}")
            return float(value)

        ttl = seconds(ttl, "ttl")
        renew = seconds(ttl / 4 if renew_every is None else renew_every, "renew_every")
        edge = seconds(ttl / 3 if margin is None else margin, "margin")
        poll = seconds(ttl if poll_every is None else poll_every, "poll_every")
        if renew + edge >= ttl:
            raise ValueError(
                f"{what}: renew_every ({renew:g}) + margin ({edge:g}) must be "
                f"less than ttl ({ttl:g}), so a renewal comes before the host "
                "must fence"
            )
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(
                f"{what}: batch must be a whole number >= 1, got {batch!r}"
            )
        return cls(ttl, renew, edge, poll, batch)


@final
@attrs.frozen
class Renewal:
    """What one renewal found."""

    alive: bool
    """Whether the session was still alive; if not, it holds no lease."""
    hosts: int
    """Live hosts, this one included."""
    freed: int
    """Sessions of other hosts that this renewal found expired and ended."""


@final
@attrs.frozen
class Survey:
    """What a host needs to take its fair share: one look at the table."""

    keys: int
    """Keys in the table."""
    hosts: int
    """Live hosts."""
    claimable: int
    """Keys no live host holds."""
    mine: Mapping[str, int]
    """The keys this host's session holds in the store, with their epochs."""
    deleted: frozenset[str]
    """Those of ``mine`` deleted from the table (stop them, then finish)."""


class LeaseStore(Protocol):
    """One host's session with a leasing table, as its lease keeper sees it.

    The keeper calls one method at a time. Each raises
    :class:`~proctree.TableError` when the store cannot be reached (the
    keeper retries, and fences when its deadline comes first); times are
    the store's, never the host's.
    """

    @property
    def host(self) -> str:
        """This host's name (what :attr:`Lease.host` says)."""
        ...

    @property
    def timing(self) -> LeaseTiming:
        """The ttl, renewal interval, margin, poll interval and batch."""
        ...

    async def join(self) -> None:
        """Start a new session (a new identity: nothing held), ending the last."""
        ...

    async def renew(self) -> Renewal:
        """Extend every lease of the session in one statement; end expired ones."""
        ...

    async def survey(self) -> Survey:
        """Count keys and hosts; list what this session holds."""
        ...

    async def claim(self, limit: int) -> list[Lease]:
        """Take up to ``limit`` keys no live host holds, each with a new epoch."""
        ...

    async def finish(self, leases: Sequence[Lease]) -> None:
        """Give back ``leases`` whose children are stopped (purge deleted keys)."""
        ...

    async def leave(self) -> None:
        """Give back everything and end the session (children all stopped)."""
        ...

    async def changed(self) -> None:
        """Return when the store says something changed (keys, hosts, leases).

        A store without notifications may never return: the keeper polls
        every ``poll_every`` seconds as well.
        """
        ...

    async def runner(self, key: str) -> Runner | None:
        """The runner of ``key``, or None if the table no longer has it."""
        ...


@runtime_checkable
class LeasingTable(Table, Protocol):
    """A :class:`~proctree.Table` that several hosts share, with leases.

    A supervisor over such a table runs only the keys its host holds;
    :meth:`open_leases` gives the store the supervisor's lease keeper
    drives for as long as the supervisor runs.
    """

    def open_leases(self) -> AbstractAsyncContextManager[LeaseStore]:
        """Open this host's session with the table (closed on exit).

        Raises:
            TableError: the table cannot be reached or used.
        """
        ...
