"""One key's bookkeeping in a supervisor, and the keeper of its process."""

from __future__ import annotations

import weakref
from typing import Final, Protocol, final

import attrs
import trio

from .._core import Process, Runner, State, close_by, launch, new_process, set_keeper
from .policy import DoNotRestart, matches

__all__ = ["Slot", "SlotOwner", "launch_slot", "stop_last_first", "stop_slot"]

_CLOSED: Final = State.CLOSED


class SlotOwner(Protocol):
    """What a slot tells its supervisor, from inside the close driver.

    Both run synchronously while the tree changes state: they must be quick
    and must not raise.
    """

    def _slot_failed(self, slot: Slot, exc: BaseException, /) -> None:
        """The slot's current process failed (and the failure may restart it)."""
        ...

    def _slot_closed(self, slot: Slot, p: Process, /) -> None:
        """A process of the slot is CLOSED."""
        ...

    def _slot_ready(self, slot: Slot, p: Process, /) -> None:
        """A process the owner launched (no start() waits) became RUNNING."""
        ...


@final
@attrs.define(eq=False)
class Slot:
    """One key's bookkeeping; also the keeper of the key's current process.

    It points back at its owner (the supervisor) weakly: the supervisor holds its
    slots, and a strong back-pointer would make a cycle that keeps a
    stopped supervisor, its process and its last children alive until the
    cyclic gc runs (contract 8 asks for refcount alone to free them).
    """

    owner: weakref.ref[SlotOwner]
    key: str
    process: Process | None = None
    starting: bool = False  # a start (or a strategy's restart) owns the slot
    stopping: bool = False  # stop_child owns the slot
    held: bool = False  # ended for good (policy): the loop leaves it alone
    count: int = 0  # restarts so far
    streak: int = 0  # restarts in a row, for the backoff exponent
    started_at: float = 0.0
    due: float | None = None  # when the loop should start it

    def make_process(
        self, runner: Runner, parent: Process, grace: float | None
    ) -> Process:
        """Make the key's new (INITIAL) process, the slot its keeper."""
        p = new_process(runner, parent=parent, name=self.key, grace=grace)
        set_keeper(p, self)
        self.process = p
        return p

    def live(self) -> bool:
        p = self.process
        return p is not None and p.state is not _CLOSED

    def idle(self) -> bool:
        return not self.starting and not self.stopping and not self.live()

    # The keeper protocol: called synchronously from the close machinery.
    def take(self, p: Process, exc: BaseException) -> bool:
        owner = self.owner()
        if owner is not None and p is self.process and not matches(exc, DoNotRestart):
            owner._slot_failed(self, exc)  # pyright: ignore[reportPrivateUsage]
        return True  # a child's failure is the policy's, never the root's

    def closed(self, p: Process) -> None:
        owner = self.owner()
        if owner is not None:
            owner._slot_closed(self, p)  # pyright: ignore[reportPrivateUsage]

    def restarts(self, p: Process) -> int:
        return self.count

    def ready(self, p: Process) -> None:
        """A launched process of the slot became RUNNING."""
        owner = self.owner()
        if owner is not None and p is self.process:
            owner._slot_ready(self, p)  # pyright: ignore[reportPrivateUsage]


def launch_slot(
    slot: Slot, table: object, parent: Process, grace: float | None, timeout: float
) -> bool:
    """Start the slot's process with no task, if ``table`` answers at once.

    The table must have ``get_nowait(key)`` (a :class:`MemoryTable`); the
    process is launched (no ``start()`` waits for it): the slot, its
    keeper, hears of its ``ready()``, failure and close. Returns False when
    the caller must start it in a task instead: the table cannot answer at
    once, or making the process failed (the task meets the failure again
    and reports it). True also when the key is no longer in the table: the
    slot stays idle, and the next read of the table forgets it.
    """
    peek = getattr(table, "get_nowait", None)
    if peek is None:
        return False
    try:
        runner = peek(slot.key)
        if runner is None:
            return True
        p = slot.make_process(runner, parent, grace)
    except Exception:
        return False
    launch(p, timeout, slot.ready)
    return True


async def stop_last_first(slots: list[Slot]) -> None:
    """Stop the live process of each slot, last first, waiting for each."""
    for slot in reversed(slots):
        p = slot.process
        if p is not None and p.state is not _CLOSED:
            close_by(p, None)
            await p.closed.wait()


async def stop_slot(slot: Slot, deadline: float | None) -> None:
    """Stop the slot's process as its owner and wait until the slot is idle.

    The stop is not a failure and is not restarted. ``deadline`` (trio's
    clock) forces the process then at the latest; None keeps its grace. A
    start in progress is stopped too (its ``start()`` then fails with
    :class:`InvalidStateError`, which the starter takes as a stop).
    """
    slot.due = None
    while not slot.idle():
        p = slot.process
        if p is None or p.state is _CLOSED:
            # A start that has not made its process yet, or another
            # stopper finishing: both end within a few checkpoints.
            await trio.sleep(0.005)
            continue
        mine = not slot.stopping
        slot.stopping = True
        try:
            close_by(p, deadline)
            await p.closed.wait()
        finally:
            if mine:
                slot.stopping = False
    slot.due = None
