"""Socket activation with a harness that hands real sockets to real programs.

The harness plays systemd: it holds a listening socket, passes it as file
descriptor 3 with ``LISTEN_FDS``, ``LISTEN_PID`` and ``LISTEN_FDNAMES`` to
``proctree run``, and restarts the program while a client keeps connecting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

import proctree

ROOT = Path(__file__).resolve().parents[2]


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


# What systemd does between fork and exec: the sockets become descriptors
# 3, 4..., LISTEN_PID is the pid the program will have (exec keeps it).
_SHIM = """
import os, sys
count, names, *rest = sys.argv[1:]
sources = [int(fd) for fd in rest[: int(count)]]
moved = [os.dup(fd) for fd in sources]
for fd in sources:
    os.close(fd)
for i, fd in enumerate(moved):
    os.dup2(fd, 3 + i)
    os.set_inheritable(3 + i, True)
    if fd != 3 + i and fd not in range(3, 3 + len(moved)):
        os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=count, LISTEN_FDNAMES=names)
os.execv(sys.executable, [sys.executable, *rest[int(count) :]])
"""


def _activated(
    socks: list[socket.socket], names: str, *command: str
) -> subprocess.Popen[str]:
    """Start ``command`` with ``socks`` as descriptors 3, 4... as systemd does."""
    fds = [str(s.fileno()) for s in socks]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen(
        [sys.executable, "-c", _SHIM, str(len(socks)), names, *fds, *command],
        pass_fds=[s.fileno() for s in socks],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_serving(proc: subprocess.Popen[str]) -> None:
    """Until the program says it is ready (``--tree`` prints the tree then)."""
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "[RUNNING]" in line:
            return
    raise AssertionError(f"it never became ready: {''.join(lines)}")


@contextlib.contextmanager
def _stopped_at_exit(*procs: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=60)


class Client:
    """Connects again and again, from a thread, until told to stop."""

    def __init__(self, port: int, kind: str) -> None:
        self.port, self.kind = port, kind
        self.pids: list[int] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _once(self) -> int:
        if self.kind == "http":
            with httpx.Client(timeout=30) as client:
                answer = client.get(f"http://127.0.0.1:{self.port}/")
                answer.raise_for_status()
                return int(answer.text)
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return int(data)

    def _loop(self) -> None:
        deadline = time.monotonic() + 120  # bounded, whatever happens
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self.pids.append(self._once())
            except (OSError, ValueError, httpx.HTTPError) as exc:
                self.errors.append(exc)
            time.sleep(0.005)

    def wait_for(self, pid: int) -> None:
        deadline = time.monotonic() + 60
        while pid not in self.pids and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pid in self.pids, f"no answer from {pid}; errors {self.errors[:3]}"


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_a_restart_refuses_no_connection(kind: str) -> None:
    target = f"tests.leaves.activation_targets:{kind}"
    with _listening() as sock:
        port = sock.getsockname()[1]
        first = _activated([sock], "web", "-m", "proctree", "run", target, "--tree")
        client = Client(port, kind)
        with _stopped_at_exit(first):
            _wait_serving(first)
            client.thread.start()
            try:
                client.wait_for(first.pid)
                first.send_signal(signal.SIGTERM)
                assert first.wait(timeout=60) == 0
                # Nothing listens in a program now: connections wait in the
                # backlog of the socket the harness keeps open.
                second = _activated(
                    [sock], "web", "-m", "proctree", "run", target, "--tree"
                )
                with _stopped_at_exit(second):
                    _wait_serving(second)
                    client.wait_for(second.pid)
                    # Stop the client first: a connection made once the last
                    # program is gone would wait in the backlog forever.
                    client.stop.set()
                    client.thread.join(timeout=60)
                    second.send_signal(signal.SIGTERM)
                    assert second.wait(timeout=60) == 0
            finally:
                client.stop.set()
                client.thread.join(timeout=60)
    assert client.errors == []
    assert set(client.pids) == {first.pid, second.pid}
    assert client.pids.index(second.pid) > client.pids.index(first.pid)


def test_sockets_are_chosen_by_name_and_only_for_our_pid() -> None:
    script = (
        "import proctree\n"
        "print(*sorted(s.getsockname()[1] for s in proctree.systemd_sockets('b')))\n"
        "print(len(proctree.systemd_sockets()))\n"
        "import os; os.environ['LISTEN_PID'] = '1'\n"
        "print(len(proctree.systemd_sockets()))\n"
    )
    with _listening() as a, _listening() as b:
        proc = _activated([a, b], "a:b", "-c", script)
        out, err = proc.communicate(timeout=60)
        b_port = b.getsockname()[1]
    assert proc.returncode == 0, err
    assert out.split("\n") == [str(b_port), "2", "0", ""]


def test_bad_environments_are_clear_errors() -> None:
    pid = str(os.getpid())
    with pytest.raises(proctree.ActivationError, match="not a number"):
        proctree.systemd_sockets(environ={"LISTEN_PID": pid, "LISTEN_FDS": "x"})
    assert (
        proctree.systemd_sockets(environ={"LISTEN_PID": "1", "LISTEN_FDS": "1"}) == ()
    )
    assert proctree.systemd_sockets(environ={}) == ()
    with pytest.raises(TypeError, match="name must be a str"):
        proctree.systemd_sockets(3)  # type: ignore[arg-type]


async def _echo(proc: proctree.Process, stream: trio.SocketStream) -> None:
    await stream.send_all(b"hi")


async def test_a_server_restarted_in_process_serves_the_same_handed_socket() -> None:
    with _listening() as sock:
        port = sock.getsockname()[1]
        server = proctree.tcp_server(_echo, sockets=[sock], name="web")
        async with proctree.open_root() as root:
            for _ in range(2):
                p = proctree.new_process(server, parent=root)
                await p.start()
                assert server.port == port
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                async with stream:
                    assert await stream.receive_some() == b"hi"
                await p.stop()
                # Stopped: the handed-over socket still listens (the backlog).
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    pass
        assert sock.fileno() >= 0


def test_servers_refuse_sockets_that_do_not_listen() -> None:
    with (
        socket.socket() as sock,
        pytest.raises(ValueError, match="not a listening stream socket"),
    ):
        proctree.tcp_server(_echo, sockets=[sock])
    with (
        socket.socket() as lone,
        pytest.raises(TypeError, match="sequence of listening sockets"),
    ):
        proctree.tcp_server(_echo, sockets=lone)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give a port"):
        proctree.tcp_server(_echo, sockets=[])
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        pytest.raises(ValueError, match="not a listening stream socket"),
    ):
        proctree.asgi_server(_echo, sockets=[udp])  # type: ignore[arg-type]
