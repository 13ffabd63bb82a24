"""Bridges between processes and trio cancellation, both ways, with exact times."""

from __future__ import annotations

import contextlib
import math
import weakref

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree._schedule.bridges import (
    move_on_closing,
    open_child,
    with_deadline,
    with_timeout,
)

from ..support.helpers import no_garbage, recorder, until_closing
from ..support.leakcheck import all_tasks


class Boom(Exception):
    pass


async def close_at(
    proc: proctree.Process, target: proctree.Process, when: float
) -> None:
    """A go function that closes ``target`` at ``when``."""
    await trio.sleep_until(when)
    await target.aclose()


async def hold_for(proc: proctree.Process, seconds: float) -> None:
    await trio.sleep(seconds)


async def finishes_late(proc: proctree.Process, seconds: float) -> None:
    """A go function that takes ``seconds`` to finish once its process closes."""
    await proc.closing.wait()
    await trio.sleep(seconds)


# ------------------------------------------------- process -> cancel scope


async def test_move_on_closing_cancels_the_block_when_the_process_starts_closing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        proc = proctree.with_teardown(recorder(log, "teardown"), parent=root)
        proc.go(finishes_late, 3)  # so closing and closed are 3 s apart
        root.go(close_at, proc, 2)
        with move_on_closing(proc) as scope:
            await trio.sleep(10)
        log.append(f"after the block at {trio.current_time()}")
        assert scope.cancelled_caught
        await proc.wait()
        log.append(f"closed at {trio.current_time()}")
    assert log == ["after the block at 2.0", "teardown", "closed at 5.0"]


async def test_move_on_closing_of_a_closing_or_closed_process_cancels_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        slow = root.go(finishes_late, 1)
        done = proctree.with_parent(root)
        await done.aclose()
        root.go(close_at, slow, 0)
        await slow.closing.wait()
        for proc in (slow, done):
            with move_on_closing(proc) as scope:
                await trio.sleep(10)
            assert scope.cancelled_caught
        assert trio.current_time() == 0.0
        assert slow.state is State.CLOSING


async def test_a_block_that_ends_first_leaves_no_watcher_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        proc = proctree.with_parent(root)
        with move_on_closing(proc) as scope:
            await trio.sleep(1)
        assert not scope.cancelled_caught
        await trio.sleep(1)
        await proc.aclose()
        assert trio.current_time() == 2.0
        assert not scope.cancel_called


async def test_move_on_closing_starts_no_task_and_keeps_nothing_after_the_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        proc = proctree.with_parent(root)
        tasks_before = len(all_tasks())
        scopes = []
        with contextlib.ExitStack() as stack:
            for _ in range(3):  # several blocks watch one process at once
                scopes.append(stack.enter_context(move_on_closing(proc)))
            assert len(all_tasks()) == tasks_before
        scope_refs = [weakref.ref(scope) for scope in scopes]
        del scopes
        # Nothing registered is left on the process to keep the scopes alive.
        assert [ref() for ref in scope_refs] == [None, None, None]
        await proc.aclose()


async def test_one_close_cancels_every_block_watching_the_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        proc = proctree.with_parent(root)
        caught: list[float] = []

        async def watch() -> None:
            with move_on_closing(proc) as scope:
                await trio.sleep_forever()
            assert scope.cancelled_caught
            caught.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(watch)
            await trio.sleep(2)
            await proc.aclose()
        assert caught == [2.0] * 5


async def test_watching_a_process_does_not_keep_it_from_closing_by_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        worker = proctree.go(hold_for, 1)  # closes when its function returns
        with move_on_closing(worker) as scope:
            await trio.sleep(10)
        assert scope.cancelled_caught
        assert trio.current_time() == 1.0
        assert worker.state is State.CLOSED


async def test_move_on_closing_watches_the_current_process_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def worker(proc: proctree.Process) -> None:
        with move_on_closing():
            await trio.sleep(10)
        log.append(f"gave up at {trio.current_time()}")

    async with proctree.open_root() as root:
        worker_proc = proctree.go(worker)
        root.go(close_at, worker_proc, 1.5)
        await worker_proc.wait()
    assert log == ["gave up at 1.5"]


async def test_move_on_closing_works_in_a_task_outside_every_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[float] = []
    send, receive = trio.open_memory_channel[proctree.Process](1)

    async def plain_task() -> None:
        proc = await receive.receive()
        with move_on_closing(proc):
            await trio.sleep_forever()
        log.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(plain_task)
        async with proctree.open_root():
            proc = proctree.with_parent(None)
            await send.send(proc)
            await trio.sleep(3)
            await proc.aclose()
    assert log == [3.0]


