"""The harness of the stateful API tests (tests/reliability/test_stateful_api.py).

A *machine* is one episode of random operations on a live proctree tree:
it opens a root under trio's ``MockClock(autojump_threshold=0)``, draws
one operation at a time from hypothesis (``data.draw``), runs it, lets
every other task run until all are blocked, and checks the SPEC contract
on everything it can see; at the end it closes the root and checks what
only the end can show. This module holds what every machine shares:

* :class:`Contract`, a proctree instrument that checks each lifecycle
  event the moment it happens (state order, closed-after-children);
* :class:`TaskCounter`, a trio instrument that proves no task outlives
  the root;
* :class:`Machine`, the episode loop and the per-step checks;
* the operation counters and the settings (CI and soak) that
  ``test_stateful_api.py`` and ``nox -s soak`` use.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import StopTest

import proctree
from proctree import State

T = TypeVar("T")

RANK: dict[State, int] = {
    State.INITIAL: 0,
    State.STARTING: 1,
    State.RUNNING: 2,
    State.CLOSING: 3,
    State.CLOSED: 4,
}
"""States only move forward: INITIAL -> STARTING -> RUNNING -> CLOSING -> CLOSED."""

HANG = 1_000_000.0
"""Seconds of mock time after which an episode is a hang (autojump gets there)."""


# ------------------------------------------------------------ settings, counts

SOAK = os.environ.get("PROCTREE_SOAK", "") not in ("", "0")
"""Soak mode (``nox -s soak``): batches of examples until an operation budget."""
SOAK_OPS = int(os.environ.get("PROCTREE_SOAK_OPS", "1000000"))
"""Soak: operations this process runs, shared equally by the machines."""
SOAK_SEED = int(os.environ.get("PROCTREE_SOAK_SEED", "0"))
"""Soak: the base seed of this process (one per worker, so they differ)."""
SOAK_REPORT = os.environ.get("PROCTREE_SOAK_REPORT", "")
"""Soak: a file each machine appends its counts to, one JSON line."""
SOAK_BATCH = 1000
"""Soak: examples per hypothesis run (each run has its own seed)."""

CI_EXAMPLES = int(os.environ.get("PROCTREE_STATEFUL_EXAMPLES", "60"))
"""Examples per machine in CI mode (the default)."""

BASE_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)


@dataclass
class Stats:
    """What one machine ran: operations (executed steps), examples, violations."""

    ops: int = 0
    examples: int = 0
    violations: int = 0


STATS: dict[str, Stats] = {}


def stats(name: str) -> Stats:
    """The counters of the machine called ``name``."""
    return STATS.setdefault(name, Stats())


# ------------------------------------------------------------------- checks


class ContractViolation(AssertionError):
    """The SPEC contract was broken; the message says where."""


class Boom(Exception):
    """A failure the machines inject; each one is a distinct object."""


def leaves(exc: BaseException | None) -> Iterator[BaseException]:
    """The exceptions inside ``exc``, groups flattened."""
    if exc is None:
        return
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


@dataclass(eq=False)
class Track:
    """What the machine knows about one process (identity-keyed)."""

    proc: proctree.Process
    label: str
    rank: int
    waits: list[proctree.Process] = field(default_factory=list)
    """Processes this one may not be CLOSED before (add_child, wait_for, go...)."""
    no_waits: list[proctree.Process] = field(default_factory=list)
    """add_child_no_wait children: closing before this one's teardown."""
    has_teardown: bool = False
    teardowns: int = 0
    teardown_done: bool = False
    task: bool = False
    """Whether it has a task of its own (a go function) the machine watches."""
    task_ended: bool = False
    closing_at: float | None = None
    closing_hooks: int = 0
    closed_hooks: int = 0


