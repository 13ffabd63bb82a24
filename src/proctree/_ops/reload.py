"""Reload without a restart: call ``reload()`` on every runner of a tree.

``proctree run`` does it on SIGHUP, between systemd's ``RELOADING=1`` and
``READY=1``. A :class:`~proctree.Supervisor`'s ``reload()`` reads its table
at once; any runner object may define ``reload()`` (sync or async) to
re-read its configuration. A failing reload is logged and reported, never
a reason to stop.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import final

import attrs

from .._core import Process, State, runner_of, walk
from .log_format import process_facts
from .systemd import SystemdNotifier

__all__ = ["ReloadFailure", "reload_on_signals", "reload_tree"]

_logger = logging.getLogger("proctree")


@final
@attrs.frozen
class ReloadFailure:
    """A runner whose ``reload()`` raised."""

    path: str
    """The path of its process."""
    error: Exception
    """What ``reload()`` raised."""


def _reload_of(p: Process) -> Callable[[], object] | None:
    runner = runner_of(p)
    if runner is None:
        return None
    method = getattr(runner, "reload", None)
    return method if callable(method) else None


async def reload_tree(root: Process) -> list[ReloadFailure]:
    """Call ``reload()`` of each runner under ``root``, in tree order.

    Tree order is parents first, siblings in the order they were made, so
    a supervisor reloads before the children it starts. Only RUNNING
    processes are reloaded. Each failure is logged (ERROR, with
    ``proctree_event="reload_failed"``) and the others still reload.

    Returns:
        The failures, in the order they happened.
    """
    failures: list[ReloadFailure] = []
    for p in list(walk(root)):
        method = _reload_of(p)
        if method is None or p.state is not State.RUNNING:
            continue
        try:
            result = method()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            failures.append(ReloadFailure(p.path, exc))
            _logger.error(
                "reload of %s failed: %s: %s",
                p.path,
                type(exc).__name__,
                exc,
                extra=process_facts(p, "reload_failed", error=exc),
            )
        else:
            _logger.info("reloaded %s", p.path, extra=process_facts(p, "reloaded"))
    return failures


async def reload_on_signals(
    proc: Process,
    signals: AsyncIterator[int],
    root: Process,
    notifier: SystemdNotifier,
) -> None:
    """For each signal: ``RELOADING=1``, reload the tree, then ``READY=1``.

    The ``STATUS=`` that follows says whether every reload worked.
    """
    async for _ in signals:
        notifier.reloading()
        failures = await reload_tree(root)
        if failures:
            status = f"running; reload failed in {len(failures)} process(es)"
        else:
            status = "running; reloaded"
        notifier.notify("READY=1", f"STATUS={status}")
