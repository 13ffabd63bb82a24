"""What instruments cost: spawn and close N go processes with and without them.

The target (issue 14): a tree with metrics on (``PrometheusInstrument``)
costs at most 1.2x an uninstrumented one to spawn and close 10,000
processes. Each measurement runs in a fresh interpreter, rounds are
interleaved (one of each case per round), and each figure is the median
over the rounds; the ratio is taken within the same run.

    python benchmarks/instruments.py                 # N=10,000, 9 rounds
    python benchmarks/instruments.py --n 100000 --rounds 5

Prints one table; exit status 0 when every measurement was taken.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time

import trio
import trio.testing

import proctree

LIMIT = 1.2
MARKER = "INSTRUMENTS-RESULT "


async def _sleeper(proc: proctree.Process) -> None:
    await trio.sleep_forever()


def _instruments(case: str) -> list[proctree.Instrument]:
    if case == "bare":
        return []
    if case == "metrics":
        return [proctree.PrometheusInstrument()]
    if case == "health+metrics":
        return [proctree.Health(), proctree.PrometheusInstrument()]
    if case == "otel":
        # The API without an SDK: what a library user pays by default.
        return [proctree.OpenTelemetryInstrument()]
    raise SystemExit(f"unknown case {case!r}")


def worker(case: str, n: int) -> dict[str, float]:
    """Spawn N ``root.go`` children, then ``aclose(grace=0)``; time both."""
    instruments = _instruments(case)
    times: dict[str, float] = {}

    async def main() -> None:
        async with proctree.open_root(instruments=instruments) as root:
            start = time.perf_counter()
            for _ in range(n):
                root.go(_sleeper)
            await trio.testing.wait_all_tasks_blocked()
            middle = time.perf_counter()
            await root.aclose(grace=0)
        end = time.perf_counter()
        times.update(spawn=middle - start, close=end - middle, total=end - start)

    gc.collect()
    trio.run(main)
    return times


def run_worker(case: str, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", case, "--n", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in out.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])  # type: ignore[no-any-return]
    raise RuntimeError(f"worker {case} printed no result: {out.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--cases", default="bare,metrics,health+metrics,otel", help="comma-separated"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(MARKER + json.dumps(worker(args.worker, args.n)), flush=True)
        return 0
    cases = args.cases.split(",")
    results: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    for i in range(args.rounds):
        print(f"round {i + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for case in cases:
            results[case].append(run_worker(case, args.n))

    def median(case: str, key: str) -> float:
        return statistics.median(r[key] for r in results[case])

    base = median("bare", "total")
    print(f"spawn and close N={args.n:,} go processes, median of {args.rounds}")
    print(f"{'case':<16}{'spawn us':>10}{'close us':>10}{'total us':>10}{'ratio':>8}")
    verdict = "PASS"
    for case in cases:
        total = median(case, "total")
        ratio = total / base
        print(
            f"{case:<16}{median(case, 'spawn') / args.n * 1e6:>10.2f}"
            f"{median(case, 'close') / args.n * 1e6:>10.2f}"
            f"{total / args.n * 1e6:>10.2f}{ratio:>8.2f}"
        )
        if case == "metrics" and ratio > LIMIT:
            verdict = "FAIL"
    print(f"metrics on / off: target <= {LIMIT}x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
