"""The Supervisor: keyed child processes kept equal to a table, restarted by a policy.

A :class:`Supervisor` owns one runner process; each key gets a child of it,
from its :class:`Table`'s runner, the supervisor its *keeper* (design.md,
section 8): a child's failures go to the policy instead of the root; only
when it gives up (or :class:`TerminateTree`) does the supervisor fail.
"""

from __future__ import annotations

import contextlib
import math
import random
import weakref
from collections.abc import Callable
from typing import ClassVar, Final, final

import attrs
import trio

from .._core import (
    InvalidStateError,
    Process,
    Ready,
    State,
    check_seconds,
    close_by,
    current_process,
)
from .errors import NotRunningError, ProcessExistsError, ProcessNotFoundError
from .events import (
    ChildFailed,
    ChildRestarting,
    ChildStarted,
    ChildStopped,
    EventReporter,
    RestartsPaused,
    RestartsResumed,
    SupervisorEvent,
    SupervisorGaveUp,
)
from .hosting import Hosting
from .lease_keeper import open_keeper
from .policy import DoNotRestart, RestartPolicy, TerminateTree, check_policy, matches
from .restarts import FailureCount, next_delay, restart_group, schedule_group
from .slot import Slot, launch_slot, stop_last_first, stop_slot
from .table import Table, check_key, check_table

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_START_TIMEOUT", "Supervisor"]

DEFAULT_INTERVAL: Final = 1.0
"""Seconds between two reads of the table by the restart loop."""

DEFAULT_START_TIMEOUT: Final = 10.0
"""Seconds a child may take to call ``ready()`` before its start fails."""

_CLOSED: Final = State.CLOSED


