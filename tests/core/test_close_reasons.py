"""Each process knows why it began closing (its close reason)."""

from __future__ import annotations

import signal

import pytest
import trio
import trio.testing

import proctree
from proctree._core import REASONS

from ..support.helpers import until_closing


class Reasons(proctree.Instrument):
    """Reads each process's close reason when it begins closing."""

    def __init__(self) -> None:
        self.seen: dict[str, str | None] = {}

    def closing(self, process: proctree.Process) -> None:
        info = proctree.tree(process)
        self.seen[process.name] = info.close_reason


async def _returns(proc: proctree.Process) -> None:
    await trio.sleep(1)


async def _fails(proc: proctree.Process) -> None:
    await trio.sleep(1)
    raise ValueError("boom")


async def test_a_parent_closing_closes_children_with_reason_parent() -> None:
    reasons = Reasons()
    async with proctree.open_root(name="app", instruments=[reasons]) as root:
        db = proctree.with_parent(root, name="db")
        db.go(until_closing, name="pool")
        await db.aclose()
        assert reasons.seen == {"db": "requested", "pool": "parent closed"}
    assert reasons.seen["app"] == "body ended"


async def test_a_function_that_returns_closes_with_reason_returned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reasons = Reasons()
    async with proctree.open_root(instruments=[reasons]) as root:
        p = root.go(_returns, name="job")
        await p.wait()
    assert reasons.seen["job"] == "returned"


async def test_a_failure_closes_its_ancestors_with_reason_failure_below(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reasons = Reasons()
    with pytest.RaisesGroup(ValueError):
        async with proctree.open_root(name="app", instruments=[reasons]) as root:
            mid = proctree.with_parent(root, name="mid")
            mid.go(_fails, name="bad")
            mid.go(until_closing, name="sibling")
            await trio.sleep_forever()
    assert reasons.seen == {
        "app": "failure below",
        "mid": "failure below",
        "bad": "failed",
        "sibling": "parent closed",
    }


async def test_a_signal_closes_the_root_with_reason_signal() -> None:
    reasons = Reasons()
    async with proctree.with_signals(
        signal.SIGUSR2, name="app", instruments=[reasons]
    ) as root:
        root.go(until_closing, name="worker")
        signal.raise_signal(signal.SIGUSR2)
        await trio.sleep_forever()
    assert reasons.seen == {"app": "signal", "worker": "parent closed"}


async def test_a_process_under_background_closes_with_reason_root_closed() -> None:
    reasons = Reasons()
    async with proctree.open_root(instruments=[reasons]):
        proctree.go(until_closing, parent=proctree.background(), name="helper")
    assert reasons.seen["helper"] == "root closed"


async def test_an_open_process_has_no_close_reason() -> None:
    async with proctree.open_root() as root:
        assert proctree.tree(root).close_reason is None


def test_every_reason_is_documented() -> None:
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "tree-json.md").read_text()
    for reason in REASONS:
        assert f"`{reason}`" in page
