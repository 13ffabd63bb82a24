"""The systemd notifier, against a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import proctree


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    with sock:
        yield sock, path


def test_notify_sends_one_datagram_of_lines(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = proctree.SystemdNotifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.notify("READY=1", "STATUS=serving")
    assert sock.recv(1024) == b"READY=1\nSTATUS=serving\n"
    notifier.close()
    notifier.close()


def test_an_abstract_socket_name_starts_with_at() -> None:
    name = f"proctree-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = proctree.SystemdNotifier.from_environment(
            {"NOTIFY_SOCKET": "@" + name}
        )
        assert notifier.notify("STOPPING=1")
        assert sock.recv(1024) == b"STOPPING=1\n"
        notifier.close()


def test_without_notify_socket_it_does_nothing() -> None:
    notifier = proctree.SystemdNotifier.from_environment({})
    assert not notifier.enabled
    assert not notifier.notify("READY=1")
    assert notifier.watchdog_interval is None


def test_the_watchdog_interval_is_half_the_timeout(
    listener: tuple[socket.socket, str],
) -> None:
    _, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000"}
    assert proctree.SystemdNotifier.from_environment(env).watchdog_interval == 1.5
    env["WATCHDOG_PID"] = str(os.getpid())
    assert proctree.SystemdNotifier.from_environment(env).watchdog_interval == 1.5


def test_a_watchdog_meant_for_another_pid_or_garbage_is_ignored(
    listener: tuple[socket.socket, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, path = listener
    other = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100", "WATCHDOG_PID": "1"}
    assert proctree.SystemdNotifier.from_environment(other).watchdog_interval is None
    garbage = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "soon"}
    assert proctree.SystemdNotifier.from_environment(garbage).watchdog_interval is None
    assert "WATCHDOG_USEC" in caplog.text


def test_a_missing_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = proctree.SystemdNotifier(str(tmp_path / "gone"))
    assert not notifier.notify("READY=1")
    assert "not sent" in caplog.text
