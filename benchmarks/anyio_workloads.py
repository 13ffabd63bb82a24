"""The anyio workloads of the peers' table, run on anyio's trio backend.

run.py starts this file as a script, by default with its own interpreter
(anyio lives in the project's virtualenv), or with ``--anyio-python``.
It imports only the standard library, trio, anyio and ``phases``, never
proctree, and runs with PYTHONPATH removed from its environment.

Each workload runs one ``anyio.run(..., backend="trio")`` and does the same
work as its bare trio twin in ``workloads.py``, written with anyio's task
groups instead of trio's nurseries.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from importlib import metadata

import anyio
import trio
import trio.testing  # imported for its side effect, see below
from anyio.abc import TaskStatus

from phases import FlakyTask, Phases, worker_main

Metrics = dict[str, float]

# anyio.wait_all_tasks_blocked() imports trio.testing (and with it pytest,
# some 80 ms) on its first call on the trio backend: the import above does
# it before any clock starts, as workloads.py does for bare trio.


async def _sleeper() -> None:
    await anyio.sleep_forever()


def anyio_flat(n: int, phases: Phases) -> Metrics:
    """N tasks: ``tg.start_soon`` each, then cancel the task group."""

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            phases.mark("spawn")
            for _ in range(n):
                tg.start_soon(_sleeper)
            await anyio.wait_all_tasks_blocked()
            phases.mark("close")
            tg.cancel_scope.cancel()
        phases.mark(None)

    anyio.run(main, backend="trio")
    return {}


async def _service(
    *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()
    await anyio.sleep_forever()


def anyio_nested(n: int, phases: Phases) -> Metrics:
    """N cycles: 3 nested task groups, each ``tg.start``-ing one service.

    Leaving a task group waits for its service, so cancelling the innermost
    one first and then each enclosing one stops the services in reverse.
    """

    async def main() -> None:
        for _ in range(n):
            phases.mark("start")
            async with anyio.create_task_group() as first:
                await first.start(_service)
                async with anyio.create_task_group() as second:
                    await second.start(_service)
                    async with anyio.create_task_group() as third:
                        await third.start(_service)
                        phases.mark("stop")
                        third.cancel_scope.cancel()
                    second.cancel_scope.cancel()
                first.cancel_scope.cancel()
            phases.mark(None)

    anyio.run(main, backend="trio")
    return {}


def anyio_restart(n: int, phases: Phases) -> Metrics:
    """N restarts by a hand-written loop: a task group per run, catch, again."""
    flaky = FlakyTask(n)

    async def main() -> None:
        phases.mark("restarts")
        while len(flaky.samples) < n:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(flaky.run)
            except* RuntimeError:
                pass  # restart it
        phases.mark(None)

    anyio.run(main, backend="trio")
    samples = sorted(flaky.samples)
    return {
        "restart": statistics.median(samples),
        "restart_p90": samples[int(len(samples) * 0.9)],
    }


CASES: dict[str, Callable[[int, Phases], Metrics]] = {
    "anyio": anyio_flat,
    "cycle-anyio": anyio_nested,
    "restart-anyio": anyio_restart,
}


def describe() -> str:
    return (
        f"anyio {metadata.version('anyio')} (trio backend) on trio "
        f"{trio.__version__}, Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    sys.exit(worker_main(CASES, describe))
