"""Property tests of the contract: random programs of tree operations.

A hypothesis state machine writes a random program (create, add_child,
add_child_no_wait, wait_for, go, aclose, sleep); the program then runs
under trio's mock clock, and every run is checked against the contract:
each teardown ran exactly once, every process is CLOSED after the root
exits, no process was CLOSED before one it waits for, and a CycleError was
raised exactly when a model of the graph says the edge closes a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
import trio.testing
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule

import proctree
from proctree import State


@dataclass
class Op:
    kind: str
    a: int = 0
    b: int = 0
    delay: float = 0.0


@dataclass
class Run:
    procs: list[proctree.Process] = field(default_factory=list)
    teardowns: dict[int, int] = field(default_factory=dict)
    waits: dict[int, set[int]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def _would_cycle(run: Run, a: int, b: int) -> bool:
    """Model: does b (transitively) wait for a, over edges whose target is open?"""
    if a == b:
        return True
    stack, seen = [b], {b}
    while stack:
        x = stack.pop()
        for y in run.waits.get(x, ()):
            if run.procs[y].state is State.CLOSED:
                continue
            if y == a:
                return True
            if y not in seen:
                seen.add(y)
                stack.append(y)
    return False


def _check_waited(run: Run, i: int, when: str) -> None:
    for j in run.waits.get(i, ()):
        if run.procs[j].state is not State.CLOSED:
            run.violations.append(
                f"{when} of {i} while {j}, which it waits for, is open"
            )


async def _execute(program: list[Op]) -> Run:
    run = Run()

    def make_teardown(i: int, delay: float):  # type: ignore[no-untyped-def]
        async def teardown() -> None:
            run.teardowns[i] = run.teardowns.get(i, 0) + 1
            _check_waited(run, i, "teardown")
            await trio.sleep(delay)

        return teardown

    async def worker(proc: proctree.Process, delay: float) -> None:
        await proc.closing.wait()
        await trio.sleep(delay)

    async def close_and_check(i: int) -> None:
        p = run.procs[i]
        await p.aclose()
        if p.state is not State.CLOSED:
            run.violations.append(f"aclose of {i} returned before CLOSED")
        _check_waited(run, i, "aclose return")

    def add(p: proctree.Process, delay: float | None = None) -> None:
        """Track ``p``; give it a teardown if ``delay`` is given."""
        i = len(run.procs)
        run.procs.append(p)
        if delay is not None:
            p.set_teardown(make_teardown(i, delay))

    def create(parent: proctree.Process, delay: float) -> proctree.Process:
        # with_teardown: a child of a CLOSING parent closes at once, so its
        # teardown must be there from the start.
        i = len(run.procs)
        return proctree.with_teardown(make_teardown(i, delay), parent, str(i))

    # Closers live outside the root: an aclose() may wait for the root's own
    # close, which comes only when the root's body ends.
    with trio.fail_after(10_000):
        async with trio.open_nursery() as closers, proctree.open_root() as root:
            add(create(root, 0))
            for op in program:
                n = len(run.procs)
                a, b = op.a % n, op.b % n
                pa, pb = run.procs[a], run.procs[b]
                if op.kind == "create":
                    if pa.state is State.CLOSED:
                        continue
                    add(create(pa, op.delay))
                    run.waits.setdefault(a, set()).add(n)
                elif op.kind == "go":
                    if pa.state is State.CLOSED:
                        continue
                    add(pa.go(worker, op.delay, name=str(n), grace=op.delay), op.delay)
                    run.waits.setdefault(a, set()).add(n)
                elif op.kind in ("add_child", "wait_for"):
                    expected = _would_cycle(run, a, b)
                    closed = pa.state is State.CLOSED
                    try:
                        getattr(pa, op.kind)(pb)
                    except proctree.CycleError:
                        if not expected:
                            run.violations.append(f"{op.kind}({a}, {b}): false cycle")
                    except proctree.InvalidStateError:
                        if not closed:
                            run.violations.append(f"{op.kind}({a}, {b}) refused")
                    else:
                        if expected or closed:
                            run.violations.append(f"{op.kind}({a}, {b}) accepted")
                        run.waits.setdefault(a, set()).add(b)
                elif op.kind == "add_child_no_wait":
                    if a != b:
                        pa.add_child_no_wait(pb)
                elif op.kind == "aclose":
                    closers.start_soon(close_and_check, a)
                elif op.kind == "sleep":
                    await trio.sleep(op.delay)
    return run


ops = st.sampled_from(
    ["create", "go", "add_child", "add_child_no_wait", "wait_for", "aclose", "sleep"]
)
indices = st.integers(min_value=0, max_value=1000)
delays = st.sampled_from([0.0, 0.5, 1.0, 3.0])


class ProcessTreeMachine(RuleBasedStateMachine):
    """Writes a random program one rule at a time; runs it at the end."""

    steps = Bundle("steps")

    def __init__(self) -> None:
        super().__init__()
        self.program: list[Op] = []

    @rule(target=steps, kind=ops, a=indices, b=indices, delay=delays)
    def step(self, kind: str, a: int, b: int, delay: float) -> int:
        self.program.append(Op(kind, a, b, delay))
        return len(self.program)

    def teardown(self) -> None:
        run = trio.run(
            _execute,
            self.program,
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
        assert run.violations == []
        for i, p in enumerate(run.procs):
            assert p.state is State.CLOSED, f"process {i} is {p.state}"
            assert run.teardowns.get(i) == 1, (
                f"teardown of {i} ran {run.teardowns.get(i)}"
            )


ProcessTreeMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProcessTree = ProcessTreeMachine.TestCase
