"""A real PostgreSQL server for the tests of PostgresTable (one per session).

The server is a throwaway cluster this session starts (``tests/support/
postgres.py``), or the one ``PROCTREE_TEST_POSTGRES_DSN`` names. With no
server binaries installed the tests skip, saying how to get them; with
``PROCTREE_REQUIRE_POSTGRES=1`` (as ``.ci/run`` sets) that is a failure.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.support.postgres import (
    REQUIRE_VARIABLE,
    Server,
    throwaway_server,
)

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    try:
        with throwaway_server() as server:
            yield server
    except LookupError as exc:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
def pg_dsn(postgres_server: Server) -> str:
    return postgres_server.dsn


@pytest.fixture
def pg_name() -> str:
    """A table prefix of this test's own, so tests share the database safely."""
    return f"t{os.getpid()}_{next(_names)}"
