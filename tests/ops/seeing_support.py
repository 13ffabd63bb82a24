"""Running real ``proctree run`` programs for the tests of seeing the tree."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Program:
    """A ``proctree run`` subprocess driven through its stdin (see seeing_targets)."""

    def __init__(self, proc: subprocess.Popen[str], runtime: Path) -> None:
        self.proc = proc
        self.runtime = runtime
        self.early = ""  # what it wrote on stderr until it was ready

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def socket(self) -> Path:
        return self.runtime / "proctree" / f"{self.pid}.sock"

    def command(self, line: str) -> None:
        """Send a command and wait for the program to say it is done."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        for answer in self.proc.stdout:
            if answer.strip() == f"done {line}":
                return
        raise AssertionError(f"the program never did {line!r}")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        if self.proc.stdin is not None and self.proc.stdin.closed:
            self.proc.stdin = None
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


def env(runtime: Path) -> dict[str, str]:
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}


@contextmanager
def program(
    runtime: Path,
    *args: str,
    target: str = "commanded",
    extra: dict[str, str] | None = None,
) -> Iterator[Program]:
    """Run ``proctree run tests.ops.seeing_targets:TARGET`` until it is ready."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proctree",
            "run",
            f"tests.ops.seeing_targets:{target}",
            "--tree",
            *args,
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env(runtime), **(extra or {})},
    )
    started = Program(proc, runtime)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if f"{target} [RUNNING]" in line:
                break
        else:
            raise AssertionError(f"the program did not start: {''.join(seen)}")
        started.early = "".join(seen)
        yield started
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdin is not None and proc.stdin.closed:
            proc.stdin = None
        proc.communicate(timeout=60)


def cli(runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m proctree ARGS`` with this runtime folder."""
    return subprocess.run(
        [sys.executable, "-m", "proctree", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env(runtime),
        timeout=60,
    )
