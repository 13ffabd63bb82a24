"""Stateful property tests across the whole public API, the contract after each step.

Four machines, each an episode of random operations on one live tree:

* :class:`ProcessMachine`: ``go`` (functions that end, fail, ignore
  closing, close themselves or an ancestor, spawn), ``with_parent``,
  ``with_teardown``, ``set_teardown`` (teardowns that fail, sleep past
  the grace, spawn on their own process, close an ancestor),
  ``add_child``, ``add_child_no_wait``, ``wait_for``, ``aclose`` (with and
  without a grace, callers cancelled while waiting), ``close_after_children``,
  ``wait``, ``stop`` and ``start`` on the wrong kind of process, time.
* :class:`RunnerMachine`: ``new_process`` of random runner trees (``leaf``,
  ``start_stop``, ``nop``, ``sequential``, ``chain``, ``parallel``,
  ``prefixed_error``, runners that fail to start, return before ready,
  start too slowly for a timeout, fail while running or while stopping),
  ``start``/``stop``/``aclose`` in any order.
* :class:`SupervisorMachine`: a ``Supervisor`` over a ``MemoryTable`` with
  a random policy: keys added to and deleted from the table,
  ``start_child``/``stop_child``, children that fail, fail to start, return,
  raise ``DoNotRestart``, the restart loop under time, the supervisor
  stopped in the middle.
* :class:`RateLimitMachine`: a ``RateLimiter`` with jobs that queue for a
  slot, end, fail, are closed, unlimited ``go`` children, the limiter
  closed with callers still waiting.

Why not ``RuleBasedStateMachine``: its rules are synchronous functions
that hypothesis calls one after another, but proctree only lives inside
``trio.run``, and every interesting step (a close, a start, a failure)
needs the trio loop to run between two rules. Keeping one loop alive
across rules needs a thread (the clock could then autojump while a rule
is being drawn, and the run would not be reproducible) or guest mode.
Writing a program first and running it afterwards (``test_properties.py``)
keeps trio happy, but a step cannot depend on what the tree really did
(which processes are still open, whether a start failed), and the checks
see only the end. So each example here is one ``trio.run`` under
``MockClock(autojump_threshold=0)`` whose main task *draws* each step from
hypothesis as it goes (``st.data()``), runs it, waits until every task is
blocked (``wait_all_tasks_blocked``: no mock time passes), and checks the
contract on every process seen. Hypothesis still shrinks the sequence of
draws, and trio's scheduler is seeded by hypothesis (trio registers its
random source), so a failing episode replays exactly.

What is checked, and where (``Machine`` and ``Contract`` live in
``stateful_harness.py``):

* states only move forward, ``closing``/``closed`` agree with the state,
  CLOSED only after closing: ``Contract`` at every lifecycle event and
  ``Machine.check_step`` after every step, for every process seen (the
  combinators', supervisor's and limiter's own included);
* a teardown runs at most once, exactly once by the end, and finishes
  before CLOSED, even past every grace: ``Machine.check_step``,
  ``Machine.check_end``, ``Contract.closed``;
* a process is never CLOSED (nor its teardown started) before what it
  waits for, nor before its own task ended, and its no-wait children are
  closing first: ``Machine.check_may_close`` (from ``Contract.closed``, each
  teardown's start and every step); a combinator is CLOSED only after all
  its parts ended: ``RunnerMachine.on_closed``;
* ``CycleError`` exactly when a model says the edge closes a cycle,
  ``InvalidStateError`` exactly on CLOSED processes: ``ProcessMachine._edge``
  and its ``op_*``;
* graceful then forced: ``ProcessMachine.check_step``;
* every injected failure reaches the root once and nothing else does, a
  process's ``error`` holds its own failures only, ``aclose``/``wait``/
  ``stop`` raise it: ``Machine.check_errors_once``, ``on_closed``,
  ``check_raised``; startup failures are ``start()``'s only and child
  failures the supervisor's (``expected_at_root`` of those machines);
* no task is left once the root exits: ``TaskCounter``; no deadlock:
  ``trio.fail_after`` on the mock clock; no busy loop: ``watchdog``;
* runners: start order and reverse stop order, each part stopped at most
  once and a started ``start_stop`` always stopped, ``start()``/``stop()``
  outcomes: ``RunnerMachine``;
* supervisor: at most one live run per key, no restart once closing, no
  live run once CLOSED: ``SupervisorMachine``;
* ratelimit: never more than ``limit`` jobs running or limited children
  open, first come first served, every job completes:
  ``RateLimitMachine``.

The tests at the end reproduce the bugs the machines found (a path that
looped on a close-only cycle through the root, combinator failures lost
on a forced roll-back or stop, a failure reported twice when a runner was
stopped while starting); all are fixed, and the machines no longer step
around them.

Every step is counted (``stateful_harness.STATS``): ``nox -s soak`` runs
the machines until at least a million operations and prints the total.
``test_properties.py`` stays the model-based check of the edge and cycle
rules of the core; these machines cover the rest of the API and check
after every step instead of only at the end.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
import trio
import trio.testing
from hypothesis import strategies as st

import proctree
from proctree import State

from .stateful_harness import (
    RANK,
    Boom,
    Machine,
    Track,
    leaves,
    run_machine,
    watchdog,
)

CLOSED = State.CLOSED


def _is_open(p: proctree.Process) -> bool:
    return p.state is not CLOSED


# ================================================================ processes

BEHAVIOURS = (
    "until_closing",  # watches closing, then takes `delay` to end
    "returns",  # returns after `delay` (closes after its children)
    "fails",  # raises after `delay`
    "forever",  # ignores closing: ends only when forced
    "close_self",  # awaits its own aclose() after `delay`: cancelled
    "close_parent",  # awaits its parent's aclose() after `delay`: cancelled
    "spawns",  # starts a child of its own, then waits for closing
)
TEARDOWNS = (None, "ok", "slow", "fails", "spawns", "close_parent")
DELAYS = (0.0, 0.5, 1.5, 3.0)
GRACES = (0.0, 1.0, 2.0, 5.0)


@dataclass(eq=False)
class FnInfo:
    behaviour: str
    delay: float
    grace: float
    completed: bool = False
    ended_at: float | None = None


class ProcessMachine(Machine):
    """The core: go, with_parent, with_teardown, edges, closes, time."""

    OPS: ClassVar[tuple[str, ...]] = (
        "go",
        "go",
        "go",
        "with_parent",
        "with_teardown",
        "add_child",
        "add_child_no_wait",
        "wait_for",
        "wait_for",
        "aclose",
        "aclose",
        "close_after_children",
        "wait",
        "stop",
        "start",
        "set_teardown",
        "sleep",
        "sleep",
    )
    MAX_STEPS = 40

    def __init__(self, data: st.DataObject) -> None:
        super().__init__(data)
        self.procs: list[proctree.Process] = []
        self.fns: dict[proctree.Process, FnInfo] = {}
        self.explicit_deadline = False
        self.own_errors: dict[proctree.Process, list[BaseException]] = {}

    async def setup(self) -> None:
        self.procs.append(self.root)

    def pick(self, label: str) -> proctree.Process:
        i = self.draw(st.integers(0, len(self.procs) - 1), label)
        return self.procs[i]

    def adopt(self, parent: proctree.Process, child: proctree.Process) -> Track:
        t = self.track(child, f"p{len(self.procs)}")
        self.procs.append(child)
        self.track(parent).waits.append(child)
        return t

    # ------------------------------------------------------- teardowns

    def make_teardown(
        self, p_box: list[proctree.Process], kind: str
    ) -> Callable[[], Awaitable[None]]:
        machine = self

        async def teardown() -> None:
            p = p_box[0]
            t = machine.track(p)
            t.teardowns += 1
            machine.check_may_close(t, "teardown start")
            if kind == "slow":
                # Longer than any grace: a teardown is never cancelled by one.
                await trio.sleep(7)
            elif kind == "fails":
                await trio.sleep(0.5)
                exc = machine.boom(f"teardown of {t.label}")
                machine.own_errors.setdefault(p, []).append(exc)
                t.teardown_done = True
                raise machine.raising(exc)
            elif kind == "spawns":
                # A teardown may use its own process without deadlock.
                child = p.go(machine.fn, name="from-teardown", grace=1.0)
                machine.fns[child] = FnInfo("until_closing", 0.5, 1.0)
                machine.adopt(p, child).task = True
                if child.state is not State.CLOSING:
                    machine.violation(
                        f"go() in the teardown of {t.label}: a {child.state} child"
                    )
            elif kind == "close_parent":
                parent = machine.parent_of(p)
                if parent is not None:
                    # From a teardown: starts the close, returns without waiting.
                    await parent.aclose()
                    if RANK[parent.state] < RANK[State.CLOSING]:
                        machine.violation(
                            f"aclose() of {machine.track(parent).label} from a "
                            "teardown returned before it began closing"
                        )
            else:
                await trio.lowlevel.checkpoint()
            t.teardown_done = True

        return teardown

    def parent_of(self, p: proctree.Process) -> proctree.Process | None:
        for q, t in self.tracks.items():
            if p in t.waits and q is not self.root:
                return q
        return None

    def give_teardown(self, p: proctree.Process, kind: str | None) -> None:
        if kind is None:
            return
        box = [p]
        t = self.track(p)
        try:
            p.set_teardown(self.make_teardown(box, kind))
        except proctree.InvalidStateError:
            # Refused once the teardown has started (a process with none
            # is CLOSED as soon as it would start).
            if p.state is not CLOSED and not t.teardowns:
                self.violation(f"set_teardown on {t.label} refused in {p.state}")
            return
        if t.teardowns:
            self.violation(f"set_teardown on {t.label} accepted after it ran")
        t.has_teardown = True

    # ------------------------------------------------------- functions

    async def fn(self, proc: proctree.Process) -> None:
        info = self.fns[proc]
        t = self.track(proc)
        try:
            b = info.behaviour
            if b == "until_closing":
                await proc.closing.wait()
                await trio.sleep(info.delay)
            elif b == "returns":
                await trio.sleep(info.delay)
            elif b == "fails":
                await trio.sleep(info.delay)
                exc = self.boom(f"function of {t.label}")
                self.own_errors.setdefault(proc, []).append(exc)
                info.completed = True
                raise self.raising(exc)
            elif b == "forever":
                await trio.sleep_forever()
            elif b == "close_self":
                await trio.sleep(info.delay)
                await proc.aclose()
                self.violation(f"{t.label}: aclose() of itself returned")
            elif b == "close_parent":
                await trio.sleep(info.delay)
                parent = self.parent_of(proc) or self.root
                await parent.aclose()
                self.violation(
                    f"{t.label}: aclose() of {self.track(parent).label}, which "
                    "waits for it, returned in its function"
                )
            elif b == "spawns":
                child = proc.go(self.fn, name="spawned", grace=info.grace)
                self.fns[child] = FnInfo("until_closing", info.delay, info.grace)
                self.adopt(proc, child).task = True
                await proc.closing.wait()
            info.completed = True
        finally:
            info.ended_at = trio.current_time()
            t.task_ended = True

    # ------------------------------------------------------------ ops

    async def op_go(self) -> None:
        parent = self.pick("parent")
        behaviour = self.draw(st.sampled_from(BEHAVIOURS), "behaviour")
        delay = self.draw(st.sampled_from(DELAYS), "delay")
        grace = self.draw(st.sampled_from(GRACES), "grace")
        teardown = self.draw(st.sampled_from(TEARDOWNS), "teardown")
        before = parent.state
        try:
            child = parent.go(self.fn, name=f"p{len(self.procs)}", grace=grace)
        except proctree.InvalidStateError:
            if before is not CLOSED:
                self.violation(f"go() under a {before} parent refused")
            return
        if before is CLOSED:
            self.violation("go() under a CLOSED parent accepted")
        self.fns[child] = FnInfo(behaviour, delay, grace)
        t = self.adopt(parent, child)
        t.task = True
        want = State.CLOSING if before is State.CLOSING else State.RUNNING
        if child.state is not want:
            self.violation(f"go() under a {before} parent: child {child.state}")
        self.give_teardown(child, teardown)

    async def op_with_parent(self) -> None:
        parent = self.pick("parent")
        before = parent.state
        try:
            child = proctree.with_parent(parent, name=f"p{len(self.procs)}")
        except proctree.InvalidStateError:
            if before is not CLOSED:
                self.violation(f"with_parent() under a {before} parent refused")
            return
        if before is CLOSED:
            self.violation("with_parent() under a CLOSED parent accepted")
        self.adopt(parent, child)
        if before is State.RUNNING and child.state is not State.RUNNING:
            self.violation(f"with_parent() made a {child.state} process")
        self.give_teardown(child, self.draw(st.sampled_from(TEARDOWNS), "teardown"))

    async def op_with_teardown(self) -> None:
        parent = self.pick("parent")
        kind = self.draw(st.sampled_from(TEARDOWNS[1:]), "teardown")
        before = parent.state
        box: list[proctree.Process] = []
        try:
            child = proctree.with_teardown(
                self.make_teardown(box, kind), parent, name=f"p{len(self.procs)}"
            )
        except proctree.InvalidStateError:
            if before is not CLOSED:
                self.violation(f"with_teardown() under a {before} parent refused")
            return
        if before is CLOSED:
            self.violation("with_teardown() under a CLOSED parent accepted")
        box.append(child)
        self.adopt(parent, child).has_teardown = True

    async def op_set_teardown(self) -> None:
        p = self.pick("process")
        if p is self.root:
            return
        self.give_teardown(p, self.draw(st.sampled_from(TEARDOWNS[1:]), "teardown"))

    def would_cycle(self, a: proctree.Process, b: proctree.Process) -> bool:
        """Model: does ``b`` (transitively) wait for ``a`` over open processes?"""
        if a is b:
            return True
        stack, seen = [b], {b}
        while stack:
            x = stack.pop()
            for y in self.track(x).waits:
                if y.state is CLOSED:
                    continue
                if y is a:
                    return True
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        return False

    async def _edge(self, kind: str) -> None:
        a, b = self.pick("a"), self.pick("b")
        cycle = self.would_cycle(a, b)
        closed = a.state is CLOSED
        closing = a.state is State.CLOSING
        la, lb = self.track(a).label, self.track(b).label
        try:
            getattr(a, kind)(b)
        except proctree.CycleError:
            if not cycle:
                self.violation(f"{kind}({la}, {lb}): CycleError without a cycle")
            return
        except proctree.InvalidStateError:
            if not closed:
                self.violation(f"{kind}({la}, {lb}) refused in {a.state}")
            return
        if cycle:
            self.violation(f"{kind}({la}, {lb}) accepted a cycle")
        if closed:
            self.violation(f"{kind}({la}, {lb}) accepted on a CLOSED process")
        self.track(a).waits.append(b)
        if kind == "add_child" and closing and RANK[b.state] < RANK[State.CLOSING]:
            self.violation(f"add_child({la}, {lb}) on a CLOSING parent: child open")

    async def op_add_child(self) -> None:
        await self._edge("add_child")

    async def op_wait_for(self) -> None:
        await self._edge("wait_for")

    async def op_add_child_no_wait(self) -> None:
        a, b = self.pick("a"), self.pick("b")
        la, lb = self.track(a).label, self.track(b).label
        was = a.state
        try:
            a.add_child_no_wait(b)
        except proctree.CycleError:
            if a is not b:
                self.violation(f"add_child_no_wait({la}, {lb}): false cycle")
            return
        if a is b:
            self.violation(f"add_child_no_wait({la}, itself) accepted")
        if RANK[was] >= RANK[State.CLOSING] and RANK[b.state] < RANK[State.CLOSING]:
            self.violation(f"add_child_no_wait({la}, {lb}) on a {was} parent: open")
        if was is not CLOSED:
            self.track(a).no_waits.append(b)

    def check_raised(self, p: proctree.Process, exc: BaseException | None) -> None:
        """What aclose()/wait()/stop() raised must be ``p.error``, once closed."""
        if exc is not p.error:
            self.violation(
                f"{self.track(p).label}: raised {exc!r}, its error is {p.error!r}"
            )

    async def op_aclose(self) -> None:
        p = self.pick("process")
        grace = self.draw(st.sampled_from((None, None, 0.0, 1.0, 10.0)), "grace")
        cancel_after = self.draw(st.sampled_from((None, None, 0.0, 1.0)), "cancel")
        if grace is not None:
            self.explicit_deadline = True

        async def closer() -> None:
            with trio.CancelScope() as scope:
                if cancel_after is not None:
                    scope.deadline = trio.current_time() + cancel_after
                raised: BaseException | None = None
                try:
                    await p.aclose(grace=grace)
                except Exception as exc:
                    raised = exc
                if p.state is not CLOSED:
                    self.violation(f"aclose of {self.track(p).label} returned early")
                self.check_raised(p, raised)
            # Cancelled while waiting: the close goes on (checked at the end).

        self.spawn(closer)

    async def op_close_after_children(self) -> None:
        p = self.pick("process")

        async def closer() -> None:
            raised: BaseException | None = None
            try:
                await p.close_after_children()
            except Exception as exc:
                raised = exc
            if p.state is not CLOSED:
                self.violation(
                    f"close_after_children of {self.track(p).label} returned early"
                )
            self.check_raised(p, raised)

        self.spawn(closer)

    async def op_wait(self) -> None:
        p = self.pick("process")

        async def waiter() -> None:
            raised: BaseException | None = None
            try:
                await p.wait()
            except Exception as exc:
                raised = exc
            if p.state is not CLOSED:
                self.violation(f"wait of {self.track(p).label} returned early")
            self.check_raised(p, raised)

        self.spawn(waiter)

    async def op_stop(self) -> None:
        p = self.pick("process")
        was_closed = p.state is CLOSED

        async def stopper() -> None:
            raised: BaseException | None = None
            try:
                await p.stop()
            except proctree.InvalidStateError as exc:
                if not was_closed:
                    self.violation(f"stop of an open {self.track(p).label}: {exc}")
                return
            except Exception as exc:
                raised = exc
            if was_closed:
                self.violation(f"stop of a CLOSED {self.track(p).label} accepted")
            self.check_raised(p, raised)

        self.spawn(stopper)

    async def op_start(self) -> None:
        p = self.pick("process")
        try:
            await p.start()
        except proctree.InvalidStateError:
            return
        self.violation(f"start() of {self.track(p).label}, not a runner, accepted")

    async def op_sleep(self) -> None:
        await trio.sleep(self.draw(st.sampled_from((0.25, 1.0, 2.5, 8.0)), "sleep"))

    # ---------------------------------------------------------- checks

    def on_closed(self, t: Track, error: BaseException | None) -> None:
        own = self.own_errors.get(t.proc, [])
        for exc in leaves(error):
            if not any(exc is e for e in own):
                self.violation(f"{t.label}: its error holds {exc!r}, not its own")

    def check_step(self) -> None:
        super().check_step()
        if self.explicit_deadline:
            return
        # Graceful, then forced (contract 6), from the close of each process.
        now = trio.current_time()
        for p, info in self.fns.items():
            closing_at = self.track(p).closing_at
            if closing_at is None:
                continue
            forced = closing_at + info.grace
            if info.ended_at is None and now > forced:
                self.violation(
                    f"{self.track(p).label}: still running {now - closing_at:g}s "
                    f"after its close, past its grace {info.grace:g}"
                )
            if (
                info.behaviour == "until_closing"
                and info.ended_at is not None
                and info.delay < info.grace
                and not info.completed
            ):
                self.violation(
                    f"{self.track(p).label}: cancelled although it ended within "
                    "its grace"
                )

    async def finish(self) -> None:
        await self.root.aclose()


def test_process_api() -> None:
    run_machine(ProcessMachine)


# =============================================================== supervisor

KEYS = ("a", "b", "c")
START_MODES = ("ok", "ok", "ok", "fails", "slow")
ENDINGS = ("fail", "fail", "return", "do_not_restart")


@dataclass(eq=False)
class Run:
    """One run of a supervised key's runner."""

    key: str
    end: trio.Event = field(default_factory=trio.Event)
    how: str = ""
    running: bool = False


