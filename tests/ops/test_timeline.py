"""The shutdown timeline: what it records, its critical path, and its picture."""

from __future__ import annotations

import re
import xml.dom.minidom

import pytest
import trio
import trio.testing

import proctree

from ..support.helpers import until_closing


async def _sleep_teardown() -> None:
    await trio.sleep(2)


async def _ignores_the_close(proc: proctree.Process) -> None:
    await trio.sleep_forever()


async def _slow_shutdown(timeline: proctree.ShutdownTimeline) -> None:
    async with proctree.open_root(name="app", instruments=[timeline]) as root:
        db = proctree.with_teardown(_sleep_teardown, parent=root, name="db")
        db.go(_ignores_the_close, name="stubborn", grace=3)
        db.go(until_closing, name="polite")
        proctree.go(until_closing, parent=root, name="http")
        await trio.sleep(10)


async def test_it_records_closing_teardown_forced_and_closed_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    await _slow_shutdown(timeline)
    spans = {s.path: s for s in timeline.spans()}
    # Siblings come in the order they began closing.
    assert set(spans) == {
        "app",
        "app/db",
        "app/db/stubborn",
        "app/db/polite",
        "app/http",
    }
    stubborn = spans["app/db/stubborn"]
    assert (stubborn.closing, stubborn.forced, stubborn.closed) == (0, 3, 3)
    db = spans["app/db"]
    assert (db.closing, db.teardown, db.closed) == (0, 3, 5)
    assert spans["app"].closed == 5
    assert spans["app"].reason == "body ended"
    assert spans["app/db/polite"].forced is None


async def test_the_critical_path_is_the_chain_that_held_the_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    await _slow_shutdown(timeline)
    assert [s.path for s in timeline.critical_path()] == [
        "app",
        "app/db",
        "app/db/stubborn",
    ]
    critical = {s.path for s in timeline.spans() if s.critical}
    assert critical == {"app", "app/db", "app/db/stubborn"}


async def test_a_teardown_that_held_it_ends_the_critical_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    async with proctree.open_root(name="app", instruments=[timeline]) as root:
        db = proctree.with_teardown(_sleep_teardown, parent=root, name="db")
        db.go(until_closing, name="pool")
    assert [s.name for s in timeline.critical_path()] == ["app", "db"]


async def test_the_figures_say_how_long_and_who_held_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    await _slow_shutdown(timeline)
    text = timeline.summary()
    assert text.startswith("Shutdown: 5.000 s (app began closing: body ended)")
    assert "5 processes recorded, 1 forced after their grace, 0 failed" in text
    assert (
        "db:    0.000 ->   5.000 s: waited 3.000 s for stubborn, teardown 2.000 s"
        in text
    )
    assert "own task 3.000 s (forced after its grace at 3.000 s)" in text
    assert "Slowest teardowns:\n  app/db: 2.000 s" in text
    assert (
        "Forced after their grace:\n  app/db/stubborn: at 3.000 s, ended at 3.000 s"
        in text
    )


async def test_the_svg_is_one_well_formed_document_with_a_bar_per_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    await _slow_shutdown(timeline)
    svg = timeline.render_svg()
    dom = xml.dom.minidom.parseString(svg)
    titles = [
        t.firstChild.data for t in dom.getElementsByTagName("title") if t.firstChild
    ]
    assert sum(1 for t in titles if t.startswith("app")) == 5
    assert "#e6550d" in svg  # the overrun
    assert "forced after its grace at 3.000 s" in svg


async def test_the_html_page_fetches_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    await _slow_shutdown(timeline)
    page = timeline.render()
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=""", page)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert '<pre id="figures">Shutdown: 5.000 s' in page


async def test_what_closed_before_the_shutdown_is_counted_not_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    async with proctree.open_root(name="app", instruments=[timeline]) as root:
        for i in range(50):
            await proctree.with_parent(root, name=f"conn-{i}").aclose()
        proctree.with_parent(root, name="kept")
    assert [s.name for s in timeline.spans()] == ["app", "kept"]
    assert timeline.closed_before == 50
    everything = proctree.ShutdownTimeline(record_all=True)
    async with proctree.open_root(name="app", instruments=[everything]) as root:
        await proctree.with_parent(root, name="early").aclose()
    assert [s.name for s in everything.spans()] == ["app", "early"]


async def test_a_wide_tree_is_drawn_within_max_rows_with_the_critical_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    async with proctree.open_root(name="app", instruments=[timeline]) as root:
        for i in range(1000):
            proctree.go(until_closing, parent=root, name=f"w{i}")
        proctree.with_teardown(_sleep_teardown, parent=root, name="slow")
    svg = timeline.render_svg(max_rows=60)
    assert svg.count("<g><title>") <= 60
    assert "slow" in svg
    assert "... 977 more" in svg


async def test_a_deep_chain_is_recorded_without_recursion(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = proctree.ShutdownTimeline()
    async with proctree.open_root(name="app", instruments=[timeline]) as root:
        p = root
        for _ in range(5000):
            p = proctree.with_parent(p, name="n")
        await p.aclose()  # the deepest closes first: its ancestors are unseen
        assert timeline.closed_before == 1
    assert len(timeline.spans()) == 5000
    assert max(s.depth for s in timeline.spans()) == 4999


async def test_a_failure_shows_in_the_figures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fails(proc: proctree.Process) -> None:
        raise ValueError("disk full")

    timeline = proctree.ShutdownTimeline()
    with pytest.RaisesGroup(ValueError):
        async with proctree.open_root(name="app", instruments=[timeline]) as root:
            root.go(fails, name="writer")
            await trio.sleep_forever()
    assert "Failed:\n  app/writer: ValueError: disk full" in timeline.summary()


def test_an_empty_timeline_says_so() -> None:
    timeline = proctree.ShutdownTimeline()
    assert timeline.summary() == "No process closed while the timeline was recording."
    assert timeline.spans() == []
    assert timeline.critical_path() == []
    xml.dom.minidom.parseString(timeline.render_svg())
