"""Contract 8: nothing leaks once a root exits."""

from __future__ import annotations

import gc
import weakref

import pytest
import trio
import trio.testing

import proctree

from ..support.helpers import no_garbage, recorder, until_closing
from ..support.leakcheck import all_tasks


async def _build_and_close(log: list[str]) -> list[weakref.ref[proctree.Process]]:
    async def worker(proc: proctree.Process) -> None:
        await proc.closing.wait()
        await trio.sleep(1)

    async with proctree.open_root() as root:
        db = proctree.with_teardown(recorder(log, "db"), parent=root)
        http = proctree.with_teardown(recorder(log, "http"), parent=db)
        workers = [http.go(worker) for _ in range(10)]
        side = proctree.with_parent(root)
        side.wait_for(http)
        side.add_child_no_wait(workers[0])
        stray = proctree.go(until_closing, parent=proctree.background())
        await trio.sleep(1)
        refs = [weakref.ref(p) for p in (root, db, http, side, stray, *workers)]
    return refs


async def test_a_closed_tree_leaves_no_gc_garbage_and_no_live_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    with no_garbage():
        refs = await _build_and_close(log)
    assert log == ["http", "db"]
    assert [r() for r in refs] == [None] * len(refs)


async def test_no_task_of_a_root_outlives_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = all_tasks()
    await _build_and_close([])
    await trio.testing.wait_all_tasks_blocked()
    assert all_tasks() == before


async def test_a_long_lived_parent_does_not_keep_its_closed_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(proc: proctree.Process) -> None:
        await trio.sleep(1)

    async with proctree.open_root() as root:
        server = proctree.with_parent(root)
        refs = []
        for _ in range(100):
            refs.append(weakref.ref(server.go(handler)))
        await trio.sleep(2)
        gc.collect()
        assert [r() for r in refs] == [None] * 100
        assert server.state is proctree.State.RUNNING


async def test_a_failed_process_is_freed_once_its_error_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The error's traceback refers to the frames that raised it, which refer
    # to the process: a cycle Python makes, freed by the cyclic gc.
    async def bad(proc: proctree.Process) -> None:
        raise ValueError("bad")

    with pytest.RaisesGroup(ValueError):
        async with proctree.open_root() as root:
            ref = weakref.ref(root.go(bad))
    del root
    gc.collect()
    assert ref() is None
