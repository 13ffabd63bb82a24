"""How a supervisor decides restarts: the failure count and the restart group.

The count decays with time (``RestartPolicy.decay``); past the policy's
threshold it pauses every restart (or the supervisor gives up). The group
is what one failure restarts under the policy's strategy.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import final

import attrs
import trio

from .._core import Keeper, Process
from .errors import GaveUpError
from .policy import RestartPolicy, Strategy
from .slot import Slot, stop_last_first

__all__ = [
    "FailureCount",
    "PauseStatus",
    "next_delay",
    "restart_group",
    "restart_in_order",
    "schedule_group",
]


@final
@attrs.define(eq=False)
class FailureCount:
    """A supervisor's decaying failure count, and the pause it causes."""

    policy: RestartPolicy
    count: float = 0.0
    last: float | None = None
    paused_until: float | None = None
    """While set, no child is restarted before this time."""
    paused_by: Slot | None = None

    def reset(self) -> None:
        """Forget every failure and pause (a supervisor run anew)."""
        self.count = 0.0
        self.last = self.paused_until = self.paused_by = None

    def record(self, now: float) -> bool:
        """Count a failure at ``now``; True if the count is past the threshold."""
        if self.last is None:
            self.count = 1.0
        else:
            self.count = self.policy.decay(self.count, now - self.last)
        self.last = now
        return self.count > self.policy.failure_threshold

    def pause(self, slot: Slot, now: float) -> bool:
        """Pause restarts for the policy's threshold backoff; False if paused."""
        if self.paused_until is not None:
            return False
        self.paused_until = now + self.policy.threshold_backoff
        self.paused_by = slot
        return True

    def announced(self, delay: float, now: float) -> float:
        """The real delay of a restart due in ``delay`` s: a pause delays it."""
        until = self.paused_until
        return delay if until is None else max(delay, until - now)

    def gave_up(self, name: str, key: str, error: BaseException | None) -> GaveUpError:
        """Supervisor ``name`` gives up: ``key`` took the count past the threshold."""
        gave_up = GaveUpError(
            f"supervisor {name!r} gave up: key {key!r} made the failure count "
            f"{self.count:.3g}, past the threshold {self.policy.failure_threshold:g}"
        )
        gave_up.__cause__ = error
        return gave_up

    def resume(self, now: float) -> Slot | None:
        """End a pause that is over (the count starts again from zero).

        Returns the slot whose failure caused the pause, or None if no pause
        ended.
        """
        if self.paused_until is None or now < self.paused_until:
            return None
        paused_by = self.paused_by
        self.paused_until = self.paused_by = None
        self.count = 0.0
        self.last = None
        return paused_by


@final
@attrs.define(eq=False)
class PauseStatus:
    """The keeper of a supervisor's process: it shows a pause in tree views.

    The process's own failures are not its business: it hands them (and
    the close) to ``inner``, the keeper whoever made the process gave it
    (a combinator's, a parent supervisor's slot), or lets them travel up.
    It holds the failure count, not the supervisor, so it makes no
    reference cycle.
    """

    count: FailureCount
    inner: Keeper | None = None

    def take(self, p: Process, exc: BaseException) -> bool:
        """What ``inner`` says; without one, the failure travels up."""
        return self.inner is not None and self.inner.take(p, exc)

    def closed(self, p: Process) -> None:
        """Tell ``inner`` that the supervisor's process is CLOSED."""
        if self.inner is not None:
            self.inner.closed(p)

    @property
    def key(self) -> str | None:
        """The key ``inner`` keeps the process under (a parent supervisor's)."""
        key: object = getattr(self.inner, "key", None)
        return key if isinstance(key, str) else None

    def restarts(self, p: Process) -> int:
        """What ``inner`` counts (a parent supervisor restarting this one)."""
        counter = getattr(self.inner, "restarts", None)
        return counter(p) if counter is not None else 0

    def status(self, p: Process) -> str | None:
        """``restarts paused until t=... (...s from now)`` while paused."""
        until = self.count.paused_until
        if until is None:
            return None
        left = max(0.0, until - trio.current_time())
        return f"restarts paused until t={until:g} ({left:g}s from now)"


def next_delay(
    slot: Slot, policy: RestartPolicy, rng: random.Random, now: float
) -> float:
    """The delay before ``slot``'s next restart; counts it in its streak.

    A child that ran for ``policy.stable_after`` seconds starts a new streak.
    """
    if now - slot.started_at >= policy.stable_after:
        slot.streak = 0
    delay = policy.delay(slot.streak, rng)
    slot.streak += 1
    return delay


def restart_group(
    strategy: Strategy,
    failed: Slot,
    order: Sequence[str],
    slots: Mapping[str, Slot],
) -> list[Slot]:
    """The slots a failure of ``failed`` restarts, in start order.

    ``one_for_one`` restarts the failed key alone; ``one_for_all`` every
    live key; ``rest_for_one`` the failed key and the live keys after it in
    ``order``. Keys being started or stopped by someone else are left out.
    """
    if strategy == "one_for_one":
        return [failed]
    keys = list(order)
    if failed.key in keys and strategy == "rest_for_one":
        keys = keys[keys.index(failed.key) :]
    group: list[Slot] = []
    for key in keys:
        slot = slots.get(key)
        if slot is None:
            continue
        if slot is failed or (slot.live() and not slot.starting and not slot.stopping):
            group.append(slot)
    if failed not in group:
        group.insert(0, failed)
    return group


def schedule_group(
    nursery: trio.Nursery,
    group: list[Slot],
    at: float,
    count: FailureCount,
    closing: trio.Event,
    start: Callable[[Slot], Awaitable[None]],
) -> None:
    """Restart a strategy's group in a task of ``nursery`` (see restart_in_order).

    Its members are marked starting now: the group's task owns them.
    """
    for member in group:
        member.due = None
        member.starting = True
    nursery.start_soon(restart_in_order, group, at, count, closing, start)


async def restart_in_order(
    group: list[Slot],
    at: float,
    count: FailureCount,
    closing: trio.Event,
    start: Callable[[Slot], Awaitable[None]],
) -> None:
    """Stop the group's live members last first, then start all in order.

    The starts wait for ``at`` and for the end of a pause of ``count``;
    once ``closing`` is set (the supervisor stops) the rest are not started.
    Every member is marked starting by the caller; those not started are
    unmarked.
    """
    try:
        await stop_last_first(group)
        await trio.sleep_until(at)
        while count.paused_until is not None:
            await trio.sleep_until(count.paused_until)
            await trio.lowlevel.checkpoint()
    except BaseException:
        for member in group:
            member.starting = False
        raise
    for i, member in enumerate(group):
        if closing.is_set():
            for rest in group[i:]:
                rest.starting = False
            return
        await start(member)
