"""Prometheus metrics of a tree: an instrument counting what its hooks see.

``prometheus_client`` is an optional dependency (``pip install
'proctree[metrics]'``), imported when :class:`PrometheusInstrument` is made.
The hooks only add to plain integers; the text exposition is
``prometheus_client``'s, from a collector that reads them at scrape time,
so an instrumented tree pays a few dictionary operations per process, not
a lock per sample (``docs/design-ops.md``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final, cast, final

import attrs
import trio

from .._core import Instrument, Process, State
from .._leaves import require
from .._supervision import ChildRestarting, ChildStarted

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["DEFAULT_BUCKETS", "PrometheusInstrument"]

DEFAULT_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Bucket bounds (seconds) of the start and close duration histograms."""

_LIVE: Final = (State.INITIAL, State.STARTING, State.RUNNING, State.CLOSING)
_STARTING: Final = State.STARTING
_RUNNING: Final = State.RUNNING
_CLOSING: Final = State.CLOSING
_CLOSED: Final = State.CLOSED


@final
@attrs.define(eq=False, slots=True)
class _Histogram:
    """Bucket counts (not cumulative) and a sum; the last bucket is +Inf."""

    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


def _histogram(bounds: Sequence[float]) -> _Histogram:
    chosen = tuple(sorted(float(b) for b in bounds))
    return _Histogram(chosen, [0] * (len(chosen) + 1))


