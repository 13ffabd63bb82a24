"""The docs name real tests: every ``tests/...py::test_name`` in docs/ exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"``(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?``")


def _references() -> list[tuple[str, str, str]]:
    found = []
    for page in sorted((ROOT / "docs").glob("*.*")):
        if page.suffix not in {".rst", ".md"}:
            continue
        for path, name in REFERENCE.findall(page.read_text()):
            found.append((page.name, path, name))
    return found


def test_the_guarantees_page_names_tests() -> None:
    assert sum(page == "guarantees.rst" for page, _, _ in _references()) > 100


@pytest.mark.parametrize(("page", "path", "name"), _references())
def test_a_test_the_docs_name_exists(page: str, path: str, name: str) -> None:
    source = ROOT / path
    assert source.is_file(), f"{page} names {path}, which does not exist"
    text = source.read_text()
    defined = re.search(rf"^(?:async )?def {name}\(|^class {name}\b", text, re.M)
    assert defined, f"{page} names {path}::{name}, which is not defined there"