class Contract(proctree.Instrument):
    """Checks each lifecycle event as it happens (called inside the driver).

    A hook that raised would only be logged, so violations are recorded on
    the machine instead.
    """

    def __init__(self, machine: Machine) -> None:
        self.m = machine

    def _see(self, p: proctree.Process, state: State, event: str) -> Track:
        t = self.m.track(p)
        rank = RANK[state]
        if rank < t.rank:
            self.m.violation(
                f"{t.label}: state went back from rank {t.rank} to {state} ({event})"
            )
        t.rank = max(t.rank, rank)
        return t

    def created(self, process: proctree.Process) -> None:
        self._see(process, process.state, "created")

    def started(self, process: proctree.Process) -> None:
        self._see(process, process.state, "started")

    def ready(self, process: proctree.Process) -> None:
        t = self._see(process, State.RUNNING, "ready")
        if process.state is not State.RUNNING:
            self.m.violation(f"{t.label}: ready hook while {process.state}")

    def closing(self, process: proctree.Process) -> None:
        t = self._see(process, State.CLOSING, "closing")
        t.closing_hooks += 1
        t.closing_at = trio.current_time()
        if t.closing_hooks != 1:
            self.m.violation(f"{t.label}: began closing {t.closing_hooks} times")

    def closed(
        self, process: proctree.Process, duration: float, error: BaseException | None
    ) -> None:
        t = self._see(process, State.CLOSED, "closed")
        t.closed_hooks += 1
        if t.closed_hooks != 1:
            self.m.violation(f"{t.label}: CLOSED {t.closed_hooks} times")
        if t.closing_hooks != 1:
            self.m.violation(f"{t.label}: CLOSED without closing first")
        self.m.check_may_close(t, "CLOSED")
        if t.has_teardown and not t.teardown_done:
            self.m.violation(f"{t.label}: CLOSED before its teardown finished")
        self.m.on_closed(t, error)


class TaskCounter(trio.abc.Instrument):
    """Counts the trio tasks spawned since it was added that are still alive."""

    def __init__(self) -> None:
        self.alive: set[trio.lowlevel.Task] = set()

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.alive.add(task)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.alive.discard(task)


# ------------------------------------------------------------------ machine


