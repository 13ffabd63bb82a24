"""What every worker process shares: the phase clock and the result line.

Imports nothing but the standard library, so that the peers' workloads
(``anyio_workloads.py``, ``async_service_workloads.py``,
``triotp_workloads.py``, each run by its peer's interpreter without
proctree) use the same clock, command line and result line as
``workloads.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import time
from collections.abc import Callable
from typing import Any, NoReturn

MARKER = "PROCTREE-BENCH-RESULT "
"""Starts the one stdout line of a worker that holds its figures as JSON."""


def print_result(metrics: dict[str, float]) -> None:
    """Print a worker's figures on the line run.py looks for."""
    print(MARKER + json.dumps(metrics), flush=True)


class Phases:
    """A wall clock split into named phases, one of which may be profiled.

    ``mark(name)`` ends the current phase and starts ``name``; ``mark(None)``
    ends the last one. ``seconds`` maps each phase to its duration; a phase
    entered several times (once per cycle in (e)) adds up its durations, and
    is profiled each time.
    """

    def __init__(
        self, profiler: cProfile.Profile | None = None, profiled: str | None = None
    ) -> None:
        self.seconds: dict[str, float] = {}
        self.instruments: list[Any] = []
        """trio instruments for the workload's ``trio.run`` (counting jobs add one)."""
        self._profiler = profiler
        self._profiled = profiled
        self._current: str | None = None
        self._since = 0.0

    @property
    def current(self) -> str | None:
        """The phase running now, or None between phases."""
        return self._current

    def mark(self, name: str | None) -> None:
        now = time.perf_counter()
        if self._current is not None:
            elapsed = now - self._since
            self.seconds[self._current] = self.seconds.get(self._current, 0.0) + elapsed
            if self._profiler is not None and self._current == self._profiled:
                self._profiler.disable()
        self._current = name
        if name is not None:
            if self._profiler is not None and name == self._profiled:
                self._profiler.enable()
            self._since = time.perf_counter()


def worker_main(
    cases: dict[str, Callable[[int, Phases], dict[str, float]]],
    describe: Callable[[], str],
    argv: list[str] | None = None,
) -> int:
    """The command line of a peer's workload file, which run.py runs.

    ``--worker CASE --n N [--no-gc]`` runs one workload and prints its
    figures on the marker line; ``--describe`` prints the versions the
    interpreter runs (one line) and exits.
    """
    parser = argparse.ArgumentParser(
        description="One peer workload (run by benchmarks/run.py)."
    )
    parser.add_argument("--worker", choices=sorted(cases))
    parser.add_argument("--n", type=int, default=1_000)
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
    metrics = cases[args.worker](args.n, phases)
    metrics.update(phases.seconds)
    print_result(metrics)
    return 0


class FlakyTask:
    """A task body that fails as soon as it runs, N times, timing each restart.

    The hand-written restart loops (bare trio, anyio) run ``run`` again
    after each failure; ``samples`` holds, per restart, the time from the
    raise to the first line of the next run. It imports nothing but the
    standard library, like the rest of this module.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.samples: list[float] = []
        self.raised_at: float | None = None

    def begin(self) -> bool:
        """A run's first line: time the restart; False once N are done."""
        now = time.perf_counter()
        if self.raised_at is not None:
            self.samples.append(now - self.raised_at)
            self.raised_at = None
        return len(self.samples) < self.n

    def fail(self) -> NoReturn:
        """Fail this run, noting when."""
        self.raised_at = time.perf_counter()
        raise RuntimeError("flaky child fails")

    async def run(self) -> None:
        if self.begin():
            self.fail()
