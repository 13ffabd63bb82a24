"""The measured workloads. Each one runs alone in a fresh process (see run.py).

A workload takes the size ``n`` and a :class:`Phases` clock, runs one
``trio.run``, marks the start of each timed phase on the clock and returns
extra figures (bytes per task for the memory workloads). Keep them small and
symmetric: the bare trio workload and its proctree twin must do the same
work apart from what proctree adds.
"""

from __future__ import annotations

import gc
import logging
import math
import resource
import statistics
import tracemalloc
from collections import deque
from collections.abc import Awaitable, Callable

import trio
import trio.testing

import proctree
from phases import FlakyTask, Phases

FANOUT = 10
"""Children per node in the tree workloads."""

Metrics = dict[str, float]
Workload = Callable[[int, Phases], Metrics]


# ------------------------------------------------------------ task bodies
# The same user code on both sides: a bare task runs ``_sleeper``, a go
# process runs ``_go_sleeper``, which only differs by taking its process.


async def _sleeper() -> None:
    await trio.sleep_forever()


async def _scoped_sleeper() -> None:
    # The floor for a task that can be forced alone: its own cancel scope.
    with trio.CancelScope():
        await trio.sleep_forever()


async def _go_sleeper(proc: proctree.Process) -> None:
    await trio.sleep_forever()


async def _go_until_closing(proc: proctree.Process) -> None:
    await proc.closing.wait()


GoFn = Callable[[proctree.Process], Awaitable[None]]


def _check_closed(root: proctree.Process | None) -> None:
    if root is None or root.state is not proctree.State.CLOSED:
        raise RuntimeError(f"the root did not close: {root!r}")


# ----------------------------------------------- (a) and (c): flat spawn+close


def _trio_flat(
    body: Callable[[], Awaitable[None]],
    close: Callable[[trio.Nursery], None] | None = None,
) -> Workload:
    """N bare tasks running ``body``: ``start_soon`` each, then cancel.

    ``close`` cancels them instead of the nursery's scope, if given.
    """

    def workload(n: int, phases: Phases) -> Metrics:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                phases.mark("spawn")
                for _ in range(n):
                    nursery.start_soon(body)
                await trio.testing.wait_all_tasks_blocked()
                phases.mark("close")
                if close is None:
                    nursery.cancel_scope.cancel()
                else:
                    close(nursery)
            phases.mark(None)

        trio.run(main)
        return {}

    return workload


trio_flat = _trio_flat(_sleeper)


_each_scope: list[trio.CancelScope] = []  # one workload per process


async def _registered_sleeper() -> None:
    # The floor's task, its scope kept where the close can cancel it alone.
    with trio.CancelScope() as scope:
        _each_scope.append(scope)
        await trio.sleep_forever()


def _cancel_each(nursery: trio.Nursery) -> None:
    for scope in _each_scope:
        scope.cancel()
    _each_scope.clear()


trio_scoped_each = _trio_flat(_registered_sleeper, _cancel_each)
"""The floor's N tasks, each scope cancelled by its own ``cancel()`` call.

As a tree's close forces each process: the same tasks as the floor's
row, which cancels them all through their nursery's scope instead.
"""


def _go_flat(fn: GoFn, grace: float | None) -> Workload:
    """N ``root.go(fn)`` children, then ``root.aclose(grace=grace)``."""

    def workload(n: int, phases: Phases) -> Metrics:
        closed: list[proctree.Process] = []

        async def main() -> None:
            async with proctree.open_root() as root:
                closed.append(root)
                phases.mark("spawn")
                for _ in range(n):
                    root.go(fn)
                await trio.testing.wait_all_tasks_blocked()
                phases.mark("close")
                # From the body this cancels the body at once; the close
                # ends when the async with exits.
                await root.aclose(grace=grace)
            phases.mark(None)

        trio.run(main)
        _check_closed(closed[0] if closed else None)
        return {}

    return workload


# ---------------------------------------------------------------- (b) memory


