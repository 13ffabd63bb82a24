"""The lease keeper: what a supervisor over a leasing table does with its leases.

One keeper per running supervisor. It joins the store, takes the host's
fair share of keys, renews every lease with one call per interval, gives
keys back when hosts join (stopping each child *before* its key is
released), adopts or drops what the store says it holds, and *fences*:
when no renewal has succeeded by its local deadline, it stops every child
before the store can hand the keys on, then joins again as a new session.

The supervisor sees a :class:`Table` (the *view*) that holds only this
host's keys; the supervisor's own loop starts and stops children to match
it. ``docs/design-cluster.md`` is the protocol and the reasons.
"""

from __future__ import annotations

import logging
import math
import random
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from typing import TypeVar, final

import attrs
import trio

from .._core import Ready, RunFn, Runner, runner_callable
from .leases import (
    Lease,
    LeaseStore,
    LeasingTable,
    bind_lease,
    lease_context,
    reset_lease,
)
from .slot import Slot, stop_slot
from .spec import TableError
from .table import Table

__all__ = ["LeaseKeeper", "LeaseView", "SupervisorLink", "open_keeper"]

logger = logging.getLogger("proctree.supervisor.leases")

_T = TypeVar("_T")

_BACKOFF_FIRST = 0.05
_BACKOFF_CAP = 2.0


@final
@attrs.define(eq=False)
class SupervisorLink:
    """What the keeper asks of its supervisor: read the table, stop keys.

    It holds the supervisor's hook weakly: the supervisor holds the view,
    which holds the keeper, which holds this.
    """

    slots: Mapping[str, Slot]
    _read_soon: weakref.WeakMethod[Callable[[], None]]

    def changed(self) -> None:
        """The held keys changed: the supervisor reads its table now."""
        read_soon = self._read_soon()
        if read_soon is not None:
            read_soon()

    async def stop(self, keys: Collection[str], deadline: float | None) -> None:
        """Stop the processes of ``keys`` (not a failure); wait until none runs.

        ``deadline`` (trio's clock) forces each then at the latest; None
        lets each use its own grace.
        """
        async with trio.open_nursery() as nursery:
            for key in keys:
                slot = self.slots.get(key)
                if slot is not None:
                    nursery.start_soon(stop_slot, slot, deadline)


@asynccontextmanager
async def open_keeper(
    table: Table, slots: Mapping[str, Slot], read_soon: Callable[[], None]
) -> AsyncGenerator[Table, None]:
    """The table a supervisor reads while it runs: ``table`` or its lease view.

    For a :class:`LeasingTable`, joins the store and takes this host's
    first share before the block (so the supervisor's restore starts
    them), keeps the leases during it, and after it waits until no child
    runs, then gives every key back and leaves.

    Raises:
        TableError: the store cannot be reached or used at the start.
    """
    if not isinstance(table, LeasingTable):
        yield table
        return
    async with table.open_leases() as store, trio.open_nursery() as nursery:
        keeper = LeaseKeeper(
            store, SupervisorLink(slots, weakref.WeakMethod(read_soon))
        )
        await nursery.start(keeper.run)
        try:
            yield LeaseView(keeper)
        finally:
            await keeper.leave()
            nursery.cancel_scope.cancel()


