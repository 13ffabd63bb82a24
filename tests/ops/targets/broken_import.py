"""A module whose import fails in its own code (line 9), for proctree run."""

from __future__ import annotations


def _read_config() -> dict[str, str]:
    raise RuntimeError("config file /etc/app.toml is missing")  # line 7


CONFIG = _read_config()  # line 10
