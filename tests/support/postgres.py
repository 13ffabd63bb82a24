"""A throwaway PostgreSQL server for the tests and the benchmarks.

``throwaway_server()`` runs ``initdb`` into a fresh temporary directory and
``pg_ctl start`` on a free 127.0.0.1 port, and removes everything when the
block ends. As root (CI runs as root) the server runs as the ``postgres``
user, which the server requires. ``PROCTREE_TEST_POSTGRES_DSN`` names an
existing server instead; then nothing is started and a restart is not
possible.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DSN_VARIABLE = "PROCTREE_TEST_POSTGRES_DSN"
REQUIRE_VARIABLE = "PROCTREE_REQUIRE_POSTGRES"

HOW_TO_GET_ONE = (
    "no PostgreSQL server binaries (initdb, pg_ctl) were found: install the "
    "server (Debian: apt-get install postgresql) or set "
    f"{DSN_VARIABLE}=postgresql://user@127.0.0.1:5432/db to use a running one"
)


def server_bindir() -> Path | None:
    """The folder of initdb and pg_ctl, or None if no server is installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    pg_config = shutil.which("pg_config")
    candidates = []
    if pg_config:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        candidates.append(Path(out.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for folder in candidates:
        if (folder / "pg_ctl").exists() and (folder / "initdb").exists():
            return folder
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server: its DSN, and (when we started it) its controls."""

    dsn: str
    datadir: Path | None = None
    bindir: Path | None = None
    port: int = 0

    def _ctl(self, *args: str, check: bool = True) -> None:
        assert self.bindir is not None
        assert self.datadir is not None
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        subprocess.run(_as_postgres(cmd), check=check, capture_output=True, timeout=60)

    @property
    def restartable(self) -> bool:
        return self.datadir is not None

    def stop(self) -> None:
        """Stop at once (``-m immediate``: no checkpoint, as a crash would)."""
        self._ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        self._ctl("-w", "-t", "30", "-o", self._options(), "-l", self._log(), "start")

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )

    def _log(self) -> str:
        assert self.datadir is not None
        return str(self.datadir / "server.log")


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def throwaway_server() -> Iterator[Server]:
    """A PostgreSQL server for the block: the one the DSN variable names, or ours.

    Raises:
        LookupError: no server binaries are installed (the message says how
            to get them).
    """
    dsn = os.environ.get(DSN_VARIABLE)
    if dsn:
        yield Server(dsn)
        return
    bindir = server_bindir()
    if bindir is None:
        raise LookupError(HOW_TO_GET_ONE)
    root = Path(tempfile.mkdtemp(prefix="proctree-pg-"))
    datadir = root / "data"
    datadir.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (root, datadir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = Server("", datadir=datadir, bindir=bindir, port=free_port())
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.start()
        server.dsn = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        yield server
    finally:
        with contextlib.suppress(Exception):
            server._ctl("-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


def make_database(server: Server, name: str) -> str:
    """Create database ``name`` on ``server`` (dropped first); its DSN."""
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return replace_dbname(server.dsn, name)


def replace_dbname(dsn: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = name
    return make_conninfo("", **params)