class SupervisorMachine(Machine):
    """A Supervisor over a MemoryTable: keys, children, failures, restarts."""

    OPS: ClassVar[tuple[str, ...]] = (
        "set",
        "set",
        "delete",
        "start_child",
        "start_child",
        "stop_child",
        "kick",
        "kick",
        "kick",
        "sleep",
        "sleep",
        "sleep",
        "stop",
    )
    MAX_STEPS = 30

    def __init__(self, data: st.DataObject) -> None:
        super().__init__(data)
        self.table = proctree.MemoryTable()
        self.live: dict[str, list[Run]] = {key: [] for key in KEYS}
        self.events: list[proctree.SupervisorEvent] = []
        self.late_events: list[proctree.SupervisorEvent] = []
        self.runs: list[Run] = []

    def runner(self, key: str, mode: str) -> proctree.Runner:
        machine = self

        async def run(ready: Callable[[], Awaitable[None]]) -> None:
            if machine.sup.process.closing.is_set():
                machine.violation(
                    f"key {key!r} (re)started after the supervisor closed"
                )
            me = Run(key)
            live = machine.live[key]
            live.append(me)
            machine.runs.append(me)
            if len(live) > 1:
                machine.violation(f"key {key!r} has {len(live)} live runs at once")
            try:
                if mode == "fails":
                    raise machine.boom(f"start of {key}")
                if mode == "slow":
                    await trio.sleep(5)  # past the start timeout
                me.running = True
                async with trio.open_nursery() as nursery:

                    async def until_kicked() -> None:
                        await me.end.wait()
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(until_kicked)
                    await ready()
                    nursery.cancel_scope.cancel()
                if me.how == "fail":
                    raise machine.boom(f"run of {key}")
                if me.how == "do_not_restart":
                    raise proctree.DoNotRestart(key)
            finally:
                me.running = False
                live.remove(me)

        return run

    def on_event(self, event: proctree.SupervisorEvent) -> None:
        self.events.append(event)
        if isinstance(event, proctree.ChildRestarting) and (
            self.sup.process.closing.is_set()
        ):
            self.late_events.append(event)

    async def setup(self) -> None:
        policy = proctree.RestartPolicy(
            kind=self.draw(
                st.sampled_from(("permanent", "permanent", "transient", "temporary")),
                "kind",
            ),
            strategy=self.draw(
                st.sampled_from(("one_for_one", "one_for_all", "rest_for_one")),
                "strategy",
            ),
            on_threshold=self.draw(
                st.sampled_from(("backoff", "backoff", "give_up")), "on_threshold"
            ),
            initial_delay=0.5,
            max_delay=4.0,
            jitter=0.0,
            seed=0,
            failure_threshold=4.0,
            failure_decay=10.0,
            threshold_backoff=5.0,
            stable_after=10.0,
        )
        for key in KEYS:
            if self.draw(st.booleans(), f"initial {key}"):
                self.table.set(key, self.runner(key, "ok"))
        self.sup = proctree.Supervisor(
            self.table,
            policy=policy,
            parent=self.root,
            interval=1.0,
            start_timeout=3.0,
            on_event=self.on_event,
        )
        self.track(self.sup.process, "supervisor")
        await self.sup.start()

    def key(self) -> str:
        return self.draw(st.sampled_from(KEYS), "key")

    async def op_set(self) -> None:
        key = self.key()
        self.table.set(
            key, self.runner(key, self.draw(st.sampled_from(START_MODES), "mode"))
        )

    async def op_delete(self) -> None:
        key = self.key()
        if key in self.table:
            self.table.delete(key)

    def running(self) -> bool:
        return self.sup.state in (State.STARTING, State.RUNNING)

    async def op_start_child(self) -> None:
        key = self.key()
        was_running = self.running()

        async def starter() -> None:
            try:
                p = await self.sup.start_child(key)
            except proctree.NotRunningError:
                if was_running:
                    self.violation(f"start_child({key!r}) of a running supervisor")
            except (
                proctree.ProcessExistsError,
                proctree.ProcessNotFoundError,
                proctree.StartTimeoutError,
                proctree.InvalidStateError,
                Boom,
            ):
                pass
            else:
                if not was_running:
                    self.violation(f"start_child({key!r}) of a stopped supervisor")
                if p.state is State.INITIAL or p.state is State.STARTING:
                    self.violation(f"start_child({key!r}) returned a {p.state} child")

        self.spawn(starter)

    async def op_stop_child(self) -> None:
        key = self.key()
        was_running = self.running()

        async def stopper() -> None:
            try:
                p = self.sup.child(key)
            except proctree.ProcessNotFoundError:
                p = None
            try:
                await self.sup.stop_child(key)
            except proctree.NotRunningError:
                if was_running:
                    self.violation(f"stop_child({key!r}) of a running supervisor")
                return
            except proctree.ProcessNotFoundError:
                return
            if p is not None and p.state is not CLOSED:
                self.violation(f"stop_child({key!r}) returned while {p.state}")

        self.spawn(stopper)

    async def op_kick(self) -> None:
        key = self.key()
        runs = [r for r in self.live[key] if r.running and not r.end.is_set()]
        if runs:
            runs[0].how = self.draw(st.sampled_from(ENDINGS), "ending")
            runs[0].end.set()

    async def op_sleep(self) -> None:
        await trio.sleep(self.draw(st.sampled_from((0.25, 1.0, 3.0, 10.0)), "sleep"))

    async def op_stop(self) -> None:
        if self.draw(st.integers(0, 3), "really") != 0:
            return  # rare: the rest of the episode runs against a stopped one

        async def stopper() -> None:
            with contextlib.suppress(proctree.InvalidStateError, proctree.GaveUpError):
                await self.sup.stop()
            if self.sup.state is not CLOSED:
                self.violation(f"Supervisor.stop() returned while {self.sup.state}")

        self.spawn(stopper)

    def check_step(self) -> None:
        super().check_step()
        if self.late_events:
            self.violation(f"restarts after the supervisor closed: {self.late_events}")
        if self.sup.state is CLOSED:
            for key, runs in self.live.items():
                if runs:
                    self.violation(f"supervisor CLOSED while key {key!r} runs")
            if self.sup.keys():
                self.violation(f"supervisor CLOSED with live keys {self.sup.keys()}")

    def check_end(self) -> None:
        super().check_end()
        for run in self.runs:
            if run in self.live[run.key]:
                self.violation(f"a run of {run.key!r} is still live at the end")

    def expected_at_root(self) -> list[BaseException]:
        # A child's failure is the policy's: only giving up reaches the root.
        return [
            e.error for e in self.events if isinstance(e, proctree.SupervisorGaveUp)
        ]


