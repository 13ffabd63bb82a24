"""Event hooks: order of events, and hooks that cannot break the tree."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree


class Recorder(proctree.Instrument):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def created(self, process: proctree.Process) -> None:
        self.events.append(("created", process.path))

    def started(self, process: proctree.Process) -> None:
        self.events.append(("started", process.path))

    def ready(self, process: proctree.Process) -> None:
        self.events.append(("ready", process.path))

    def closing(self, process: proctree.Process) -> None:
        self.events.append(("closing", process.path))

    def closed(
        self, process: proctree.Process, duration: float, error: BaseException | None
    ) -> None:
        label = f"closed {duration:g}s" + ("" if error is None else f" {error}")
        self.events.append((label, process.path))

    def grace_overrun(self, process: proctree.Process) -> None:
        self.events.append(("overrun", process.path))


async def test_a_runner_reports_its_life_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def run(ready: Callable[[], Awaitable[None]]) -> None:
        await trio.sleep(1)
        await ready()

    rec = Recorder()
    async with proctree.open_root(name="app", instruments=[rec]) as root:
        p = proctree.new_process(run, parent=root, name="svc")
        await p.start()
        await trio.sleep(2)
        await p.stop()
    assert rec.events == [
        ("created", "app"),
        ("created", "app/svc"),
        ("started", "app/svc"),
        ("ready", "app/svc"),
        ("closing", "app/svc"),
        ("closed 3s", "app/svc"),
        ("closing", "app"),
        ("closed 3s", "app"),
    ]


async def test_go_processes_report_failures_and_overruns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async def bad(proc: proctree.Process) -> None:
        raise ValueError("bad")

    rec = Recorder()
    with pytest.RaisesGroup(ValueError):
        async with proctree.open_root(name="app", instruments=[rec]) as root:
            p = root.go(stubborn, grace=2)
            await trio.testing.wait_all_tasks_blocked()
            await p.aclose()
            root.go(bad)
    assert rec.events[:6] == [
        ("created", "app"),
        ("created", "app/stubborn"),
        ("started", "app/stubborn"),
        ("closing", "app/stubborn"),
        ("overrun", "app/stubborn"),
        ("closed 2s", "app/stubborn"),
    ]
    assert ("closed 0s bad", "app/bad") in rec.events


async def test_a_raising_hook_is_logged_and_breaks_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(proctree.Instrument):
        def closing(self, process: proctree.Process) -> None:
            raise RuntimeError("hook bug")

    rec = Recorder()
    log: list[str] = []

    async def teardown() -> None:
        log.append("torn down")

    async with proctree.open_root(instruments=[Broken(), rec]) as root:
        p = proctree.with_teardown(teardown, parent=root, name="db")
        await p.aclose()
        assert p.state is proctree.State.CLOSED
    assert log == ["torn down"]
    assert ("closing", "root/db") in rec.events
    assert "hook bug" in caplog.text


async def test_the_logging_instrument_logs_each_event(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="proctree.events")
    async with proctree.open_root(
        name="app", instruments=[proctree.LoggingInstrument()]
    ) as root:
        await root.go(_quick, name="job").wait()
    messages = [r.getMessage() for r in caplog.records if r.name == "proctree.events"]
    assert messages == [
        "created app",
        "created app/job",
        "started app/job",
        "closing app/job",
        "closed app/job after 0.000s",
        "closing app",
        "closed app after 0.000s",
    ]


async def _quick(proc: proctree.Process) -> None:
    await trio.lowlevel.checkpoint()


def test_instruments_must_be_instruments() -> None:
    with pytest.raises(TypeError, match=r"proctree\.Instrument"):
        proctree.open_root(instruments=[object()])  # type: ignore[list-item]


async def _raise_in_own_nursery(proc: proctree.Process) -> None:
    async def worker() -> None:
        raise RuntimeError("disk full")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)


@pytest.mark.proctree_allow_failures
async def test_the_logging_instrument_names_the_real_cause_of_a_nursery_group(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="proctree.events")
    with pytest.RaisesGroup(pytest.RaisesGroup(RuntimeError)):
        async with proctree.open_root(instruments=[proctree.LoggingInstrument()]):
            proctree.go(_raise_in_own_nursery, name="worker")
            await trio.sleep_forever()
    [line] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert line.endswith("failed: RuntimeError: disk full")
    assert "Exceptions from Trio nursery" not in caplog.text


def test_describe_names_each_leaf_and_never_an_empty_message() -> None:
    from proctree._core import describe

    group = ExceptionGroup("Exceptions from Trio nursery", [ValueError("a")])
    assert describe(group) == "ValueError: a"
    two = BaseExceptionGroup("x", [ValueError("a"), KeyboardInterrupt()])
    assert describe(two) == "2 failures: ValueError: a; KeyboardInterrupt"
    assert describe(KeyboardInterrupt()) == "KeyboardInterrupt"
