"""proctree's pytest plugin: fixtures prefixed ``proctree_``.

Registered through the ``pytest11`` entry point, so installing proctree is
enough. Async fixtures need pytest-trio (``trio_mode = true`` or the
``trio`` marker); they work with its ``autojump_clock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .._core import Process, open_root
from .recorder import TeardownRecorder

__all__ = ["proctree_recorder", "proctree_root"]

_MARKER = "proctree_allow_failures"


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's marker."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}: processes under proctree_root may fail without failing "
        "the test (failures a keeper took, such as a Service's, included)",
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
    child's) - unless the test is marked ``proctree_allow_failures``. Its
    :class:`~proctree.testing.TeardownRecorder` is the
    ``proctree_recorder`` fixture.

    The root's body is the fixture's task, not the test's: pass
    ``parent=proctree_root`` (or call ``proctree_root.go(...)``) in the test.
    """
    async with open_root(name="test", instruments=[proctree_recorder]) as root:
        yield root
    problems = [f"{p.path} is {p.state.name}" for p in proctree_recorder.unclosed()]
    if request.node.get_closest_marker(_MARKER) is None:
        problems += [
            f"{path} failed: {type(error).__name__}: {error}"
            for path, error in proctree_recorder.failures()
        ]
    if problems:
        pytest.fail(
            "proctree_root: the tree did not end well:\n  " + "\n  ".join(problems),
            pytrace=False,
        )
