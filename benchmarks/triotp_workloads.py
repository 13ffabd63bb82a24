"""The triotp twins of the (f) supervisor workloads, run by triotp's interpreter.

run.py starts this file as a script with another Python (``--triotp-python``,
by default /tmp/triotp-venv/bin/python): triotp 0.2.1 pins trio 0.19, so it
cannot share proctree's virtualenv. It imports only the standard library,
trio, triotp (and its logbook) and ``phases``, never proctree.

Excluded from mypy: triotp ships no type information (no py.typed).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata

import trio
import trio.testing
from logbook import NullHandler  # triotp's logging library
from triotp import supervisor

from phases import Phases, print_result

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


CASES: dict[str, Callable[[int, Phases], Metrics]] = {
    "sup-triotp": triotp_fleet,
    "restart-triotp": triotp_restart,
}


def describe() -> str:
    return (
        f"triotp {metadata.version('triotp')} on trio {trio.__version__}, "
        f"Python {sys.version.split()[0]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="One triotp workload (run by benchmarks/run.py)."
    )
    parser.add_argument("--worker", choices=sorted(CASES))
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--no-gc", dest="use_gc", action="store_false")
    parser.add_argument(
        "--describe", action="store_true", help="print the versions and exit"
    )
    args = parser.parse_args(argv)
    if args.describe:
        print(describe())
        return 0
    if args.worker is None:
        parser.error("--worker or --describe is required")
    if not args.use_gc:
        gc.disable()
    phases = Phases()
    metrics = CASES[args.worker](args.n, phases)
    metrics.update(phases.seconds)
    print_result(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
