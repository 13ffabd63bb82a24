"""What every worker process shares: the phase clock and the result line.

Imports nothing but the standard library, so that the triotp workloads
(``triotp_workloads.py``, run by another interpreter without proctree) use
the same clock and print the same result line as ``workloads.py``.
"""

from __future__ import annotations

import cProfile
import json
import time

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
        self._profiler = profiler
        self._profiled = profiled
        self._current: str | None = None
        self._since = 0.0

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
