"""The async-service workloads of the peers' table, run by its interpreter.

run.py starts this file as a script with another Python
(``--async-service-python``, by default /tmp/async-service-venv/bin/python):
async-service 0.1.0a11 pins trio 0.16, so it cannot share proctree's
virtualenv. It imports only the standard library, trio, async_service and
``phases``, never proctree, and runs with PYTHONPATH removed from its
environment. Keep it working on trio 0.16: no ``trio.TaskStatus``, no
exception groups, no ``except*``.

async-service has no restart primitive (a task that fails cancels its whole
service), so it has no restart workload.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import metadata

import trio
import trio.testing
from async_service import Service, TrioManager, background_trio_service

from phases import Phases, worker_main

Metrics = dict[str, float]


async def _sleeper() -> None:
    await trio.sleep_forever()


class _Fleet(Service):
    """A service that runs N tasks sleeping forever, then cancels itself."""

    def __init__(self, n: int, phases: Phases) -> None:
        self.n = n
        self.phases = phases
        self.spawned = -1

    async def run(self) -> None:
        self.phases.mark("spawn")
        for _ in range(self.n):
            self.manager.run_task(_sleeper)
        await trio.testing.wait_all_tasks_blocked()
        self.phases.mark("close")
        self.spawned = self.manager.stats.tasks.total_count
        # Cancels the tasks one by one (each awaited), then this one.
        self.manager.cancel()
        await trio.sleep_forever()


def async_service_flat(n: int, phases: Phases) -> Metrics:
    """N ``manager.run_task`` children of a service's run, then ``cancel()``.

    async-service refuses more than 1,000 children per parent task
    (``TooManyChildrenException``), so N stays at most 1,000.
    """
    fleet = _Fleet(n, phases)

    async def main() -> None:
        await TrioManager.run_service(fleet)
        phases.mark(None)

    trio.run(main)
    if fleet.spawned != n:
        raise RuntimeError(f"{fleet.spawned} of {n} tasks ran")
    return {}


class _Layer(Service):
    """A service that starts the next layer as its child service, if any.

    The innermost layer sets ``up`` once it runs. Stopping the outermost
    layer's manager stops its children first, so the layers stop innermost
    first.
    """

    def __init__(self, inner: _Layer | None, up: trio.Event | None) -> None:
        self.inner = inner
        self.up = up

    async def run(self) -> None:
        if self.inner is not None:
            self.manager.run_child_service(self.inner)
        elif self.up is not None:
            self.up.set()
        await trio.sleep_forever()


def async_service_nested(n: int, phases: Phases) -> Metrics:
    """N cycles: 3 services nested with ``run_child_service``, stop the outer.

    ``background_trio_service`` runs the outermost one and stops its manager
    on the way out of the ``async with``.
    """

    async def main() -> None:
        for _ in range(n):
            phases.mark("start")
            up = trio.Event()
            outer = _Layer(_Layer(_Layer(None, up), None), None)
            async with background_trio_service(outer):
                await up.wait()
                phases.mark("stop")
            phases.mark(None)

    trio.run(main)
    return {}


CASES: dict[str, Callable[[int, Phases], Metrics]] = {
    "async-service": async_service_flat,
    "cycle-async-service": async_service_nested,
}


def describe() -> str:
    return (
        f"async-service {metadata.version('async-service')} on trio "
        f"{trio.__version__}, Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    sys.exit(worker_main(CASES, describe))
