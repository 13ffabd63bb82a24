"""Benchmark proctree against bare trio and print one table.

Run ``python benchmarks/run.py --help`` for the options and
``benchmarks/README.md`` for what each row measures. Every measurement runs
in a fresh process (this script re-invoking itself with ``--worker``), the
rounds are interleaved so that drift hits both sides alike, and each figure
is the median over ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "PROCTREE-BENCH-RESULT "  # phases.MARKER, which the workers print

# Issue 17 states the go targets as ratios to the floor: a bare task in its
# own CancelScope, what contract 6 needs of any process that can be forced
# alone (docs/design.md, section 11), measured in the same run.
TARGET_SPAWN_CLOSE = 1.1  # (a): go / floor, spawn + close per task
TARGET_GRACEFUL = 1.0  # (a): go awaiting closing, graceful / floor cancelled
TARGET_MEMORY = 1.1  # (b): bytes per idle go node / bytes per floor task
TARGET_MEMORY_GRACEFUL = 1.2  # (b): the same, the function awaiting closing
TARGET_GROWTH = 1.2  # (c): proctree's growth / bare trio's growth
TARGET_START_STOP = 1.2  # (e): proctree / bare trio, per start+stop cycle
TARGET_SUPERVISOR = 3.0  # (f): triotp / proctree, per child (at least)
TARGET_RSS = 1.15  # (h): peak RSS of N idle go children / of N floor tasks
TARGET_RESTART = 1.5  # (f): proctree restart / a hand-written loop's (and < triotp)
TARGET_VS_ASYNC_SERVICE = 2.5  # (g): async-service close / go close, N = 999
TARGET_VS_TRIOTP = 15.0  # (g): triotp close / proctree close, N = 10,000

SECTIONS = "abcdefgh"


@dataclass(frozen=True)
class Peer:
    """A library measured side by side with proctree, in its own interpreter.

    Its workloads live in ``script``, which run.py runs with the peer's
    Python (``--<name>-python``) and without PYTHONPATH, so that it never
    sees this checkout's proctree; ``cases`` are their names there.
    """

    name: str
    script: str
    cases: tuple[str, ...]
    default_python: Path | None  # None: the interpreter running run.py
    make_venv: str  # how to make its virtualenv, for the README and errors

    @property
    def option(self) -> str:
        return f"--{self.name}-python"

    @property
    def skipped(self) -> str:
        return f"skipped: no {self.name} venv (see README for how to make one)"


PEERS = {
    peer.name: peer
    for peer in (
        Peer(
            "anyio",
            "anyio_workloads.py",
            ("anyio", "cycle-anyio", "restart-anyio"),
            None,
            "pip install anyio  (in the project's virtualenv)",
        ),
        Peer(
            "async-service",
            "async_service_workloads.py",
            ("async-service", "cycle-async-service"),
            Path("/tmp/async-service-venv/bin/python"),
            "python3 -m venv /tmp/async-service-venv && "
            "/tmp/async-service-venv/bin/pip install async-service==0.1.0a11",
        ),
        Peer(
            # (f) also runs triotp 0.2.1, which pins trio 0.19.
            "triotp",
            "triotp_workloads.py",
            ("sup-triotp", "restart-triotp", "cycle-triotp"),
            Path("/tmp/triotp-venv/bin/python"),
            "python3 -m venv /tmp/triotp-venv && "
            "/tmp/triotp-venv/bin/pip install triotp==0.2.1",
        ),
    )
}
PEER_OF_CASE = {case: peer for peer in PEERS.values() for case in peer.cases}

# (f)'s start+close jobs take seconds at 10,000 children (triotp's about
# ten): no extra rounds for them.
LONG_CASES = ("sup-proctree", "sup-triotp")
LONG_N = 10_000

# The (e) workloads time "start" and "stop" phases; the others "spawn" and
# "close".
CYCLE_CASES = ("trio-nested", "sequential", "trio-scopes")
CYCLE_ROWS = dict(
    zip(
        CYCLE_CASES,
        (
            "bare trio: 3 nested nurseries, nursery.start",
            "proctree: sequential(leaf x 3), start(), stop()",
            "bare trio: 1 nursery, scope + event each",
        ),
        strict=True,
    )
)
# The "-count" twins of (e)'s cycles and of (f)'s restarts run under a
# trio.abc.Instrument that counts the scheduler's work: exact counts, so
# one round is enough.
CYCLE_COUNT_CASES = tuple(f"{case}-count" for case in CYCLE_CASES)
RESTART_COUNTED = ("trio", "trio-serving", "proctree", "proctree-leaf")
RESTART_COUNT_CASES = tuple(f"restart-{side}-count" for side in RESTART_COUNTED)
COUNT_CASES = CYCLE_COUNT_CASES + RESTART_COUNT_CASES

# Jobs below SHORT_N take well under a second and vary by +-20% from one
# process to the next: they get SHORT_N // n times the rounds, at most
# MAX_EXTRA times.
SHORT_N = 100_000
MAX_EXTRA = 10


@dataclass(frozen=True)
class Sizes:
    flat: int  # (a)
    memory: int  # (b)
    trees: tuple[int, ...]  # (c), ascending
    depth: int  # (d)
    cycles: int  # (e)
    supervised: int  # (f) start+close
    restarts: int  # (f) restart latency, and (g)'s restarts
    peers: tuple[int, ...]  # (g) spawn+close, ascending
    rss: int  # (h) peak RSS


FULL = Sizes(
    flat=100_000,
    memory=100_000,
    trees=(10_000, 100_000, 1_000_000),
    depth=100_000,
    cycles=2_000,
    supervised=10_000,
    restarts=1_000,
    peers=(999, 10_000, 100_000),
    rss=1_000_000,
)
QUICK = Sizes(
    flat=10_000,
    memory=10_000,
    trees=(10_000, 100_000),
    depth=10_000,
    cycles=500,
    supervised=10_000,
    restarts=200,
    peers=(999, 10_000),
    rss=100_000,
)

Job = tuple[str, int]  # (case, n)


class BenchError(Exception):
    """A measurement could not be taken."""


# ----------------------------------------------------------------- worker


def worker(case: str, n: int, use_gc: bool) -> int:
    """Run one workload in this process and print its figures as JSON."""
    from phases import Phases
    from workloads import CASES

    if not use_gc:
        gc.disable()

    workload, _ = CASES[case]
    phases = Phases()
    metrics = workload(n, phases)
    metrics.update(phases.seconds)
    print(MARKER + json.dumps(metrics), flush=True)
    return 0


def profile(case: str, n: int, phase: str | None, top: int, use_gc: bool) -> int:
    """Run one workload under cProfile, profiling one phase, and print the top."""
    from phases import Phases
    from workloads import CASES

    if not use_gc:
        gc.disable()

    if phase is None:
        phase = "stop" if case in CYCLE_CASES else "close"
    workload, description = CASES[case]
    profiler = cProfile.Profile()
    phases = Phases(profiler, phase)
    workload(n, phases)
    if phase not in phases.seconds:
        has = ", ".join(phases.seconds) or "none"
        raise BenchError(f"workload {case!r} has no phase {phase!r} (it has: {has})")
    print(
        f"{description}, n = {n:,}: phase {phase!r} took {phases.seconds[phase]:.3f} s"
    )
    print(by_package(pstats.Stats(profiler)))
    for key in ("tottime", "cumulative"):
        print(f"\n--- top {top} by {key} ---")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(key).print_stats(top)
    return 0


def package_of(filename: str) -> str:
    """Whose code a profiled function is: proctree, trio, the benchmark, other."""
    path = filename.replace(os.sep, "/")
    for package in ("proctree", "trio"):
        if f"/{package}/" in path:
            return package
    if path.startswith(str(HERE).replace(os.sep, "/")):
        return "benchmark"
    return "other (stdlib, builtins)"


def by_package(stats: pstats.Stats) -> str:
    """The profiled phase's own time (tottime) and calls, summed by package."""
    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, _, _), (_, ncalls, tottime, _, _) in entries.items():
        package = package_of(filename)
        seconds[package] = seconds.get(package, 0.0) + tottime
        calls[package] = calls.get(package, 0) + ncalls
    total = sum(seconds.values()) or 1.0
    lines = ["\n--- own time by package (tottime, under the profiler) ---"]
    for package in sorted(seconds, key=seconds.__getitem__, reverse=True):
        share = seconds[package] / total
        lines.append(
            f"  {package:<26} {seconds[package]:8.3f} s  {share:6.1%}"
            f"  {calls[package]:>10,} calls"
        )
    return "\n".join(lines)


