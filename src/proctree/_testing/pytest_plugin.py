"""proctree's pytest plugin: fixtures prefixed ``proctree_``.

Registered through the ``pytest11`` entry point, so installing proctree is
enough. Async fixtures need pytest-trio (``trio_mode = true`` or the
``trio`` marker); they work with its ``autojump_clock``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Generator

import pytest

from .._core import Process, background, open_root, with_parent
from .._ops import ShutdownTimeline
from .recorder import TeardownRecorder

__all__ = ["proctree_recorder", "proctree_root", "pytest_runtest_makereport"]

_MARKER = "proctree_allow_failures"
_TIMELINE = pytest.StashKey[tuple[ShutdownTimeline, pytest.TempPathFactory]]()
_CALL_FAILED = pytest.StashKey[bool]()
TIMELINE_SECTION = "proctree shutdown timeline (teardown)"
"""The title of the report section a failing test's timeline goes in
(pytest prints teardown sections whose title says "teardown")."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's marker."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}: processes under proctree_root may fail without failing "
        "the test, whether a keeper took the failure (a Service's) or it "
        "reached the root; a process left open still fails it",
    )


@pytest.fixture
def proctree_recorder() -> TeardownRecorder:
    """A fresh :class:`~proctree.testing.TeardownRecorder`."""
    return TeardownRecorder()


@pytest.fixture
async def proctree_root(
    request: pytest.FixtureRequest,
    proctree_recorder: TeardownRecorder,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Process]:
    """A root named ``test`` that checks, after the test, that its tree ended well.

    The root closes when the test ends; the fixture then fails the test if
    any process under it is not CLOSED, or if any closed with a failure,
    even one a keeper took off the tree (a Service's error, a supervised
    child's). A test marked ``proctree_allow_failures`` tests failures: for
    it, neither a failure a keeper took nor one that travelled up fails
    the test, and a failure does not cancel the test (the fixture then
    gives a process named ``test`` that the root hosts without a link, so
    a failure closes the test's tree but not the root's body); a process
    left open still fails it, and a ``KeyboardInterrupt`` still stops it. Its
    :class:`~proctree.testing.TeardownRecorder` is the
    ``proctree_recorder`` fixture.

    When the test fails, the report gets the figures of the tree's
    shutdown timeline (:class:`~proctree.ShutdownTimeline`) in a section of
    its own, and the timeline itself is written as an HTML page under
    pytest's temporary folder (the section names the file).

    The root's body is the fixture's task, not the test's: pass
    ``parent=proctree_root`` (or call ``proctree_root.go(...)``) in the test.
    """
    timeline = ShutdownTimeline(record_all=True)
    request.node.stash[_TIMELINE] = (timeline, tmp_path_factory)
    instruments = [proctree_recorder, timeline]
    allowed = request.node.get_closest_marker(_MARKER) is not None
    try:
        async with open_root(name="test", instruments=instruments) as root:
            if not allowed:
                yield root
            else:
                # A failure must not cancel the root's body: that is this
                # fixture's task, and the test would be cancelled with it.
                # So the test's tree hangs from a process the root hosts
                # without a link (as under background()): a failure closes
                # that tree and is raised when the root exits, below.
                yield with_parent(background(), name="test")
    except* Exception:
        # What reached the root; the recorder has each failure too.
        if not allowed:
            raise
    problems = [f"{p.path} is {p.state.name}" for p in proctree_recorder.unclosed()]
    if not allowed:
        problems += [
            f"{path} failed: {type(error).__name__}: {error}"
            for path, error in proctree_recorder.failures()
        ]
    if problems:
        pytest.fail(
            "proctree_root: the tree did not end well:\n  " + "\n  ".join(problems),
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the shutdown timeline of ``proctree_root`` to a failing test's report.

    The root closes in the fixture's teardown, so the timeline goes with the
    teardown report, which pytest prints under the failure.
    """
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    elif report.when == "teardown":
        found = item.stash.get(_TIMELINE, None)
        if found is not None and (item.stash.get(_CALL_FAILED, False) or report.failed):
            timeline, factory = found
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-120:]
            where = factory.mktemp("proctree-timeline") / f"{name}.html"
            timeline.write(where)
            report.sections.append(
                (TIMELINE_SECTION, f"{timeline.summary()}\n\nThe timeline: {where}\n")
            )
    return report
