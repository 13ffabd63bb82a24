"""Contract 5: no error is lost, each surfaces once; cancellation is never swallowed."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import trio
import trio.testing

import proctree
from proctree import State
from proctree._core import leaf_exceptions

from ..support.helpers import recorder, until_closing


class Boom(Exception):
    pass


async def test_a_failing_teardown_becomes_the_error_and_reaches_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    boom = Boom("teardown")

    async def teardown() -> None:
        raise boom

    with pytest.RaisesGroup(Boom) as info:
        async with proctree.open_root() as root:
            p = proctree.with_teardown(teardown, parent=root, name="db")
            with pytest.raises(Boom):
                await p.aclose()
            assert p.error is boom
            assert p.state is State.CLOSED
    assert info.value.exceptions == (boom,)
    assert any("'root/db'" in note for note in boom.__notes__)


async def test_a_failing_function_closes_its_ancestors_and_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def bad(proc: proctree.Process) -> None:
        await trio.sleep(1)
        raise Boom("function")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root() as root:
            mid = proctree.with_teardown(recorder(log, "mid"), parent=root)
            sibling = proctree.with_teardown(recorder(log, "sibling"), parent=root)
            worker = mid.go(bad)
            await trio.sleep_forever()
    assert isinstance(worker.error, Boom)
    assert mid.error is None
    assert root.error is None
    assert sorted(log) == ["mid", "sibling"]
    assert sibling.state is State.CLOSED


async def test_several_failures_leave_as_one_group_each_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    errors = [Boom(str(i)) for i in range(3)]

    def failing(exc: Exception):  # type: ignore[no-untyped-def]
        async def teardown() -> None:
            raise exc

        return teardown

    with pytest.RaisesGroup(Boom, Boom, Boom) as info:
        async with proctree.open_root() as root:
            parent = proctree.with_parent(root)
            for exc in errors:
                proctree.with_teardown(failing(exc), parent=parent)
            # a DAG: the same failing process under two parents
            other = proctree.with_parent(root)
            for child in list(parent._children or ()):
                other.add_child(child)
    assert sorted(map(str, info.value.exceptions)) == ["0", "1", "2"]
    assert len({id(e) for e in info.value.exceptions}) == 3


async def test_function_and_teardown_failing_both_make_the_error_a_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def teardown() -> None:
        raise Boom("teardown")

    async def fn(proc: proctree.Process) -> None:
        raise Boom("function")

    with pytest.RaisesGroup(Boom, Boom):
        async with proctree.open_root() as root:
            p = root.go(fn)
            p.set_teardown(teardown)
    assert isinstance(p.error, BaseExceptionGroup)
    assert sorted(str(e) for e in p.error.exceptions) == ["function", "teardown"]


async def test_an_error_awaited_and_reraised_by_the_body_is_reported_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    boom = Boom()

    async def teardown() -> None:
        raise boom

    with pytest.RaisesGroup(Boom) as info:
        async with proctree.open_root() as root:
            p = proctree.with_teardown(teardown, parent=root)
            await p.aclose()
    assert info.value.exceptions == (boom,)


async def test_a_body_failure_closes_the_tree_and_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    with pytest.RaisesGroup(Boom):
        async with proctree.open_root() as root:
            proctree.with_teardown(recorder(log, "child"), parent=root)
            raise Boom("body")
    assert log == ["child"]


async def test_keyboard_interrupt_in_a_function_is_not_swallowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(proc: proctree.Process) -> None:
        raise KeyboardInterrupt

    # A lone KeyboardInterrupt leaves the root bare, as it leaves trio.run.
    with pytest.RaisesExc(KeyboardInterrupt) as info:
        async with proctree.open_root() as root:
            root.go(fn)
            await trio.sleep_forever()
    assert type(info.value) is KeyboardInterrupt


async def test_keyboard_interrupt_in_a_teardown_forces_and_is_not_swallowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[bool] = []

    async def slow(proc: proctree.Process) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    async def teardown() -> None:
        raise KeyboardInterrupt

    with pytest.RaisesExc(KeyboardInterrupt) as info:
        async with proctree.open_root() as root:
            root.go(slow, grace=1000)
            p = proctree.with_teardown(teardown, parent=root)
            await p.aclose()
    assert type(info.value) is KeyboardInterrupt
    assert cancelled == [True]
    assert trio.current_time() < 1000


async def test_outer_cancellation_propagates_out_of_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    with trio.move_on_after(5) as scope:
        async with proctree.open_root() as root:
            proctree.with_teardown(recorder(log, "child"), parent=root)
            root.go(until_closing)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert root.state is State.CLOSED


async def test_a_cancelled_function_is_not_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async with proctree.open_root() as root:
        p = root.go(stubborn, grace=2)
        start = trio.current_time()
        await p.aclose()
        assert trio.current_time() - start == 2
        assert p.error is None


async def test_trio_cancelled_inside_a_teardown_is_not_swallowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def teardown() -> None:
        await trio.sleep_forever()

    with trio.move_on_after(3) as scope:
        async with proctree.open_root() as root:
            p = proctree.with_teardown(teardown, parent=root)
            await p.aclose()
    assert scope.cancelled_caught
    assert p.state is State.CLOSED
    assert p.error is None


async def test_a_failure_under_background_still_reaches_the_hosting_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(proc: proctree.Process) -> None:
        raise Boom("stray")

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root():
            p = proctree.go(fn, parent=proctree.background())
            with pytest.raises(Boom):
                await p.wait()


async def test_a_group_holding_a_keyboard_interrupt_leaves_the_root_once() -> None:
    """A function's own nursery fails with a group holding a KeyboardInterrupt:
    the root raises the group once, not the group and its members again."""

    async def own_nursery(proc: proctree.Process) -> None:
        async def boom() -> None:
            raise ValueError("boom")

        async def interrupt() -> None:
            raise KeyboardInterrupt  # in the same batch as boom's failure

        async with trio.open_nursery() as nursery:
            nursery.start_soon(boom)
            nursery.start_soon(interrupt)

    with pytest.RaisesExc(BaseExceptionGroup) as info:
        async with proctree.open_root() as root:
            root.go(own_nursery)
            await trio.sleep_forever()
    leaves = leaf_exceptions(info.value)
    assert sorted(type(e).__name__ for e in leaves) == [
        "KeyboardInterrupt",
        "ValueError",
    ]
    assert len({id(e) for e in leaves}) == len(leaves) == 2


async def test_a_lone_keyboard_interrupt_leaves_the_root_bare() -> None:
    """Ctrl-C under a plain open_root ends as trio.run's would: a bare
    KeyboardInterrupt that ``except KeyboardInterrupt`` catches."""
    with pytest.RaisesExc(KeyboardInterrupt) as info:
        async with proctree.open_root():
            await trio.lowlevel.checkpoint()
            raise KeyboardInterrupt
    assert not isinstance(info.value, BaseExceptionGroup)


def test_a_failure_of_the_root_body_is_printed_once() -> None:
    script = (
        "import trio, proctree\n"
        "async def main():\n"
        "    async with proctree.open_root():\n"
        "        raise RuntimeError('boom in body')\n"
        "trio.run(main)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert out.stderr.count("RuntimeError: boom in body") == 1
    assert "During handling of the above exception" not in out.stderr


def test_ctrl_c_under_a_plain_root_exits_as_under_trio_run() -> None:
    script = (
        "import trio, proctree\n"
        "async def main():\n"
        "    async with proctree.open_root():\n"
        "        print('up', flush=True)\n"
        "        await trio.sleep_forever()\n"
        "try:\n"
        "    trio.run(main)\n"
        "except KeyboardInterrupt:\n"
        "    print('caught KeyboardInterrupt', flush=True)\n"
        "    raise\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "up\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert out == "caught KeyboardInterrupt\n"
    assert proc.returncode == -signal.SIGINT  # Python's own exit for Ctrl-C
    assert "ExceptionGroup" not in err
    assert err.splitlines().count("KeyboardInterrupt") == 1  # one traceback