@final
class PrometheusInstrument(Instrument):
    """An instrument that keeps Prometheus metrics of every process of a tree.

    Pass it to :func:`~proctree.open_root` (``proctree run --health``
    does it) and serve :attr:`registry` (:func:`~proctree.health_server`'s
    ``/metrics``, or ``prometheus_client.generate_latest(registry)``).
    Every series exists, at zero, from the start:

    ==============================================  =========  ======================
    name                                            type       labels
    ==============================================  =========  ======================
    ``proctree_processes``                          gauge      ``state``
    ``proctree_process_starts_total``               counter
    ``proctree_process_closes_total``               counter
    ``proctree_process_failures_total``             counter
    ``proctree_process_start_duration_seconds``     histogram
    ``proctree_process_close_duration_seconds``     histogram
    ``proctree_grace_overruns_total``               counter
    ``proctree_supervisor_restarts_total``          counter    ``supervisor``, ``key``
    ==============================================  =========  ======================

    A start lasts from a runner's ``start()`` to its ``ready()``; a close
    from ``closing`` to ``closed``. A supervisor's keys get their restart
    series (at zero) when it first reports them.

    Args:
        registry: where the metrics are registered; by default a new
            ``CollectorRegistry`` of its own (never the global one, so
            several roots and tests do not collide).
        buckets: the bounds, in seconds, of the duration histograms.

    Raises:
        ModuleNotFoundError: ``prometheus_client`` is not installed.
        TypeError: ``registry`` is not a ``CollectorRegistry``.
        ValueError: ``buckets`` is empty.
    """

    registry: CollectorRegistry
    """The registry the metrics are in."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        module = require("prometheus_client", "metrics", "PrometheusInstrument")
        if registry is None:
            registry = cast("CollectorRegistry", module.CollectorRegistry())
        elif not isinstance(registry, module.CollectorRegistry):
            raise TypeError(
                "PrometheusInstrument(): registry must be a "
                f"prometheus_client.CollectorRegistry, got {registry!r}"
            )
        if not buckets:
            raise ValueError("PrometheusInstrument(): buckets must not be empty")
        self.registry = registry
        self._states: dict[Process, State] = {}
        self._counts: dict[State, int] = dict.fromkeys(_LIVE, 0)
        self._since: dict[Process, float] = {}
        self._starts = 0
        self._closes = 0
        self._failures = 0
        self._overruns = 0
        self._start_times = _histogram(buckets)
        self._close_times = _histogram(buckets)
        self._restarts: dict[tuple[str, str], int] = {}
        registry.register(cast("Collector", _Collector(self)))

    # ------------------------------------------------------------- hooks

    def _move(self, p: Process, state: State) -> None:
        states = self._states
        old = states.get(p)
        if old is not None:
            counts = self._counts
            counts[old] -= 1
            counts[state] += 1
            states[p] = state

    def created(self, process: Process) -> None:
        """Count the process in its state."""
        state = process.state
        if state is not _CLOSED:
            self._states[process] = state
            self._counts[state] += 1

    def started(self, process: Process) -> None:
        """Count a start; a runner's start is timed until ``ready()``."""
        self._starts += 1
        if process.state is _STARTING:
            self._move(process, _STARTING)
            self._since[process] = trio.current_time()

    def ready(self, process: Process) -> None:
        """Time the runner's start."""
        self._move(process, _RUNNING)
        began = self._since.pop(process, None)
        if began is not None:
            self._start_times.observe(trio.current_time() - began)

    def closing(self, process: Process) -> None:
        """Start timing the close."""
        self._move(process, _CLOSING)
        self._since[process] = trio.current_time()

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """Count the close (and the failure) and time it."""
        state = self._states.pop(process, None)
        if state is not None:
            self._counts[state] -= 1
        self._closes += 1
        if error is not None:
            self._failures += 1
        began = self._since.pop(process, None)
        if began is not None:
            self._close_times.observe(trio.current_time() - began)

    def grace_overrun(self, process: Process) -> None:
        """Count the overrun."""
        self._overruns += 1

    def supervisor_event(self, process: Process, event: object) -> None:
        """Count restarts per key; a key's series starts at zero."""
        if isinstance(event, ChildRestarting | ChildStarted):
            series = (process.path, event.key)
            known = self._restarts.get(series, 0)
            self._restarts[series] = known + isinstance(event, ChildRestarting)
        elif (key := getattr(event, "key", None)) is not None:
            self._restarts.setdefault((process.path, str(key)), 0)

    # ------------------------------------------------------------- scrape

    def collect(self) -> Iterator[Metric]:
        """The metric families, as ``prometheus_client`` collectors yield them."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        gauge = GaugeMetricFamily(
            "proctree_processes",
            "Processes of the tree, by state.",
            labels=["state"],
        )
        for state, count in self._counts.items():
            gauge.add_metric([state.name.lower()], count)
        yield gauge
        for name, doc, value in (
            ("proctree_process_starts", "Processes started.", self._starts),
            ("proctree_process_closes", "Processes closed.", self._closes),
            (
                "proctree_process_failures",
                "Processes closed with a failure of their own.",
                self._failures,
            ),
            (
                "proctree_grace_overruns",
                "Processes cancelled after outliving their grace.",
                self._overruns,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        for name, doc, histogram in (
            (
                "proctree_process_start_duration_seconds",
                "Seconds from a runner's start() to its ready().",
                self._start_times,
            ),
            (
                "proctree_process_close_duration_seconds",
                "Seconds from closing to closed.",
                self._close_times,
            ),
        ):
            yield HistogramMetricFamily(
                name, doc, buckets=histogram.cumulative(), sum_value=histogram.total
            )
        restarts = CounterMetricFamily(
            "proctree_supervisor_restarts",
            "Restarts of a supervisor's key.",
            labels=["supervisor", "key"],
        )
        for (supervisor, key), count in sorted(self._restarts.items()):
            restarts.add_metric([supervisor, key], count)
        yield restarts


@final
@attrs.define(eq=False)
class _Collector:
    """What the registry calls: the instrument's ``collect``."""

    instrument: PrometheusInstrument

    def collect(self) -> Iterator[Metric]:
        return self.instrument.collect()

    def describe(self) -> Iterator[Metric]:
        # The registry reads the names at register(): two instruments on
        # one registry are refused there, not at the first scrape.
        return self.instrument.collect()
