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
from proctree._ops.demo import run_demo

TEARDOWN_ORDER = ["http server: teardown", "db pool: teardown", "demo (root): teardown"]


def _order(lines: list[str]) -> list[str]:
    return [line.split("] ", 1)[1] for line in lines if "teardown" in line]


async def test_the_demo_tears_down_leaves_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lines: list[str] = []
    await run_demo(duration=3.5, tick=1.0, write=lines.append)
    assert _order(lines) == TEARDOWN_ORDER
    jobs = [line for line in lines if "job" in line and "done" in line]
    assert len(jobs) == 6
    assert lines[-1].endswith("every process is closed")


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
