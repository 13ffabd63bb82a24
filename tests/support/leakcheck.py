"""One leak check for the fault and stress tests: tasks, gc, zombies, fds.

Usage::

    async def scenario(track: Track) -> None:
        async with proctree.open_root() as root:
            p = track(proctree.with_parent(root))
            ...

    await run_leak_checked(scenario)                # a clean path
    await run_leak_checked(scenario, allow_cycles=True)  # a failure path

The scenario is a function, not a block, so that its locals (processes,
caught exception groups) are gone when the checks run: a process it tracked
must then be freed. After it returns, :func:`run_leak_checked` asserts:

* no trio task is alive that was not alive before (the test's own tasks
  and pytest-trio's are), checked at once, without a checkpoint: a root's
  ``async with`` must not exit before every task it hosted has ended;
* on a clean path, nothing is left that only the cyclic gc could free
  (``gc.DEBUG_SAVEALL``), and every tracked process was freed by its
  reference count; on a failure path the raised exception's traceback
  makes a cycle Python creates itself (docs/design.md, section 7), so
  there every tracked process must be freed by ``gc.collect()`` instead;
* no child process is left unreaped (``os.waitpid(-1, WNOHANG)``);
* no file descriptor was added (``/proc/self/fd``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import types
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

import proctree

__all__ = [
    "Track",
    "all_tasks",
    "assert_no_zombie",
    "open_fds",
    "run_leak_checked",
]

P = TypeVar("P", bound=proctree.Process)


class Track:
    """Remembers processes (by weak reference) that must be freed after the run."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[proctree.Process]] = []

    def __call__(self, proc: P) -> P:
        """Track ``proc`` and return it, so that it can wrap a constructor call."""
        self.refs.append(weakref.ref(proc))
        return proc

    def many(self, procs: list[proctree.Process]) -> None:
        """Track every process of ``procs``."""
        self.refs.extend(weakref.ref(p) for p in procs)

    def alive(self) -> list[str]:
        """The names of the tracked processes that are still alive."""
        return [p.name for p in (r() for r in self.refs) if p is not None]


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every live task of this trio run (a walk of the task tree)."""
    tasks: set[trio.lowlevel.Task] = set()
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    while stack:
        task = stack.pop()
        tasks.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return tasks


def open_fds() -> set[str]:
    """The file descriptors this process has open (Linux)."""
    return set(os.listdir("/proc/self/fd"))


def assert_no_zombie() -> None:
    """No child process has exited without being waited for."""
    with contextlib.suppress(ChildProcessError):  # no child at all
        reaped = os.waitpid(-1, os.WNOHANG)
        assert reaped == (0, 0), f"a child process was left unreaped: {reaped}"


T = TypeVar("T")

_TRIO_SIGNAL_CYCLE = "SignalReceiver._redeliver_remaining.<locals>.deliver_next"


def _not_from_trio_signal_receivers(garbage: list[object]) -> list[object]:
    """``garbage`` minus trio's own signal-receiver cycle and what it holds.

    ``trio.open_signal_receiver`` (trio 0.35) leaves, every time, a nested
    function that refers to itself (``deliver_next``, recursive) and to its
    ``SignalReceiver``: a cycle of trio's making, not proctree's.
    """
    in_garbage = {id(obj): obj for obj in garbage}
    stack = [
        obj
        for obj in garbage
        if isinstance(obj, types.FunctionType)
        and obj.__qualname__ == _TRIO_SIGNAL_CYCLE
    ]
    reached = {id(obj) for obj in stack}
    while stack:
        for ref in gc.get_referents(stack.pop()):
            if id(ref) in in_garbage and id(ref) not in reached:
                reached.add(id(ref))
                stack.append(ref)
    return [obj for obj in garbage if id(obj) not in reached]


async def run_leak_checked(
    scenario: Callable[[Track], Awaitable[T]],
    *,
    allow_cycles: bool = False,
    signals: bool = False,
) -> T:
    """Run ``scenario(track)`` and assert that it leaked nothing (module doc).

    Args:
        scenario: opens its roots and returns once they have exited; it
            should not return processes (they would still be referenced).
        allow_cycles: the scenario goes through a failure path, so a
            traceback cycle may be left for the cyclic gc (or it meets a
            known bug that leaves one); tracked processes must then be freed
            by ``gc.collect()`` rather than by refcount.
        signals: the scenario opened ``with_signals`` roots: the cycle
            trio's signal receiver leaves is not counted as garbage.

    Returns:
        What the scenario returned.
    """
    track = Track()
    tasks_before = all_tasks()
    gc.collect()
    fds_before = open_fds()
    if not allow_cycles:
        gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = await scenario(track)
        # No checkpoint before this: what the roots hosted is already over.
        leftover_tasks = {t.name for t in all_tasks() - tasks_before}
        alive_by_refcount = track.alive()
        gc.collect()
        left = gc.garbage
        if signals:
            left = _not_from_trio_signal_receivers(left)
        garbage = [type(obj).__name__ for obj in left]
        del left
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not leftover_tasks, f"tasks outlived their root: {leftover_tasks}"
    if allow_cycles:
        alive = track.alive()
        assert not alive, f"processes not freed by gc.collect(): {alive}"
    else:
        assert not garbage, f"left for the cyclic gc: {Counter(garbage)}"
        assert not alive_by_refcount, (
            f"processes not freed by refcount: {alive_by_refcount}"
        )
    assert_no_zombie()
    gc.collect()  # an fd owned by a leaked object would be closed here, too late
    fds = open_fds() - fds_before
    assert not fds, f"file descriptors left open: {fds}"
    return result
