"""Machine instructions per item of run.py's workloads, counted by valgrind.

Wall time on a shared or virtual machine moves by 10-15% from run to run;
the number of instructions a workload executes hardly moves at all, so it
shows small changes that time cannot. Each workload runs twice under
``valgrind --tool=callgrind`` (``run.py --worker CASE --n N``), once with
``--small`` items and once with ``--big``; the difference, divided by the
difference in items, leaves out the interpreter's start and the imports.

    python benchmarks/instructions.py trio-nested sequential
    python benchmarks/instructions.py restart-trio restart-proctree-leaf --big 1100

The first workload named is the baseline of the ratios. Instructions are
not time: memory stalls and the garbage collector's pauses weigh more in
time (``docs/performance.rst`` has both for the (e) cycle). Needs
``valgrind`` on the PATH; one to two minutes per workload.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().with_name("run.py")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(case: str, n: int) -> int:
    """Instructions executed by ``run.py --worker CASE --n N`` under callgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(RUN),
        "--worker",
        case,
        "--n",
        str(n),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dicts each run
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"{case} (n={n}) failed under valgrind:\n{tail}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Instructions per item of run.py's workloads (valgrind)."
    )
    parser.add_argument("cases", nargs="+", help="workloads (run.py --help lists them)")
    parser.add_argument("--small", type=int, default=100, help="items of the short run")
    parser.add_argument("--big", type=int, default=600, help="items of the long run")
    args = parser.parse_args(argv)
    if not 0 < args.small < args.big:
        parser.error("need 0 < --small < --big")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not on the PATH (apt-get install valgrind)")
    base: float | None = None
    for case in args.cases:
        per_item = (instructions(case, args.big) - instructions(case, args.small)) / (
            args.big - args.small
        )
        base = per_item if base is None else base
        ratio = per_item / base
        print(f"{case:32s} {per_item:14,.0f} instructions each  {ratio:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