def test_supervisor_api() -> None:
    run_machine(SupervisorMachine)


# ================================================================ ratelimit


@dataclass(eq=False)
class Job:
    """A unit of work asking a rate limiter for a slot."""

    number: int
    mode: str
    done: trio.Event = field(default_factory=trio.Event)
    child: proctree.Process | None = None
    outcome: str = "waiting"
    ran: bool = False
    finished: bool = False
    closed_early: bool = False


class RateLimitMachine(Machine):
    """A RateLimiter: queued jobs, ends, failures, closes, unlimited go."""

    OPS: ClassVar[tuple[str, ...]] = (
        "request",
        "request",
        "request",
        "finish",
        "finish",
        "close_child",
        "go",
        "sleep",
        "sleep",
        "close_limiter",
    )
    MAX_STEPS = 40

    def __init__(self, data: st.DataObject) -> None:
        super().__init__(data)
        self.jobs: list[Job] = []
        self.running = 0
        self.limiter_closed_by_us = False

    async def setup(self) -> None:
        self.limit = self.draw(st.integers(1, 3), "limit")
        self.limiter = proctree.ratelimit.RateLimiter(self.root, self.limit)
        self.track(self.limiter.process, "limiter")

    async def work(self, proc: proctree.Process, job: Job) -> None:
        self.running += 1
        job.ran = True
        if self.running > self.limit:
            self.violation(
                f"{self.running} limited jobs run at once, limit {self.limit}"
            )
        try:
            if job.mode == "timed":
                await trio.sleep(1.5)
            else:
                with trio.move_on_after(30):
                    await job.done.wait()
            if job.mode == "fails":
                raise self.raising(self.boom(f"job {job.number}"))
            job.finished = True
        finally:
            self.running -= 1

    async def op_request(self) -> None:
        mode = self.draw(st.sampled_from(("timed", "held", "held", "fails")), "mode")
        if mode == "fails" and self.draw(st.integers(0, 3), "really") != 0:
            mode = "held"
        job = Job(len(self.jobs), mode)
        self.jobs.append(job)
        open_at_request = self.limiter.process.state is State.RUNNING

        async def requester() -> None:
            try:
                job.child = await self.limiter.limited_go(self.work, job)
            except proctree.InvalidStateError:
                job.outcome = "refused"
                if self.limiter.process.state is State.RUNNING:
                    self.violation(f"job {job.number} refused by a running limiter")
                return
            job.outcome = "slot"
            if not open_at_request:
                self.violation(f"job {job.number} got a slot from a closed limiter")

        self.spawn(requester)

    def pick_job(self, label: str) -> Job | None:
        if not self.jobs:
            return None
        return self.jobs[self.draw(st.integers(0, len(self.jobs) - 1), label)]

    async def op_finish(self) -> None:
        job = self.pick_job("job")
        if job is not None:
            job.done.set()

    async def op_close_child(self) -> None:
        job = self.pick_job("job")
        if job is not None and job.child is not None:
            child = job.child
            job.closed_early = True

            async def closer() -> None:
                with contextlib.suppress(Boom):
                    await child.aclose()

            self.spawn(closer)

    async def op_go(self) -> None:
        try:
            self.limiter.go(until_closing_fn)
        except proctree.InvalidStateError:
            if self.limiter.process.state is not CLOSED:
                self.violation("limiter.go() refused while its process is open")

    async def op_sleep(self) -> None:
        await trio.sleep(self.draw(st.sampled_from((0.5, 1.0, 2.0, 40.0)), "sleep"))

    async def op_close_limiter(self) -> None:
        if self.draw(st.integers(0, 3), "really") != 0:
            return
        self.limiter_closed_by_us = True
        self.spawn(self.limiter.process.aclose)

    def limited_open(self) -> int:
        return sum(
            1 for j in self.jobs if j.child is not None and j.child.state is not CLOSED
        )

    def check_step(self) -> None:
        super().check_step()
        open_children = self.limited_open()
        in_use = self.limiter.statistics().in_use
        if open_children > self.limit or in_use > self.limit:
            self.violation(
                f"{open_children} limited children open, {in_use} slots in use, "
                f"limit {self.limit}"
            )
        if in_use < open_children:
            self.violation(f"{open_children} limited children open on {in_use} slots")
        # First come, first served: nobody is still waiting behind a job
        # that asked later and got its slot (jobs woken in the same instant
        # resume in trio's order, so their appends may swap).
        served = [j.number for j in self.jobs if j.outcome == "slot"]
        waiting = [j.number for j in self.jobs if j.outcome == "waiting"]
        if served and waiting and min(waiting) < max(served):
            self.violation(f"job {min(waiting)} waits, job {max(served)} was served")

    async def finish(self) -> None:
        # All complete: every job that asked while the limiter ran gets its
        # slot and ends, once the work is let go.
        for job in self.jobs:
            job.done.set()
        await trio.sleep(100)
        if self.limiter.process.state is State.RUNNING:
            for job in self.jobs:
                if job.outcome != "slot" or not job.ran:
                    self.violation(f"job {job.number} never ran ({job.outcome})")
                elif job.mode != "fails" and not job.closed_early and not job.finished:
                    self.violation(f"job {job.number} did not complete")
            if self.limiter.statistics().in_use:
                self.violation("slots still in use after every job ended")
        await self.root.aclose()