@final
@attrs.define(eq=False)
class LeaseKeeper:
    """Drives one host's leases (see the module's docstring)."""

    store: LeaseStore
    link: SupervisorLink
    held: dict[str, Lease] = attrs.field(factory=dict[str, Lease])
    """The keys this host may run now."""
    releasing: dict[str, Lease] = attrs.field(factory=dict[str, Lease])
    """Keys being stopped before they are given back."""
    deadline: float = -math.inf
    """The local deadline: fence then, unless a renewal succeeds first."""
    hosts: int = 0
    joined: bool = False
    _sent: float = 0.0
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _lock: trio.Lock = attrs.field(factory=trio.Lock)
    _nursery: trio.Nursery | None = None
    _rng: random.Random = attrs.field(factory=random.Random)
    _leaving: bool = False
    _left: bool = False

    # ---------------------------------------------------------------- clock

    def remaining(self, lease: Lease, /) -> float:
        """Seconds ``lease`` may still be acted under (0 once lost or fencing).

        A lease being given back is still valid until its child stopped.
        """
        mine = self.held.get(lease.key) or self.releasing.get(lease.key)
        if mine is None or mine.epoch != lease.epoch:
            return 0.0
        return max(0.0, self.deadline - trio.current_time())

    # ----------------------------------------------------------------- run

    async def run(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Join, take the first share, then keep the leases until cancelled."""
        timing = self.store.timing
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._call(self._join)  # a failure here fails the start
            await self._look()
            task_status.started()
            nursery.start_soon(self._listen)
            next_renew = self._sent + timing.renew_every
            next_look = trio.current_time() + timing.poll_every
            backoff = _BACKOFF_FIRST
            while True:
                wake_at = min(next_renew, next_look)
                if self.holding():
                    wake_at = min(wake_at, self.deadline)
                with trio.move_on_at(wake_at):
                    await self._wake.wait()
                woke = self._wake.is_set()
                self._wake = trio.Event()
                try:
                    if not self.joined:
                        await self._call(self._join)
                        next_renew = self._sent + timing.renew_every
                        woke = True
                    elif trio.current_time() >= next_renew:
                        await self._renew()
                        next_renew = self._sent + timing.renew_every
                    if self.joined and (woke or trio.current_time() >= next_look):
                        await self._look()
                        next_look = trio.current_time() + timing.poll_every
                    backoff = _BACKOFF_FIRST
                except TableError as exc:
                    logger.warning("host %r: %s", self.store.host, exc)
                    next_renew = trio.current_time() + backoff * self._rng.uniform(
                        0.5, 1.0
                    )
                    backoff = min(_BACKOFF_CAP, timing.renew_every, backoff * 2)
                except trio.TooSlowError:
                    pass  # the deadline came first: fenced below
                if self.holding() and trio.current_time() >= self.deadline:
                    await self._fence("no renewal succeeded before the deadline")
                if not self.joined:
                    next_renew = min(next_renew, trio.current_time())

    def holding(self) -> bool:
        """True while any child may run under this host's leases."""
        return bool(self.held or self.releasing)

    async def _call(self, fn: Callable[..., Awaitable[_T]], *args: object) -> _T:
        """Run one store call, bounded by the deadline while leases are held."""
        async with self._lock:
            if self._left:
                await trio.sleep_forever()  # the session is over: wait for the end
            if self.holding():
                with trio.fail_at(self.deadline):
                    return await fn(*args)
            return await fn(*args)

    async def _join(self) -> None:
        sent = trio.current_time()
        await self.store.join()
        self.joined = True
        self._sent = sent
        self.deadline = sent + self.store.timing.ttl - self.store.timing.margin
        logger.info("host %r joined", self.store.host)

    async def _renew(self) -> None:
        sent = trio.current_time()
        renewal = await self._call(self.store.renew)
        if not renewal.alive:
            await self._fence("its session had expired on the store")
            return
        timing = self.store.timing
        self._sent = sent
        self.deadline = sent + timing.ttl - timing.margin
        if renewal.hosts != self.hosts or renewal.freed:
            self.hosts = renewal.hosts
            self._wake.set()

    async def _fence(self, why: str) -> None:
        """Stop every child now (forced before the store's expiry), then rejoin."""
        lost = {**self.releasing, **self.held}
        logger.warning("host %r fences %d keys: %s", self.store.host, len(lost), why)
        bound = self.deadline + self.store.timing.margin / 2
        self.held.clear()
        self.releasing.clear()
        self.joined = False
        self.deadline = -math.inf
        self.link.changed()
        await self.link.stop(list(lost), bound)

    # ------------------------------------------------------------ the share

    async def _look(self) -> None:
        """One look at the table: drop, adopt, give back or claim keys."""
        s = await self._call(self.store.survey)
        self.hosts = s.hosts
        changed = False
        stale: list[Lease] = []
        for key, lease in list(self.held.items()):
            if s.mine.get(key) != lease.epoch:
                del self.held[key]  # not ours any more (deleted for good)
                changed = True
            elif key in s.deleted:
                stale.append(lease)
        for key, epoch in s.mine.items():
            if key in self.held or key in self.releasing or self._leaving:
                continue
            lease = bind_lease(Lease(key, epoch, self.store.host), self)
            if key in s.deleted:
                stale.append(lease)  # nothing runs it: finish it at once
            else:
                self.held[key] = lease  # a claim whose answer was lost
                changed = True
        if self._leaving:
            return
        share = math.ceil(s.keys / max(1, s.hosts))
        live = len(self.held) - sum(1 for lease in stale if lease.key in self.held)
        if live > share:
            extra = [k for k in reversed(self.held) if k not in s.deleted]
            stale.extend(self.held[k] for k in extra[: live - share])
        if stale:
            self._give_back(stale)
        want = share - len(self.held)
        timing = self.store.timing
        if want > 0 and s.claimable > 0:
            while want > 0:
                got = await self._call(self.store.claim, min(want, timing.batch))
                for lease in got:
                    self.held[lease.key] = bind_lease(lease, self)
                if got:
                    changed = True
                    self._changed()
                if len(got) < min(want, timing.batch):
                    break
                want -= len(got)
        if changed:
            self._changed()

    def _changed(self) -> None:
        self.link.changed()

    def _give_back(self, leases: Sequence[Lease]) -> None:
        """Stop the children of ``leases``, then release them (a task)."""
        for lease in leases:
            self.held.pop(lease.key, None)
            self.releasing[lease.key] = lease
        self._changed()
        assert self._nursery is not None
        self._nursery.start_soon(self._release, list(leases))

    async def _release(self, leases: list[Lease]) -> None:
        await self.link.stop([lease.key for lease in leases], None)
        backoff = _BACKOFF_FIRST
        while any(self.releasing.get(x.key) is x for x in leases):
            mine = [x for x in leases if self.releasing.get(x.key) is x]
            try:
                await self._call(self.store.finish, mine)
            except (TableError, trio.TooSlowError) as exc:
                logger.warning("host %r: giving keys back: %s", self.store.host, exc)
                await trio.sleep(backoff)
                backoff = min(_BACKOFF_CAP, backoff * 2)
                continue
            for x in mine:
                if self.releasing.get(x.key) is x:
                    del self.releasing[x.key]
            self._wake.set()

    async def _listen(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            try:
                await self.store.changed()
                backoff = _BACKOFF_FIRST
            except TableError as exc:
                logger.info("host %r: notifications: %s", self.store.host, exc)
                await trio.sleep(backoff * self._rng.uniform(0.5, 1.0))
                backoff = min(_BACKOFF_CAP, backoff * 2)
            self._wake.set()

    async def runner(self, key: str) -> Runner | None:
        """The store's runner for ``key`` (one store call at a time)."""
        return await self._call(self.store.runner, key)

    async def leave(self) -> None:
        """Wait until no child runs, then give every key back and end the session."""
        self._leaving = True
        await self.link.stop([*self.held, *self.releasing], None)
        self.held.clear()
        self.releasing.clear()
        if self.joined:
            try:
                with trio.fail_after(self.store.timing.ttl):
                    async with self._lock:
                        await self.store.leave()
                self._left = True
            except (TableError, trio.TooSlowError) as exc:
                logger.warning(
                    "host %r could not leave (its keys move once its leases "
                    "expire): %s",
                    self.store.host,
                    exc,
                )
            self.joined = False


@final
@attrs.define(eq=False)
class LeaseView:
    """The table a supervisor reads over a leasing table: this host's keys."""

    keeper: LeaseKeeper

    async def get(self, key: str, /) -> Runner | None:
        """The runner of ``key`` if this host holds it, bound to its lease."""
        lease = self.keeper.held.get(key)
        if lease is None:
            await trio.lowlevel.checkpoint()
            return None
        runner = await self.keeper.runner(key)
        if runner is None or self.keeper.held.get(key) is not lease:
            return None
        return _Leased(runner_callable(runner, "table"), lease, _grace(runner))

    async def _keys(self) -> AsyncIterator[str]:
        await trio.lowlevel.checkpoint()
        for key in sorted(self.keeper.held):
            yield key

    def __aiter__(self) -> AsyncIterator[str]:
        """The keys this host holds, sorted (a snapshot)."""
        return self._keys()


def _grace(runner: object) -> float | None:
    grace = getattr(runner, "default_grace", None)
    return grace if isinstance(grace, int | float) else None


@final
@attrs.define(eq=False)
class _Leased:
    """A runner that runs with its lease as the current one."""

    inner: RunFn
    lease: Lease
    default_grace: float | None

    async def run(self, ready: Ready) -> None:
        token = lease_context(self.lease)
        try:
            await self.inner(ready)
        finally:
            reset_lease(token)
