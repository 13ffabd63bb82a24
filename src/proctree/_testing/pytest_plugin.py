"""proctree's pytest plugin: fixtures prefixed ``proctree_``.

Registered through the ``pytest11`` entry point, so installing proctree is
enough. Async fixtures need pytest-trio (``trio_mode = true`` or the
``trio`` marker); they work with its ``autojump_clock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .._core import Process, background, open_root, with_parent
from .recorder import TeardownRecorder

__all__ = ["proctree_recorder", "proctree_root"]

_MARKER = "proctree_allow_failures"


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
    request: pytest.FixtureRequest, proctree_recorder: TeardownRecorder
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

    The root's body is the fixture's task, not the test's: pass
    ``parent=proctree_root`` (or call ``proctree_root.go(...)``) in the test.
    """
    allowed = request.node.get_closest_marker(_MARKER) is not None
    try:
        async with open_root(name="test", instruments=[proctree_recorder]) as root:
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