async def until_closing_fn(proc: proctree.Process) -> None:
    await proc.closing.wait()


def test_ratelimit_api() -> None:
    run_machine(RateLimitMachine)


# ===================================================== bugs the machines found


async def _fails(proc: proctree.Process) -> None:
    raise Boom("the failure the root must report")


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")
def test_a_close_only_cycle_through_the_root_keeps_paths_finite() -> None:
    async def main() -> None:
        async with proctree.open_root() as root:
            child = proctree.with_parent(root, name="child")
            child.add_child_no_wait(root)  # CLOSE-only: allowed, harmless
            child.go(_fails)

    with watchdog(2.0), pytest.raises(BaseExceptionGroup) as info:
        trio.run(main)
    assert [type(exc) for exc in leaves(info.value)] == [Boom]


# ================================================================== runners


Spec = tuple[object, ...]
"""A runner tree: ("nop",), ("leaf", graceful, stop_fails), ("start_stop",
start_fails, stop_fails, delay), ("raw", mode), (combinator, [specs]),
("prefixed", spec)."""

LEAF_SPECS: st.SearchStrategy[Spec] = st.one_of(
    st.just(("nop",)),
    st.tuples(st.just("leaf"), st.booleans(), st.booleans()),
    st.tuples(
        st.just("start_stop"),
        st.booleans(),
        st.booleans(),
        st.sampled_from((0.0, 0.0, 2.0)),
    ),
    st.tuples(st.just("raw"), st.sampled_from(("ok", "fails", "returns", "slow"))),
)
SPECS: st.SearchStrategy[Spec] = st.recursive(
    LEAF_SPECS,
    lambda inner: st.one_of(
        st.tuples(
            st.sampled_from(("sequential", "chain", "parallel")),
            st.lists(inner, min_size=1, max_size=3),
        ),
        st.tuples(st.just("prefixed"), inner),
    ),
    max_leaves=5,
)


