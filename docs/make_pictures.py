"""Make the pictures of docs/seeing.rst from a real run.

Run from the repository's root (needs Debian's chromium and
chromium-driver, and selenium)::

    python docs/make_pictures.py

It runs ``docs/picture_app.py:app`` with ``proctree run --shutdown-report``,
serves its live page with ``proctree tree PID --serve``, takes a screenshot
of the page in headless Chromium, stops the program with SIGTERM and keeps
the timeline it wrote. The files go to ``docs/_static/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "docs" / "_static"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from tests.ops.browser import chromium

    STATIC.mkdir(exist_ok=True)
    runtime = tempfile.mkdtemp(prefix="proctree-pictures-")
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime, "PYTHONPATH": str(ROOT)}
    report = Path(runtime) / "shutdown.svg"
    program = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proctree",
            "run",
            "docs.picture_app:app",
            "--shutdown-report",
            str(report),
            "--grace",
            "1.5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert program.stdout is not None
    assert program.stdout.readline().strip() == "serving"
    serving = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proctree",
            "tree",
            str(program.pid),
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
        with chromium(1200, 640) as browser:
            browser.get(url)
            wait = WebDriverWait(browser, 30)
            wait.until(
                lambda b: b.find_elements(
                    By.CSS_SELECTOR, '.row.closed[data-name="conn-1"]'
                )
            )
            browser.save_screenshot(str(STATIC / "live-page.png"))
    finally:
        serving.terminate()
        serving.communicate(timeout=30)
        program.terminate()
        _, err = program.communicate(timeout=60)
    print(err, file=sys.stderr)
    shutil.copy(report, STATIC / "shutdown-timeline.svg")
    print(f"wrote {STATIC / 'live-page.png'} and {STATIC / 'shutdown-timeline.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
