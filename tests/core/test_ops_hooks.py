"""What the core gives operations: drain, overrun summaries, new hooks, walks."""

from __future__ import annotations

import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree._core import kind_of, parent_of, runner_of, walk

Ready = Callable[[], Awaitable[None]]


class Drains(proctree.Instrument):
    def __init__(self) -> None:
        self.drains: list[tuple[str, float, float]] = []
        self.closing_at: float | None = None

    def draining(self, process: proctree.Process, seconds: float) -> None:
        self.drains.append((process.path, seconds, trio.current_time()))

    def closing(self, process: proctree.Process) -> None:
        if kind_of(process) == "root":
            self.closing_at = trio.current_time()


async def _signal_when_blocked(sig: int) -> None:
    await trio.testing.wait_all_tasks_blocked()
    os.kill(os.getpid(), sig)


async def test_a_drain_keeps_everything_running_that_long_after_the_first_signal() -> (
    None
):
    seen = Drains()
    async with proctree.with_signals(
        signal.SIGTERM, name="app", drain=2, instruments=[seen]
    ) as root:

        async def work(proc: proctree.Process) -> None:
            await proc.closing.wait()

        worker = root.go(work)
        # The real signal arrives on the wall clock: measure from the hook.
        await _signal_when_blocked(signal.SIGTERM)
        while not seen.drains:
            await trio.sleep(0.01)
        assert worker.state is State.RUNNING
        await root.closing.wait()
    assert worker.state is State.CLOSED
    assert len(seen.drains) == 1
    path, seconds, at = seen.drains[0]
    assert (path, seconds) == ("app", 2.0)
    assert seen.closing_at is not None
    assert seen.closing_at - at >= 2.0


async def test_a_second_signal_during_the_drain_forces_the_shutdown() -> None:
    seen = Drains()
    log: list[str] = []

    async def stuck_teardown() -> None:
        log.append("teardown started")
        try:
            await trio.sleep_forever()
        finally:
            log.append("teardown cancelled")

    started = trio.current_time()
    async with proctree.with_signals(
        signal.SIGINT, drain=3600, instruments=[seen]
    ) as root:
        proctree.with_teardown(stuck_teardown, parent=root)
        await _signal_when_blocked(signal.SIGINT)
        with trio.CancelScope(shield=True):
            while not seen.drains:
                await trio.sleep(0.001)
            os.kill(os.getpid(), signal.SIGINT)
        await trio.sleep_forever()
    # Forced: nothing waited for the hour, and the teardown was cancelled.
    assert trio.current_time() - started < 60
    assert log == ["teardown started", "teardown cancelled"]


def test_a_negative_drain_is_refused_at_the_call() -> None:
    with pytest.raises(ValueError, match="drain must be >= 0"):
        proctree.with_signals(drain=-1)
    with pytest.raises(TypeError, match="drain must be a number"):
        proctree.with_signals(drain="5")  # type: ignore[arg-type]


async def test_a_shutdown_that_forces_many_processes_logs_one_summary_line(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    caplog.set_level(logging.WARNING, logger="proctree")
    overruns: list[str] = []

    class Overruns(proctree.Instrument):
        def grace_overrun(self, process: proctree.Process) -> None:
            overruns.append(process.path)

    async with proctree.open_root(name="app", instruments=[Overruns()]) as root:
        server = proctree.with_parent(root, name="server")
        conns = [server.go(stubborn, name=f"conn-{i}") for i in range(1000)]
        await trio.sleep(1)
        await server.aclose(grace=2)
    assert all(c.overran_grace for c in conns)
    assert len(overruns) == 1000  # the per-process hook stays
    lines = [r for r in caplog.records if r.name == "proctree"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    record = lines[0]
    message = record.getMessage()
    assert message.startswith("1000 processes did not end within their grace")
    assert "(1000 go)" in message
    named = re.findall(r"'(app/server/conn-\d+)'", message)
    assert len(set(named)) == 5
    assert "and 995 more" in message
    assert record.proctree_count == 1000  # type: ignore[attr-defined]
    assert record.proctree_kinds == {"go": 1000}  # type: ignore[attr-defined]
    assert len(record.proctree_paths) == 5  # type: ignore[attr-defined]


async def test_one_overrun_keeps_its_own_line_with_its_path(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root(name="app") as root:
        p = root.go(stubborn, grace=1)
        await trio.sleep(1)
        await p.aclose()
    (record,) = [r for r in caplog.records if r.name == "proctree"]
    assert "'app/stubborn' did not end within its grace" in record.getMessage()
    assert record.proctree_path == "app/stubborn"  # type: ignore[attr-defined]


async def test_supervisor_events_reach_the_instruments_of_its_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[tuple[str, str, str]] = []

    class Watch(proctree.Instrument):
        def supervisor_event(self, process: proctree.Process, event: object) -> None:
            key = getattr(event, "key", "?")
            events.append((process.path, type(event).__name__, key))

    fails = 0

    async def flaky(ready: Ready) -> None:
        nonlocal fails
        if fails < 1:
            fails += 1
            raise ValueError("boom")
        await ready()

    table = proctree.MemoryTable({"a": flaky})
    async with proctree.open_root(name="app", instruments=[Watch()]) as root:
        sup = proctree.Supervisor(table, parent=root, name="sup")
        await sup.start()
        await trio.sleep(5)
        await sup.stop()
    kinds = [kind for _, kind, _ in events]
    assert kinds[:3] == ["ChildFailed", "ChildRestarting", "ChildStarted"]
    assert {path for path, _, _ in events} == {"app/sup"}
    assert {key for _, _, key in events} == {"a"}


async def test_walk_yields_parents_first_in_order_and_runner_of_finds_the_object(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Named:
        name = "obj"

        async def run(self, ready: Ready) -> None:
            await ready()

    obj = Named()
    async with proctree.open_root(name="app") as root:
        a = proctree.with_parent(root, name="a")
        proctree.with_parent(a, name="a1")
        p = proctree.new_process(obj, parent=root)
        assert runner_of(p) is obj  # INITIAL
        await p.start()
        assert runner_of(p) is obj  # RUNNING
        assert runner_of(a) is None
        assert parent_of(p) is root
        assert parent_of(root) is None
        assert [q.path for q in walk(root)] == ["app", "app/a", "app/a/a1", "app/obj"]
        await p.stop()
    assert runner_of(p) is None