def fails_to_start(spec: Spec) -> bool:
    """Whether a runner built from ``spec`` must fail its start."""
    kind = spec[0]
    if kind == "start_stop":
        return bool(spec[1])
    if kind == "raw":
        return spec[1] in ("fails", "returns")
    if kind in ("sequential", "chain", "parallel"):
        children = spec[1]
        assert isinstance(children, list)
        return any(fails_to_start(c) for c in children)
    if kind == "prefixed":
        inner = spec[1]
        assert isinstance(inner, tuple)
        return fails_to_start(inner)
    return False


@dataclass(eq=False)
class Comp:
    """One leaf component of a runner tree: what it did, in global order."""

    kind: str
    starts: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    stops: list[int] = field(default_factory=list)
    active: int = 0
    started_ok: bool = False
    stop_failures: list[BaseException] = field(default_factory=list)
    """What it raised while starting or stopping."""
    fail_now: bool = False
    wake: trio.Event = field(default_factory=trio.Event)


@dataclass(eq=False)
class Node:
    """A built runner tree node, to check the combinators' order."""

    kind: str
    comps: list[Comp]
    children: list[Node]


@dataclass(eq=False)
class Top:
    """A process made by new_process in the machine, and its runner tree."""

    proc: proctree.Process
    spec: Spec
    node: Node
    explicit_grace: bool = False
    stop_requested: bool = False
    start_outcome: str | None = None
    start_deadline: float | None = None
    """When start(timeout=) gives up and cancels the runner at once."""

    def timed_out(self) -> bool:
        """Whether a start's timeout has forced the runner (a forced stop)."""
        return (
            self.start_deadline is not None
            and self.start_outcome != "ok"
            and trio.current_time() >= self.start_deadline
        )