class Machine:
    """One episode of random steps on a live tree, checked after every step.

    Subclasses give ``OPS`` (operation names, repeated for weight), an
    ``op_<name>`` coroutine per name, and may extend :meth:`setup`,
    :meth:`check_step`, :meth:`finish` and :meth:`check_end`.
    """

    OPS: ClassVar[tuple[str, ...]] = ()
    MAX_STEPS: ClassVar[int] = 30

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.name = type(self).__name__
        self.tracks: dict[proctree.Process, Track] = {}
        self.violations: list[str] = []
        self.steps = 0
        self.root_error: BaseException | None = None
        self.root_exited = trio.Event()
        self.raised: list[BaseException] = []
        """Injected failures that were actually raised, each once."""
        self.nursery: trio.Nursery
        self.root: proctree.Process
        self.counter = TaskCounter()

    # ----------------------------------------------------------- helpers

    def draw(self, strategy: st.SearchStrategy[T], label: str) -> T:
        return self.data.draw(strategy, label=label)

    def violation(self, message: str) -> None:
        self.violations.append(
            f"t={trio.current_time():g} step {self.steps}: {message}"
        )

    def track(self, p: proctree.Process, label: str | None = None) -> Track:
        t = self.tracks.get(p)
        if t is None:
            t = self.tracks[p] = Track(
                p, label or f"{p.name}#{len(self.tracks)}", RANK[p.state]
            )
        elif label is not None:
            t.label = label
        return t

    def boom(self, where: str) -> Boom:
        """A fresh failure to raise; call :meth:`raising` when it is raised."""
        return Boom(f"{self.name} {where} at step {self.steps}")

    def raising(self, exc: BaseException) -> BaseException:
        self.raised.append(exc)
        return exc

    def spawn(self, fn: Callable[[], Awaitable[object]]) -> None:
        """Run ``fn`` in the machine's own nursery, outside the root."""
        self.nursery.start_soon(fn)

    def check_may_close(self, t: Track, when: str) -> None:
        """Order: nothing this process waits for is open, its task has ended."""
        for q in t.waits:
            if q.state is not State.CLOSED:
                self.violation(
                    f"{when} of {t.label} while {self.track(q).label}, which it "
                    f"waits for, is {q.state.name}"
                )
        for q in t.no_waits:
            if RANK[q.state] < RANK[State.CLOSING]:
                self.violation(
                    f"{when} of {t.label} before its no-wait child "
                    f"{self.track(q).label} began closing"
                )
        if t.task and not t.task_ended:
            self.violation(f"{when} of {t.label} while its own task runs")

    def on_closed(self, t: Track, error: BaseException | None) -> None:
        """A subclass hook, called from the ``closed`` instrument hook."""

    # ------------------------------------------------------------ episode

    async def run(self) -> None:
        """The whole episode; raises ContractViolation on the first bad step."""
        trio.lowlevel.add_instrument(self.counter)
        try:
            with trio.fail_after(HANG):
                async with trio.open_nursery() as nursery:
                    self.nursery = nursery
                    await nursery.start(self._host)
                    await self.setup()
                    await self._settle_and_check()
                    n = self.draw(st.integers(1, self.MAX_STEPS), "steps")
                    for _ in range(n):
                        if self.violations:
                            break
                        op = self.draw(st.sampled_from(self.OPS), "op")
                        self.steps += 1
                        stats(self.name).ops += 1
                        await getattr(self, f"op_{op}")()
                        await self._settle_and_check()
                    if self.violations:
                        # Stop at the first bad step: report it, not its fallout.
                        nursery.cancel_scope.cancel()
                    else:
                        await self.finish()
                        await self.root_exited.wait()
        except trio.TooSlowError:
            self.violation("the episode hung (a deadlock: nothing left to run)")
        finally:
            trio.lowlevel.remove_instrument(self.counter)
        self.raise_violations()
        if self.counter.alive:
            names = sorted(t.name for t in self.counter.alive)
            self.violation(f"tasks left after the root exited: {names}")
        self.check_end()
        self.check_errors_once()
        self.raise_violations()

    async def _host(self, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with proctree.open_root(
                name="root", instruments=[Contract(self)]
            ) as root:
                self.root = root
                self.track(root, "root")
                task_status.started()
                await trio.sleep_forever()
        except BaseExceptionGroup as group:
            self.root_error = group
        finally:
            self.root_exited.set()

    async def _settle_and_check(self) -> None:
        await trio.testing.wait_all_tasks_blocked()
        self.check_step()

    def raise_violations(self) -> None:
        if self.violations:
            stats(self.name).violations += len(self.violations)
            raise ContractViolation("\n".join(self.violations))

    async def setup(self) -> None:
        """Make the machine's subject; the root exists."""

    async def finish(self) -> None:
        """End the episode: by default close the root from outside."""
        await self.root.aclose()

    def check_step(self) -> None:
        """The contract on every process seen, after every step."""
        for t in self.tracks.values():
            p = t.proc
            rank = RANK[p.state]
            if rank < t.rank:
                self.violation(f"{t.label}: state went back to {p.state}")
            t.rank = max(t.rank, rank)
            closing, closed = p.closing.is_set(), p.closed.is_set()
            if closing != (rank >= RANK[State.CLOSING]):
                self.violation(f"{t.label}: closing={closing} in {p.state}")
            if closed != (p.state is State.CLOSED):
                self.violation(f"{t.label}: closed={closed} in {p.state}")
            if closed and not closing:
                self.violation(f"{t.label}: closed but not closing")
            if t.teardowns > 1:
                self.violation(f"{t.label}: teardown ran {t.teardowns} times")
            if p.state is State.CLOSED:
                self.check_may_close(t, "after step: CLOSED")
                if t.has_teardown and t.teardowns != 1:
                    self.violation(f"{t.label}: CLOSED, teardown ran {t.teardowns}")

    def check_end(self) -> None:
        """After the root exited: everything CLOSED, every teardown ran once."""
        for t in self.tracks.values():
            if t.proc.state is not State.CLOSED:
                self.violation(
                    f"{t.label} is {t.proc.state.name} after the root exited"
                )
            if t.has_teardown and (t.teardowns != 1 or not t.teardown_done):
                self.violation(
                    f"{t.label}: teardown ran {t.teardowns} times "
                    f"(finished: {t.teardown_done})"
                )
            if t.closed_hooks != 1:
                self.violation(f"{t.label}: closed hook called {t.closed_hooks} times")
        if self.root.state is not State.CLOSED:
            self.violation("the root is not CLOSED after its block exited")

    def expected_at_root(self) -> list[BaseException]:
        """The injected failures the root must report, once each."""
        return self.raised

    def known_bugs(self) -> set[int]:
        """Ids of failures a known bug (an xfail test) may lose or repeat."""
        return set()

    def check_errors_once(self) -> None:
        """No error is lost: each expected failure leaves the root exactly once."""
        got = Counter(map(id, leaves(self.root_error)))
        objs = {id(e): e for e in leaves(self.root_error)}
        for key, n in got.items():
            if n != 1:
                self.violation(f"{objs[key]!r} reported {n} times by the root")
        want = {id(e): e for e in self.expected_at_root()}
        excused = self.known_bugs()
        for key, wanted in want.items():
            if key not in got and key not in excused:
                self.violation(f"{wanted!r} was lost: the root did not report it")
        for key, reported in objs.items():
            if key not in want and key not in excused:
                self.violation(f"the root reported {reported!r}, which it should not")


REAL_TIME_LIMIT = 60.0
"""Seconds of real time an episode may take before it is a busy loop."""


class BusyLoop(BaseException):
    """An episode ran past :data:`REAL_TIME_LIMIT`: code that never yields."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Interrupt code that loops forever without yielding (SIGALRM)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise BusyLoop(f"an episode ran {seconds:g}s of real time: a busy loop")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_example(cls: type[Machine], data: st.DataObject) -> None:
    """One hypothesis example: one episode of ``cls`` under a mock clock."""
    stats(cls.__name__).examples += 1
    machine = cls(data)
    try:
        with watchdog(REAL_TIME_LIMIT):
            trio.run(machine.run, clock=trio.testing.MockClock(autojump_threshold=0))
    except ContractViolation:
        raise
    except BaseException as exc:
        stop = _stop_test(exc)
        if stop is not None:
            # Hypothesis ran out of data for this example: not a finding.
            raise stop from None
        stats(cls.__name__).violations += 1
        raise ContractViolation(f"the episode crashed: {exc!r}") from exc


def _stop_test(exc: BaseException) -> StopTest | None:
    """Hypothesis's own StopTest, possibly wrapped in trio's exception groups."""
    for leaf in leaves(exc):
        if isinstance(leaf, StopTest):
            return leaf
    return None


def hypothesis_test(
    cls: type[Machine],
    max_examples: int,
    seed: int | None = None,
    **options: Any,
) -> Callable[[], None]:
    """A hypothesis test running ``max_examples`` episodes of ``cls``."""

    def check(data: st.DataObject) -> None:
        run_example(cls, data)

    check.__name__ = check.__qualname__ = f"episodes_of_{cls.__name__}"
    test = settings(BASE_SETTINGS, max_examples=max_examples, **options)(
        given(data=st.data())(check)
    )
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    return test


def run_machine(cls: type[Machine]) -> None:
    """Run ``cls``: CI-sized by default, to its share of the budget when soaking."""
    if not SOAK:
        hypothesis_test(cls, CI_EXAMPLES)()
        return
    from . import test_stateful_api

    share = math.ceil(SOAK_OPS / len(test_stateful_api.MACHINES))
    counts = stats(cls.__name__)
    batch = 0
    try:
        while counts.ops < share:
            seed = (SOAK_SEED * 1_000_003 + batch) * 7 + len(cls.__name__)
            hypothesis_test(cls, SOAK_BATCH, seed=seed, database=None)()
            batch += 1
    finally:
        if SOAK_REPORT:
            with open(SOAK_REPORT, "a") as report:
                line = {"machine": cls.__name__, **counts.__dict__}
                report.write(json.dumps(line) + "\n")