async def test_move_on_closing_of_background_is_never_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        with trio.move_on_after(5) as outer, move_on_closing(proctree.background()):
            await trio.sleep_forever()
        assert outer.cancelled_caught


async def test_move_on_closing_needs_a_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(proctree.ProctreeError, match=r"move_on_closing\(proc\)"):
        move_on_closing()
    with pytest.raises(TypeError, match=r"takes a proctree\.Process"):
        move_on_closing("root")  # type: ignore[arg-type]


# --------------------------------------------------- deadline -> process


async def test_with_deadline_closes_the_process_and_its_work_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def worker(proc: proctree.Process) -> None:
        await proc.closing.wait()
        log.append(f"worker closing at {trio.current_time()}")

    async with proctree.open_root():
        await trio.sleep(1)
        session = with_deadline(5, name="session")
        session.set_teardown(recorder(log, "teardown"))
        session.go(worker)
        await session.wait()  # a deadline is a normal close: nothing raised
        log.append(f"closed at {trio.current_time()}")
        assert session.error is None
        assert session.name == "session"
    assert log == ["worker closing at 5.0", "teardown", "closed at 5.0"]


async def test_with_timeout_closes_the_given_seconds_from_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        await trio.sleep(1)
        request = with_timeout(2.5)
        request.go(until_closing)
        await request.closing.wait()
        assert trio.current_time() == 3.5
        assert request.name == "timeout"


async def test_a_deadline_process_closed_early_closes_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root():
        session = with_deadline(5)
        session.set_teardown(recorder(log, "teardown"))
        await trio.sleep(1)
        await session.aclose()
        assert trio.current_time() == 1.0
        await trio.sleep(10)
    assert log == ["teardown"]


async def test_a_deadline_already_past_closes_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        await trio.sleep(3)
        late = with_deadline(1)
        quick = with_timeout(0)
        await late.wait()
        await quick.wait()
        assert trio.current_time() == 3.0


async def test_the_grace_of_a_deadline_bounds_the_work_under_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[float] = []

    async def stubborn(proc: proctree.Process) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(trio.current_time())

    async with proctree.open_root(grace=100):
        bounded = with_deadline(2, grace=1)
        bounded.go(stubborn)
        await bounded.wait()
        assert trio.current_time() == 3.0
    assert cancelled == [3.0]


async def test_a_deadline_around_open_child_closes_the_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        with trio.move_on_at(4):
            async with open_child(root) as child:
                worker = child.go(finishes_late, 1)
                await trio.sleep_forever()
        # The block does not wait, being cancelled; the close goes on.
        assert trio.current_time() == 4.0
        states = [worker.state]
        await child.wait()
        assert trio.current_time() == 5.0
        states.append(worker.state)
    assert states == [State.CLOSING, State.CLOSED]


# ---------------------------------------------------- block <-> process


async def test_the_end_of_the_block_closes_the_child_and_waits_for_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def worker(proc: proctree.Process) -> None:
        await proc.closing.wait()
        await trio.sleep(1)
        log.append(f"worker done at {trio.current_time()}")

    async with proctree.open_root() as root:
        async with open_child(root, name="request") as child:
            child.set_teardown(recorder(log, "teardown"))
            child.go(worker)
            await trio.sleep(2)
            log.append("body done")
        log.append(f"block exited at {trio.current_time()}")
        assert child.state is State.CLOSED
        assert child.name == "request"
    assert log == ["body done", "worker done at 3.0", "teardown", "block exited at 3.0"]


async def test_closing_the_child_from_outside_cancels_the_block_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        group = proctree.with_parent(root, name="group")
        root.go(close_at, group, 2)
        async with open_child(group) as child:
            await trio.sleep(10)
            log.append("never")
        log.append(f"after the block at {trio.current_time()}")
        assert child.state is State.CLOSED
    assert log == ["after the block at 2.0"]