class RunnerMachine(Machine):
    """new_process of random runner trees; start, stop, aclose, failures."""

    OPS: ClassVar[tuple[str, ...]] = (
        "new",
        "new",
        "start",
        "start",
        "start",
        "stop",
        "stop",
        "aclose",
        "kick",
        "sleep",
        "sleep",
    )
    MAX_STEPS = 30

    def __init__(self, data: st.DataObject) -> None:
        super().__init__(data)
        self.tops: list[Top] = []
        self.by_proc: dict[proctree.Process, Top] = {}
        self.seq = 0
        self.startup_ids: set[int] = set()

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    # ---------------------------------------------------------- building

    def build(self, spec: Spec) -> tuple[proctree.Runner, Node]:
        kind = str(spec[0])
        if kind in ("sequential", "chain", "parallel"):
            children = spec[1]
            assert isinstance(children, list)
            built = [self.build(c) for c in children]
            combine = {
                "sequential": proctree.sequential,
                "chain": proctree.chain,
                "parallel": proctree.parallel,
            }[kind]
            node = Node(
                kind,
                [c for _, n in built for c in n.comps],
                [n for _, n in built],
            )
            return combine(*(r for r, _ in built)), node
        if kind == "prefixed":
            inner = spec[1]
            assert isinstance(inner, tuple)
            runner, node = self.build(inner)
            return proctree.prefixed_error("pfx", runner), Node(
                kind, node.comps, [node]
            )
        comp = Comp(kind)
        node = Node(kind, [comp], [])
        if kind == "nop":
            return proctree.nop(), node
        if kind == "leaf":
            return self.build_leaf(comp, bool(spec[1]), bool(spec[2])), node
        if kind == "start_stop":
            return self.build_start_stop(
                comp, bool(spec[1]), bool(spec[2]), float(str(spec[3]))
            ), node
        return self.build_raw(comp, str(spec[1])), node

    def build_leaf(
        self, comp: Comp, graceful: bool, stop_fails: bool
    ) -> proctree.Runner:
        machine = self

        async def foreground() -> None:
            comp.starts.append(machine.tick())
            comp.started_ok = True
            comp.active += 1
            try:
                await comp.wake.wait()
                if comp.fail_now:
                    raise machine.raising(machine.boom("leaf foreground"))
            finally:
                comp.active -= 1

        async def graceful_stop() -> None:
            comp.stops.append(machine.tick())
            if stop_fails:
                exc = machine.boom("leaf graceful_stop")
                comp.stop_failures.append(exc)
                raise machine.raising(exc)
            comp.wake.set()

        return proctree.leaf(
            foreground, graceful_stop if graceful else None, name="leaf"
        )

    def build_start_stop(
        self, comp: Comp, start_fails: bool, stop_fails: bool, delay: float
    ) -> proctree.Runner:
        machine = self

        async def start() -> None:
            comp.starts.append(machine.tick())
            await trio.sleep(delay)
            if start_fails:
                exc = machine.boom("start_in_background")
                comp.stop_failures.append(exc)
                raise machine.raising(exc)
            comp.started_ok = True

        async def stop() -> None:
            comp.stops.append(machine.tick())
            if stop_fails:
                exc = machine.boom("start_stop graceful_stop")
                comp.stop_failures.append(exc)
                raise machine.raising(exc)

        return proctree.start_stop(start, stop, name="start_stop")

    def build_raw(self, comp: Comp, mode: str) -> proctree.Runner:
        machine = self

        async def run(ready: Callable[[], Awaitable[None]]) -> None:
            comp.starts.append(machine.tick())
            comp.active += 1
            try:
                if mode == "fails":
                    exc = machine.boom("raw runner before ready")
                    comp.stop_failures.append(exc)
                    raise machine.raising(exc)
                if mode == "returns":
                    return
                if mode == "slow":
                    await trio.sleep(5)
                comp.started_ok = True
                comp.ready.append(machine.tick())
                await ready()
                comp.stops.append(machine.tick())
            finally:
                comp.active -= 1

        return run

    # ------------------------------------------------------------- ops

    def pick_top(self) -> Top | None:
        if not self.tops:
            return None
        return self.tops[self.draw(st.integers(0, len(self.tops) - 1), "process")]

    async def op_new(self) -> None:
        spec = self.draw(SPECS, "spec")
        runner, node = self.build(spec)
        before = self.root.state
        try:
            p = proctree.new_process(runner, parent=self.root, name="top")
        except proctree.InvalidStateError:
            if before is not CLOSED:
                self.violation(f"new_process under a {before} root refused")
            return
        if before is CLOSED:
            self.violation("new_process under a CLOSED root accepted")
        want = State.INITIAL if before is State.RUNNING else CLOSED
        if p.state is not want:
            self.violation(f"new_process under a {before} root: {p.state}")
        top = Top(p, spec, node)
        self.track(p, f"top{len(self.tops)}")
        self.tops.append(top)
        self.by_proc[p] = top

    async def op_start(self) -> None:
        top = self.pick_top()
        if top is None:
            return
        p = top.proc
        timeout = self.draw(st.sampled_from((None, None, 1.0, 10.0)), "timeout")
        initial = p.state is State.INITIAL
        if initial and timeout is not None:
            top.start_deadline = trio.current_time() + timeout

        async def starter() -> None:
            label = self.track(p).label
            try:
                await p.start(timeout=timeout)
            except proctree.StartTimeoutError as exc:
                self.started_badly(top, exc, timeout is not None)
            except proctree.InvalidStateError as exc:
                stopped = top.stop_requested or self.root.closing.is_set()
                if initial and not stopped:
                    self.violation(f"start of an INITIAL {label} refused: {exc}")
                if initial:
                    self.started_badly(top, exc, True, stopped=True)
            except Exception as exc:
                # Stopped while starting, a part may fail while stopping:
                # that failure is start()'s too.
                stopped = top.stop_requested or self.root.closing.is_set()
                self.started_badly(top, exc, fails_to_start(top.spec) or stopped)
            else:
                top.start_outcome = "ok"
                if not initial:
                    self.violation(f"start of a {label} that was not INITIAL")
                if fails_to_start(top.spec):
                    self.violation(f"{label} started although a part fails to")
                elif RANK[p.state] < RANK[State.RUNNING]:
                    self.violation(f"start of {label} returned while {p.state}")

        self.spawn(starter)

    def started_badly(
        self, top: Top, exc: BaseException, allowed: bool, *, stopped: bool = False
    ) -> None:
        p = top.proc
        label = self.track(p).label
        top.start_outcome = type(exc).__name__
        if not allowed:
            self.violation(f"start of {label} raised {exc!r}")
        if p.state is not CLOSED:
            self.violation(f"start of {label} raised while {p.state}")
        if stopped:
            if p.error is not None and exc is not p.error:
                self.violation(f"start of {label}: {exc!r}, error {p.error!r}")
        elif exc is not p.error:
            self.violation(f"start of {label} raised {exc!r}, error {p.error!r}")
        # A timed-out start keeps the runner's own failure as its cause.
        error: BaseException | None = p.error
        while error is not None:
            for leaf_exc in leaves(error):
                self.startup_ids.add(id(leaf_exc))
            error = error.__cause__

    async def op_stop(self) -> None:
        top = self.pick_top()
        if top is None:
            return
        p = top.proc
        grace = self.draw(st.sampled_from((None, None, 0.0, 1.0)), "grace")
        was_closed = p.state is CLOSED
        top.stop_requested = True
        if grace is not None:
            top.explicit_grace = True

        async def stopper() -> None:
            label = self.track(p).label
            try:
                await p.stop(grace=grace)
            except proctree.InvalidStateError:
                if not was_closed:
                    self.violation(f"stop of an open {label} refused")
                return
            except Exception as exc:
                if exc is not p.error:
                    self.violation(f"stop of {label}: {exc!r}, error {p.error!r}")
            if was_closed:
                self.violation(f"stop of a CLOSED {label} accepted")
            if p.state is not CLOSED:
                self.violation(f"stop of {label} returned while {p.state}")

        self.spawn(stopper)

    async def op_aclose(self) -> None:
        top = self.pick_top()
        if top is None:
            return
        p = top.proc
        top.stop_requested = True

        async def closer() -> None:
            try:
                await p.aclose()
            except Exception as exc:
                if exc is not p.error:
                    self.violation(f"aclose: {exc!r}, error {p.error!r}")
            if p.state is not CLOSED:
                self.violation(f"aclose of {self.track(p).label} returned early")

        self.spawn(closer)

    async def op_kick(self) -> None:
        """Make a running leaf's foreground fail."""
        running = [
            c
            for t in self.tops
            if t.proc.state is State.RUNNING
            for c in t.node.comps
            if c.kind == "leaf" and c.active and not c.wake.is_set()
        ]
        if not running:
            return
        comp = running[self.draw(st.integers(0, len(running) - 1), "leaf")]
        comp.fail_now = True
        comp.wake.set()

    async def op_sleep(self) -> None:
        await trio.sleep(self.draw(st.sampled_from((0.5, 2.0, 6.0)), "sleep"))

    # ---------------------------------------------------------- checks

    def on_closed(self, t: Track, error: BaseException | None) -> None:
        top = self.by_proc.get(t.proc)
        if top is None:
            return
        # A combinator is CLOSED only after every part has ended.
        for comp in top.node.comps:
            if comp.active:
                self.violation(f"{t.label} CLOSED while a {comp.kind} part runs")

    def check_order(self, top: Top, node: Node) -> None:
        for child in node.children:
            self.check_order(top, child)
        if node.kind not in ("sequential", "chain"):
            return
        label = self.track(top.proc).label
        for i, first in enumerate(node.children):
            for later in node.children[i + 1 :]:
                starts_first = [s for c in first.comps for s in c.starts]
                starts_later = [s for c in later.comps for s in c.starts]
                logs_starts = any(c.kind != "nop" for c in first.comps)
                if starts_later and (
                    (logs_starts and not starts_first)
                    or (starts_first and max(starts_first) > min(starts_later))
                ):
                    self.violation(f"{label}: {node.kind} started out of order")
                if (
                    top.explicit_grace
                    or top.timed_out()
                    or any(c.fail_now for c in top.node.comps)
                ):
                    # Forced (a stop's grace, a start's timeout), or a part
                    # failed: the parts are stopped at once, whatever the
                    # stack order.
                    continue
                stops_first = [s for c in first.comps for s in c.stops]
                stops_later = [s for c in later.comps for s in c.stops]
                if stops_first and stops_later and min(stops_first) < max(stops_later):
                    self.violation(f"{label}: {node.kind} stopped out of order")

    def check_step(self) -> None:
        super().check_step()
        for top in self.tops:
            for comp in top.node.comps:
                if len(comp.stops) > 1:
                    self.violation(f"a {comp.kind} part was stopped twice")
                if comp.stops and not comp.starts:
                    self.violation(f"a {comp.kind} part was stopped, never started")
            self.check_order(top, top.node)

    def check_end(self) -> None:
        super().check_end()
        for top in self.tops:
            for comp in top.node.comps:
                if comp.active:
                    self.violation(f"a {comp.kind} part still runs at the end")
                if comp.kind == "start_stop" and comp.started_ok and not comp.stops:
                    self.violation("a started start_stop part was never stopped")

    def expected_at_root(self) -> list[BaseException]:
        # A startup failure is start()'s, never the root's.
        return [e for e in self.raised if id(e) not in self.startup_ids]