# ------------------------------------------------------------ orchestrator


def without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run_job(
    case: str, n: int, timeout: float, use_gc: bool, pythons: dict[str, Path]
) -> dict[str, float]:
    """Run one workload in a fresh interpreter and return its figures.

    A peer's workloads run its script with its interpreter from ``pythons``,
    without PYTHONPATH, so that they never see this checkout's proctree.
    """
    env: dict[str, str] | None = None
    peer = PEER_OF_CASE.get(case)
    if peer is not None:
        if peer.name not in pythons:
            raise BenchError(peer.skipped)
        script, python = HERE / peer.script, str(pythons[peer.name])
        env = without_pythonpath()
    else:
        script, python = HERE / Path(__file__).name, sys.executable
    cmd = [python, str(script), "--worker", case, "--n", str(n)]
    if not use_gc:
        cmd.append("--no-gc")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout:g} s (raise --timeout)") from None
    except OSError as exc:
        raise BenchError(f"cannot run {python}: {exc}") from None
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            figures: dict[str, float] = json.loads(line[len(MARKER) :])
            return figures
    lines = proc.stderr.strip().splitlines()
    last = lines[-1] if lines else "no output"
    if proc.returncode < 0:
        last += " (killed by a signal: out of memory?)"
    raise BenchError(f"worker exited with status {proc.returncode}: {last}")


@dataclass
class Results:
    """Every round's figures per job, and the first error per failed job."""

    rounds: dict[Job, list[dict[str, float]]] = field(default_factory=dict)
    errors: dict[Job, str] = field(default_factory=dict)

    def median(self, job: Job, key: str) -> float | None:
        values = [r[key] for r in self.rounds.get(job, []) if key in r]
        if job in self.errors or not values:
            return None
        return statistics.median(values)


# (g): each side's spawn+close workload, and the largest N it runs.
FLAT_CASES = {
    "trio": "trio",
    "floor": "trio-scoped",
    "proctree": "go",
    "Supervisor": "sup-proctree",
    "anyio": "anyio",
    "async-service": "async-service",
    "triotp": "sup-triotp",
}
ASYNC_SERVICE_CAP = 1_000
FLAT_MAX = {
    # TooManyChildrenException past 1,000 (in fact at the 1,002nd).
    "async-service": ASYNC_SERVICE_CAP,
    # About a second per 1,000 children and phase; 100,000 would take some
    # 6 minutes a round (NOTES.md's 19-34x bare trio).
    "triotp": 10_000,
    "Supervisor": 10_000,  # as in (f), next to triotp's supervisor
}
FLAT_NOT_RUN = {
    "async-service": (
        "n/a: at most 1,000 children per parent (TooManyChildrenException)"
    ),
    "triotp": "not run: largest N for triotp is 10,000 (minutes a round)",
    "Supervisor": "not run: largest N here is 10,000, as for triotp",
}
CYCLE_OF = {
    "trio": "trio-nested",
    "proctree": "sequential",
    "anyio": "cycle-anyio",
    "async-service": "cycle-async-service",
    "triotp": "cycle-triotp",
}
RESTART_OF = {
    "trio": "restart-trio",
    "proctree": "restart-proctree",
    "anyio": "restart-anyio",
    "triotp": "restart-triotp",
}


def peer_of(side: str) -> str | None:
    """The peer whose interpreter runs ``side``'s workloads, or None for ours."""
    return side if side in PEERS else None


def plan_peers(sizes: Sizes, peers: Iterable[str]) -> list[Job]:
    """(g)'s jobs, leaving out the peers that are skipped."""
    runs = {"trio", "floor", "proctree", "Supervisor", *peers}
    jobs: list[Job] = []
    for n in sizes.peers:
        jobs += [
            (case, n)
            for side, case in FLAT_CASES.items()
            if side in runs and n <= FLAT_MAX.get(side, n)
        ]
    jobs += [(c, sizes.cycles) for side, c in CYCLE_OF.items() if side in runs]
    jobs += [(c, sizes.restarts) for side, c in RESTART_OF.items() if side in runs]
    return jobs


