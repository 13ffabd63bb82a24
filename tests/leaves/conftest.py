"""Fixtures of the leaves' tests: every test is checked for leaks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import no_leaks


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a zombie child or an open file descriptor.

    A module sets ``CHECK_FDS = False`` when its library keeps descriptors
    open by design.
    """
    with no_leaks(check_fds=getattr(request.module, "CHECK_FDS", True)):
        yield
