"""Test support: record teardown order, wait for states, check a tree ended well."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import final

import trio

from .._core import Instrument, Process, State

__all__ = ["TeardownRecorder", "wait_for_state"]

_POLL = 0.001
"""Seconds between two looks at a state that has no event of its own."""

_ORDER = {
    State.INITIAL: 0,
    State.STARTING: 1,
    State.RUNNING: 2,
    State.CLOSING: 3,
    State.CLOSED: 4,
}


@final
class TeardownRecorder(Instrument):
    """An instrument that records processes in the order they were CLOSED.

    Pass it to :func:`~proctree.open_root` (the ``proctree_recorder``
    fixture of the pytest plugin does), then assert the order in one line::

        assert recorder.order == ["http", "db"]

    or, for siblings closed concurrently, a partial order with
    :meth:`assert_before`. Names are process names; :attr:`paths` has the
    full paths.

    It also remembers every process it saw made, so :meth:`unclosed` and
    :meth:`failures` can say whether the tree ended well.
    """

    order: list[str]
    """Names of the processes, in the order they became CLOSED."""
    paths: list[str]
    """Their paths, in the same order."""

    def __init__(self) -> None:
        self.paths = []
        self.order = []
        self._seen: list[Process] = []
        self._failures: list[tuple[str, BaseException]] = []

    def created(self, process: Process) -> None:
        """Remember the process."""
        self._seen.append(process)

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """Record the close, and the failure if there was one."""
        path = process.path
        self.order.append(process.name)
        self.paths.append(path)
        if error is not None:
            self._failures.append((path, error))

    def failures(self) -> list[tuple[str, BaseException]]:
        """``(path, error)`` of every process that closed with a failure."""
        return list(self._failures)

    def unclosed(self) -> list[Process]:
        """The processes seen made that are not CLOSED."""
        return [p for p in self._seen if p.state is not State.CLOSED]

    def assert_before(
        self, first: str | Iterable[str], then: str | Iterable[str]
    ) -> None:
        """Assert that every ``first`` process closed before every ``then`` one.

        Each argument is a name or an iterable of names (siblings whose
        order among themselves does not matter).

        Raises:
            AssertionError: a name was never closed, or the order is wrong;
                the message shows the recorded order.
        """
        earlier = [first] if isinstance(first, str) else list(first)
        later = [then] if isinstance(then, str) else list(then)
        for name in (*earlier, *later):
            if name not in self.order:
                raise AssertionError(
                    f"{name!r} was never closed; closed in order: {self.order}"
                )
        last_early = max(self.order.index(name) for name in earlier)
        first_late = min(self.order.index(name) for name in later)
        if last_early > first_late:
            raise AssertionError(
                f"expected {earlier} to close before {later}; "
                f"closed in order: {self.order}"
            )

    def assert_order(self, *groups: str | Sequence[str]) -> None:
        """Assert the closing order group by group (a group: concurrent siblings).

        ``recorder.assert_order(["w1", "w2"], "http", "db")`` passes when
        both workers closed, in any order, before ``http``, before ``db``.
        """
        for earlier, later in itertools.pairwise(groups):
            self.assert_before(earlier, later)


async def wait_for_state(
    process: Process, state: State, *, timeout: float | None = None
) -> None:
    """Wait until ``process`` has reached ``state`` (or a later one).

    States only move forward, so reaching ``RUNNING`` also means "or is
    already closing". CLOSING and CLOSED are awaited on the process's
    events; the states before them are polled every millisecond of trio's
    clock, which ``autojump_clock`` skips through at once.

    Args:
        process: the process to watch.
        state: the state to wait for.
        timeout: give up after this many seconds (trio's clock).

    Raises:
        TypeError: ``process`` is not a Process or ``state`` not a State.
        trio.TooSlowError: the timeout passed first.
    """
    if not isinstance(process, Process):
        raise TypeError(
            f"wait_for_state() takes a proctree.Process, got {type(process).__name__}"
        )
    if not isinstance(state, State):
        raise TypeError(f"wait_for_state() takes a proctree.State, got {state!r}")
    with trio.fail_after(math.inf if timeout is None else timeout):
        if state is State.CLOSING:
            await process.closing.wait()
        elif state is State.CLOSED:
            await process.closed.wait()
        else:
            while _ORDER[process.state] < _ORDER[state]:
                await trio.sleep(_POLL)
