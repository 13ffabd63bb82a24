"""The shapes the core accepts: teardowns, runners, ready callbacks, keepers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .node import Process

__all__ = ["Keeper", "Ready", "RunFn", "Runner", "RunnerObject", "Teardown"]

Teardown = Callable[[], Awaitable[object]]
"""A teardown: ``async def fn() -> None``, called once when the process closes."""

Ready = Callable[[], Awaitable[None]]
"""The callback a runner awaits once it is serving; it returns when the
process starts closing."""

RunFn = Callable[[Ready], Awaitable[object]]
"""``async def run(ready) -> None``: the function form of a runner."""


class RunnerObject(Protocol):
    """The object form of a runner: anything with an async ``run(ready)``.

    It may also carry ``name`` (the default process name) and
    ``default_grace`` (seconds; the default grace of its process).
    """

    def run(self, ready: Ready, /) -> Awaitable[object]:
        """Initialise, ``await ready()``, then shut down gracefully."""
        ...


Runner = RunFn | RunnerObject
"""What :func:`new_process` runs: ``async def run(ready)`` or a RunnerObject."""


class Keeper(Protocol):
    """Who looks after a process it made: a combinator, a service, a supervisor.

    Package-private. ``take`` is offered the process's failure first and
    returns True to keep it from travelling up the tree; ``closed`` is told
    when the process is CLOSED. Both run synchronously inside the driver
    and must not raise. A keeper may also define ``restarts(p) -> int``
    and ``status(p) -> str | None`` (what it says of ``p`` now) and a
    ``key: str`` (the supervisor key it keeps ``p`` under), which tree
    views show.
    """

    def take(self, p: Process, exc: BaseException) -> bool:
        """Return True to take ``exc`` (a failure of ``p``) off the tree."""
        ...

    def closed(self, p: Process) -> None:
        """``p`` has become CLOSED."""
        ...