def plan(sections: str, sizes: Sizes, peers: Iterable[str]) -> list[Job]:
    """Every job of the chosen sections, once; ``peers``: the ones that run."""
    peers = set(peers)
    triotp = "triotp" in peers
    jobs: list[Job] = []
    if "a" in sections:
        jobs += [
            (case, sizes.flat)
            for case in ("trio", "trio-scoped", "trio-scoped-each", "go", "go-graceful")
        ]
    if "b" in sections:
        jobs += [
            (case, sizes.memory)
            for case in (
                "mem-trio",
                "mem-trio-scoped",
                "mem-go",
                "mem-go-graceful",
                "mem-with_parent",
            )
        ]
    if "c" in sections:
        for n in sizes.trees:
            jobs += [("trio", n), ("tree", n)]
    if "d" in sections:
        jobs.append(("chain", sizes.depth))
    if "e" in sections:
        jobs += [(case, sizes.cycles) for case in CYCLE_CASES]
        jobs += [(case, sizes.cycles) for case in CYCLE_COUNT_CASES]
    if "f" in sections:
        jobs += [("sup-proctree", sizes.supervised)]
        jobs += [("sup-triotp", sizes.supervised)] if triotp else []
        jobs += [
            (case, sizes.restarts)
            for case in (
                "restart-trio",
                "restart-trio-serving",
                "restart-proctree",
                "restart-proctree-leaf",
                "restart-proctree-leaf-logged",
            )
        ]
        jobs += [("restart-triotp", sizes.restarts)] if triotp else []
        jobs += [(case, sizes.restarts) for case in RESTART_COUNT_CASES]
    if "g" in sections:
        jobs += plan_peers(sizes, peers)
    if "h" in sections:
        jobs += [(case, sizes.rss) for case, _, _ in RSS_CASES]
    # (a), (c) and (g) share bare trio runs, (e), (f) and (g) others.
    return list(dict.fromkeys(jobs))


def rounds_for(job: Job, repeats: int, quick: bool) -> int:
    """Rounds for a job of size ``n``: short, noisy jobs get more (not in --quick)."""
    case, n = job
    if case in COUNT_CASES:
        return 1
    if quick or (case in LONG_CASES and n >= LONG_N):
        return repeats
    return repeats * max(1, min(MAX_EXTRA, SHORT_N // n))


def measure(
    jobs: Sequence[Job],
    repeats: int,
    quick: bool,
    timeout: float,
    use_gc: bool,
    pythons: dict[str, Path],
) -> Results:
    """Run every job its rounds, round after round, each in a fresh process."""
    results = Results()
    wanted = {job: rounds_for(job, repeats, quick) for job in jobs}
    total = sum(wanted.values())
    done = 0
    for round_no in range(1, max(wanted.values()) + 1):
        for job in jobs:
            if round_no > wanted[job]:
                continue
            done += 1
            case, n = job
            label = f"[{done}/{total}] round {round_no}/{wanted[job]}: {case} n={n:,}"
            if job in results.errors:
                log(f"{label}: skipped (failed before)")
                continue
            started = time.perf_counter()
            try:
                figures = run_job(case, n, timeout, use_gc, pythons)
            except BenchError as exc:
                results.errors[job] = str(exc)
                log(f"{label}: ERROR {exc}")
                continue
            results.rounds.setdefault(job, []).append(figures)
            log(f"{label}: {time.perf_counter() - started:.1f} s")
    return results


def dump(results: Results, jobs: Sequence[Job], path: Path) -> None:
    """Write every round's raw figures (seconds, bytes per task) as JSON."""
    data = [
        {
            "case": case,
            "n": n,
            "rounds": results.rounds.get((case, n), []),
            "error": results.errors.get((case, n)),
        }
        for case, n in jobs
    ]
    path.write_text(json.dumps(data, indent=1) + "\n")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- report


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], note: bool = False
) -> str:
    """Align a table: the first column left, the others right.

    With ``note``, the last column is a free text, aligned left too.
    """
    body = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in body) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        if note:
            out[-1] = cells[-1].ljust(widths[-1])
        return "  " + "  ".join(out).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(body[0]), rule, *(line(r) for r in body[1:])])


def us(seconds: float | None, n: int) -> str:
    return "error" if seconds is None else f"{seconds / n * 1e6:.1f}"


def ratio(x: float | None, base: float | None) -> float | None:
    return None if x is None or base is None or base == 0 else x / base


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def fmt_count(count: float | None) -> str:
    """A per-cycle or per-restart count of the scheduler's work."""
    return "-" if count is None else f"{count:.1f}"


def verdict(checks: dict[str, float | None], limit: float) -> str:
    """PASS if every ratio is within ``limit``, else FAIL naming the culprits."""
    if any(v is None for v in checks.values()):
        return "n/a (error)"
    over = [f"{k} {v:.2f}x" for k, v in checks.items() if v is not None and v > limit]
    return "PASS" if not over else "FAIL (" + ", ".join(over) + ")"


def section_a(res: Results, n: int) -> str:
    base, floor = ("trio", n), ("trio-scoped", n)
    b_spawn, b_close = res.median(base, "spawn"), res.median(base, "close")
    f_spawn, f_close = res.median(floor, "spawn"), res.median(floor, "close")
    f_both = None if f_spawn is None or f_close is None else f_spawn + f_close
    rows = []
    for case, label in (
        ("trio", "bare trio: start_soon, nursery cancel"),
        ("trio-scoped", "floor: bare task in its own CancelScope"),
        ("trio-scoped-each", "floor, each scope cancelled alone"),
        ("go", "go: sleep_forever, aclose(grace=0)"),
        ("go-graceful", "go: await proc.closing, aclose()"),
    ):
        spawn, close = res.median((case, n), "spawn"), res.median((case, n), "close")
        both = None if spawn is None or close is None else spawn + close
        r_spawn, r_close = ratio(spawn, b_spawn), ratio(close, b_close)
        r_both = ratio(
            both, None if b_spawn is None or b_close is None else b_spawn + b_close
        )
        r_floor = ratio(both, f_both)
        if case == "trio":
            target = "(baseline)"
        elif case == "trio-scoped":
            # What any task that can be forced alone costs (docs/design.md,
            # section 11): the line under which no go process can be.
            target = "(floor)"
        elif case == "trio-scoped-each":
            # How a forced tree's close cancels: one cancel() per process.
            target = "(info)"
        elif case == "go":
            target = verdict({"x floor": r_floor}, TARGET_SPAWN_CLOSE)
        else:
            # The README's pattern, closed gracefully, against the floor
            # cancelled: what a graceful close costs over a forced one.
            target = verdict({"x floor": r_floor}, TARGET_GRACEFUL)
        rows.append(
            [
                label,
                us(spawn, n),
                fmt_ratio(r_spawn),
                us(close, n),
                fmt_ratio(r_close),
                us(both, n),
                fmt_ratio(r_both),
                fmt_ratio(r_floor),
                target,
            ]
        )
    headers = [
        f"N = {n:,}",
        "spawn us",
        "x trio",
        "close us",
        "x trio",
        "total us",
        "x trio",
        "x floor",
        f"target (x floor): go <= {TARGET_SPAWN_CLOSE:.1f}, "
        f"graceful <= {TARGET_GRACEFUL:.1f}",
    ]
    title = "(a) spawn + close, per task (spawn: calls until all tasks are blocked)"
    return title + "\n" + table(headers, rows)


