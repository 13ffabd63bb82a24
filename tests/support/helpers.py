"""Small helpers the tests share."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Awaitable, Callable, Iterator

import trio

import proctree


def recorder(log: list[str], label: str) -> Callable[[], Awaitable[None]]:
    """A teardown that appends ``label`` to ``log`` after a checkpoint."""

    async def teardown() -> None:
        await trio.lowlevel.checkpoint()
        log.append(label)

    return teardown


async def until_closing(proc: proctree.Process) -> None:
    """A go function that ends as soon as its process starts closing."""
    await proc.closing.wait()


async def forever(proc: proctree.Process) -> None:
    """A go function that never ends by itself."""
    await trio.sleep_forever()


@contextlib.contextmanager
def no_garbage() -> Iterator[None]:
    """Fail if the block leaves objects that only the cyclic gc could free."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
        gc.collect()
        garbage = [type(obj).__name__ for obj in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert garbage == []
