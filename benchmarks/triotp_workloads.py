"""The triotp workloads of (f) and of the peers' table, run by triotp's interpreter.

run.py starts this file as a script with another Python (``--triotp-python``,
by default /tmp/triotp-venv/bin/python): triotp 0.2.1 pins trio 0.19, so it
cannot share proctree's virtualenv. It imports only the standard library,
trio, triotp (and its logbook) and ``phases``, never proctree.

Excluded from mypy: triotp ships no type information (no py.typed).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata

import trio
import trio.testing
from logbook import NullHandler  # triotp's logging library
from triotp import supervisor

from phases import Phases, worker_main

Metrics = dict[str, float]


def _quiet() -> NullHandler:
    """Discard the logs, as ``triotp.node.run`` does by default (LogLevel.NONE)."""
    return NullHandler()


async def _idle_child() -> None:
    await trio.sleep_forever()


def triotp_fleet(n: int, phases: Phases) -> Metrics:
    """``supervisor.start`` of N idle children until all run, then cancel."""
    specs = [
        supervisor.child_spec(
            id=f"child-{i}",
            task=_idle_child,
            args=[],
            restart=supervisor.restart_strategy.PERMANENT,
        )
        for i in range(n)
    ]
    opts = supervisor.options()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            phases.mark("spawn")
            await nursery.start(supervisor.start, specs, opts)
            await trio.testing.wait_all_tasks_blocked()
            phases.mark(None)
            # Each child runs in its own nursery, under its monitor task and
            # the supervisor's task: 2 tasks per child plus the supervisor.
            tasks = _count_tasks(trio.lowlevel.current_root_task())
            if tasks < 2 * n + 1:
                raise RuntimeError(f"only {tasks} tasks for {n} children")
            phases.mark("close")
            nursery.cancel_scope.cancel()
        phases.mark(None)

    with _quiet().applicationbound():
        trio.run(main)
    return {}


def _count_tasks(task: trio.lowlevel.Task) -> int:
    count = 0
    stack = [task]
    while stack:
        t = stack.pop()
        count += 1
        for nursery in t.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


class _Flaky:
    """A child that fails as soon as it runs, N times, timing each restart.

    ``restart`` is the time from its raise to the first line of its next run.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.samples: list[float] = []
        self.raised_at: float | None = None
        self.runs = 0
        self.done = trio.Event()

    async def run(self) -> None:
        now = time.perf_counter()
        self.runs += 1
        if self.raised_at is not None:
            self.samples.append(now - self.raised_at)
            self.raised_at = None
        if len(self.samples) >= self.n:
            self.done.set()
            await trio.sleep_forever()
        self.raised_at = time.perf_counter()
        raise RuntimeError("flaky child fails")


def triotp_restart(n: int, phases: Phases) -> Metrics:
    """N restarts of a permanent child that fails; max_restarts past N."""
    flaky = _Flaky(n)
    specs = [
        supervisor.child_spec(
            id="flaky",
            task=flaky.run,
            args=[],
            restart=supervisor.restart_strategy.PERMANENT,
        )
    ]
    opts = supervisor.options(max_restarts=n + 10, max_seconds=5)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            phases.mark("restarts")
            await nursery.start(supervisor.start, specs, opts)
            await flaky.done.wait()
            phases.mark(None)
            nursery.cancel_scope.cancel()

    with _quiet().applicationbound():
        trio.run(main)
    if flaky.runs != n + 1:
        raise RuntimeError(f"{flaky.runs - 1} restarts, not {n}")
    samples = sorted(flaky.samples)
    return {
        "restart": statistics.median(samples),
        "restart_p90": samples[int(len(samples) * 0.9)],
    }


# ------------------------------------------- 3 services started and stopped
# triotp's twin of (e) and of the peers' dependency rows: one supervisor of
# 3 children, its documented use. triotp has no notion of a child being
# "up" (a child's monitor reports started before the child has run) and no
# ordered stop (the stop cancels every child at once), so a cycle's start
# waits until all 3 children have run their first line, and its stop
# cancels the nursery that holds the supervisor and leaves it.


class _Three:
    """Counts the children of one cycle that have run; wakes the cycle at 3."""

    def __init__(self) -> None:
        self.up = 0
        self.all_up = trio.Event()

    async def child(self) -> None:
        self.up += 1
        if self.up == 3:
            self.all_up.set()
        await trio.sleep_forever()


def triotp_cycles(n: int, phases: Phases) -> Metrics:
    """N cycles: ``supervisor.start`` of 3 children until they run, then cancel."""
    opts = supervisor.options()

    async def main() -> None:
        for _ in range(n):
            phases.mark("start")
            three = _Three()
            specs = [
                supervisor.child_spec(
                    id=f"service-{i}",
                    task=three.child,
                    args=[],
                    restart=supervisor.restart_strategy.PERMANENT,
                )
                for i in range(3)
            ]
            async with trio.open_nursery() as nursery:
                await nursery.start(supervisor.start, specs, opts)
                await three.all_up.wait()
                phases.mark("stop")
                nursery.cancel_scope.cancel()
            phases.mark(None)

    with _quiet().applicationbound():
        trio.run(main)
    return {}


CASES: dict[str, Callable[[int, Phases], Metrics]] = {
    "sup-triotp": triotp_fleet,
    "restart-triotp": triotp_restart,
    "cycle-triotp": triotp_cycles,
}


def describe() -> str:
    return (
        f"triotp {metadata.version('triotp')} on trio {trio.__version__}, "
        f"Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    sys.exit(worker_main(CASES, describe))