@final
@attrs.define(eq=False, init=False)
class Supervisor:
    """Keeps one child process per key of a :class:`Table`, restarting them.

    A supervisor is a runner (pass it to :func:`sequential`, ``proctree
    run``...: it runs in the process made for it there), and :meth:`start`
    runs it in its own process, made (INITIAL) when first needed. Starting
    it restores every key of the table, each started
    concurrently and each given ``start_timeout`` seconds, and returns once
    all have started or failed (so startup waits at most
    ``start_timeout``). A restart loop then keeps the running set equal to
    the table: every ``interval`` seconds it reads the table, starts keys
    that have no process and stops processes whose key is gone; a child
    that fails or returns is restarted under ``policy``. A key stopped with
    :meth:`stop_child` comes back on the next read while the table still
    has it: delete it from the table to keep it stopped.

    A child's failure never reaches the root: the supervisor takes it,
    reports a :class:`ChildFailed` event and applies the policy. The
    supervisor fails upward only when the policy gives up
    (:class:`GaveUpError`) or a child raises :class:`TerminateTree`.
    Closing the supervisor stops every child (each with its own grace,
    then forced) and waits for them.

    Args:
        table: the desired set; by default an empty :class:`MemoryTable`.
        policy: the :class:`RestartPolicy`; by default
            ``RestartPolicy.exponential()``.
        parent: the parent of the supervisor's own process; None means the
            current process (made outside every root: the current one at
            :meth:`start`). Not used when it is run as a runner.
        name: the supervisor process's name (children are named by key).
        interval: seconds between two reads of the table.
        start_timeout: seconds each child gets to call ``ready()``.
        child_grace: the grace of each child; by default its runner's or
            the tree's.
        on_event: called with every :data:`SupervisorEvent`, synchronously;
            an exception it raises is logged and ignored. Events also go to
            the ``proctree.supervisor`` logger.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: a number of seconds is negative.
        InvalidStateError: ``parent`` is CLOSED.
    """

    default_grace: ClassVar[float] = math.inf  # its stop is its children's

    _table: Table
    _reads: Table  # what the loop reads: the table, or this host's lease view
    _read_now: bool
    _policy: RestartPolicy
    _hosting: Hosting
    _interval: float
    _start_timeout: float
    _child_grace: float | None
    _events: EventReporter
    _rng: random.Random
    _slots: dict[str, Slot]
    _order: list[str]
    _ended: list[tuple[Slot, BaseException | None]]
    _wake: trio.Event
    _count: FailureCount
    _fatal: BaseException | None
    _ready_scope: trio.CancelScope | None
    _nursery: trio.Nursery | None
    _looping: bool  # the restart loop runs: a close applies the policy at once
    _overran: list[str]

    def __init__(
        self,
        table: Table | None = None,
        *,
        policy: RestartPolicy | None = None,
        parent: Process | None = None,
        name: str = "supervisor",
        interval: float = DEFAULT_INTERVAL,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        child_grace: float | None = None,
        on_event: Callable[[SupervisorEvent], object] | None = None,
    ) -> None:
        table = check_table(table, "Supervisor")
        policy = check_policy(policy, "Supervisor")
        if on_event is not None and not callable(on_event):
            raise TypeError(f"Supervisor: on_event must be callable, got {on_event!r}")
        self._interval = check_seconds(interval, "Supervisor: interval")
        if self._interval == 0:
            raise ValueError("Supervisor: interval must be > 0 seconds, got 0")
        self._start_timeout = check_seconds(start_timeout, "Supervisor: start_timeout")
        self._child_grace = (
            None
            if child_grace is None
            else check_seconds(child_grace, "Supervisor: child_grace")
        )
        self._table = self._reads = table
        self._read_now = False
        self._policy = policy
        self._rng = random.Random(policy.seed)
        self._count = FailureCount(policy)
        self._fresh()
        self._hosting = Hosting.make(name, parent, self._count)
        self._events = EventReporter(name, on_event)  # its process: at run()

    def _fresh(self) -> None:  # the state of one run: each run starts afresh
        self._slots = {}
        self._order = []
        self._ended = []
        self._wake = trio.Event()
        self._count.reset()
        self._fatal = None
        self._ready_scope = self._nursery = None
        self._looping = False
        self._overran = []

    # ------------------------------------------------------------- the node

    @property
    def name(self) -> str:
        """The name of the supervisor's process (children are named by key)."""
        return self._hosting.name

    @property
    def process(self) -> Process:
        """The process it runs in (a runner's, or its own, made if none yet)."""
        return self._hosting.own(self)

    @property
    def state(self) -> State:
        """The state of its process (INITIAL while it has none)."""
        return self._hosting.state()

    @property
    def table(self) -> Table:
        """The table the supervisor keeps the running set equal to."""
        return self._table

    @property
    def policy(self) -> RestartPolicy:
        """The restart policy."""
        return self._policy

    @property
    def overran(self) -> tuple[str, ...]:
        """Keys whose process did not stop within its grace and was cancelled."""
        return tuple(self._overran)

    async def start(self, *, timeout: float | None = None) -> None:
        """Restore every key of the table, then run the restart loop.

        Returns once every key has started or failed (failures are then
        retried under the policy). See :meth:`Process.start`.

        Args:
            timeout: seconds for the whole startup; past it the supervisor
                is cancelled and :class:`~proctree.StartTimeoutError` raised.

        Raises:
            InvalidStateError: already started or stopped.
            StartTimeoutError: the startup took longer than ``timeout``.
        """
        await self.process.start(timeout=timeout)

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop every child (graceful, then forced) and the supervisor.

        Args:
            grace: seconds before everything still running is cancelled;
                by default each child's own grace.

        Raises:
            InvalidStateError: the supervisor is already CLOSED.
            BaseException: the supervisor's own failure, if it gave up.
        """
        await self.process.stop(grace=grace)

    async def aclose(self, *, grace: float | None = None) -> None:
        """Like :meth:`stop`, but idempotent. See :meth:`Process.aclose`."""
        await self.process.aclose(grace=grace)

    async def wait(self) -> None:
        """Wait until the supervisor is CLOSED; raise its failure if any."""
        await self.process.wait()

    async def reload(self) -> None:
        """Read the table now, not at the next interval (SIGHUP does it)."""
        if self._nursery is not None and not self._hosting.closing():
            await self._sync(trio.current_time())
            self._wake.set()

    # ---------------------------------------------------------- per key

    def keys(self) -> list[str]:
        """The keys that have a live process (starting or running), in order."""
        return [slot.key for slot in self._in_order() if slot.live()]

    def child(self, key: str) -> Process:
        """The live process of ``key`` (STARTING, RUNNING or CLOSING).

        Raises:
            ProcessNotFoundError: ``key`` has no live process.
            TypeError: ``key`` is not a str.
        """
        check_key(key, "child()")
        slot = self._slots.get(key)
        if slot is None or slot.process is None or not slot.live():
            raise ProcessNotFoundError(
                f"supervisor {self.name!r} has no live process for "
                f"key {key!r}; keys() lists those it has"
            )
        return slot.process

    def restarts(self, key: str) -> int:
        """How many times ``key`` was restarted (0 for an unknown key)."""
        slot = self._slots.get(key)
        return 0 if slot is None else slot.count

    async def start_child(self, key: str) -> Process:
        """Start ``key`` now, from the runner the table holds for it.

        Returns once the child called ``ready()``. A start failure is
        raised here and also handed to the policy, like any failure. A key
        the policy had ended for good (temporary, :class:`DoNotRestart`)
        is supervised again.

        Raises:
            ProcessExistsError: ``key`` already has a live or starting process.
            ProcessNotFoundError: the table has no runner for ``key``.
            NotRunningError: the supervisor is not starting or running.
            TypeError: ``key`` is not a str.
            BaseException: the child's startup failure.
        """
        check_key(key, "start_child()")
        self._check_running("start_child", key)
        slot = self._slot(key)
        if not slot.idle():
            raise ProcessExistsError(
                f"supervisor {self.name!r} already has a process for "
                f"key {key!r}; stop_child({key!r}) it first"
            )
        slot.starting = True  # claimed before the first await: one start wins
        slot.held = False
        slot.due = None
        p = await self._start_slot(slot)
        if p is None:
            raise ProcessNotFoundError(
                f"supervisor {self.name!r}: the table has no runner for "
                f"key {key!r}; add it to the table first"
            )
        return p

    async def stop_child(self, key: str, *, grace: float | None = None) -> None:
        """Stop the process of ``key`` and wait until it is CLOSED.

        The stop is not a failure and is not restarted by the policy; the
        restart loop starts the key again on its next read if the table
        still has it. The child's own error, if it had one, is reported by
        events, not raised here.

        Args:
            key: the child's key.
            grace: seconds before it is forced; by default its own grace.

        Raises:
            ProcessNotFoundError: ``key`` has no live process.
            NotRunningError: the supervisor is not starting or running.
            TypeError: ``key`` is not a str.
        """
        check_key(key, "stop_child()")
        self._check_running("stop_child", key)
        deadline = None
        if grace is not None:
            deadline = trio.current_time() + check_seconds(grace, "grace")
        slot = self._slots.get(key)
        p = None if slot is None else slot.process
        if slot is None or p is None or not slot.live() or slot.stopping:
            raise ProcessNotFoundError(
                f"supervisor {self.name!r} has no live process for key {key!r} to stop"
            )
        slot.stopping = True
        slot.due = None
        slot.streak = 0
        try:
            close_by(p, deadline)
            await p.closed.wait()
        finally:
            slot.stopping = False
            self._wake.set()

    # ------------------------------------------------------------- internals

    def _check_running(self, what: str, key: str) -> None:
        if not self._hosting.running():
            raise NotRunningError(
                f"{what}({key!r}): supervisor {self.name!r} is "
                f"{self.state.name}; call it between start() and stop()"
            )

    def _slot(self, key: str) -> Slot:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = Slot(weakref.ref(self), key)
        return slot

    def _ordering(self) -> list[str]:
        explicit = self._policy.order or ()
        return [*explicit, *(k for k in self._order if k not in explicit)]

    def _emit(self, kind: type[SupervisorEvent], slot: Slot, **fields: object) -> None:
        self._events.report(kind, slot.key, slot.count, **fields)

    def _slot_failed(self, slot: Slot, exc: BaseException, /) -> None:
        """Keeper callback: a child failed (inside the driver: no raise)."""
        self._emit(ChildFailed, slot, error=exc)

    def _slot_closed(self, slot: Slot, p: Process, /) -> None:
        """Keeper callback: a child is CLOSED (inside the driver: no raise)."""
        if p.overran_grace:
            self._overran.append(slot.key)
        error = p.error
        if error is None or matches(error, DoNotRestart):
            self._emit(ChildStopped, slot)
        if p is not slot.process or slot.starting or slot.stopping:
            return  # whoever owns the slot handles it
        if self._hosting.closing() or self._fatal is not None:
            return  # stopping, or gave up: the stop is on its way
        if self._looping and not self._ended:
            # The policy applies where the close is reported: no loop wake-up.
            now = trio.current_time()
            if self._on_ended(slot, error, now) and self._start_if_due(slot, now):
                return
        else:
            self._ended.append((slot, error))
        self._wake.set()  # the loop sees the delay, the pause or the end

    async def _start_slot(self, slot: Slot) -> Process | None:
        """Start ``slot`` (already marked starting); route a failure to the policy."""
        try:
            runner = await self._reads.get(slot.key)
            if runner is None:
                return None
            p = slot.make_process(runner, self.process, self._child_grace)
            await p.start(timeout=self._start_timeout)
        except Exception as exc:
            slot.starting = False
            if self._hosting.closing() or (
                isinstance(exc, InvalidStateError) and slot.stopping
            ):
                raise  # we were stopped: not a failure
            self._emit(ChildFailed, slot, error=exc)
            self._ended.append((slot, exc))
            self._wake.set()
            raise
        finally:
            slot.starting = False
        slot.started_at = trio.current_time()
        self._emit(ChildStarted, slot)
        if p.state is _CLOSED and not self._hosting.closing():
            # It ended between ready() and now, while the slot was ours.
            self._ended.append((slot, p.error))
            self._wake.set()
        return p

    async def _start_quietly(self, slot: Slot) -> None:  # _start_slot reports
        with contextlib.suppress(Exception):
            await self._start_slot(slot)

    # ------------------------------------------------------------- runner

    async def run(self, ready: Ready) -> None:
        """Restore every key, ``ready()``, run the restart loop until stopped.

        Raises:
            InvalidStateError: it already runs in another process.
            GaveUpError: the policy gave up (as may a child's TerminateTree).
        """
        me = current_process("Supervisor.run()")
        if self._hosting.enter(me):
            self._fresh()
        self._events.process = me  # its tree's instruments see every event
        async with open_keeper(self._table, self._slots, self._read_soon) as reads:
            self._reads = reads  # a leasing table: only the keys this host holds
            await self._serve(ready)

    def _read_soon(self) -> None:
        self._read_now = True
        self._wake.set()

    async def _serve(self, ready: Ready) -> None:
        me = current_process("Supervisor")
        assert me is self._hosting.process
        self._ready_scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._read_table()
            async with trio.open_nursery() as restore:
                for key in self._order:
                    slot = self._slot(key)
                    slot.starting = True
                    restore.start_soon(self._start_quietly, slot, name=key)
            if not me.closing.is_set():
                nursery.start_soon(self._loop, name=f"{me.name} restart loop")
                with self._ready_scope:
                    await ready()
            nursery.cancel_scope.cancel()
        self._nursery = None
        fatal = self._fatal
        if fatal is not None:
            await stop_last_first(self._in_order())
            raise fatal

    def _in_order(self) -> list[Slot]:
        """Every slot, in the start order (keys the order does not know last)."""
        rank = {key: i for i, key in enumerate(self._ordering())}
        return sorted(self._slots.values(), key=lambda s: rank.get(s.key, len(rank)))

    async def _read_table(self) -> list[str]:
        keys: list[str] = []
        async for key in self._reads:
            keys.append(check_key(key, "Supervisor: the table"))
        self._order = keys
        return keys

    async def _loop(self) -> None:
        self._looping = True
        next_read = trio.current_time() + self._interval
        while True:
            now = trio.current_time()
            while self._ended:
                slot, error = self._ended.pop(0)
                if not self._on_ended(slot, error, now):
                    return
            paused_by = self._count.resume(now)
            if paused_by is not None:
                self._emit(RestartsResumed, paused_by)
            if now >= next_read or self._read_now:
                self._read_now = False
                await self._sync(now)
                next_read = now + self._interval
            wake_at = next_read
            if self._count.paused_until is not None:
                wake_at = min(wake_at, self._count.paused_until)
            else:
                for slot in list(self._slots.values()):
                    if not self._start_if_due(slot, now) and slot.due is not None:
                        wake_at = min(wake_at, slot.due)
            if not self._ended:
                with trio.move_on_at(wake_at):
                    await self._wake.wait()
            self._wake = trio.Event()

    def _start_if_due(self, slot: Slot, now: float) -> bool:
        """Start ``slot`` if due now and nothing holds it (nor a give-up)."""
        held = slot.held or self._fatal is not None  # gave up: the stop comes
        due, paused = slot.due, self._count.paused_until is not None
        if due is None or due > now or paused or held or not slot.idle():
            return False
        slot.due = None
        self._launch(slot)
        return True

    def _launch(self, slot: Slot) -> None:
        """Start ``slot`` again: with no task if the table answers at once."""
        if not launch_slot(
            slot, self._reads, self.process, self._child_grace, self._start_timeout
        ):
            slot.starting = True
            self._spawn(self._start_quietly, slot)

    def _slot_ready(self, slot: Slot, p: Process, /) -> None:
        """Keeper callback: a launched child became RUNNING (no raise)."""
        slot.started_at = trio.current_time()
        self._emit(ChildStarted, slot)

    def _spawn(self, fn: Callable[[Slot], object], slot: Slot) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, slot, name=slot.key)  # type: ignore[arg-type]

    async def _sync(self, now: float) -> None:
        """Read the table: start keys without a process, stop removed ones."""
        wanted = set(await self._read_table())
        for key in self._order:
            slot = self._slot(key)
            if slot.idle() and not slot.held and slot.due is None:
                slot.due = now
        for key, slot in list(self._slots.items()):
            if key in wanted:
                continue
            if slot.live() and not slot.starting and not slot.stopping:
                slot.due = None
                self._spawn(self._stop_removed, slot)
            elif slot.idle():
                del self._slots[key]

    async def _stop_removed(self, slot: Slot) -> None:
        await stop_slot(slot, None)
        if slot.idle() and slot.key not in self._order:
            self._slots.pop(slot.key, None)

    def _on_ended(self, slot: Slot, error: BaseException | None, now: float) -> bool:
        """Apply the policy to a child that ended; False once giving up."""
        policy = self._policy
        if error is not None and matches(error, TerminateTree):
            self._give_up(slot, error)
            return False
        if not policy.restarts_after(error):
            slot.held = True
            return True
        if self._count.record(now):
            if policy.on_threshold == "give_up":
                self._give_up(slot, self._count.gave_up(self.name, slot.key, error))
                return False
            if self._count.pause(slot, now):
                self._emit(RestartsPaused, slot, delay=policy.threshold_backoff)
        delay = next_delay(slot, policy, self._rng, now)
        group = restart_group(policy.strategy, slot, self._ordering(), self._slots)
        announced = self._count.announced(delay, now)
        for member in group:
            member.count += 1
            self._emit(ChildRestarting, member, delay=announced)
        if len(group) == 1:
            slot.due = now + delay
        else:
            assert self._nursery is not None
            schedule_group(
                self._nursery,
                group,
                now + delay,
                self._count,
                self.process.closing,
                self._start_quietly,
            )
        return True

    def _give_up(self, slot: Slot, error: BaseException) -> None:
        if self._fatal is not None:
            return  # gave up already: the first reason is the one raised
        self._fatal = error
        self._emit(SupervisorGaveUp, slot, error=error)
        if self._ready_scope is not None:
            self._ready_scope.cancel()
