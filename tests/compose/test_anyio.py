"""anyio code runs inside processes on the trio backend: go functions, runners.

proctree is trio-only; anyio programs run on trio (``anyio.run(...,
backend="trio")``, or anyio calls inside a trio program) can use it, and
anyio's task groups, cancel scopes and memory streams work inside a
process's function and inside a runner, including under a forced close.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest
import trio
import trio.testing

import proctree

Ready = Callable[[], Awaitable[None]]


async def pipeline(proc: proctree.Process, n: int) -> list[int]:
    """An anyio producer and consumer over a memory stream, in a task group."""
    send, receive = anyio.create_memory_object_stream[int](1)
    got: list[int] = []

    async def produce() -> None:
        async with send:
            for i in range(n):
                await send.send(i)

    async def consume() -> None:
        async with receive:
            async for item in receive:
                got.append(item * item)

    async with anyio.create_task_group() as group:
        group.start_soon(produce)
        group.start_soon(consume)
    return got


async def test_an_anyio_task_group_and_stream_inside_a_go_function() -> None:
    async with proctree.open_root():
        p = proctree.go(pipeline, 5)
        assert await p.result() == [0, 1, 4, 9, 16]


async def test_an_anyio_cancel_scope_inside_a_go_function(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def bounded(proc: proctree.Process) -> bool:
        with anyio.move_on_after(2) as scope:
            await anyio.sleep(10)
        return scope.cancelled_caught

    async with proctree.open_root():
        p = proctree.go(bounded)
        assert await p.result() is True
        assert trio.current_time() == 2


async def test_a_forced_close_cancels_anyio_tasks_in_a_go_function(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def stubborn(proc: proctree.Process) -> None:
        async def forever(label: str) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                log.append(f"{label} cancelled at {anyio.current_time():g}")

        async with anyio.create_task_group() as group:
            group.start_soon(forever, "a")
            group.start_soon(forever, "b")

    async with proctree.open_root():
        p = proctree.go(stubborn, grace=3)
        await trio.testing.wait_all_tasks_blocked()
        await p.aclose()
        assert p.overran_grace
    assert sorted(log) == ["a cancelled at 3", "b cancelled at 3"]


async def test_an_anyio_runner_is_ready_then_stops_gracefully(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def run(ready: Ready) -> None:
        send, receive = anyio.create_memory_object_stream[str](10)

        async def worker() -> None:
            async with receive:
                async for job in receive:
                    with anyio.fail_after(5):  # an anyio cancel scope
                        await anyio.sleep(1)
                    log.append(f"done {job}")

        async with anyio.create_task_group() as group:
            group.start_soon(worker)
            async with send:
                await send.send("first")
                await send.send("second")
                await ready()  # returns when the process is stopped
            # The stream is closed: the worker finishes its queue and ends.
        log.append("stopped")

    async with proctree.open_root():
        p = proctree.new_process(run, name="anyio-worker")
        await p.start()
        assert p.state is proctree.State.RUNNING
        await p.stop()
        assert not p.overran_grace
    assert log == ["done first", "done second", "stopped"]
    assert trio.current_time() == 2


async def test_an_anyio_runner_fails_with_its_own_error_type() -> None:
    class Broken(Exception):
        pass

    async def run(ready: Ready) -> None:
        async with anyio.create_task_group() as group:

            async def crash() -> None:
                await anyio.lowlevel.checkpoint()
                raise Broken("anyio task")

            group.start_soon(crash)
            await ready()

    with pytest.RaisesGroup(pytest.RaisesGroup(Broken)):
        async with proctree.open_root():
            p = proctree.new_process(run)
            await p.start()
            await trio.sleep_forever()


async def test_anyio_runs_a_proctree_program_on_the_trio_backend() -> None:
    async def main() -> list[int]:
        async with proctree.open_root():
            return await proctree.go(pipeline, 3).result()

    # anyio.run in a worker thread: its own event loop, on trio.
    got = await trio.to_thread.run_sync(lambda: anyio.run(main, backend="trio"))
    assert got == [0, 1, 4]


async def test_a_root_under_asyncio_says_proctree_needs_trio() -> None:
    async def main() -> None:
        async with proctree.open_root():
            pass  # pragma: no cover

    def on_asyncio() -> None:
        with pytest.raises(proctree.ProctreeError, match="needs trio"):
            anyio.run(main, backend="asyncio")

    await trio.to_thread.run_sync(on_asyncio)
