"""Developer tasks: ``nox -s tests lint typing pyright docs``, ``slow``, ``soak``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing", "pyright", "docs"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (the same command the README gives)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """The big stress and scale cases the default run leaves out (``-m slow``).

    A million-process tree, 100,000-deep chains under the leak check,
    100,000-wide trees: about a minute and 1.6 GB.
    """
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "slow", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The stateful API machines for 1,000,000 operations on every core.

    Not run by default. ``nox -s soak -- --soak-ops 5000000 --workers 2``;
    prints the operation count, the violations and the time.
    """
    session.install("-e", ".[test]")
    session.run("python", "-m", "tests.reliability.soak", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """Long random chaos rounds on a real PostgreSQL (hosts as OS processes).

    ``nox -s chaos -- 200`` runs 200 rounds (default 100); the seed is
    ``PROCTREE_CHAOS_SEED`` (random when unset). Needs the PostgreSQL server
    binaries, or ``PROCTREE_TEST_POSTGRES_DSN``.
    """
    session.install("-e", ".[test]")
    rounds = session.posargs[0] if session.posargs else "100"
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "slow",
        "tests/supervision/postgres/test_chaos.py",
        env={"PROCTREE_CHAOS_ROUNDS": rounds, "PROCTREE_REQUIRE_POSTGRES": "1"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the package and on the pinned public API."""
    session.install("-e", ".[typing]")
    session.run(
        "mypy", "--strict", "src", "tests/typing/api.py", "tests/typing/leaves.py"
    )


@nox.session
def pyright(session: nox.Session) -> None:
    """pyright strict (config in pyproject.toml) and the public API's completeness.

    ``--verifytypes`` must report 100%. ``--ignoreexternal`` leaves out the
    unknowns of other packages' own annotations (hypercorn's Config and
    ASGI scopes, which asgi_server's signature names): they are not ours.
    """
    session.install("-e", ".[typing]")
    session.run("pyright")
    out = session.run(
        "pyright", "--verifytypes", "proctree", "--ignoreexternal", silent=True
    )
    print(out)
    if "Type completeness score: 100%" not in str(out):
        session.error("pyright --verifytypes proctree: not 100% complete")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site (html and doctest), warnings as errors."""
    session.install("-e", ".[docs]")
    for builder in ("html", "doctest"):
        session.run(
            "sphinx-build",
            "-W",
            "--keep-going",
            "-n",
            "-b",
            builder,
            "docs",
            f"docs/_build/{builder}",
        )
