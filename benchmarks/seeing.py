"""Benchmarks of seeing the tree: the timeline recorder, `tree --json`, the live page.

Run from the repository's root with the project's virtualenv::

    python benchmarks/seeing.py                 # all three, about 2 minutes
    python benchmarks/seeing.py --only recorder --repeats 7

Each measurement runs in a fresh process; the recorder's rounds are
interleaved (with, without, with, ...) and the figure is the median.
The page needs Debian's chromium and chromium-driver, and selenium.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = "SEEING-RESULT "
TARGET_RECORDER = 1.2  # close with the recorder / close without, at most
TARGET_TREE_JSON = 2.0  # seconds for `proctree tree PID --json`, 100,000 processes
TARGET_PAGE_MS = 100.0  # ms to draw an update / answer a click, 10,000 processes


def _close_worker(n: int, recorder: bool) -> None:
    import trio

    import proctree

    async def fn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async def main() -> float:
        instruments = [proctree.ShutdownTimeline()] if recorder else []
        async with proctree.open_root(instruments=instruments) as root:
            for _ in range(n):
                root.go(fn)
            await trio.testing.wait_all_tasks_blocked()
            start = time.perf_counter()
            await root.aclose(grace=0)
        took = time.perf_counter() - start
        if recorder:
            assert len(instruments[0].spans()) == n + 1  # type: ignore[attr-defined]
        return took

    import trio.testing

    print(MARKER + json.dumps(trio.run(main)))


def _run_worker(*args: str) -> Any:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith(MARKER))
    return json.loads(line[len(MARKER) :])


def bench_recorder(n: int, repeats: int) -> dict[str, Any]:
    without, with_ = [], []
    for _ in range(repeats):
        without.append(_run_worker("close", str(n), "0"))
        with_.append(_run_worker("close", str(n), "1"))
    a, b = statistics.median(without), statistics.median(with_)
    return {
        "n": n,
        "close_without_s": a,
        "close_with_recorder_s": b,
        "ratio": b / a,
        "target": TARGET_RECORDER,
        "pass": b / a <= TARGET_RECORDER,
    }


def _program(n: int, runtime: str) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime, "SEEING_JOBS": str(n)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "proctree", "run", "tests.ops.seeing_targets:wide"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def bench_tree_json(n: int, repeats: int) -> dict[str, Any]:
    runtime = tempfile.mkdtemp(prefix="proctree-bench-")
    proc = _program(n, runtime)
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime}
    try:
        times, size = [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "proctree", "tree", str(proc.pid), "--json"],
                capture_output=True,
                check=True,
                cwd=ROOT,
                env=env,
            )
            times.append(time.perf_counter() - start)
            size = len(out.stdout)
            assert len(json.loads(out.stdout)["processes"]) >= n
        text_start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "proctree", "tree", str(proc.pid)],
            capture_output=True,
            check=True,
            cwd=ROOT,
            env=env,
        )
        text_s = time.perf_counter() - text_start
    finally:
        proc.terminate()
        proc.communicate(timeout=120)
    took = statistics.median(times)
    return {
        "n": n,
        "tree_json_s": took,
        "tree_text_s": text_s,
        "json_bytes": size,
        "target": TARGET_TREE_JSON,
        "pass": took <= TARGET_TREE_JSON,
    }


def bench_page(n: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from tests.ops.browser import chromium

    runtime = tempfile.mkdtemp(prefix="proctree-bench-")
    proc = _program(n, runtime)
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime}
    serving = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proctree",
            "tree",
            str(proc.pid),
            "--serve",
            "127.0.0.1:0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert serving.stdout is not None
        url = serving.stdout.readline().split(" on ", 1)[1].split()[0]
        with chromium() as browser:
            start = time.perf_counter()
            browser.get(url)
            wait = WebDriverWait(browser, 120)
            wait.until(lambda b: b.execute_script("return proctreePage.documents") >= 1)
            first_s = time.perf_counter() - start
            render_ms = browser.execute_script("return proctreePage.lastRenderMs")
            toggle = browser.find_element(
                By.CSS_SELECTOR, '.row[data-name="jobs"] .toggle'
            )
            click_ms = []
            for _ in range(10):
                click_ms.append(
                    browser.execute_script(
                        "const t = performance.now(); arguments[0].click();"
                        " return performance.now() - t;",
                        browser.find_element(
                            By.CSS_SELECTOR, '.row[data-name="jobs"] .toggle'
                        ),
                    )
                )
            del toggle
            # Unfold "jobs" (it starts folded: 10,000 children), then every
            # one of the n rows drawn at once: "show more" to the end.
            browser.find_element(
                By.CSS_SELECTOR, '.row[data-name="jobs"] .toggle'
            ).click()
            opened_rows = browser.execute_script(
                "return document.querySelectorAll('.row').length"
            )
            while True:
                more = browser.find_elements(By.CSS_SELECTOR, ".more")
                if not more:
                    break
                more[0].click()
            rows = browser.execute_script(
                "return document.querySelectorAll('.row').length"
            )
            full_ms = browser.execute_script("return proctreePage.lastRenderMs")
    finally:
        serving.terminate()
        serving.communicate(timeout=60)
        proc.terminate()
        proc.communicate(timeout=60)
    worst = max(render_ms, statistics.median(click_ms))
    return {
        "n": n,
        "first_document_s": first_s,
        "update_render_ms": render_ms,
        "click_ms_median": statistics.median(click_ms),
        "rows_when_unfolded": opened_rows,
        "all_rows_drawn": rows,
        "all_rows_render_ms": full_ms,
        "target_ms": TARGET_PAGE_MS,
        "pass": worst <= TARGET_PAGE_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=("recorder", "tree-json", "page"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _kind, n, flag = args.worker
        _close_worker(int(n), flag == "1")
        return 0
    results: dict[str, Any] = {}
    if args.only in (None, "recorder"):
        results["recorder, close of 100,000"] = bench_recorder(100_000, args.repeats)
    if args.only in (None, "tree-json"):
        results["tree --json, 100,000"] = bench_tree_json(100_000, 3)
    if args.only in (None, "page"):
        results["live page, 10,000"] = bench_page(10_000)
    for name, figures in results.items():
        verdict = "PASS" if figures.pop("pass") else "FAIL"
        shown = ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in figures.items()
        )
        print(f"{verdict}  {name}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
