"""Signal-bound roots, with real signals sent to this test process."""

from __future__ import annotations

import os
import signal

import trio
import trio.testing

import proctree
from proctree import State

from ..support.helpers import recorder


async def test_a_signal_closes_the_tree_in_order_and_exits_cleanly() -> None:
    log: list[str] = []
    async with proctree.with_signals(signal.SIGTERM) as root:
        db = proctree.with_teardown(recorder(log, "db"), parent=root)
        http = proctree.with_teardown(recorder(log, "http"), parent=db)
        await trio.testing.wait_all_tasks_blocked()
        os.kill(os.getpid(), signal.SIGTERM)
        await trio.sleep_forever()
    assert log == ["http", "db"]
    assert root.state is State.CLOSED
    assert http.state is State.CLOSED


async def test_a_second_signal_while_closing_forces_the_shutdown() -> None:
    log: list[str] = []

    async def stuck_teardown() -> None:
        log.append("teardown started")
        try:
            await trio.sleep_forever()
        finally:
            log.append("teardown cancelled")

    async with proctree.with_signals(signal.SIGINT) as root:
        proctree.with_teardown(stuck_teardown, parent=root)
        await trio.testing.wait_all_tasks_blocked()
        os.kill(os.getpid(), signal.SIGINT)
        with trio.CancelScope(shield=True):
            while log != ["teardown started"]:
                await trio.sleep(0.001)
            os.kill(os.getpid(), signal.SIGINT)
        await trio.sleep_forever()
    assert log == ["teardown started", "teardown cancelled"]


async def test_signals_default_to_sigint_and_sigterm() -> None:
    async with proctree.with_signals() as root:
        await trio.testing.wait_all_tasks_blocked()
        os.kill(os.getpid(), signal.SIGINT)
        await root.closing.wait()
    assert root.state is State.CLOSED
