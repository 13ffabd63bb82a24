"""The installed distribution's version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION: str = version("proctree")
except PackageNotFoundError:  # pragma: no cover - run from a source tree
    VERSION = "0+unknown"
"""The version of the installed ``proctree`` distribution (PEP 440)."""