def test_runner_api() -> None:
    run_machine(RunnerMachine)


@pytest.mark.parametrize(
    "combine", [proctree.parallel, proctree.sequential, proctree.chain]
)
def test_a_failure_while_rolling_back_a_start_is_raised_too(
    combine: Callable[..., proctree.RunnerObject],
) -> None:
    stop_failure = Boom("graceful_stop failed while the start was rolled back")
    seen: list[BaseException] = []

    async def serve() -> None:
        await trio.sleep_forever()

    async def stop() -> None:
        raise stop_failure

    async def returns_before_ready(ready: Callable[[], Awaitable[None]]) -> None:
        return

    async def main() -> None:
        async with proctree.open_root() as root:
            runner = combine(proctree.leaf(serve, stop), returns_before_ready)
            p = proctree.new_process(runner, parent=root)
            with pytest.raises(proctree.StartError) as info:
                await p.start()
            seen.extend(leaves(info.value))

    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    except BaseExceptionGroup as group:
        seen.extend(leaves(group))
    assert stop_failure in seen


def test_a_startup_failure_is_the_cause_of_a_start_timeout() -> None:
    start_failure = Boom("start_in_background failed")
    seen: list[BaseException] = []

    async def fails() -> None:
        raise start_failure

    async def slow() -> None:
        await trio.sleep(2)

    async def nothing() -> None:
        pass

    async def main() -> None:
        async with proctree.open_root() as root:
            runner = proctree.parallel(
                proctree.start_stop(fails, nothing),
                proctree.start_stop(slow, nothing),
            )
            p = proctree.new_process(runner, parent=root)
            with pytest.raises(proctree.StartTimeoutError) as info:
                await p.start(timeout=1)
            seen.extend(leaves(info.value))
            seen.extend(leaves(info.value.__cause__))

    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    except BaseExceptionGroup as group:
        seen.extend(leaves(group))
    assert start_failure in seen