async def test_the_child_is_not_closed_before_the_block_has_finished(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with proctree.open_root() as root:
        pool = proctree.with_teardown(recorder(log, "pool closed"), parent=root)
        root.go(close_at, pool, 1)
        async with open_child(pool):
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(2)  # a last use of the pool
                    log.append(f"body cleaned up at {trio.current_time()}")
        await pool.wait()
    assert log == ["body cleaned up at 3.0", "pool closed"]


async def test_the_child_of_a_task_closes_when_the_task_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(
        parent: proctree.Process,
        *,
        task_status: trio.TaskStatus[proctree.Process] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with open_child(parent, name="connection") as conn:
            conn.go(until_closing)
            task_status.started(conn)
            await trio.sleep(4)

    async with proctree.open_root() as root, trio.open_nursery() as nursery:
        conn = await nursery.start(handler, root)
        assert conn.state is State.RUNNING
        await conn.wait()
        assert trio.current_time() == 4.0


async def test_an_error_in_the_block_leaves_it_unchanged_and_closes_the_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    made: list[proctree.Process] = []

    async def block(parent: proctree.Process) -> None:
        async with open_child(parent) as child:
            made.extend([child, child.go(finishes_late, 1)])
            await trio.sleep(1)
            raise Boom("body")

    async with proctree.open_root() as root:
        with pytest.raises(Boom, match="body"):  # not wrapped in a group
            await block(root)
        assert trio.current_time() == 2.0
        assert [p.state for p in made] == [State.CLOSED, State.CLOSED]
        assert made[0].error is None


async def test_a_failing_teardown_of_the_child_is_raised_when_the_block_exits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def failing_teardown() -> None:
        raise Boom("teardown")

    raised: list[BaseException] = []
    send, receive = trio.open_memory_channel[proctree.Process](1)

    async def plain_task() -> None:
        # Outside the tree, so the failure closing the root does not cancel it.
        parent = await receive.receive()
        try:
            async with open_child(parent) as child:
                child.set_teardown(failing_teardown)
        except Boom as exc:
            raised.append(exc)

    with pytest.RaisesGroup(
        pytest.RaisesExc(Boom, match="teardown"), flatten_subgroups=True
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(plain_task)
            async with proctree.open_root() as root:
                await send.send(root)
                await trio.sleep_forever()
    assert [str(e) for e in raised] == ["teardown"]


async def test_open_child_under_a_closing_parent_cancels_the_block_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        parent = root.go(finishes_late, 1)
        root.go(close_at, parent, 0)
        await parent.closing.wait()
        async with open_child(parent) as child:
            await trio.sleep(10)
        assert trio.current_time() == 0.0
        assert child.state is State.CLOSED


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan])
async def test_a_negative_timeout_is_a_value_error(
    autojump_clock: trio.testing.MockClock, seconds: float
) -> None:
    async with proctree.open_root():
        with pytest.raises(ValueError, match="seconds must be >= 0"):
            with_timeout(seconds)


@pytest.mark.parametrize("bad", ["5", None, True])
async def test_a_deadline_or_timeout_that_is_not_a_number_is_a_type_error(
    autojump_clock: trio.testing.MockClock, bad: object
) -> None:
    async with proctree.open_root():
        with pytest.raises(TypeError, match=r"trio\.current_time\(\) \+ 30"):
            with_deadline(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be a number of seconds"):
            with_timeout(bad)  # type: ignore[arg-type]


async def test_bridges_check_parent_name_and_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root() as root:
        with pytest.raises(ValueError, match="deadline must be a number, got nan"):
            with_deadline(math.nan)
        with pytest.raises(ValueError, match="grace must be >= 0"):
            with_deadline(1, grace=-1)
        with pytest.raises(TypeError, match="name must be a str"):
            with_timeout(1, root, 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"parent must be a proctree\.Process"):
            open_child("root")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name must be a str"):
            open_child(root, 5)  # type: ignore[arg-type]


async def test_bridges_outside_every_root_say_to_open_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        with_timeout(1)
    with pytest.raises(proctree.ProctreeError, match="open_root"):
        open_child()


# ------------------------------------------------------------------ leaks


async def _use_the_bridges() -> list[weakref.ref[proctree.Process]]:
    async with proctree.open_root() as root:
        watched = proctree.with_parent(root)
        root.go(close_at, watched, 1)
        with move_on_closing(watched):
            await trio.sleep_forever()
        with move_on_closing(root):
            await trio.sleep(1)
        timed = with_timeout(1)
        timed.go(until_closing)
        async with open_child(root) as child:
            child.go(until_closing)
            await trio.sleep(2)
        with trio.move_on_after(1):
            async with open_child(root) as cancelled:
                await trio.sleep_forever()
        await cancelled.wait()
    return [weakref.ref(p) for p in (watched, timed, child, cancelled)]


async def test_the_bridges_leave_no_garbage_and_no_live_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with no_garbage():
        refs = await _use_the_bridges()
    assert [r() for r in refs] == [None] * len(refs)
