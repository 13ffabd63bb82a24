"""How a supervisor decides restarts: the failure count and the restart group.

The count decays with time (``RestartPolicy.decay``); past the policy's
threshold it pauses every restart (or the supervisor gives up). The group
is what one failure restarts under the policy's strategy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import final

import attrs

from .policy import RestartPolicy, Strategy
from .slot import Slot

__all__ = ["FailureCount", "restart_group"]


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
    group = []
    for key in keys:
        slot = slots.get(key)
        if slot is failed or (
            slot is not None and slot.live() and not slot.starting and not slot.stopping
        ):
            group.append(slot)
    if failed not in group:
        group.insert(0, failed)
    return group
