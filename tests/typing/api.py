"""Pins the public API's types: checked by mypy --strict, never run."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import assert_type

import trio

import proctree


async def worker(proc: proctree.Process, n: int, label: str) -> None:
    await proc.closing.wait()


async def fetch(proc: proctree.Process, url: str) -> bytes:
    return url.encode()


async def teardown() -> None:
    pass


async def any_result(p: proctree.Process) -> object:
    return await p.result()


async def check() -> None:
    assert_type(proctree.open_root(), AbstractAsyncContextManager[proctree.Process])
    assert_type(
        proctree.with_signals(signal.SIGTERM, name="app", grace=1.0),
        AbstractAsyncContextManager[proctree.Process],
    )
    async with proctree.open_root(name="app", grace=2.0) as root:
        assert_type(root, proctree.Process)
        assert_type(proctree.go(worker, 1, "a", parent=root), proctree.Process[None])
        assert_type(proctree.spawn(worker, 1, "a", name="w"), proctree.Process[None])
        assert_type(proctree.go_child(root, worker, 1, "a"), proctree.Process[None])
        assert_type(proctree.spawn_child(root, worker, 1, "a"), proctree.Process[None])
        assert_type(root.go(worker, 1, "a", grace=0.5), proctree.Process[None])
        # A go function's value: Process is generic in it, and a bare
        # Process (a root, a group, any annotation) is Process[object].
        fetcher = proctree.go(fetch, "http://127.0.0.1/")
        assert_type(fetcher, proctree.Process[bytes])
        assert_type(await fetcher.result(), bytes)
        assert_type(await root.result(), object)
        assert_type(await any_result(fetcher), object)
        assert_type(proctree.with_teardown(teardown, parent=root), proctree.Process)
        assert_type(proctree.with_parent(root, name="group"), proctree.Process)
        assert_type(proctree.background(), proctree.Process)
        p = proctree.with_parent(None)
        assert_type(p.name, str)
        assert_type(p.state, proctree.State)
        assert_type(p.closing, trio.Event)
        assert_type(p.closed, trio.Event)
        assert_type(p.error, BaseException | None)
        assert_type(p.add_child(root), None)
        assert_type(p.add_child_no_wait(root), None)
        assert_type(p.wait_for(root), None)
        assert_type(p.set_teardown(teardown), None)
        assert_type(await p.aclose(), None)
        assert_type(await p.aclose(grace=1), None)
        assert_type(await p.close_after_children(), None)
        assert_type(await p.wait(), None)
        assert_type(proctree.DEFAULT_GRACE + 0.0, float)
        # wrong argument types are type errors
        proctree.go(worker, "not an int", "a")  # type: ignore[arg-type]
        proctree.go(worker, 1)  # type: ignore[arg-type]


async def run(ready: Callable[[], Awaitable[None]]) -> None:
    await ready()


async def check_runners(root: proctree.Process) -> None:
    r: proctree.Runner = proctree.sequential(
        proctree.leaf(teardown, teardown, name="a"),
        proctree.start_stop(teardown, teardown),
        proctree.chain(run, proctree.nop()),
        proctree.parallel(proctree.prefixed_error("db", run)),
    )
    p = proctree.new_process(r, parent=root, name="app", grace=1.0)
    assert_type(p, proctree.Process)
    assert_type(await p.start(timeout=2.0), None)
    assert_type(await p.stop(grace=1.0), None)
    assert_type(p.overran_grace, bool)
    svc = proctree.Service(teardown, teardown, root, name="svc", max_errors=5)
    assert_type(await svc.start(), None)
    assert_type(svc.is_running, bool)
    assert_type(svc.uptime, float)
    assert_type(svc.errors, list[BaseException])
    assert_type(svc.last_error, BaseException | None)
    proctree.new_process(teardown)  # type: ignore[arg-type]
    # A Supervisor and a Service are runners; every combinator takes name=.
    fleet = proctree.Supervisor(proctree.MemoryTable(), name="fleet")
    app: proctree.Runner = proctree.sequential(svc, fleet, name="app")
    proctree.new_process(app, parent=root)
    proctree.new_process(proctree.parallel(fleet, name="p"), parent=root)
    proctree.new_process(proctree.chain(svc, proctree.nop(name="n"), name="c"))
    proctree.prefixed_error("db", run, name="db")
    assert_type(fleet.name, str)
    assert_type(svc.name, str)
    assert_type(await fleet.run(teardown), None)  # run(ready)
    assert_type(await svc.run(teardown), None)


async def serve(port: int, *, task_status: trio.TaskStatus[int]) -> None:
    task_status.started(port)


async def check_task_status(root: proctree.Process) -> None:
    async with trio.open_nursery() as nursery:
        start = proctree.startable(proctree.nop(), parent=root, name="n", timeout=1)
        assert_type(await start(), None)
        await nursery.start(start)
    r: proctree.RunnerObject = proctree.from_task_status(
        serve, 8000, name="s", on_started=print
    )
    proctree.new_process(r)
    proctree.startable(42)  # type: ignore[arg-type]


async def call(proc: proctree.Process) -> None:
    pass


async def handle(proc: proctree.Process, signum: int) -> None:
    pass


async def check_periodic_ratelimit_bridges(root: proctree.Process) -> None:
    _send, receive = trio.open_memory_channel[int](0)
    assert_type(proctree.periodic.every(1, call, parent=root), proctree.Process)
    assert_type(proctree.periodic.tick_go(0.5, call, grace=1), proctree.Process)
    assert_type(proctree.periodic.ticker(receive, call), proctree.Process)
    assert_type(proctree.periodic.on_signal(receive, handle), proctree.Process)
    proctree.periodic.on_signal(receive, call)  # type: ignore[arg-type]
    limiter = proctree.ratelimit.RateLimiter(root, 3, name="fetch")
    assert_type(await limiter.limited_go(worker, 1, "a"), proctree.Process)
    assert_type(limiter.go(worker, 1, "a", name="w"), proctree.Process)
    assert_type(limiter.statistics(), proctree.ratelimit.RateLimiterStatistics)
    assert_type(limiter.process, proctree.Process)
    await limiter.limited_go(worker, "not an int", "a")  # type: ignore[arg-type]
    with proctree.move_on_closing(root) as scope:
        assert_type(scope, trio.CancelScope)
    async with proctree.open_child(root, "conn") as child:
        assert_type(child, proctree.Process)
    assert_type(proctree.with_deadline(10.0, root, grace=1), proctree.Process)
    assert_type(proctree.with_timeout(5, name="t"), proctree.Process)
