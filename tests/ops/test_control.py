"""The control socket and ``proctree tree`` / ``proctree ps``, with real programs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from proctree._ops.tree_command import Unreachable, fetch

from .seeing_support import ROOT, cli, env, program

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_PEERCRED and /proc are Linux's"
)


def test_tree_prints_the_live_tree_as_text(tmp_path: Path) -> None:
    with program(tmp_path) as prog:
        out = cli(tmp_path, "tree", str(prog.pid))
    assert out.returncode == 0, out.stderr
    names = [line.split(" [")[0].lstrip("│├└─ ") for line in out.stdout.splitlines()]
    assert names == [
        "proctree",
        "commanded",
        "jobs",
        "job-0",
        "job-1",
        "job-2",
        "db",
        "pool",
    ]


def test_tree_json_follows_the_schema_and_names_the_program(tmp_path: Path) -> None:
    with program(tmp_path) as prog:
        out = cli(tmp_path, "tree", str(prog.pid), "--json")
    doc = json.loads(out.stdout)
    assert doc["schema"] == "proctree.tree/1"
    assert doc["program"]["pid"] == prog.pid
    assert doc["program"]["target"] == "tests.ops.seeing_targets:commanded"
    states = {e["name"]: e["state"] for e in doc["processes"]}
    assert states["job-1"] == "RUNNING"


def test_tree_dot_draws_the_tree(tmp_path: Path) -> None:
    with program(tmp_path) as prog:
        out = cli(tmp_path, "tree", str(prog.pid), "--dot")
    assert out.returncode == 0
    assert '"proctree/commanded/jobs" -> "proctree/commanded/jobs/job-1";' in out.stdout


def test_a_closed_process_shows_as_recently_closed_with_its_reason(
    tmp_path: Path,
) -> None:
    with program(tmp_path) as prog:
        prog.command("close job-1")
        doc = json.loads(cli(tmp_path, "tree", str(prog.pid), "--json").stdout)
    assert "job-1" not in {e["name"] for e in doc["processes"]}
    (closed,) = doc["recently_closed"]
    assert closed["path"] == "proctree/commanded/jobs/job-1"
    assert closed["close_reason"] == "requested"


def test_the_tree_can_be_asked_by_socket_path(tmp_path: Path) -> None:
    with program(tmp_path) as prog:
        out = cli(tmp_path, "tree", str(prog.socket))
    assert out.returncode == 0
    assert out.stdout.startswith("proctree [RUNNING] root")


def test_ps_lists_the_users_programs(tmp_path: Path) -> None:
    with program(tmp_path) as prog:
        out = cli(tmp_path, "ps")
    assert out.returncode == 0
    (line,) = out.stdout.splitlines()[1:]
    assert line.split()[0] == str(prog.pid)
    assert "tests.ops.seeing_targets:commanded" in line


def test_ps_with_no_program_says_so(tmp_path: Path) -> None:
    out = cli(tmp_path, "ps")
    assert out.returncode == 0
    assert "no proctree program of yours is running" in out.stderr


def test_the_socket_is_private_and_removed_when_the_program_ends(
    tmp_path: Path,
) -> None:
    with program(tmp_path) as prog:
        folder = os.stat(tmp_path / "proctree")
        sock = os.stat(prog.socket)
        assert stat.S_ISSOCK(sock.st_mode)
        code, _ = prog.stop()
    assert code == 0
    assert stat.S_IMODE(folder.st_mode) == 0o700
    assert stat.S_IMODE(sock.st_mode) == 0o600
    assert not prog.socket.exists()


def test_a_control_path_is_used_and_linked_from_the_runtime_folder(
    tmp_path: Path,
) -> None:
    where = tmp_path / "app.sock"
    with program(tmp_path, "--control", str(where)) as prog:
        assert os.readlink(prog.socket) == str(where)
        by_pid = cli(tmp_path, "tree", str(prog.pid))
        by_path = cli(tmp_path, "tree", str(where))
        prog.stop()
    assert by_pid.returncode == by_path.returncode == 0
    assert by_pid.stdout.splitlines()[0] == by_path.stdout.splitlines()[0].replace(
        by_path.stdout.split(", up ")[1].split("s")[0],
        by_pid.stdout.split(", up ")[1].split("s")[0],
    )
    assert not where.exists()
    assert not os.path.lexists(prog.socket)


def test_a_control_path_in_use_by_a_live_program_is_a_bad_argument(
    tmp_path: Path,
) -> None:
    where = tmp_path / "app.sock"
    with program(tmp_path, "--control", str(where)):
        second = cli(
            tmp_path,
            "run",
            "tests.ops.seeing_targets:commanded",
            "--control",
            str(where),
        )
    assert second.returncode == 2
    assert "is the control socket of a running program" in second.stderr


def test_no_control_makes_no_socket(tmp_path: Path) -> None:
    with program(tmp_path, "--no-control") as prog:
        out = cli(tmp_path, "tree", str(prog.pid))
    assert out.returncode == 1
    assert "is not a proctree program" in out.stderr


# ------------------------------------------------------------- bad input


def test_tree_of_a_pid_that_is_not_a_proctree_program(tmp_path: Path) -> None:
    out = cli(tmp_path, "tree", str(os.getpid()))
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"proctree tree: process {os.getpid()} (")
    assert "is not a proctree program" in line


def test_tree_of_a_pid_nobody_has(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    out = cli(tmp_path, "tree", str(gone.pid))
    assert out.returncode == 1
    assert out.stderr == f"proctree tree: no process has PID {gone.pid}\n"


@pytest.mark.parametrize("target", ["not-a-pid", "/no/such/socket"])
def test_tree_of_neither_a_pid_nor_a_socket_is_a_bad_argument(
    tmp_path: Path, target: str
) -> None:
    out = cli(tmp_path, "tree", target)
    assert out.returncode == 2
    assert "is neither a PID nor an existing control socket" in out.stderr


def test_tree_of_a_file_that_is_not_a_socket_is_a_bad_argument(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    out = cli(tmp_path, "tree", str(plain))
    assert out.returncode == 2
    assert "is not a socket" in out.stderr


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as nobody")
NOBODY = 65534


@needs_root
def test_tree_of_another_users_program_is_refused(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "60"], user=NOBODY) as theirs:
        try:
            out = cli(tmp_path, "tree", str(theirs.pid))
        finally:
            theirs.kill()
    assert out.returncode == 1
    assert (
        f"process {theirs.pid} runs as nobody (uid {NOBODY}), not as you" in out.stderr
    )


def _connect_as_nobody(path: Path) -> str:
    """Ask for the tree from a forked child running as nobody; what it got."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.close(reader)
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                s.sendall(b'{"command": "tree"}\n')
                answer = s.makefile("rb").read()
            except OSError as exc:
                answer = f"OSError: {exc.strerror}".encode()
            os.write(writer, answer)
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as got:
        answer = got.read().decode()
    os.waitpid(child, 0)
    return answer


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder anyone may enter (pytest's own tmp folders are private)."""
    folder = Path(tempfile.mkdtemp(prefix="proctree-test-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder)


@needs_root
def test_another_user_cannot_open_the_socket(tmp_path: Path, open_folder: Path) -> None:
    where = open_folder / "app.sock"
    with program(tmp_path, "--control", str(where)):
        answer = _connect_as_nobody(where)
    assert answer == "OSError: Permission denied"


@needs_root
def test_another_user_is_refused_by_peer_credentials_even_if_the_mode_lets_in(
    tmp_path: Path, open_folder: Path
) -> None:
    where = open_folder / "app.sock"
    with program(tmp_path, "--control", str(where)):
        os.chmod(where, 0o666)  # a mistake: the credentials check still holds
        answer = json.loads(_connect_as_nobody(where))
    assert answer["schema"] == "proctree.control/1"
    assert answer["error"].startswith(f"refused: you are uid {NOBODY}")
    assert "processes" not in answer


def test_a_stale_socket_of_a_killed_program_is_reported_and_removed(
    tmp_path: Path,
) -> None:
    with program(tmp_path) as prog:
        prog.proc.kill()
        prog.proc.wait()
        assert prog.socket.exists()
        out = cli(tmp_path, "tree", str(prog.pid))
    assert out.returncode == 1
    assert "is stale (the program that made it is gone); removed it" in out.stderr
    assert not prog.socket.exists()


def test_a_stale_socket_found_by_path_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / "old.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # bound, never listened on, closed: what a killed program leaves
    out = cli(tmp_path, "tree", str(stale))
    assert out.returncode == 1
    assert "is stale" in out.stderr
    assert not stale.exists()


def test_ps_reports_and_removes_stale_sockets(tmp_path: Path) -> None:
    with program(tmp_path) as prog:
        prog.proc.kill()
        prog.proc.wait()
        out = cli(tmp_path, "ps")
    assert out.returncode == 0
    assert f"{prog.socket} is stale" in out.stderr
    assert not prog.socket.exists()


def test_run_removes_a_stale_socket_at_its_control_path(tmp_path: Path) -> None:
    where = tmp_path / "app.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(where))
    s.close()
    with program(tmp_path, "--control", str(where)) as prog:
        out = cli(tmp_path, "tree", str(where))
        _code, _err = prog.stop()
    assert out.returncode == 0
    assert f"removed a stale control socket {where}" in prog.early


async def test_a_program_that_exits_before_it_answers(tmp_path: Path) -> None:
    with program(tmp_path) as prog:
        os.kill(prog.pid, signal.SIGSTOP)  # it cannot accept: the call waits
        got: list[BaseException] = []

        async def ask() -> None:
            try:
                await fetch(prog.socket)
            except Unreachable as exc:
                got.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()  # sent, waiting
            prog.proc.kill()
            prog.proc.wait()
    assert [str(e) for e in got] == [
        f"the program at {prog.socket} exited before it answered"
    ]


async def test_a_program_that_does_not_answer_in_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with program(tmp_path) as prog:
        os.kill(prog.pid, signal.SIGSTOP)
        try:
            with pytest.raises(Unreachable, match=r"did not answer within 3 s"):
                await fetch(prog.socket, timeout=3)
        finally:
            os.kill(prog.pid, signal.SIGCONT)


def test_the_environment_without_xdg_runtime_dir_uses_a_private_tmp_folder() -> None:
    from proctree._ops.control_server import runtime_dir

    folder = runtime_dir({})
    assert folder == Path(f"/tmp/proctree-{os.getuid()}")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_an_unsafe_runtime_folder_is_refused(tmp_path: Path) -> None:
    from proctree._ops.control_server import ControlError, runtime_dir

    (tmp_path / "proctree").mkdir(mode=0o755)
    os.chmod(tmp_path / "proctree", 0o755)
    with pytest.raises(ControlError, match="is open to other users"):
        runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path)})
    out = subprocess.run(
        [sys.executable, "-m", "proctree", "run", "tests.ops.seeing_targets:commanded"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env(tmp_path),
        timeout=60,
    )
    assert out.returncode == 2
    assert "chmod 700" in out.stderr
