"""An async function that takes no ready argument: not a runner."""

from __future__ import annotations


async def app() -> None:
    pass