def test_a_stop_failure_while_starting_is_reported_once() -> None:
    stop_failure = Boom("graceful_stop failed; stopped while starting")
    by_start: list[BaseException] = []
    by_root: list[BaseException] = []

    async def start_in_background() -> None:
        await trio.sleep(2)

    async def graceful_stop() -> None:
        raise stop_failure

    async def main() -> None:
        async with trio.open_nursery() as outer:
            try:
                async with proctree.open_root() as root:
                    runner = proctree.start_stop(start_in_background, graceful_stop)
                    p = proctree.new_process(runner, parent=root)

                    async def starter() -> None:
                        try:
                            await p.start()
                        except Exception as exc:
                            by_start.extend(leaves(exc))

                    outer.start_soon(starter)
                    await trio.sleep(1)
                    with contextlib.suppress(Exception):
                        await p.stop()
            except BaseExceptionGroup as group:
                by_root.extend(leaves(group))

    # Whether start() resumes before the runner raises is up to trio's
    # scheduler (it shuffles), so try often enough to see both orders.
    for _ in range(30):
        by_start.clear()
        by_root.clear()
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        assert (stop_failure in by_start) != (stop_failure in by_root)


@pytest.mark.parametrize(
    "combine", [proctree.parallel, proctree.sequential, proctree.chain]
)
def test_a_failure_while_a_stop_is_forced_is_still_raised(
    combine: Callable[..., proctree.RunnerObject],
) -> None:
    stop_failure = Boom("graceful_stop failed; another part is slower to stop")
    seen: list[BaseException] = []

    async def serve() -> None:
        await trio.sleep_forever()

    async def failing_stop() -> None:
        raise stop_failure

    async def slow_stop() -> None:
        await trio.sleep(10)

    async def main() -> None:
        async with proctree.open_root() as root:
            # Stopped in reverse order (or together): the failing part first.
            runner = combine(
                proctree.leaf(serve, slow_stop), proctree.leaf(serve, failing_stop)
            )
            p = proctree.new_process(runner, parent=root)
            await p.start()
            try:
                await p.stop(grace=1)
            except Exception as exc:
                seen.extend(leaves(exc))

    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    except BaseExceptionGroup as group:
        seen.extend(leaves(group))
    assert stop_failure in seen


MACHINES: tuple[type[Machine], ...] = (
    ProcessMachine,
    RunnerMachine,
    SupervisorMachine,
    RateLimitMachine,
)
