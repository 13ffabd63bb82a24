"""The current process: whose function, root body or teardown is running.

A context variable, as trio tracks the current task. A function or a root
body holds its process itself (they behave alike, and a plain process keeps
``go`` tasks from allocating a marker object); a teardown holds an
:class:`InTeardown` marker, since a teardown may not wait for its own
process.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, final

import attrs

if TYPE_CHECKING:
    from .node import Process

__all__ = ["CURRENT", "InTeardown", "owner"]


@final
@attrs.frozen
class InTeardown:
    """The current-process marker of a teardown task."""

    process: Process


CURRENT: ContextVar[Process | InTeardown] = ContextVar("proctree_current")


def owner(current: Process | InTeardown) -> Process:
    """The process a current-process value stands for."""
    return current.process if isinstance(current, InTeardown) else current
