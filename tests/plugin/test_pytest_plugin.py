"""The pytest plugin and proctree.testing, as users meet them."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import proctree
from proctree.testing import TeardownRecorder, wait_for_state

from ..support.helpers import recorder, until_closing


async def test_the_recorder_pins_a_teardown_order_in_one_line(
    autojump_clock: trio.testing.MockClock,
    proctree_root: proctree.Process,
    proctree_recorder: TeardownRecorder,
) -> None:
    log: list[str] = []
    db = proctree.with_teardown(recorder(log, "db"), parent=proctree_root, name="db")
    http = proctree.with_teardown(recorder(log, "http"), parent=db, name="http")
    for i in (1, 2):
        http.go(until_closing, name=f"w{i}")
    await db.aclose()
    proctree_recorder.assert_order(["w1", "w2"], "http", "db")
    assert proctree_recorder.order[2:] == ["http", "db"]
    assert proctree_recorder.paths[2:] == ["test/db/http", "test/db"]


async def test_assert_before_explains_a_wrong_order(
    autojump_clock: trio.testing.MockClock,
    proctree_root: proctree.Process,
    proctree_recorder: TeardownRecorder,
) -> None:
    parent = proctree.with_parent(proctree_root, name="parent")
    proctree.with_parent(parent, name="child")
    await parent.aclose()
    with pytest.raises(AssertionError, match=r"closed in order: \['child', 'parent'\]"):
        proctree_recorder.assert_before("parent", "child")
    with pytest.raises(AssertionError, match="'ghost' was never closed"):
        proctree_recorder.assert_before("ghost", "parent")


async def test_wait_for_state_waits_for_a_runner_to_be_ready(
    autojump_clock: trio.testing.MockClock, proctree_root: proctree.Process
) -> None:
    async def slow(ready):  # type: ignore[no-untyped-def]
        await trio.sleep(3)
        await ready()

    p = proctree.new_process(slow, parent=proctree_root)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(p.start)
        await wait_for_state(p, proctree.State.RUNNING)
        assert trio.current_time() == pytest.approx(3, abs=0.002)
        nursery.start_soon(p.stop)
        await wait_for_state(p, proctree.State.CLOSED)
    with pytest.raises(trio.TooSlowError):
        await wait_for_state(proctree_root, proctree.State.CLOSING, timeout=1)
    with pytest.raises(TypeError, match=r"proctree\.State"):
        await wait_for_state(p, "CLOSED")  # type: ignore[arg-type]


INNER = """
import trio
import pytest
import proctree

async def serve():
    await trio.sleep(1)
    raise ValueError("lost connection")

async def stop():
    pass

async def test_a_silent_failure(proctree_root, autojump_clock):
    svc = proctree.Service(serve, stop, parent=proctree_root)
    await svc.start()
    await trio.sleep(2)

@pytest.mark.proctree_allow_failures
async def test_allowed(proctree_root, autojump_clock):
    svc = proctree.Service(serve, stop, parent=proctree_root)
    await svc.start()
    await trio.sleep(2)

async def test_clean(proctree_root, proctree_recorder):
    proctree.with_parent(proctree_root, name="x")
"""


def test_the_root_fixture_fails_a_test_whose_tree_failed_silently(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the tree did not end well*",
            "*test/serve failed: ValueError: lost connection*",
        ]
    )


REACHES_THE_ROOT = """
import pytest
import trio
import proctree

async def crash(proc):
    raise ValueError("disk full")

@pytest.mark.proctree_allow_failures
async def test_a_failure_that_travels_up_is_allowed(proctree_root, autojump_clock):
    p = proctree_root.go(crash)
    with pytest.raises(ValueError, match="disk full"):
        await p.wait()

async def test_without_the_marker_it_fails_the_test(proctree_root, autojump_clock):
    p = proctree_root.go(crash)
    with pytest.raises(ValueError, match="disk full"):
        await p.wait()

@pytest.mark.proctree_allow_failures
async def test_a_failure_does_not_cancel_a_marked_test(proctree_root, autojump_clock):
    proctree_root.go(crash)
    await trio.sleep(1)  # not cancelled by the failure
    assert trio.current_time() == 1
"""


def test_the_allow_failures_marker_allows_failures_that_reach_the_root(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_inner=REACHES_THE_ROOT)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED test_inner.py::test_without_the_marker_it_fails_the_test*"]
    )


TIMELINE_TEST = """
import trio
import proctree


async def slow():
    await trio.sleep(2)


async def test_fails(autojump_clock, proctree_root):
    proctree.with_teardown(slow, parent=proctree_root, name="cache")
    assert 1 == 2


async def test_passes(autojump_clock, proctree_root):
    proctree.with_teardown(slow, parent=proctree_root, name="cache")
"""


def test_a_failing_test_gets_its_shutdown_timeline(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_timeline=TIMELINE_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert out.count("proctree shutdown timeline (teardown)") == 1
    result.stdout.fnmatch_lines(
        [
            "*proctree shutdown timeline (teardown)*",
            "Shutdown: 2.000 s (test began closing: body ended)",
            "*cache*teardown 2.000 s*",
            "The timeline: *test_timeline.py_test_fails.html",
        ]
    )
    where = out.split("The timeline: ", 1)[1].split()[0]
    with open(where, encoding="utf-8") as page:
        assert page.read().startswith("<!doctype html>")