def _traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _peak_rss() -> int:
    """This process's peak resident set so far, in bytes (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


Probe = Callable[[], int]
"""What (b) and (h) read before and after: traced bytes, or the peak RSS."""


def _tracked_objects() -> int:
    """How many objects the cyclic garbage collector tracks now."""
    gc.collect()
    return len(gc.get_objects())


class _Census:
    """What (b) and (h) read before N items are made, to compare after.

    Besides the probe (traced bytes or peak RSS), (b) counts the objects
    the cyclic collector tracks: its full collections walk every one of
    them, so their number sets much of the time an idle tree costs
    (``docs/performance.rst``, "What bounds the go rows").
    """

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.counts = probe is _traced_bytes  # RSS runs stay as lean as possible
        # Counted first: the list gc.get_objects() makes is freed before
        # the bytes are read.
        self.objects = _tracked_objects() if self.counts else 0
        self.before = probe()

    def per_item(self, n: int) -> Metrics:
        after = self.probe()
        out = {"bytes": (after - self.before) / n, "peak": after}
        if self.counts:
            out["objects"] = (_tracked_objects() - self.objects) / n
        return out


def _run_probed(main: Callable[[], Awaitable[None]], probe: Probe) -> None:
    if probe is _traced_bytes:
        tracemalloc.start()
        try:
            trio.run(main)
        finally:
            tracemalloc.stop()
    else:
        trio.run(main)


def _trio_memory(
    body: Callable[[], Awaitable[None]], probe: Probe = _traced_bytes
) -> Workload:
    """What N idle bare tasks running ``body`` hold: per task, and the peak."""

    def workload(n: int, phases: Phases) -> Metrics:
        out: Metrics = {}

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                census = _Census(probe)
                phases.mark("spawn")
                for _ in range(n):
                    nursery.start_soon(body)
                await trio.testing.wait_all_tasks_blocked()
                phases.mark(None)
                out.update(census.per_item(n))
                nursery.cancel_scope.cancel()

        _run_probed(main, probe)
        return out

    return workload


trio_memory = _trio_memory(_sleeper)


def _proctree_memory(
    make: Callable[[proctree.Process], object], probe: Probe = _traced_bytes
) -> Workload:
    """What N idle nodes that ``make(root)`` adds hold: per node, and the peak."""

    def workload(n: int, phases: Phases) -> Metrics:
        out: Metrics = {}
        closed: list[proctree.Process] = []

        async def main() -> None:
            async with proctree.open_root() as root:
                closed.append(root)
                census = _Census(probe)
                phases.mark("spawn")
                for _ in range(n):
                    make(root)
                await trio.testing.wait_all_tasks_blocked()
                phases.mark(None)
                out.update(census.per_item(n))
                await root.aclose(grace=0)

        _run_probed(main, probe)
        _check_closed(closed[0] if closed else None)
        return out

    return workload


# ------------------------------------------------------- (c) trees, (d) chain


def go_tree(n: int, phases: Phases) -> Metrics:
    """A tree of N go processes, FANOUT children each, closed with grace=0."""
    closed: list[proctree.Process] = []

    async def main() -> None:
        async with proctree.open_root() as root:
            closed.append(root)
            phases.mark("spawn")
            # Breadth first: the oldest node with room takes the next child.
            frontier = deque([root.go(_go_sleeper)])
            made = 1
            while made < n:
                parent = frontier.popleft()
                for _ in range(min(FANOUT, n - made)):
                    frontier.append(parent.go(_go_sleeper))
                    made += 1
            frontier.clear()
            await trio.testing.wait_all_tasks_blocked()
            phases.mark("close")
            await root.aclose(grace=0)
        phases.mark(None)

    trio.run(main)
    _check_closed(closed[0] if closed else None)
    return {}


def go_chain(n: int, phases: Phases) -> Metrics:
    """A chain N deep, each go process the child of the previous, closed at the top."""
    closed: list[proctree.Process] = []

    async def main() -> None:
        async with proctree.open_root() as root:
            closed.append(root)
            phases.mark("spawn")
            prev = root.go(_go_sleeper)
            for _ in range(n - 1):
                prev = prev.go(_go_sleeper)
            del prev
            await trio.testing.wait_all_tasks_blocked()
            phases.mark("close")
            await root.aclose(grace=0)
        phases.mark(None)

    trio.run(main)
    _check_closed(closed[0] if closed else None)
    return {}


# ------------------------------------------------ (e) start+stop, 3 deep
# One cycle starts 3 services in order, each once the previous one is
# up, then stops them in reverse order, each once the next one has ended.
# The work is the same on both sides: each service sleeps until it is
# cancelled (``_sleeper`` as a leaf's foreground; ``_service`` once it
# has called ``task_status.started()``).
# "start" runs from the top of a cycle until the last service is up (so it
# counts building the runner and the process), "stop" from there until the
# first service has ended; both add up over the N cycles.


async def _service(
    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()
    await trio.sleep_forever()


def trio_nested(n: int, phases: Phases) -> Metrics:
    """N cycles: 3 nested nurseries, each ``nursery.start``-ing one service.

    Leaving a nursery waits for its service, so cancelling the innermost one
    first and then each enclosing one stops the services in reverse order.
    """

    async def main() -> None:
        for _ in range(n):
            phases.mark("start")
            async with trio.open_nursery() as first:
                await first.start(_service)
                async with trio.open_nursery() as second:
                    await second.start(_service)
                    async with trio.open_nursery() as third:
                        await third.start(_service)
                        phases.mark("stop")
                        third.cancel_scope.cancel()
                    second.cancel_scope.cancel()
                first.cancel_scope.cancel()
            phases.mark(None)

    trio.run(main, instruments=phases.instruments)
    return {}


Handle = tuple[trio.CancelScope, trio.Event]


async def _service_with_handle(
    *, task_status: trio.TaskStatus[Handle] = trio.TASK_STATUS_IGNORED
) -> None:
    ended = trio.Event()
    try:
        with trio.CancelScope() as scope:
            task_status.started((scope, ended))
            await trio.sleep_forever()
    finally:
        ended.set()


def trio_scopes(n: int, phases: Phases) -> Metrics:
    """N cycles: one nursery, each service in its own cancel scope.

    The other bare trio form (for information): trio has no way to wait for
    one task, so each service hands back its scope and an event it sets when
    it ends; the stop cancels them last first, waiting for each event.
    """

    async def main() -> None:
        for _ in range(n):
            phases.mark("start")
            async with trio.open_nursery() as nursery:
                first = await nursery.start(_service_with_handle)
                second = await nursery.start(_service_with_handle)
                third = await nursery.start(_service_with_handle)
                phases.mark("stop")
                for scope, ended in (third, second, first):
                    scope.cancel()
                    await ended.wait()
            phases.mark(None)

    trio.run(main, instruments=phases.instruments)
    return {}


def go_sequential(n: int, phases: Phases) -> Metrics:
    """N cycles: ``new_process(sequential(leaf, ...))``, ``start()``, ``stop()``.

    Each leaf runs ``_sleeper`` with no graceful_stop, so a stop cancels it
    at once.
    """
    closed: list[proctree.Process] = []

    async def main() -> None:
        async with proctree.open_root() as root:
            closed.append(root)
            for _ in range(n):
                phases.mark("start")
                p = proctree.new_process(
                    proctree.sequential(
                        proctree.leaf(_sleeper),
                        proctree.leaf(_sleeper),
                        proctree.leaf(_sleeper),
                    )
                )
                await p.start()
                phases.mark("stop")
                await p.stop()
                phases.mark(None)
                if p.state is not proctree.State.CLOSED:
                    raise RuntimeError(f"stop() returned before CLOSED: {p!r}")
            await root.aclose(grace=0)

    trio.run(main, instruments=phases.instruments)
    _check_closed(closed[0] if closed else None)
    return {}


class SchedulerCount(trio.abc.Instrument):
    """Counts, per phase, the run loop's passes, its task steps and the tasks spawned.

    A pass is one turn of trio's run loop (one I/O wait, then one batch of
    runnable tasks); a step is one resumption of one task. The counts are
    exact and do not depend on the machine's speed, so they say how much
    scheduling a cycle takes, apart from what each step costs. Hooks that
    fire between phases are not counted.
    """

    def __init__(self, phases: Phases) -> None:
        self.phases = phases
        self.counts: dict[str, float] = {}

    def _add(self, what: str) -> None:
        phase = self.phases.current
        if phase is not None:
            key = f"{what}_{phase}"
            self.counts[key] = self.counts.get(key, 0.0) + 1.0

    def after_io_wait(self, timeout: float) -> None:
        self._add("passes")

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._add("steps")

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self._add("spawned")


def _counted(workload: Workload) -> Workload:
    """``workload`` under :class:`SchedulerCount`: its counts per cycle or restart."""

    def counted(n: int, phases: Phases) -> Metrics:
        counter = SchedulerCount(phases)
        phases.instruments.append(counter)
        workload(n, phases)
        return {f"count_{key}": value / n for key, value in counter.counts.items()}

    return counted


# ------------------------------------------------------------ (f) supervisor
# The triotp twins of these two live in triotp_workloads.py (another
# interpreter). Neither side prints its logs: triotp's node discards them by
# default (a logbook NullHandler), so proctree.supervisor gets a NullHandler
# too; both still build their log records.


Ready = Callable[[], Awaitable[None]]


def _discard_supervisor_logs(*, keep_warnings: bool = False) -> None:
    """Send the supervisor's log records nowhere.

    By default its level is raised past WARNING, as for an application
    that does not log a child's failures: the hand-written loops log
    nothing either, and the supervisor then makes no record at all. With
    ``keep_warnings`` each failure's WARNING record is still made and
    handled (by a handler that drops it), to show what that costs.
    """
    logger = logging.getLogger("proctree.supervisor")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.WARNING if keep_warnings else logging.ERROR)


async def _idle_child(ready: Ready) -> None:
    await ready()  # serving until the supervisor closes


def supervisor_fleet(n: int, phases: Phases) -> Metrics:
    """A Supervisor of N idle children: start until all run, then aclose(grace=0)."""
    _discard_supervisor_logs()
    closed: list[proctree.Process] = []
    table = proctree.MemoryTable({f"child-{i}": _idle_child for i in range(n)})

    async def main() -> None:
        async with proctree.open_root() as root:
            closed.append(root)
            phases.mark("spawn")
            sup = proctree.Supervisor(
                table, policy=proctree.RestartPolicy.immediate(), parent=root
            )
            await sup.start()
            await trio.testing.wait_all_tasks_blocked()
            phases.mark(None)
            if len(sup.keys()) != n:
                raise RuntimeError(f"{len(sup.keys())} of {n} children started")
            phases.mark("close")
            await sup.aclose(grace=0)
            phases.mark(None)
            if sup.state is not proctree.State.CLOSED or sup.keys():
                raise RuntimeError(f"the supervisor did not close: {sup.keys()}")
            await root.aclose(grace=0)

    trio.run(main)
    _check_closed(closed[0] if closed else None)
    return {}


class _Flaky:
    """A child that fails as soon as it runs, N times, timing each restart.

    ``restart`` is the time from its raise to the first line of its next
    run, kept by the same ``FlakyTask`` the hand-written loops use.
    """

    def __init__(self, n: int) -> None:
        self.timing = FlakyTask(n)
        self.done = trio.Event()
        self.sup: proctree.Supervisor | None = None

    async def run(self, ready: Ready) -> None:
        if not self.timing.begin():
            self.done.set()
            await ready()
            return
        assert self.sup is not None
        me = self.sup.child("flaky")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ready)  # the howto's pattern: serve, then work
            while me.state is not proctree.State.RUNNING:
                await trio.lowlevel.checkpoint()
            self.timing.fail()


def _supervised_restarts(
    n: int,
    phases: Phases,
    runner: proctree.Runner,
    done: trio.Event,
    samples: list[float],
    on_supervisor: Callable[[proctree.Supervisor], None] | None = None,
    *,
    logged: bool = False,
) -> Metrics:
    """N restarts of ``runner`` under an immediate policy, until ``done``.

    ``logged``: each failure's WARNING log record is made (and dropped).
    """
    _discard_supervisor_logs(keep_warnings=logged)
    closed: list[proctree.Process] = []

    async def main() -> None:
        async with proctree.open_root() as root:
            closed.append(root)
            policy = proctree.RestartPolicy.immediate(failure_threshold=math.inf)
            table = proctree.MemoryTable({"flaky": runner})
            sup = proctree.Supervisor(table, policy=policy, parent=root)
            if on_supervisor is not None:
                on_supervisor(sup)
            phases.mark("restarts")
            await sup.start()
            await done.wait()
            phases.mark(None)
            if sup.restarts("flaky") != n:
                raise RuntimeError(f"{sup.restarts('flaky')} restarts, not {n}")
            await sup.aclose(grace=0)
            await root.aclose(grace=0)

    trio.run(main, instruments=phases.instruments)
    _check_closed(closed[0] if closed else None)
    ordered = sorted(samples)
    return {
        "restart": statistics.median(ordered),
        "restart_p90": ordered[int(len(ordered) * 0.9)],
    }


def supervisor_restart(n: int, phases: Phases) -> Metrics:
    """N restarts of a failing child, immediate policy, no threshold."""
    flaky = _Flaky(n)

    def keep(sup: proctree.Supervisor) -> None:
        flaky.sup = sup

    return _supervised_restarts(
        n, phases, flaky.run, flaky.done, flaky.timing.samples, keep
    )


def _supervisor_restart_leaf(logged: bool) -> Workload:
    """N restarts of a failing child made with ``leaf``, immediate policy.

    The same child as the hand-written loop's (it raises as it runs), made
    a runner the way the how-to makes a plain function one: ``leaf``
    reports it ready and runs it in the runner's own task.
    """

    def workload(n: int, phases: Phases) -> Metrics:
        flaky = FlakyTask(n)
        done = trio.Event()

        async def foreground() -> None:
            await flaky.run()
            done.set()  # the last run returns instead of raising
            await trio.sleep_forever()

        leaf = proctree.leaf(foreground)
        return _supervised_restarts(n, phases, leaf, done, flaky.samples, logged=logged)

    return workload


supervisor_restart_leaf = _supervisor_restart_leaf(logged=False)


class _FlakyServing(FlakyTask):
    """The hand-written loop's match for ``_Flaky``: it serves, then fails.

    Its run opens a nursery with a task that waits to be stopped (as
    ``ready()`` does in ``_Flaky``), lets that task run once (as ``_Flaky``
    waits until its process is RUNNING), then raises: the nursery must
    cancel the waiting task before the failure reaches the loop.
    """

    async def run(self) -> None:
        if not self.begin():
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            await trio.lowlevel.checkpoint()
            self.fail()


def _trio_restart(
    make: Callable[[int], FlakyTask],
) -> Workload:
    """N restarts by a hand-written loop: a nursery per run, catch, run again.

    The peers' baseline: the child runs as a task of its own (as under a
    supervisor), and the loop around it catches its failure and starts it
    again at once.
    """

    def workload(n: int, phases: Phases) -> Metrics:
        flaky = make(n)

        async def main() -> None:
            phases.mark("restarts")
            while len(flaky.samples) < n:
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(flaky.run)
                except* RuntimeError:
                    pass  # restart it
            phases.mark(None)

        trio.run(main, instruments=phases.instruments)
        samples = sorted(flaky.samples)
        return {
            "restart": statistics.median(samples),
            "restart_p90": samples[int(len(samples) * 0.9)],
        }

    return workload


trio_restart = _trio_restart(FlakyTask)


CASES: dict[str, tuple[Workload, str]] = {
    "trio": (trio_flat, "bare trio: N x start_soon(sleep_forever), cancel"),
    "trio-scoped": (
        _trio_flat(_scoped_sleeper),
        "bare trio, each task in its own CancelScope: start_soon, cancel",
    ),
    "trio-scoped-each": (
        trio_scoped_each,
        "bare trio, each task in its own CancelScope, each scope cancelled",
    ),
    "go": (
        _go_flat(_go_sleeper, 0.0),
        "proctree: N x root.go(fn sleeping forever), aclose(grace=0)",
    ),
    "go-graceful": (
        _go_flat(_go_until_closing, None),
        "proctree: N x root.go(fn awaiting proc.closing), aclose()",
    ),
    "mem-trio": (trio_memory, "bytes per idle bare trio task"),
    "mem-trio-scoped": (
        _trio_memory(_scoped_sleeper),
        "bytes per idle bare trio task inside its own CancelScope",
    ),
    "mem-go": (
        _proctree_memory(lambda root: root.go(_go_sleeper)),
        "bytes per idle go node (fn sleeping forever)",
    ),
    "mem-go-graceful": (
        _proctree_memory(lambda root: root.go(_go_until_closing)),
        "bytes per idle go node (fn awaiting proc.closing)",
    ),
    "mem-with_parent": (
        _proctree_memory(proctree.with_parent),
        "bytes per with_parent node (no task)",
    ),
    "tree": (go_tree, f"proctree: tree of N go nodes, fanout {FANOUT}, grace=0"),
    "chain": (go_chain, "proctree: chain N deep of go nodes, grace=0"),
    "trio-nested": (
        trio_nested,
        "bare trio: N x 3 nested nurseries, nursery.start each, "
        "cancelled innermost first",
    ),
    "trio-scopes": (
        trio_scopes,
        "bare trio: N x 3 services in one nursery, a cancel scope and an "
        "event each, cancelled last first",
    ),
    "sequential": (
        go_sequential,
        "proctree: N x new_process(sequential of 3 leafs), start(), stop()",
    ),
    "sup-proctree": (
        supervisor_fleet,
        "proctree: Supervisor of N idle children, start(), aclose(grace=0)",
    ),
    "restart-proctree": (
        supervisor_restart,
        "proctree: N restarts of a child that fails, immediate policy",
    ),
    "rss-trio": (
        _trio_memory(_sleeper, _peak_rss),
        "bare trio: peak RSS of N idle tasks",
    ),
    "rss-trio-scoped": (
        _trio_memory(_scoped_sleeper, _peak_rss),
        "floor: peak RSS of N idle tasks, each in its own CancelScope",
    ),
    "rss-go": (
        _proctree_memory(lambda root: root.go(_go_sleeper), _peak_rss),
        "proctree: peak RSS of N idle go children",
    ),
    "restart-proctree-leaf": (
        supervisor_restart_leaf,
        "proctree: N restarts of a leaf child that fails, immediate policy",
    ),
    "restart-proctree-leaf-logged": (
        _supervisor_restart_leaf(logged=True),
        "proctree: the same, each failure's WARNING log record made and dropped",
    ),
    "restart-trio": (
        trio_restart,
        "bare trio: N restarts of a task that fails, by a hand-written loop",
    ),
    "restart-trio-serving": (
        _trio_restart(_FlakyServing),
        "bare trio: the same loop, the task serving beside a waiting task first",
    ),
}
"""Every workload by name, with a one-line description."""

# The cycle and restart workloads again under SchedulerCount, as "CASE-count".
CASES.update(
    {
        f"{case}-count": (_counted(workload), f"{text}; scheduler work counted")
        for case, (workload, text) in list(CASES.items())
        if case in ("trio-nested", "sequential", "trio-scopes")
        or case.startswith("restart-")
    }
)
