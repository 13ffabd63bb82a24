"""``proctree run`` in production: probes, drain, JSON logs, reload, systemd.

Each test drives a real ``proctree run`` subprocess with real signals and
asks its health server with a real HTTP client.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

import proctree

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    return subprocess.Popen(
        [sys.executable, "-m", "proctree", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, **(env or {})},
    )


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes to kill if a test fails half-way (so nothing hangs)."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


def _wait_for_line(proc: subprocess.Popen[str], text: str) -> list[str]:
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never came; stderr was {''.join(lines)!r}")


def _get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30)


def _until(check: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"never: {what}")


def test_health_and_drain_turn_readyz_503_while_everything_keeps_serving(
    running: list[subprocess.Popen[str]],
) -> None:
    port = _free_port()
    proc = _spawn(
        "tests.ops.cli_targets:app",
        "--health",
        f"127.0.0.1:{port}",
        "--drain",
        "1.5",
        "--tree",
    )
    running.append(proc)
    _wait_for_line(proc, "http [RUNNING]")
    assert _get(port, "/livez").status_code == 200
    assert _get(port, "/startupz").status_code == 200
    assert (_get(port, "/readyz").status_code, _get(port, "/readyz").text) == (
        200,
        "ready\n",
    )
    page = _get(port, "/tree/tree.json").json()
    # The live page of the tree is mounted at /tree/.
    assert page["schema"] == "proctree.tree/1"
    assert {p["name"] for p in page["processes"]} >= {"proctree", "db", "http"}
    metrics = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(_get(port, "/metrics").text)
        for s in family.samples
    }
    # The root, the sequential, db and http (and the command's own helpers).
    assert metrics[("proctree_processes", (("state", "running"),))] >= 4
    assert metrics[("proctree_process_failures_total", ())] == 0
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _until(lambda: _get(port, "/readyz").status_code == 503, "readyz 503")
    answer = _get(port, "/readyz")
    assert answer.text == "draining\n"
    assert time.monotonic() - signalled < 1.5  # at once, not after the drain
    assert _get(port, "/livez").status_code == 200
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert time.monotonic() - signalled >= 1.5
    assert err.count("Running on http://127.0.0.1") == 0  # warning level: quiet


def test_a_second_signal_during_the_drain_forces(
    running: list[subprocess.Popen[str]],
) -> None:
    proc = _spawn("tests.ops.cli_targets:app", "--drain", "3600", "--tree")
    running.append(proc)
    _wait_for_line(proc, "http [RUNNING]")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # trio merges a signal still pending with the next one
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "second signal forced the shutdown" in err


def test_a_busy_health_address_exits_2_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _spawn("tests.ops.cli_targets:app", "--health", f"127.0.0.1:{port}")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("proctree run: error: --health: cannot serve there")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--health", "127.0.0.1:99999"), "the port must be in 0..65535"),
        (("--health", "localhost:http"), "expected HOST:PORT"),
        (("--health", "a b:80"), "is not a host name"),
        (("--drain", "-1"), "expected a number of seconds >= 0"),
        (("--drain", "soon"), "expected a number of seconds"),
        (("--log-format", "xml"), "invalid choice"),
    ],
)
def test_bad_operations_arguments_exit_2_with_one_line(
    args: tuple[str, ...], expected: str
) -> None:
    proc = _spawn("tests.ops.cli_targets:app", *args)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert expected in err
    assert "Traceback" not in err


def test_a_missing_metrics_extra_exits_2_naming_it(tmp_path: Path) -> None:
    # A prometheus_client that cannot be imported, ahead on the path.
    fake = tmp_path / "prometheus_client"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('not installed here')\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    proc = _spawn("tests.ops.cli_targets:app", "--health", ":0", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().count("\n") == 0, err
    assert "pip install 'proctree[metrics]'" in err


def test_json_logs_are_one_object_a_line_with_the_facts(
    running: list[subprocess.Popen[str]],
) -> None:
    port = _free_port()
    proc = _spawn(
        "tests.ops.ops_targets:logs",
        "--log-format",
        "json",
        "--log-level",
        "info",
        "--health",
        f"127.0.0.1:{port}",
    )
    running.append(proc)
    _wait_for_line(proc, '"ready proctree/logs"')
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    records = [json.loads(line) for line in rest.splitlines()]
    closed = [r for r in records if r.get("proctree_event") == "closed"]
    assert {r["proctree_path"] for r in closed} >= {"proctree", "proctree/logs"}
    assert all(r["proctree_state"] == "CLOSED" for r in closed)
    assert all(isinstance(r["proctree_duration"], float) for r in closed)


def test_json_logs_carry_the_current_process_path_on_the_apps_own_records(
    running: list[subprocess.Popen[str]],
) -> None:
    port = _free_port()
    proc = _spawn(
        "tests.ops.ops_targets:logs",
        "--log-format",
        "json",
        "--log-level",
        "info",
        "--health",
        f"127.0.0.1:{port}",
    )
    running.append(proc)
    lines = _wait_for_line(proc, "hello from the app")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    records = [json.loads(line) for line in lines]
    mine = records[-1]
    assert mine["logger"] == "myapp"
    assert mine["level"] == "WARNING"
    assert mine["proctree_path"] == "proctree/logs"
    assert mine["order"] == 42
    hypercorn = [r for r in records if r["logger"] == "hypercorn.error"]
    assert len(hypercorn) == 1  # once, not twice
    assert hypercorn[0]["message"].startswith("Running on http://127.0.0.1:")


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    return sock, path


def _messages_until(sock: socket.socket, first_line: str) -> list[str]:
    seen = []
    while True:
        message = sock.recv(4096).decode()
        seen.append(message)
        if message.splitlines()[0] == first_line:
            return seen


def test_sighup_reloads_in_tree_order_and_a_failing_reload_is_only_reported(
    tmp_path: Path, running: list[subprocess.Popen[str]]
) -> None:
    sock, path = _notify_socket(tmp_path)
    with sock:
        proc = _spawn("tests.ops.ops_targets:reloadable", env={"NOTIFY_SOCKET": path})
        running.append(proc)
        _messages_until(sock, "READY=1")
        proc.send_signal(signal.SIGHUP)
        reloading = sock.recv(4096).decode().splitlines()
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        ready = sock.recv(4096).decode().splitlines()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert reloading[0] == "RELOADING=1"
    usec = int(reloading[1].removeprefix("MONOTONIC_USEC="))
    assert 0 < usec <= before
    assert ready == ["READY=1", "STATUS=running; reload failed in 1 process(es)"]
    lines = err.splitlines()
    first = lines.index("reloaded first 1")
    failed = next(i for i, line in enumerate(lines) if "reload of" in line)
    second = lines.index("reloaded second 1")
    assert first < failed < second
    assert "ValueError: broken: bad configuration" in lines[failed]


def test_sighup_makes_a_supervisor_read_its_table_at_once(
    tmp_path: Path, running: list[subprocess.Popen[str]]
) -> None:
    table_path = str(tmp_path / "table.db")
    table = proctree.SqliteTable(table_path)
    trio.run(table.set, "w1", "tests.ops.ops_targets:worker", ["w1"])
    proc = _spawn(
        "tests.ops.ops_targets:supervised", env={"PROCTREE_TEST_TABLE": table_path}
    )
    running.append(proc)
    _wait_for_line(proc, "worker w1 up")
    trio.run(table.set, "w2", "tests.ops.ops_targets:worker", ["w2"])
    proc.send_signal(signal.SIGHUP)  # the interval is an hour
    _wait_for_line(proc, "worker w2 up")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_a_long_start_asks_systemd_for_more_time_until_ready(
    tmp_path: Path, running: list[subprocess.Popen[str]]
) -> None:
    sock, path = _notify_socket(tmp_path)
    with sock:
        proc = _spawn(
            "tests.ops.ops_targets:slow_start",
            env={"NOTIFY_SOCKET": path, "PROCTREE_TEST_START": "0.5"},
        )
        running.append(proc)
        messages = _messages_until(sock, "READY=1")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert messages[0] == "EXTEND_TIMEOUT_USEC=15000000\n"
    assert all(m.startswith("EXTEND_TIMEOUT_USEC=") for m in messages[:-1])


def test_systemd_hears_the_drain_then_the_stop(
    tmp_path: Path, running: list[subprocess.Popen[str]]
) -> None:
    sock, path = _notify_socket(tmp_path)
    with sock:
        proc = _spawn(
            "tests.ops.cli_targets:app", "--drain", "0.5", env={"NOTIFY_SOCKET": path}
        )
        running.append(proc)
        _messages_until(sock, "READY=1")
        proc.send_signal(signal.SIGTERM)
        draining = sock.recv(4096).decode()
        stopping = sock.recv(4096).decode()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert draining == "STATUS=draining for 0.5s, then stopping\n"
    assert stopping.splitlines()[0] == "STOPPING=1"
