"""The installed distribution's version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

__all__ = ["VERSION"]


def _installed() -> str:
    try:
        return version("proctree")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0+unknown"


VERSION: Final = _installed()
"""The version of the installed ``proctree`` distribution (PEP 440)."""
