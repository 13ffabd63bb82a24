"""Runners for the operations tests (imported by a ``proctree run`` subprocess)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable

import attrs
import trio
import trio.lowlevel

import proctree

Ready = Callable[[], Awaitable[None]]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@attrs.define
class Reloadable:
    """A runner with a reload(): sync or async, failing or not."""

    name: str
    fails: bool = False
    asynchronous: bool = False
    reloads: int = 0

    async def run(self, ready: Ready) -> None:
        await ready()

    def _reload(self) -> None:
        self.reloads += 1
        if self.fails:
            raise ValueError(f"{self.name}: bad configuration")
        say(f"reloaded {self.name} {self.reloads}")

    def reload(self) -> object:
        if self.asynchronous:

            async def later() -> None:
                await trio.lowlevel.checkpoint()
                self._reload()

            return later()
        self._reload()
        return None


reloadable = proctree.sequential(
    Reloadable("first"),
    Reloadable("broken", fails=True),
    Reloadable("second", asynchronous=True),
)


def worker(name: str) -> proctree.Runner:
    async def run(ready: Ready) -> None:
        say(f"worker {name} up")
        await ready()

    return run


async def supervised(ready: Ready) -> None:
    table = proctree.SqliteTable(os.environ["PROCTREE_TEST_TABLE"])
    sup = proctree.Supervisor(table, interval=3600, name="sup")
    await sup.start()
    await ready()
    await sup.stop()


async def slow_start(ready: Ready) -> None:
    await trio.sleep(float(os.environ.get("PROCTREE_TEST_START", "0.5")))
    say("started")
    await ready()


async def logs(ready: Ready) -> None:
    logging.getLogger("myapp").warning("hello from the app", extra={"order": 42})
    await ready()
