"""The soak run of the stateful machines: ``nox -s soak``.

(Or ``python -m tests.reliability.soak``.) Runs
``tests/reliability/test_stateful_api.py`` in soak mode in one pytest process per
worker (each with its own seed, so they explore different examples), until
at least ``--soak-ops`` operations have run in total, then prints the
total operation count, the violations (0 on success) and the time taken.

Options: ``--soak-ops N`` (default 1,000,000), ``--workers W`` (default:
the number of cores), ``--seed S`` (default: from the clock; printed, so a
run can be repeated).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "test_stateful_api.py"


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1, or a clear error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak")
    parser.add_argument(
        "--soak-ops",
        type=positive,
        default=1_000_000,
        help="operations to run in total, at least (default 1,000,000)",
    )
    parser.add_argument(
        "--workers",
        type=positive,
        default=os.cpu_count() or 1,
        help="pytest processes side by side (default: one per core)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="base seed (default: from the clock)"
    )
    args = parser.parse_args(argv)
    workers = args.workers
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    per_worker = math.ceil(args.soak_ops / workers)
    print(
        f"soak: {args.soak_ops:,} operations on {workers} workers, seed {seed}",
        flush=True,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="proctree-soak-") as tmp:
        procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
        for w in range(workers):
            report, log = Path(tmp, f"worker{w}.jsonl"), Path(tmp, f"worker{w}.log")
            env = {
                **os.environ,
                "PROCTREE_SOAK": "1",
                "PROCTREE_SOAK_OPS": str(per_worker),
                "PROCTREE_SOAK_SEED": str(seed + w),
                "PROCTREE_SOAK_REPORT": str(report),
            }
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                str(TARGET),
                "-k",
                "_api",
                "-q",
                "-p",
                "no:cacheprovider",
                # The machines log many expected grace overruns; captured,
                # they would bury the failure report.
                "-p",
                "no:logging",
            ]
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=HERE.parent
                )
            procs.append((proc, report, log))
        codes = [proc.wait() for proc, _, _ in procs]
        elapsed = time.monotonic() - started
        totals: dict[str, dict[str, int]] = {}
        for _, report, _ in procs:
            if not report.exists():
                continue
            for line in report.read_text().splitlines():
                row = json.loads(line)
                machine = totals.setdefault(
                    row["machine"], {"ops": 0, "examples": 0, "violations": 0}
                )
                for key in ("ops", "examples", "violations"):
                    machine[key] += row[key]
        for code, (_, _, log) in zip(codes, procs, strict=True):
            if code != 0:
                text = log.read_text()
                start = text.find("= FAILURES =")
                print(text[max(start, 0) :][:20_000], file=sys.stderr)
    ops = sum(m["ops"] for m in totals.values())
    examples = sum(m["examples"] for m in totals.values())
    violations = sum(m["violations"] for m in totals.values())
    for name, m in sorted(totals.items()):
        print(
            f"  {name}: {m['ops']:,} operations, {m['examples']:,} episodes, "
            f"{m['violations']} violations"
        )
    print(
        f"soak: {ops:,} operations in {examples:,} episodes, {violations} "
        f"violations, {elapsed:.1f}s ({ops / max(elapsed, 1e-9):,.0f} ops/s, "
        f"{workers} workers, seed {seed})"
    )
    ok = violations == 0 and all(code == 0 for code in codes)
    if ops < args.soak_ops:
        print(f"soak: only {ops:,} of {args.soak_ops:,} operations ran")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
