"""OpenTelemetry: the metrics of :class:`~proctree.PrometheusInstrument`, and spans.

Depends on ``opentelemetry-api`` only (``pip install 'proctree[otel]'``):
the application owns the SDK, its exporters and its providers; without
an SDK every call is a no-op. Each runner's start and each process's stop
is a span, the stop of a process nested in the stop of its parent, so a
slow shutdown shows as a trace of who waited for whom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

import trio

from .._core import Instrument, Process, State, kind_of, parent_of
from .._leaves import require
from .._supervision import ChildRestarting

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["OpenTelemetryInstrument"]

_LIVE: Final = (State.INITIAL, State.STARTING, State.RUNNING, State.CLOSING)
_STARTING: Final = State.STARTING
_CLOSED: Final = State.CLOSED


@final
class OpenTelemetryInstrument(Instrument):
    """An instrument that reports a tree to OpenTelemetry: metrics and spans.

    Metrics (the meter is named ``proctree``), each made at zero at once:

    ====================================  ===============  ==================
    name                                  kind             attributes
    ====================================  ===============  ==================
    ``proctree.processes``                up-down counter  ``state``
    ``proctree.process.starts``           counter
    ``proctree.process.closes``           counter
    ``proctree.process.failures``         counter
    ``proctree.process.start.duration``   histogram (s)
    ``proctree.process.close.duration``   histogram (s)
    ``proctree.grace.overruns``           counter
    ``proctree.supervisor.restarts``      counter          ``supervisor``,
                                                           ``key``
    ====================================  ===============  ==================

    Spans (the tracer is named ``proctree``): ``start NAME`` from a
    runner's ``start()`` to its ``ready()`` (an error status if it failed
    to start), and ``stop NAME`` from ``closing`` to ``closed``, a child of
    its parent's ``stop`` span. Each has the attributes
    ``proctree.process.path`` and ``proctree.process.kind``.

    Args:
        meter_provider: where the metrics go; by default the global one.
        tracer_provider: where the spans go; by default the global one.
        spans: whether to make spans (metrics are always made).

    Raises:
        ModuleNotFoundError: ``opentelemetry-api`` is not installed.
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        spans: bool = True,
    ) -> None:
        metrics = require("opentelemetry.metrics", "otel", "OpenTelemetryInstrument")
        trace = require("opentelemetry.trace", "otel", "OpenTelemetryInstrument")
        self._trace = trace
        meter = metrics.get_meter("proctree", meter_provider=meter_provider)
        self._tracer = (
            trace.get_tracer("proctree", tracer_provider=tracer_provider)
            if spans
            else None
        )
        self._processes = meter.create_up_down_counter(
            "proctree.processes",
            unit="{process}",
            description="Processes of the tree, by state.",
        )
        for state in _LIVE:
            self._processes.add(0, {"state": state.name.lower()})
        counters: dict[str, Counter] = {}
        for name, description in (
            ("proctree.process.starts", "Processes started."),
            ("proctree.process.closes", "Processes closed."),
            ("proctree.process.failures", "Processes closed with a failure."),
            ("proctree.grace.overruns", "Processes cancelled past their grace."),
        ):
            counters[name] = meter.create_counter(
                name, unit="{process}", description=description
            )
            counters[name].add(0)
        self._starts = counters["proctree.process.starts"]
        self._closes = counters["proctree.process.closes"]
        self._failures = counters["proctree.process.failures"]
        self._overruns = counters["proctree.grace.overruns"]
        self._restarts = meter.create_counter(
            "proctree.supervisor.restarts",
            unit="{restart}",
            description="Restarts of a supervisor's key.",
        )
        self._start_duration = meter.create_histogram(
            "proctree.process.start.duration",
            unit="s",
            description="Seconds from a runner's start() to its ready().",
        )
        self._close_duration = meter.create_histogram(
            "proctree.process.close.duration",
            unit="s",
            description="Seconds from closing to closed.",
        )
        self._states: dict[Process, str] = {}
        self._since: dict[Process, float] = {}
        self._start_spans: dict[Process, Span] = {}
        self._stop_spans: dict[Process, Span] = {}
        self._keys: set[tuple[str, str]] = set()

    # ------------------------------------------------------------- hooks

    def _move(self, p: Process, state: State) -> None:
        old = self._states.get(p)
        if old is not None:
            new = state.name.lower()
            self._processes.add(-1, {"state": old})
            self._processes.add(1, {"state": new})
            self._states[p] = new

    def _span(self, what: str, p: Process, parent: Span | None) -> Span | None:
        if self._tracer is None:
            return None
        context = None if parent is None else self._trace.set_span_in_context(parent)
        span: Span = self._tracer.start_span(
            f"{what} {p.name}",
            context=context,
            attributes={
                "proctree.process.path": p.path,
                "proctree.process.kind": kind_of(p),
            },
        )
        return span

    def created(self, process: Process) -> None:
        """Count the process in its state."""
        state = process.state
        if state is not _CLOSED:
            name = state.name.lower()
            self._states[process] = name
            self._processes.add(1, {"state": name})

    def started(self, process: Process) -> None:
        """Count a start; a runner's start opens its ``start`` span."""
        self._starts.add(1)
        if process.state is _STARTING:
            self._move(process, _STARTING)
            self._since[process] = trio.current_time()
            span = self._span("start", process, None)
            if span is not None:
                self._start_spans[process] = span

    def ready(self, process: Process) -> None:
        """End the ``start`` span; record the start's duration."""
        self._move(process, State.RUNNING)
        began = self._since.pop(process, None)
        if began is not None:
            self._start_duration.record(trio.current_time() - began)
        span = self._start_spans.pop(process, None)
        if span is not None:
            span.end()

    def closing(self, process: Process) -> None:
        """Open the ``stop`` span, inside the parent's."""
        self._move(process, State.CLOSING)
        self._since[process] = trio.current_time()
        parent = parent_of(process)
        span = self._span(
            "stop",
            process,
            None if parent is None else self._stop_spans.get(parent),
        )
        if span is not None:
            self._stop_spans[process] = span

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """Count the close; end the spans, with an error status on a failure."""
        old = self._states.pop(process, None)
        if old is not None:
            self._processes.add(-1, {"state": old})
        self._closes.add(1)
        if error is not None:
            self._failures.add(1)
        began = self._since.pop(process, None)
        if began is not None:
            self._close_duration.record(trio.current_time() - began)
        for spans in (self._start_spans, self._stop_spans):
            span = spans.pop(process, None)
            if span is not None:
                if error is not None:
                    span.record_exception(error)
                    span.set_status(
                        self._trace.Status(
                            self._trace.StatusCode.ERROR,
                            f"{type(error).__name__}: {error}",
                        )
                    )
                span.end()

    def grace_overrun(self, process: Process) -> None:
        """Count the overrun."""
        self._overruns.add(1)
        span = self._stop_spans.get(process)
        if span is not None:
            span.add_event("grace overrun: cancelled")

    def supervisor_event(self, process: Process, event: object) -> None:
        """Count restarts per key; a key's series starts at zero."""
        key = getattr(event, "key", None)
        if not isinstance(key, str):
            return
        attributes = {"supervisor": process.path, "key": key}
        series = (process.path, key)
        if series not in self._keys:
            self._keys.add(series)
            self._restarts.add(0, attributes)
        if isinstance(event, ChildRestarting):
            self._restarts.add(1, attributes)