MemoryCase = tuple[str, str, float | None]  # case, label, target (x floor)


def memory_rows(
    res: Results, n: int, cases: Sequence[MemoryCase], with_peak: bool
) -> list[list[str]]:
    """(b) and (h)'s rows: bytes each, against the first case and the second.

    Next to the bytes, (h) shows the peak RSS and (b) the objects the
    cyclic garbage collector tracks, per item.

    The first case is the baseline, the second the floor; a case with a
    target is judged against the floor, one without is for information.
    """
    base = res.median((cases[0][0], n), "bytes")
    floor = res.median((cases[1][0], n), "bytes")
    rows = []
    for i, (case, label, target) in enumerate(cases):
        size = res.median((case, n), "bytes")
        r, r_floor = ratio(size, base), ratio(size, floor)
        if i < 2:
            note = "(baseline)" if i == 0 else "(floor)"
        elif target is not None:
            note = verdict({"x floor": r_floor}, target)
        else:
            note = "(info)"
        row = [label, "error" if size is None else f"{size:,.0f}"]
        if with_peak:
            peak = res.median((case, n), "peak")
            row.append("error" if peak is None else f"{peak / 1e9:.2f}")
        else:
            objects = res.median((case, n), "objects")
            row.append("error" if objects is None else f"{objects:.1f}")
        rows.append([*row, fmt_ratio(r), fmt_ratio(r_floor), note])
    return rows


def section_b(res: Results, n: int) -> str:
    rows = memory_rows(
        res,
        n,
        (
            ("mem-trio", "bare trio task (sleep_forever)", None),
            ("mem-trio-scoped", "floor: bare task in its own CancelScope", None),
            ("mem-go", "go node, fn sleeping forever", TARGET_MEMORY),
            (
                "mem-go-graceful",
                "go node, fn awaiting proc.closing",
                TARGET_MEMORY_GRACEFUL,
            ),
            ("mem-with_parent", "with_parent node (no task)", None),
        ),
        with_peak=False,
    )
    headers = [
        f"N = {n:,} idle",
        "bytes each",
        "gc objects each",
        "x trio",
        "x floor",
        f"target (x floor): go <= {TARGET_MEMORY:.1f}, "
        f"awaiting closing <= {TARGET_MEMORY_GRACEFUL:.1f}",
    ]
    return "(b) memory per idle task / node (tracemalloc)\n" + table(headers, rows)


RSS_CASES: tuple[MemoryCase, ...] = (
    ("rss-trio", "bare trio task (sleep_forever)", None),
    ("rss-trio-scoped", "floor: bare task in its own CancelScope", None),
    ("rss-go", "go child, fn sleeping forever", TARGET_RSS),
)


def section_h(res: Results, n: int) -> str:
    """(h): the peak resident set of N idle children, against the floor's."""
    rows = memory_rows(res, n, RSS_CASES, with_peak=True)
    headers = [
        f"N = {n:,} idle",
        "bytes each",
        "peak GB",
        "x trio",
        "x floor",
        f"target (x floor): go <= {TARGET_RSS:.2f}",
    ]
    title = "(h) peak resident set (ru_maxrss) of N idle children, per child"
    return title + "\n" + table(headers, rows)


def growth(values: Sequence[float | None]) -> float | None:
    return ratio(values[-1], values[0])


def section_c(res: Results, sizes: tuple[int, ...]) -> str:
    def per_node(case: str, key: str) -> list[float | None]:
        out: list[float | None] = []
        for n in sizes:
            v = res.median((case, n), key)
            out.append(None if v is None else v / n * 1e6)
        return out

    def cells(values: Sequence[float | None]) -> list[str]:
        return ["error" if v is None else f"{v:.1f}" for v in values]

    t_close, p_close = per_node("trio", "close"), per_node("tree", "close")
    t_spawn, p_spawn = per_node("trio", "spawn"), per_node("tree", "spawn")
    g_trio, g_tree = growth(t_close), growth(p_close)
    g_ratio = ratio(g_tree, g_trio)
    ratios = [ratio(p, t) for p, t in zip(p_close, t_close, strict=True)]
    rows = [
        ["close: bare trio, flat", *cells(t_close), fmt_ratio(g_trio), ""],
        ["close: go tree, fanout 10", *cells(p_close), fmt_ratio(g_tree), ""],
        [
            "close: tree / trio",
            *(fmt_ratio(r) for r in ratios),
            fmt_ratio(g_ratio),
            verdict({"growth ratio": g_ratio}, TARGET_GROWTH),
        ],
        [
            "spawn: bare trio, flat (info)",
            *cells(t_spawn),
            fmt_ratio(growth(t_spawn)),
            "",
        ],
        ["build: go tree (info)", *cells(p_spawn), fmt_ratio(growth(p_spawn)), ""],
    ]
    headers = [
        "us per node at N =",
        *(f"{n:,}" for n in sizes),
        f"growth {short(sizes[-1])}/{short(sizes[0])}",
        f"target <= {TARGET_GROWTH:.1f}x",
    ]
    title = (
        "(c) close time of big trees vs bare trio at the same N (growth: per-node cost)"
    )
    return title + "\n" + table(headers, rows)


