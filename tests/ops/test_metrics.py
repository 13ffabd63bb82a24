"""The Prometheus instrument: what its series say about a real tree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import proctree

Ready = Callable[[], Awaitable[None]]


def value(m: proctree.PrometheusInstrument, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_every_series_exists_at_zero_from_the_start() -> None:
    m = proctree.PrometheusInstrument()
    families = {
        f.name: f
        for f in text_string_to_metric_families(generate_latest(m.registry).decode())
    }
    assert set(families) == {
        "proctree_processes",
        "proctree_process_starts",
        "proctree_process_closes",
        "proctree_process_failures",
        "proctree_grace_overruns",
        "proctree_process_start_duration_seconds",
        "proctree_process_close_duration_seconds",
        "proctree_supervisor_restarts",
    }
    for state in ("initial", "starting", "running", "closing"):
        assert value(m, "proctree_processes", state=state) == 0
    for counter in ("starts", "closes", "failures"):
        assert value(m, f"proctree_process_{counter}_total") == 0
    assert value(m, "proctree_grace_overruns_total") == 0
    assert value(m, "proctree_process_start_duration_seconds_count") == 0
    assert value(m, "proctree_process_close_duration_seconds_bucket", le="+Inf") == 0
    assert families["proctree_process_starts"].type == "counter"
    assert families["proctree_process_close_duration_seconds"].type == "histogram"


def test_each_instrument_has_its_own_registry_so_two_do_not_collide() -> None:
    a, b = proctree.PrometheusInstrument(), proctree.PrometheusInstrument()
    assert a.registry is not b.registry
    shared = CollectorRegistry()
    proctree.PrometheusInstrument(shared)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        proctree.PrometheusInstrument(shared)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="CollectorRegistry"):
        proctree.PrometheusInstrument(registry=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="buckets"):
        proctree.PrometheusInstrument(buckets=())


async def test_states_counts_and_durations_follow_the_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    m = proctree.PrometheusInstrument()

    async def slow_start(ready: Ready) -> None:
        await trio.sleep(0.3)
        await ready()
        await trio.sleep(2)  # a slow graceful stop

    async def fails(proc: proctree.Process) -> None:
        raise ValueError("boom")

    async def scenario() -> None:
        async with proctree.open_root(name="app", instruments=[m]) as root:
            p = proctree.new_process(slow_start, parent=root)
            assert value(m, "proctree_processes", state="initial") == 1
            await p.start()
            assert value(m, "proctree_processes", state="running") == 2  # root, p
            assert value(m, "proctree_process_start_duration_seconds_sum") == (
                pytest.approx(0.3)
            )
            assert (
                value(m, "proctree_process_start_duration_seconds_bucket", le="0.1")
                == 0
            )
            assert (
                value(m, "proctree_process_start_duration_seconds_bucket", le="0.5")
                == 1
            )
            with trio.move_on_after(1):
                await p.stop()
            assert value(m, "proctree_processes", state="closing") == 1
            await p.wait()
            assert value(m, "proctree_process_close_duration_seconds_sum") == (
                pytest.approx(2.0)
            )
            proctree.go(fails, parent=root)
            await trio.sleep_forever()

    with pytest.raises(BaseExceptionGroup):
        await scenario()
    assert value(m, "proctree_process_starts_total") == 2  # p and fails
    assert value(m, "proctree_process_closes_total") == 3  # p, fails, app
    assert value(m, "proctree_process_failures_total") == 1
    for state in ("initial", "starting", "running", "closing"):
        assert value(m, "proctree_processes", state=state) == 0


async def test_grace_overruns_are_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    m = proctree.PrometheusInstrument()

    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root(instruments=[m]) as root:
        for _ in range(3):
            root.go(stubborn, grace=1)
    assert value(m, "proctree_grace_overruns_total") == 3


async def test_supervisor_restarts_are_counted_per_key_from_zero(
    autojump_clock: trio.testing.MockClock,
) -> None:
    m = proctree.PrometheusInstrument()
    runs = 0

    async def flaky(ready: Ready) -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise OSError("not yet")
        await ready()

    async def steady(ready: Ready) -> None:
        await ready()

    table = proctree.MemoryTable({"flaky": flaky, "steady": steady})
    async with proctree.open_root(name="app", instruments=[m]) as root:
        sup = proctree.Supervisor(
            table, parent=root, name="sup", policy=proctree.RestartPolicy.immediate()
        )
        await sup.start()
        await trio.sleep(1)
        labels = {"supervisor": "app/sup"}
        assert (
            value(m, "proctree_supervisor_restarts_total", **labels, key="steady") == 0
        )
        assert (
            value(m, "proctree_supervisor_restarts_total", **labels, key="flaky") == 2
        )
        assert sup.restarts("flaky") == 2
        await sup.stop()
