"""The command line and the demo it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import trio
import trio.testing

from proctree._ops.cli import main
from proctree._ops.demo import GREETING, run_demo
from proctree._ops.run import FORCED_BY_SIGNAL

TEARDOWN_ORDER = ["tcp server: teardown", "db pool: teardown", "demo (root): teardown"]


def _order(lines: list[str]) -> list[str]:
    return [line.split("] ", 1)[1] for line in lines if "teardown" in line]


async def test_the_demo_tears_down_leaves_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lines: list[str] = []
    assert await run_demo(duration=3.5, tick=1.0, write=lines.append) == 0
    assert _order(lines) == TEARDOWN_ORDER
    jobs = [line for line in lines if "job" in line and "done" in line]
    assert len(jobs) == 6
    assert any(line.endswith("finished after 3 jobs") for line in lines)
    assert lines[-1].endswith("every process is closed")


async def test_the_demos_server_really_listens_where_it_says() -> None:
    lines: list[str] = []
    greeting: list[bytes] = []
    listening = trio.Event()

    def write(line: str) -> None:
        lines.append(line)
        if "listening on" in line:
            listening.set()

    async def client() -> None:
        await listening.wait()
        [line] = [line for line in lines if "listening on" in line]
        address = line.split("listening on ", 1)[1].split(" ", 1)[0]
        host, port = address.rsplit(":", 1)
        assert host == "127.0.0.1"
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
        greeting.append(data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        await run_demo(duration=1.0, tick=0.5, write=write)
    assert greeting == [GREETING]


def test_a_second_ctrl_c_forces_the_demo_and_exits_1_as_proctree_run_does() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "proctree", "demo", "--tick", "5"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "press Ctrl-C" in line:
                os.kill(proc.pid, signal.SIGINT)
            if "closing the tree" in line:
                os.kill(proc.pid, signal.SIGINT)
                break
        lines.extend(proc.stdout.read().splitlines())
        assert proc.wait(timeout=30) == 1
    assert lines[-1] == FORCED_BY_SIGNAL


def test_ctrl_c_closes_the_demo_in_order_and_exits_0() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "proctree", "demo", "--tick", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "job 1 done" in line:
                os.kill(proc.pid, signal.SIGINT)
                break
        lines.extend(proc.stdout.read().splitlines())
        assert proc.wait(timeout=30) == 0
    assert _order(lines) == TEARDOWN_ORDER


@pytest.mark.parametrize(
    "argv",
    [[], ["demo", "--duration", "-1"], ["demo", "--tick", "soon"], ["nope"]],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "proctree" in capsys.readouterr().err


def test_the_demo_runs_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--duration", "0.2", "--tick", "0.05"]) == 0
    assert _order(capsys.readouterr().out.splitlines()) == TEARDOWN_ORDER