def short(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def section_d(res: Results, depth: int, trees: tuple[int, ...]) -> str:
    job = ("chain", depth)
    build, close = res.median(job, "spawn"), res.median(job, "close")
    flat = res.median(("tree", depth), "close") if depth in trees else None
    if job in res.errors:
        result = f"FAIL ({res.errors[job]})"
    elif close is None:
        result = "n/a"
    else:
        result = "PASS (closed, no RecursionError)"
    rows = [
        [
            f"{depth:,} levels",
            "error" if build is None else f"{build:.2f}",
            us(build, depth),
            "error" if close is None else f"{close:.2f}",
            us(close, depth),
            fmt_ratio(ratio(close, flat)),
            result,
        ]
    ]
    headers = [
        "chain of go nodes",
        "build s",
        "us/level",
        "close s",
        "us/level",
        "x tree (c)",
        "result",
    ]
    title = (
        "(d) deep chain closed from the root, grace=0 "
        "(x tree: vs the fanout-10 tree of the same N)"
    )
    return title + "\n" + table(headers, rows)


def section_e(res: Results, n: int) -> str:
    base = ("trio-nested", n)
    b_start, b_stop = res.median(base, "start"), res.median(base, "stop")
    b_total = None if b_start is None or b_stop is None else b_start + b_stop
    rows = []
    for case, label in CYCLE_ROWS.items():
        start, stop = res.median((case, n), "start"), res.median((case, n), "stop")
        total = None if start is None or stop is None else start + stop
        r_total = ratio(total, b_total)
        if case == "trio-nested":
            target = "(baseline)"
        elif case == "sequential":
            target = verdict({"total": r_total}, TARGET_START_STOP)
        else:
            target = "(info)"
        rows.append(
            [
                label,
                us(start, n),
                fmt_ratio(ratio(start, b_start)),
                us(stop, n),
                fmt_ratio(ratio(stop, b_stop)),
                us(total, n),
                fmt_ratio(r_total),
                target,
            ]
        )
    headers = [
        f"N = {n:,} cycles",
        "start us",
        "x trio",
        "stop us",
        "x trio",
        "total us",
        "x trio",
        f"target <= {TARGET_START_STOP:.1f}x",
    ]
    title = "(e) start+stop of a 3-deep sequential of leafs, per cycle"
    return title + "\n" + table(headers, rows) + "\n\n" + scheduler_counts(res, n)


def scheduler_counts(res: Results, n: int) -> str:
    """(e)'s second table: the scheduler's work per cycle, counted exactly."""

    keys = ("spawned_start", "passes_start", "steps_start", "passes_stop", "steps_stop")
    rows = []
    for case, label in CYCLE_ROWS.items():
        job = (f"{case}-count", n)
        rows.append([label, *(fmt_count(res.median(job, f"count_{k}")) for k in keys)])
    headers = [
        f"per cycle, over {n:,} cycles",
        "tasks spawned",
        "start passes",
        "start steps",
        "stop passes",
        "stop steps",
    ]
    title = (
        "(e) scheduler work per cycle (a trio.abc.Instrument counts run-loop"
        " passes and task steps; exact, not timed)"
    )
    return title + "\n" + table(headers, rows)


def section_f(res: Results, sizes: Sizes, peers: PeerSetup) -> str:
    """(f): start+close of a supervised fleet, and restart latency (info)."""
    triotp = peers.about["triotp"] if peers.runs("triotp") else None
    no_triotp = peers.about.get("triotp", PEERS["triotp"].skipped)
    n, k = sizes.supervised, sizes.restarts
    p_job, t_job = ("sup-proctree", n), ("sup-triotp", n)
    figures: dict[str, tuple[float | None, ...]] = {}
    for side, job in (("proctree", p_job), ("triotp", t_job)):
        spawn, close = res.median(job, "spawn"), res.median(job, "close")
        total = None if spawn is None or close is None else spawn + close
        figures[side] = (spawn, close, total)
    p_total, t_total = figures["proctree"][2], figures["triotp"][2]
    speedup = ratio(t_total, p_total)
    if triotp is None:
        result = "n/a (triotp skipped)"
    elif speedup is None:
        result = "n/a (error)"
    elif speedup >= TARGET_SUPERVISOR:
        result = "PASS"
    else:
        result = f"FAIL (triotp / proctree {speedup:.2f}x)"

    def cells(side: str) -> list[str]:
        if side == "triotp" and triotp is None:
            return ["-", "-", "-"]
        return [us(v, n) for v in figures[side]]

    rows = [
        ["proctree: Supervisor, start(), aclose(grace=0)", *cells("proctree"), ""],
        [
            "triotp: supervisor.start, nursery cancel",
            *cells("triotp"),
            no_triotp if triotp is None else "",
        ],
        [
            "triotp / proctree",
            *(
                fmt_ratio(ratio(t, p))
                for t, p in zip(figures["triotp"], figures["proctree"], strict=True)
            ),
            result,
        ],
    ]
    headers = [
        f"N = {n:,} children",
        "start us",
        "close us",
        "total us",
        f"target: triotp >= {TARGET_SUPERVISOR:.1f}x proctree",
    ]
    first = table(headers, rows)

    r_rows = []
    base = res.median(("restart-trio", k), "restart")
    # Each proctree child has a loop running the same shape of child.
    like = {
        "trio-serving": "trio",
        "proctree": "trio-serving",
        "proctree-leaf": "trio",
        "proctree-leaf-logged": "trio",
    }
    t_med = res.median(("restart-triotp", k), "restart") if triotp else None
    r_rows_labels = (
        ("trio", "bare trio: a hand-written loop, a nursery per run"),
        ("trio-serving", "bare trio: the loop, child serves beside a task"),
        ("proctree", "proctree: immediate(), child serves then fails"),
        ("proctree-leaf", "proctree: immediate(), child a leaf that fails"),
        ("proctree-leaf-logged", "proctree: the same, failures logged"),
        ("triotp", "triotp: PERMANENT, max_restarts past N"),
    )
    for side, label in r_rows_labels:
        job = (f"restart-{side}", k)
        if side == "triotp" and triotp is None:
            r_rows.append([label, "-", "-", "-", "-", no_triotp])
            continue
        med, p90 = res.median(job, "restart"), res.median(job, "restart_p90")
        like_cell, x_like = "-", None
        if side in like:
            like_med = res.median((f"restart-{like[side]}", k), "restart")
            x_like = ratio(med, like_med)
            like_cell = fmt_ratio(x_like)
        if side == "trio":
            verdict_cell = "(baseline)"
        elif side in ("triotp", "trio-serving", "proctree-leaf-logged"):
            verdict_cell = "(info)"
        else:
            # Judged against the loop that runs the same shape of child.
            faster = t_med is None or (med is not None and med < t_med)
            if x_like is None:
                verdict_cell = "n/a (error)"
            elif x_like <= TARGET_RESTART and faster:
                verdict_cell = "PASS"
            else:
                verdict_cell = f"FAIL ({x_like:.2f}x like loop)"
        r_rows.append(
            [
                label,
                us(med, 1),
                us(p90, 1),
                fmt_ratio(ratio(med, base)),
                like_cell,
                verdict_cell,
            ]
        )
    r_headers = [
        f"{k:,} restarts of a failing child",
        "median us",
        "p90 us",
        "x loop",
        "x like loop",
        f"target <= {TARGET_RESTART:.1f}x, < triotp",
    ]
    second = table(r_headers, r_rows)
    where = no_triotp if triotp is None else triotp
    title = (
        "(f) supervisor vs triotp: start+close of a fleet, per child; "
        "restart latency, raise to the next run's first line\n"
        f"  triotp side: {where}"
    )
    labels = dict(r_rows_labels)
    c_rows = []
    for side in RESTART_COUNTED:
        job = (f"restart-{side}-count", k)
        counts = [
            res.median(job, f"count_{key}_restarts")
            for key in ("spawned", "passes", "steps")
        ]
        c_rows.append([labels[side], *map(fmt_count, counts)])
    c_headers = [
        "per restart (counted, not timed)",
        "tasks spawned",
        "scheduler passes",
        "task steps",
    ]
    third = table(c_headers, c_rows)
    return title + "\n" + first + "\n\n" + second + "\n\n" + third


FLAT_LABELS = {
    "trio": "bare trio: nursery.start_soon, cancel",
    "floor": "floor: each task in its own CancelScope",
    "proctree": "proctree: root.go(fn), aclose(grace=0)",
    "Supervisor": "proctree: Supervisor of N, aclose(grace=0)",
    "anyio": "anyio: TaskGroup.start_soon, cancel",
    "async-service": "async-service: manager.run_task, cancel()",
    "triotp": "triotp: supervisor.start of N specs, cancel",
}
CYCLE_LABELS = {
    "trio": "bare trio: 3 nested nurseries, nursery.start",
    "proctree": "proctree: sequential(leaf x 3), start(), stop()",
    "anyio": "anyio: 3 nested task groups, tg.start",
    "async-service": "async-service: 3 nested run_child_service",
    "triotp": "triotp: 1 supervisor of 3 children (no order)",
}
RESTART_LABELS = {
    "trio": "bare trio: hand-written loop, nursery per run",
    "proctree": "proctree: Supervisor, RestartPolicy.immediate()",
    "anyio": "anyio: hand-written loop, task group per run",
    "async-service": "async-service",
    "triotp": "triotp: supervisor, PERMANENT child",
}
NO_RESTART = "n/a (no restart primitive)"


def section_g(res: Results, sizes: Sizes, peers: PeerSetup) -> str:
    """(g): the peers side by side: spawn+close, 3 services, restarts."""

    def skipped(side: str) -> str | None:
        peer = peer_of(side)
        if peer is None or peers.runs(peer):
            return None
        return peers.about.get(peer, PEERS[peer].skipped)

    def phases_row(
        label: str, job: Job, keys: tuple[str, str], base: Job, per: int
    ) -> list[str]:
        a, b = res.median(job, keys[0]), res.median(job, keys[1])
        base_a, base_b = res.median(base, keys[0]), res.median(base, keys[1])
        total = None if a is None or b is None else a + b
        base_total = None if base_a is None or base_b is None else base_a + base_b
        note = "(baseline)" if job == base else ""
        if job in res.errors:
            note = "error (see Errors)"
        return [
            label,
            us(a, per),
            fmt_ratio(ratio(a, base_a)),
            us(b, per),
            fmt_ratio(ratio(b, base_b)),
            us(total, per),
            fmt_ratio(ratio(total, base_total)),
            note,
        ]

    def blank(label: str, note: str) -> list[str]:
        return [label, "-", "-", "-", "-", "-", "-", note]

    # 1. spawn + close of N children under one parent.
    flat_rows: list[list[str]] = []
    for n in sizes.peers:
        base = ("trio", n)
        for side, case in FLAT_CASES.items():
            label = f"{n:>7,}  {FLAT_LABELS[side]}"
            why = skipped(side)
            if why is not None:
                flat_rows.append(blank(label, why))
            elif n > FLAT_MAX.get(side, n):
                flat_rows.append(blank(label, FLAT_NOT_RUN[side]))
            else:
                flat_rows.append(
                    phases_row(label, (case, n), ("spawn", "close"), base, n)
                )
    flat = table(
        [
            "      N  side",
            "spawn us",
            "x trio",
            "close us",
            "x trio",
            "total us",
            "x trio",
            "",
        ],
        flat_rows,
        note=True,
    )

    # 2. three services started in order and stopped in reverse.
    k = sizes.cycles
    cycle_rows = []
    for side, case in CYCLE_OF.items():
        why = skipped(side)
        if why is not None:
            cycle_rows.append(blank(CYCLE_LABELS[side], why))
        else:
            cycle_rows.append(
                phases_row(
                    CYCLE_LABELS[side],
                    (case, k),
                    ("start", "stop"),
                    ("trio-nested", k),
                    k,
                )
            )
    cycles = table(
        [
            f"{k:,} cycles, 3 services",
            "start us",
            "x trio",
            "stop us",
            "x trio",
            "total us",
            "x trio",
            "",
        ],
        cycle_rows,
        note=True,
    )

    # 3. a child that fails and is restarted at once, K times.
    r = sizes.restarts
    base_restart = res.median(("restart-trio", r), "restart")
    restart_rows = []
    for side in RESTART_LABELS:
        why = skipped(side)
        if side not in RESTART_OF:
            restart_rows.append([RESTART_LABELS[side], "-", "-", "-", NO_RESTART])
        elif why is not None:
            restart_rows.append([RESTART_LABELS[side], "-", "-", "-", why])
        else:
            job = (RESTART_OF[side], r)
            med, p90 = res.median(job, "restart"), res.median(job, "restart_p90")
            note = "(baseline)" if side == "trio" else ""
            if job in res.errors:
                note = "error (see Errors)"
            restart_rows.append(
                [
                    RESTART_LABELS[side],
                    us(med, 1),
                    us(p90, 1),
                    fmt_ratio(ratio(med, base_restart)),
                    note,
                ]
            )
    restarts = table(
        [f"{r:,} restarts, per restart", "median us", "p90 us", "x trio", ""],
        restart_rows,
        note=True,
    )

    # The targets: proctree's close per child against the peers'.
    def close(case: str, n: int) -> float | None:
        return res.median((case, n), "close")

    n_as, n_tp = ASYNC_SERVICE_CAP - 1, FLAT_MAX["triotp"]
    target_rows = []
    for label, peer, peer_job, ours, limit in (
        (
            f"async-service / proctree go, N = {n_as:,}",
            "async-service",
            ("async-service", n_as),
            ("go", n_as),
            TARGET_VS_ASYNC_SERVICE,
        ),
        # What the floor itself reaches: a target it misses is out of reach
        # for any process that can be cancelled alone (contract 6).
        (
            f"async-service / floor, N = {n_as:,}",
            "async-service",
            ("async-service", n_as),
            ("trio-scoped", n_as),
            TARGET_VS_ASYNC_SERVICE,
        ),
        (
            f"triotp / proctree go, N = {n_tp:,}",
            "triotp",
            ("sup-triotp", n_tp),
            ("go", n_tp),
            TARGET_VS_TRIOTP,
        ),
        (
            f"triotp / floor, N = {n_tp:,}",
            "triotp",
            ("sup-triotp", n_tp),
            ("trio-scoped", n_tp),
            TARGET_VS_TRIOTP,
        ),
        (
            f"triotp / proctree Supervisor, N = {n_tp:,}",
            "triotp",
            ("sup-triotp", n_tp),
            ("sup-proctree", n_tp),
            TARGET_VS_TRIOTP,
        ),
    ):
        want = f">= {limit:g}x"
        if not peers.runs(peer):
            target_rows.append([label, "-", "-", "-", want, "n/a (peer skipped)"])
            continue
        if peer_job[1] not in sizes.peers:
            target_rows.append([label, "-", "-", "-", want, "n/a (N not run)"])
            continue
        theirs, mine = close(*peer_job), close(*ours)
        speedup = ratio(theirs, mine)
        if speedup is None:
            result = "n/a (error)"
        elif ours[0] == "trio-scoped":
            reach = "within" if speedup >= limit else "beyond"
            result = f"(info: the target is {reach} the floor's reach)"
        else:
            result = "PASS" if speedup >= limit else "FAIL"
        target_rows.append(
            [
                label,
                us(theirs, peer_job[1]),
                us(mine, ours[1]),
                fmt_ratio(speedup),
                want,
                result,
            ]
        )
    targets = table(
        [
            "close per child, peer / ours",
            "peer us",
            "ours us",
            "ratio",
            "target",
            "result",
        ],
        target_rows,
    )

    about = "\n".join(f"  {name}: {peers.about[name]}" for name in PEERS)
    title = (
        "(g) peers side by side, the same work in each (x trio: vs bare trio "
        "in this run)\n" + about
    )
    return "\n\n".join(
        [
            title + "\n\n  1. spawn + close of N children under one parent, "
            "per child\n" + flat,
            "  2. start 3 services in order, stop them in reverse, per cycle\n"
            + cycles,
            "  3. a child that fails as soon as it runs, restarted at once: "
            "its raise to its next run's first line\n" + restarts,
            "  targets: proctree's close per child against the peers'\n" + targets,
        ]
    )


@dataclass
class PeerSetup:
    """The peers that run, with their interpreters, and a line about each."""

    pythons: dict[str, Path] = field(default_factory=dict)
    about: dict[str, str] = field(default_factory=dict)  # versions, or why skipped

    def runs(self, name: str) -> bool:
        return name in self.pythons


def find_peers(wanted: Iterable[str], given: dict[str, Path | None]) -> PeerSetup:
    """Ask each wanted peer's interpreter for its versions; skip those that fail.

    ``given`` maps a peer to the interpreter chosen for it, None if missing.
    """
    setup = PeerSetup()
    for name in wanted:
        peer, python = PEERS[name], given.get(name)
        if python is None:
            setup.about[name] = peer.skipped
            continue
        try:
            done = subprocess.run(
                [str(python), str(HERE / peer.script), "--describe"],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
                env=without_pythonpath(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            setup.about[name] = f"skipped: cannot run {python}: {exc}"
            continue
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            why = lines[-1] if lines else f"status {done.returncode}"
            setup.about[name] = f"skipped: {python} {peer.script} failed: {why}"
            continue
        setup.pythons[name] = python
        setup.about[name] = f"{done.stdout.strip()} at {python}"
    return setup


def git(where: Path, *args: str) -> str | None:
    """Output of a git command run in ``where``, or None if git fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def source(where: Path) -> str:
    """Which proctree is measured: its directory, commit and whether it is edited."""
    commit = git(where, "rev-parse", "--short", "HEAD")
    if commit is None:
        return f"proctree at {where} (not a git checkout)"
    edited = git(where, "status", "--porcelain", "--", ".")
    state = ", with uncommitted edits" if edited else ""
    return f"proctree at {where} (commit {commit}{state})"


def rounds_note(repeats: int, quick: bool) -> str:
    if quick:
        return f"{repeats} round(s)"
    return (
        f"{repeats} rounds (N < {SHORT_N:,}: {SHORT_N:,}/N times as many, "
        f"up to {MAX_EXTRA}x)"
    )


def header(repeats: int, quick: bool, use_gc: bool) -> str:
    import trio

    import proctree

    return (
        f"proctree benchmarks{' (quick)' if quick else ''}: "
        f"median of {rounds_note(repeats, quick)}, each from a fresh process; "
        f"cyclic gc {'on' if use_gc else 'OFF (--no-gc)'}\n"
        f"Python {platform.python_version()}, trio {trio.__version__}, "
        f"{source(Path(proctree.__file__).resolve().parent)}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"
    )


def report(
    res: Results,
    sections: str,
    sizes: Sizes,
    repeats: int,
    quick: bool,
    use_gc: bool,
    peers: PeerSetup,
    heading: str | None = None,
) -> str:
    """The tables; ``heading``, taken before the run, names what was measured."""
    parts = [heading or header(repeats, quick, use_gc)]
    if "a" in sections:
        parts.append(section_a(res, sizes.flat))
    if "b" in sections:
        parts.append(section_b(res, sizes.memory))
    if "c" in sections:
        parts.append(section_c(res, sizes.trees))
    if "d" in sections:
        parts.append(
            section_d(res, sizes.depth, sizes.trees if "c" in sections else ())
        )
    if "e" in sections:
        parts.append(section_e(res, sizes.cycles))
    if "f" in sections:
        parts.append(section_f(res, sizes, peers))
    if "g" in sections:
        parts.append(section_g(res, sizes, peers))
    if "h" in sections:
        parts.append(section_h(res, sizes.rss))
    if res.errors:
        lines = [f"  {case} n={n:,}: {msg}" for (case, n), msg in res.errors.items()]
        parts.append("Errors:\n" + "\n".join(lines))
    return "\n\n".join(parts)


# ------------------------------------------------------------------- CLI


def positive(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    try:
        from workloads import CASES
    except ImportError as exc:
        raise BenchError(
            f"cannot import the workloads ({exc}); run with the project's "
            "virtualenv, where trio and proctree are installed "
            "(pip install -e . in the repository)"
        ) from exc

    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=(
            "Measure proctree against bare trio: (a) spawn + close of N go "
            "children, (b) memory per idle node, (c) close time of trees of "
            "10k, 100k and 1M nodes, (d) a 100,000-deep chain, (e) start+stop "
            "of a 3-deep sequential of leafs, (f) a Supervisor against "
            "triotp 0.2.1 (start+close of 10,000 children, restart latency), "
            "(g) the peers side by side: bare trio, anyio task groups, "
            "async-service 0.1.0a11 and triotp 0.2.1 (spawn+close of N "
            "children, 3 services started and stopped in order, restarts; "
            "each peer runs in its own interpreter, see --PEER-python), (h) the "
            "peak RSS of 1,000,000 idle go children against the floor's. Prints "
            "one table with PASS/FAIL next to each target."
        ),
        epilog=(
            "Each figure is the median over the rounds; every measurement runs "
            "in its own fresh Python process. The full run takes several "
            "minutes and a few GB of memory (the 1M-node trees). "
            "Workloads for --profile: " + ", ".join(CASES) + "."
        ),
    )
    parser.add_argument(
        "--repeats", type=positive, default=3, help="rounds per measurement (default 3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "smoke run with small N: 10k tasks, trees of 10k and 100k, "
            "a 10k chain, 500 start+stop cycles, 200 restarts, peers at "
            "N = 999 and 10k, peak RSS at 100k"
        ),
    )
    parser.add_argument(
        "--only",
        default=SECTIONS,
        metavar="SECTIONS",
        help=f"which sections to run, letters from {SECTIONS!r} (default: all)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="give up on one measurement after this long (default 1800)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(CASES),
        metavar="WORKLOAD",
        help=(
            "instead of the table, run one workload under cProfile "
            "and print the top functions"
        ),
    )
    parser.add_argument(
        "--phase",
        choices=("spawn", "close", "start", "stop", "restarts"),
        help=(
            "phase to profile with --profile: spawn or close; start or stop "
            "for the (e) workloads, restarts for the restart ones "
            "(default: close, or stop)"
        ),
    )
    parser.add_argument(
        "--n",
        type=positive,
        default=100_000,
        help="size for --profile (default 100,000)",
    )
    parser.add_argument(
        "--top", type=positive, default=25, help="rows to print with --profile"
    )
    parser.add_argument(
        "--no-gc",
        dest="use_gc",
        action="store_false",
        help="switch the cyclic gc off in every measurement (to see its share)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write every round's raw figures to PATH as JSON",
    )
    for peer in PEERS.values():
        default = peer.default_python or Path(sys.executable)
        exists = default.exists()
        parser.add_argument(
            peer.option,
            type=Path,
            default=default if exists else None,
            metavar="PATH",
            help=(
                f"the Python of a virtualenv with {peer.name} (and not proctree), "
                f"for {'(f) and ' if peer.name == 'triotp' else ''}(g) "
                f"(default {default if peer.default_python else 'this one'}"
                f"{' if it exists' if peer.default_python else ''}; "
                f"without one the {peer.name} rows are skipped)"
            ),
        )
    parser.add_argument("--worker", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.only or set(args.only) - set(SECTIONS):
        parser.error(f"--only takes letters from {SECTIONS!r}, got {args.only!r}")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    for peer in PEERS.values():
        python = peer_python(args, peer)
        if python is not None and not python.exists():
            log(f"no {peer.name} interpreter at {python}: skipping {peer.name}")
            setattr(args, python_dest(peer), None)
    return args


def python_dest(peer: Peer) -> str:
    return peer.option.removeprefix("--").replace("-", "_")


def peer_python(args: argparse.Namespace, peer: Peer) -> Path | None:
    python: Path | None = getattr(args, python_dest(peer))
    return python


def main(argv: Sequence[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))  # so that `workloads` imports from anywhere
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker, args.n, args.use_gc)
    if args.profile:
        return profile(args.profile, args.n, args.phase, args.top, args.use_gc)
    sections = "".join(s for s in SECTIONS if s in args.only)
    sizes = QUICK if args.quick else FULL
    wanted = list(PEERS) if "g" in sections else ["triotp"] if "f" in sections else []
    peers = find_peers(
        wanted, {name: peer_python(args, PEERS[name]) for name in wanted}
    )
    for name in wanted:
        log(f"{name}: {peers.about[name]}")
    jobs = plan(sections, sizes, peers.pythons)
    # Before the run: the checkout may move on (a commit) while it lasts.
    heading = header(args.repeats, args.quick, args.use_gc)
    runs = sum(rounds_for(job, args.repeats, args.quick) for job in jobs)
    log(f"running {len(jobs)} measurements, {runs} processes in all")
    results = measure(
        jobs, args.repeats, args.quick, args.timeout, args.use_gc, peers.pythons
    )
    print(
        report(
            results,
            sections,
            sizes,
            args.repeats,
            args.quick,
            args.use_gc,
            peers,
            heading,
        )
    )
    if args.json is not None:
        try:
            dump(results, jobs, args.json)
        except OSError as exc:
            log(f"error: cannot write {args.json}: {exc}")
            return 1
    if results.errors:
        log(f"{len(results.errors)} measurement(s) failed; see 'Errors' above")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(1)
