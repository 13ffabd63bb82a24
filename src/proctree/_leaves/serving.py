"""What the server leaves and the OS-process leaf share.

Each of those runners is an object the caller keeps, to read what the run
found out (the bound ports, the pid) once ``start()`` has returned. So a
runner object serves one process at a time: :class:`OneRun` enforces that.
"""

from __future__ import annotations

import importlib
import math
import types
from typing import final

import attrs
import trio

from .._core import InvalidStateError, Process, ProctreeError, check_grace, forced_at

__all__ = [
    "OneRun",
    "optional_grace",
    "require",
    "single_port",
    "time_left",
]


@final
@attrs.define(eq=False)
class OneRun:
    """The process a runner object is running in, if any."""

    kind: str
    name: str
    process: Process | None = None

    def claim(self, me: Process) -> None:
        """Mark the runner as running in ``me``; refuse a second process."""
        if self.process is not None:
            raise InvalidStateError(
                f"{self.kind} {self.name!r} is already running in process "
                f"{self.process.name!r}; a {self.kind} runs in one process at a "
                f"time: call {self.kind}() once per process"
            )
        self.process = me

    def release(self) -> None:
        """The run has ended."""
        self.process = None


def time_left(me: Process) -> float:
    """Seconds until ``me`` is forced (``inf`` if nothing bounds it)."""
    forced = forced_at(me)
    if forced is None:
        return math.inf
    return max(0.0, forced - trio.current_time())


def single_port(ports: tuple[int, ...], what: str) -> int:
    """The one port in ``ports``, or a clear error."""
    if not ports:
        raise InvalidStateError(
            f"{what} is not serving: its port is known once start() has "
            "returned and until it stops"
        )
    distinct = set(ports)
    if len(distinct) > 1:
        raise ProctreeError(
            f"{what} listens on several ports {sorted(distinct)}: read .ports "
            "instead (port 0 gives each address its own port)"
        )
    return ports[0]


def optional_grace(grace: object) -> float | None:
    """Check a ``grace=`` argument (None: the tree's default)."""
    return None if grace is None else check_grace(grace)


def require(module: str, extra: str, what: str) -> types.ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"proctree.{what}() needs the {module!r} package, which is not "
            f"installed: pip install 'proctree[{extra}]'",
            name=exc.name,
        ) from exc
