"""What the installed distribution says of itself."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import proctree

ROOT = Path(__file__).resolve().parents[1]


def test_the_distribution_names_its_license_urls_and_pythons() -> None:
    meta = importlib.metadata.metadata("proctree")
    assert meta["License-Expression"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls)
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert meta["Requires-Python"] == ">=3.11"


def test_the_version_is_the_distributions() -> None:
    assert proctree.__version__ == importlib.metadata.version("proctree")


def test_the_extras_are_declared_and_the_core_needs_only_trio_and_attrs() -> None:
    meta = importlib.metadata.metadata("proctree")
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"http", "grpc"} <= extras
    core = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0].strip() for r in core) == [
        "attrs",
        "trio",
    ]
