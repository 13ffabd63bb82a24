"""A real headless Chromium for the live page's tests, driven by selenium.

Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run``
installs them). Without them the tests are skipped, unless
``PROCTREE_REQUIRE_BROWSER=1`` (set by ``.ci/run``): then they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def need_browser() -> None:
    """Skip (or, when CI requires the browser, fail) without Chromium."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        why = (
            f"the browser test needs {', '.join(missing)} "
            "(apt-get install chromium chromium-driver)"
        )
        if os.environ.get("PROCTREE_REQUIRE_BROWSER") == "1":
            pytest.fail(why)
        pytest.skip(why)


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium with a new empty profile."""
    need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="proctree-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
