"""The OpenTelemetry instrument, read back through the SDK's in-memory readers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

import proctree

Ready = Callable[[], Awaitable[None]]


class Sdk:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.exporter = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.instrument = proctree.OpenTelemetryInstrument(
            meter_provider=self.meters, tracer_provider=self.tracers
        )

    def points(self) -> dict[str, dict[tuple[tuple[str, object], ...], object]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found: dict[str, dict[tuple[tuple[str, object], ...], object]] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        labels = tuple(sorted((point.attributes or {}).items()))
                        value = getattr(point, "value", None)
                        if value is None:
                            value = (point.count, point.sum)  # type: ignore[union-attr]
                        found.setdefault(metric.name, {})[labels] = value
        return found

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def close(self) -> None:
        self.meters.shutdown()
        self.tracers.shutdown()


@pytest.fixture
def sdk() -> Sdk:
    made = Sdk()
    yield made  # type: ignore[misc]
    made.close()


def test_every_metric_exists_at_zero_from_the_start(sdk: Sdk) -> None:
    points = sdk.points()
    assert points["proctree.processes"] == {
        (("state", s),): 0 for s in ("initial", "starting", "running", "closing")
    }
    for name in (
        "proctree.process.starts",
        "proctree.process.closes",
        "proctree.process.failures",
        "proctree.grace.overruns",
    ):
        assert points[name] == {(): 0}


async def test_metrics_and_nested_stop_spans_show_a_slow_shutdown(
    sdk: Sdk, autojump_clock: trio.testing.MockClock
) -> None:
    async def slow_stop(ready: Ready) -> None:
        await trio.sleep(0.25)
        await ready()
        await trio.sleep(3)  # a slow graceful stop

    async def fails_to_start(ready: Ready) -> None:
        raise OSError("port taken")

    async with proctree.open_root(name="app", instruments=[sdk.instrument]) as root:
        db = proctree.with_parent(root, name="db")
        p = proctree.new_process(slow_stop, parent=db, name="http")
        await p.start()
        with pytest.raises(OSError, match="port taken"):
            await proctree.new_process(fails_to_start, parent=root).start()
        points = sdk.points()
        assert points["proctree.processes"][(("state", "running"),)] == 3
        # A failed start never became ready: it is no start duration.
        assert points["proctree.process.start.duration"][()] == (1, 0.25)
    points = sdk.points()
    assert points["proctree.process.starts"] == {(): 2}
    assert points["proctree.process.closes"] == {(): 4}
    assert points["proctree.process.failures"] == {(): 1}
    assert points["proctree.processes"][(("state", "running"),)] == 0
    spans = {span.name: span for span in sdk.spans()}
    assert set(spans) == {
        "start http",
        "start fails_to_start",
        "stop app",
        "stop db",
        "stop http",
        "stop fails_to_start",
    }
    stop_app, stop_db, stop_http = (
        spans["stop app"],
        spans["stop db"],
        spans["stop http"],
    )
    assert stop_db.parent is not None
    assert stop_db.parent.span_id == stop_app.context.span_id
    assert stop_http.parent is not None
    assert stop_http.parent.span_id == stop_db.context.span_id
    assert stop_http.attributes == {
        "proctree.process.path": "app/db/http",
        "proctree.process.kind": "runner",
    }
    failed = spans["start fails_to_start"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "OSError: port taken"


async def test_supervisor_restarts_are_counted_per_key(
    sdk: Sdk, autojump_clock: trio.testing.MockClock
) -> None:
    runs = 0

    async def flaky(ready: Ready) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise OSError("not yet")
        await ready()

    table = proctree.MemoryTable({"k": flaky})
    async with proctree.open_root(name="app", instruments=[sdk.instrument]) as root:
        sup = proctree.Supervisor(
            table, parent=root, name="sup", policy=proctree.RestartPolicy.immediate()
        )
        await sup.start()
        await trio.sleep(1)
        await sup.stop()
    restarts = sdk.points()["proctree.supervisor.restarts"]
    assert restarts == {(("key", "k"), ("supervisor", "app/sup")): 1}


def test_spans_can_be_turned_off(sdk: Sdk) -> None:
    quiet = proctree.OpenTelemetryInstrument(
        meter_provider=sdk.meters, tracer_provider=sdk.tracers, spans=False
    )

    async def main() -> None:
        async with proctree.open_root(instruments=[quiet]) as root:
            root.go(_idle)

    trio.run(main)
    assert sdk.spans() == ()


async def _idle(proc: proctree.Process) -> None:
    await proc.closing.wait()
