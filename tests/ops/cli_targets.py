"""Runners for the command-line tests (imported by a ``proctree run`` subprocess)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

import proctree

Ready = Callable[[], Awaitable[None]]


async def _serve() -> None:
    await trio.sleep_forever()


app = proctree.sequential(
    proctree.leaf(_serve, name="db"), proctree.leaf(_serve, name="http")
)


async def failing(ready: Ready) -> None:
    async with trio.open_nursery() as nursery:

        async def crash() -> None:
            await trio.sleep(0.2)
            raise ValueError("database went away")

        nursery.start_soon(crash)
        await ready()


async def failing_at_start(ready: Ready) -> None:
    raise OSError("port 80 is taken")


async def stubborn(ready: Ready) -> None:
    await ready()
    await trio.sleep_forever()  # ignores the graceful stop


async def finishes(ready: Ready) -> None:
    # ready() waits for the stop: report ready beside the work, then end.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ready)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()


not_a_runner = 42


def sync_function(ready: Ready) -> None:
    pass
