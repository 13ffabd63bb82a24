"""The live page: its ASGI application on a real hypercorn, and in a real browser."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

import proctree
from proctree._ops.control_server import CloseLog

from ..support.helpers import until_closing
from .browser import chromium
from .seeing_support import ROOT, env, program


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.headers["content-type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read()


def _events(url: str, count: int, each: Any) -> None:
    """Read ``count`` tree events from the event stream, calling ``each(doc)``."""
    seen = 0
    with urllib.request.urlopen(url, timeout=30) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                trio.from_thread.run_sync(each, json.loads(line[6:]))
                seen += 1
                if seen == count:
                    return
    raise AssertionError("the stream ended")


async def test_the_app_serves_the_page_its_files_and_the_document() -> None:
    async with proctree.open_root(name="app") as root:
        root.go(until_closing, name="worker")

        async def source() -> Mapping[str, Any]:
            return proctree.tree_document(proctree.tree(root))

        server = proctree.asgi_server(
            proctree.tree_page_app(source, interval=0.05), bind="127.0.0.1:0"
        )
        page = proctree.new_process(server, parent=root)
        await page.start()
        base = f"http://127.0.0.1:{server.port}/"
        html = await trio.to_thread.run_sync(_get, base)
        js = await trio.to_thread.run_sync(_get, base + "page.js")
        doc = await trio.to_thread.run_sync(_get, base + "tree.json")
        missing = await trio.to_thread.run_sync(_get, base + "nope")
        await page.stop()
    assert html[:2] == (200, "text/html; charset=utf-8")
    assert b'<script src="page.js">' in html[2]
    assert b"http" not in html[2].replace(b'name="viewport"', b"")  # no CDN
    assert js[0] == 200
    assert b"EventSource" in js[2]
    assert doc[0] == 200
    names = [e["name"] for e in json.loads(doc[2])["processes"]]
    assert names[:2] == ["app", "worker"]
    assert missing[0] == 404


async def test_the_event_stream_pushes_a_document_when_the_tree_changes() -> None:
    log = CloseLog()
    async with proctree.open_root(name="app", instruments=[log]) as root:
        worker = root.go(until_closing, name="worker")

        async def source() -> Mapping[str, Any]:
            return proctree.tree_document(proctree.tree(root), closed=log.entries)

        server = proctree.asgi_server(
            proctree.tree_page_app(source, interval=0.05), bind="127.0.0.1:0"
        )
        page = proctree.new_process(server, parent=root)
        await page.start()
        url = f"http://127.0.0.1:{server.port}/events"
        got: list[dict[str, Any]] = []
        first_seen = trio.Event()

        def each(doc: dict[str, Any]) -> None:
            got.append(doc)
            first_seen.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, _events, url, 2, each)
            await first_seen.wait()
            await worker.aclose()
        await page.stop()
    first, second = got
    assert "worker" in [e["name"] for e in first["processes"]]
    assert "worker" not in [e["name"] for e in second["processes"]]
    assert [c["name"] for c in second["recently_closed"]] == ["worker"]


def test_a_bad_source_or_interval_is_refused() -> None:
    with pytest.raises(TypeError, match="async function"):
        proctree.tree_page_app(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be > 0"):
        proctree.tree_page_app(lambda: None, interval=0)  # type: ignore[arg-type, return-value]


def _serve(runtime: Path, pid: int) -> tuple[subprocess.Popen[str], str]:
    serving = subprocess.Popen(
        [sys.executable, "-m", "proctree", "tree", str(pid), "--serve", "127.0.0.1:0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(runtime),
    )
    assert serving.stdout is not None
    line = serving.stdout.readline()
    assert " on http://" in line, line + serving.stderr.read()  # type: ignore[union-attr]
    return serving, line.split(" on ", 1)[1].split()[0]


def test_the_page_in_a_browser_shows_a_process_then_shows_it_closed(
    tmp_path: Path,
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with program(tmp_path) as prog, chromium() as browser:
        serving, url = _serve(tmp_path, prog.pid)
        try:
            browser.get(url)
            # The page redraws its rows as the tree changes, so an element
            # found a moment ago may be gone: every look is a fresh find,
            # retried by the wait when the redraw came in between.
            wait = WebDriverWait(
                browser, 30, ignored_exceptions=(StaleElementReferenceException,)
            )

            def state_of(name: str) -> str | None:
                rows = browser.find_elements(
                    By.CSS_SELECTOR, f'.row[data-name="{name}"]'
                )
                return rows[0].get_attribute("data-state") if rows else None

            def text_of(selector: str) -> str:
                return str(browser.find_element(By.CSS_SELECTOR, selector).text)

            def click(selector: str) -> bool:
                browser.find_element(By.CSS_SELECTOR, selector).click()
                return True

            wait.until(lambda _: state_of("job-1") == "RUNNING")
            row = wait.until(lambda _: text_of('.row[data-name="job-1"]'))
            assert "go" in row
            assert "up " in row
            assert wait.until(lambda _: text_of("#status")) == "live"
            prog.command("close job-1")
            wait.until(lambda _: state_of("job-1") == "CLOSED")
            closed = wait.until(lambda _: text_of('.row.closed[data-name="job-1"]'))
            assert "requested" in closed
            # Collapsing "jobs" hides its children; opening shows them again.
            wait.until(lambda _: click('.row[data-name="jobs"] .toggle'))
            wait.until(lambda _: state_of("job-0") is None)
            wait.until(lambda _: click('.row[data-name="jobs"] .toggle'))
            wait.until(lambda _: state_of("job-0") == "RUNNING")
            prog.stop()
            wait.until(lambda _: "program gone" in text_of("#status"))
        finally:
            serving.terminate()
            serving.communicate(timeout=30)
    assert serving.returncode == 0
