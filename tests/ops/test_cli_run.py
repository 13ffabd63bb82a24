"""``proctree run`` driven as a real subprocess: signals, exit codes, systemd."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

import proctree
from proctree._ops.cli import _parser
from proctree._ops.run import run_target
from proctree._ops.systemd import SystemdNotifier

from ..compose.test_grace_bound import Stubborn

ROOT = Path(__file__).resolve().parents[2]


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "proctree", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_for_line(proc: subprocess.Popen[str], text: str) -> list[str]:
    """Read stderr until a line contains ``text``; return the lines read."""
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never came; stderr was {''.join(lines)!r}")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_gracefully_and_exits_0(sig: signal.Signals) -> None:
    with _spawn("tests.ops.cli_targets:app", "--tree") as proc:
        _wait_for_line(proc, "http [RUNNING]")
        proc.send_signal(sig)
        code, err = _finish(proc)
    assert code == 0, err
    assert "Traceback" not in err


def test_a_second_signal_forces_and_exits_1() -> None:
    args = ("--tree", "--grace", "60", "--log-level", "info")
    with _spawn("tests.ops.cli_targets:stubborn", *args) as proc:
        _wait_for_line(proc, "stubborn [RUNNING]")
        proc.send_signal(signal.SIGTERM)
        # trio merges a signal that is still pending: wait until it is seen
        _wait_for_line(proc, "closing proctree/stubborn")
        proc.send_signal(signal.SIGTERM)
        code, err = _finish(proc)
    assert code == 1
    assert "second signal forced the shutdown" in err


def test_a_failing_runner_exits_1_with_its_path_and_message() -> None:
    with _spawn("tests.ops.cli_targets:failing") as proc:
        code, err = _finish(proc)
    assert code == 1
    assert "proctree/failing failed: ValueError: database went away" in err
    assert "Traceback" not in err


def test_a_runner_failing_to_start_exits_1() -> None:
    with _spawn("tests.ops.cli_targets:failing_at_start") as proc:
        code, err = _finish(proc)
    assert code == 1
    assert "OSError: port 80 is taken" in err


def test_a_runner_that_finishes_exits_0() -> None:
    with _spawn("tests.ops.cli_targets:finishes") as proc:
        code, err = _finish(proc)
    assert code == 0, err


def test_debug_log_level_shows_events_and_tracebacks() -> None:
    with _spawn("tests.ops.cli_targets:failing", "--log-level", "debug") as proc:
        code, err = _finish(proc)
    assert code == 1
    assert "created proctree/failing" in err
    assert "Traceback" in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.ops.cli_targets", "expected MODULE:ATTR"),
        ("tests.no_such_module:app", "no module named 'tests.no_such_module'"),
        ("tests.ops.cli_targets:nope", "has no attribute 'nope'"),
        ("tests.ops.cli_targets:not_a_runner", "not a runner"),
        ("tests.ops.cli_targets:sync_function", "not a runner"),
        ("tests.ops.targets.no_ready:app", "will call app() with 1 positional"),
        ("tests/ops/cli_targets.py:app", "try tests.ops.cli_targets:app"),
    ],
)
def test_bad_targets_exit_2_with_one_line(target: str, message: str) -> None:
    with _spawn(target) as proc:
        code, err = _finish(proc)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_bad_grace_exits_2_with_one_line() -> None:
    with _spawn("tests.ops.cli_targets:app", "--grace", "-3") as proc:
        code, err = _finish(proc)
    assert code == 2
    assert "seconds >= 0" in err
    assert len(err.strip().splitlines()) == 1, err
    assert "usage:" not in err


def test_a_target_whose_import_fails_shows_its_traceback_and_exits_1() -> None:
    with _spawn("tests.ops.targets.broken_import:app") as proc:
        code, err = _finish(proc)
    assert code == 1
    assert 'broken_import.py", line 10, in <module>' in err
    assert 'broken_import.py", line 7, in _read_config' in err
    assert "importlib" not in err
    assert err.strip().splitlines()[-1] == (
        "proctree run: error: importing 'tests.ops.targets.broken_import' failed: "
        "RuntimeError: config file /etc/app.toml is missing"
    )


def test_version_is_printed_and_is_the_packages() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "proctree", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"proctree {proctree.__version__}"
    assert proctree.__version__ == importlib.metadata.version("proctree")


def test_sigusr1_prints_the_live_tree() -> None:
    with _spawn("tests.ops.cli_targets:app", "--tree") as proc:
        _wait_for_line(proc, "http [RUNNING]")
        proc.send_signal(signal.SIGUSR1)
        lines = _wait_for_line(proc, "http [RUNNING]")
        proc.send_signal(signal.SIGTERM)
        code, _ = _finish(proc)
    assert code == 0
    text = "".join(lines)
    assert "sequential[db, http] [RUNNING]" in text
    assert "├── db [RUNNING]" in text


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(30)
        try:
            yield sock, path
        finally:
            sock.close()


def _recv(sock: socket.socket) -> str:
    """The next notification, past the EXTEND_TIMEOUT_USEC sent while starting."""
    while True:
        message = sock.recv(4096).decode()
        if not message.startswith("EXTEND_TIMEOUT_USEC="):
            return message


def test_systemd_gets_ready_then_stopping(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    with _spawn("tests.ops.cli_targets:app", env={"NOTIFY_SOCKET": path}) as proc:
        ready = _recv(sock)
        assert ready.splitlines()[0] == "READY=1"
        assert "STATUS=running" in ready
        proc.send_signal(signal.SIGTERM)
        stopping = _recv(sock)
        code, err = _finish(proc)
    assert code == 0, err
    assert stopping.splitlines()[0] == "STOPPING=1"


def test_systemd_watchdog_pings_at_half_the_timeout(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    with _spawn("tests.ops.cli_targets:app", env=env) as proc:
        messages = [_recv(sock) for _ in range(4)]
        proc.send_signal(signal.SIGTERM)
        code, err = _finish(proc)
    assert code == 0, err
    assert messages[0].startswith("READY=1")
    assert messages[1:] == ["WATCHDOG=1\n"] * 3


@pytest.mark.parametrize(
    ("args", "forced_after"),
    [((), 30.0), (("--grace", "inf"), 30.0), (("--grace", "2"), 2.0)],
)
async def test_run_without_grace_keeps_each_processs_own_and_grace_only_bounds(
    autojump_clock: trio.testing.MockClock,
    args: tuple[str, ...],
    forced_after: float,
) -> None:
    forced: dict[str, float] = {}
    runner = Stubborn("db", 30, forced)
    is_ready = trio.Event()
    namespace = _parser().parse_args(["run", "x:y", *args])
    lines: list[str] = []
    codes: list[int] = []

    class Watch(proctree.Instrument):
        def ready(self, process: proctree.Process) -> None:
            is_ready.set()

    async def run() -> None:
        codes.append(
            await run_target(
                runner,
                grace=namespace.grace,
                show_tree=False,
                verbose=False,
                colour=False,
                write=lines.append,
                instruments=(Watch(),),
                notifier=SystemdNotifier(None),
            )
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await is_ready.wait()
        t0 = trio.current_time()
        os.kill(os.getpid(), signal.SIGTERM)
    assert forced["db"] - t0 == forced_after
    assert codes == [0]
