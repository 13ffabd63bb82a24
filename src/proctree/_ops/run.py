"""``proctree run MODULE:ATTR``: run a runner under a signal-bound root."""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import signal
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, final

import trio

from .._core import (
    Instrument,
    Process,
    ProctreeError,
    Runner,
    background,
    close_by,
    describe,
    exception_tree,
    go,
    host_of,
    leaf_exceptions,
    new_process,
    open_root,
    render_text,
    runner_callable,
    tree,
    with_signals,
)
from .reload import reload_on_signals
from .systemd import SystemdNotifier

__all__ = [
    "FORCED_BY_SIGNAL",
    "TargetError",
    "TargetImportError",
    "load_target",
    "run_target",
]

FORCED_BY_SIGNAL = "proctree: a second signal forced the shutdown"
"""What ``proctree run`` and the demo print when a second signal forced the
shutdown (both then exit with status 1)."""

Write = Callable[..., object]
"""``write(text, **fields)``: a line for the user; ``fields`` are its facts
(``proctree_*``), which a JSON writer keeps."""

EXTEND_EVERY: Final = 5.0
"""Seconds between two ``EXTEND_TIMEOUT_USEC`` while the runner starts."""

Helper = Callable[[Process, Process], Awaitable[object]]
"""``async def fn(proc, root)``: a helper ``proctree run`` starts beside the
runner, under :func:`~proctree.background` with no grace (the control
socket is one)."""


class TargetError(ProctreeError):
    """``MODULE:ATTR`` does not name a runner; the message says why."""


class TargetImportError(TargetError):
    """Importing the target's module raised: the program's own code failed.

    ``proctree run`` prints the import's traceback and exits 1, as for any
    failure of the program (2 is for bad usage).
    """

    def __init__(self, module: str, error: BaseException) -> None:
        super().__init__(f"importing {module!r} failed: {describe(error)}")
        self.error = error

    def traceback(self) -> str:
        """The import's traceback, without the import machinery's frames."""
        report = traceback.TracebackException.from_exception(self.error)
        report.stack = traceback.StackSummary.from_list(
            [f for f in report.stack if not _machinery(f.filename)]
        )
        return "".join(report.format()).rstrip("\n")


_IMPORTLIB = os.path.dirname(importlib.__file__ or "") + os.sep


def _machinery(filename: str) -> bool:
    return (
        filename.startswith(("<frozen importlib", _IMPORTLIB)) or filename == __file__
    )


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


class HealthError(ProctreeError):
    """The health server of ``--health`` could not start (its address is taken)."""


def load_target(spec: str) -> Runner:
    """Import ``MODULE:ATTR`` and check that it is a runner.

    Raises:
        TargetError: with a one-line message naming what is wrong (bad
            usage: the command exits 2).
        TargetImportError: importing the module raised (the command prints
            its traceback and exits 1).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"expected MODULE:ATTR (like myapp.main:app), got {spec!r}")
    if module_name.endswith(".py"):
        dotted = module_name[:-3].replace("/", ".").lstrip(".")
        raise TargetError(
            f"{module_name!r} is a file name; MODULE is a module name, as for "
            f"python -m: try {dotted}:{attr}"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            raise TargetError(f"no module named {exc.name!r}") from None
        raise TargetImportError(module_name, exc) from None
    except Exception as exc:
        raise TargetImportError(module_name, exc) from None
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise TargetError(
                f"module {module_name!r} has no attribute {attr!r}"
            ) from None
    try:
        runner_callable(target, "proctree run")
    except TypeError as exc:
        what = _article(type(target).__name__)
        raise TargetError(
            f"{spec} is {what}, not a runner: expected 'async def run(ready)' or "
            f"an object with an async 'run(ready)' method ({exc})"
        ) from None
    return target  # type: ignore[return-value]


@final
class _Watch(Instrument):
    """The command's own hooks: systemd's STOPPING=1, and who failed."""

    def __init__(self, notifier: SystemdNotifier) -> None:
        self.notifier = notifier
        self.root: Process | None = None
        self.failed_in: dict[int, str] = {}

    def closing(self, process: Process) -> None:
        if process is self.root:
            self.notifier.notify("STOPPING=1", "STATUS=stopping")

    def draining(self, process: Process, seconds: float) -> None:
        self.notifier.notify(f"STATUS=draining for {seconds:g}s, then stopping")

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        if error is not None:
            path = process.path
            for exc in exception_tree(error):
                self.failed_in.setdefault(id(exc), path)


async def _print_tree_on_usr1(
    proc: Process,
    signals: AsyncIterator[int],
    root: Process,
    write: Write,
    colour: bool,
) -> None:
    async for _ in signals:
        write(render_text(tree(root), colour=colour))


async def _watchdog(proc: Process, notifier: SystemdNotifier, every: float) -> None:
    while True:
        notifier.notify("WATCHDOG=1")
        await trio.sleep(every)


async def _extend_start(proc: Process, notifier: SystemdNotifier) -> None:
    # systemd kills a start that takes longer than TimeoutStartSec; the
    # runner is still starting while the loop answers: ask for more time.
    while True:
        notifier.extend_timeout(3 * EXTEND_EVERY)
        await trio.sleep(EXTEND_EVERY)


@contextlib.asynccontextmanager
async def _serving(health: Runner | None) -> AsyncGenerator[None, None]:
    """Serve the probes, if asked, in a root of their own around the run.

    Outside the application's root, so they answer until its very end
    (``/readyz`` 503 while it stops) and are not part of what they report.
    """
    if health is None:
        yield
        return
    failed: Exception | None = None
    async with open_root(name="proctree-health") as root:
        try:
            await new_process(health, parent=root).start()
        except Exception as exc:
            failed = exc
        else:
            yield
    if failed is not None:
        raise HealthError(
            f"--health: cannot serve there: {type(failed).__name__}: {failed}"
        ) from failed


async def run_target(
    runner: Runner,
    *,
    grace: float | None,
    show_tree: bool,
    verbose: bool,
    colour: bool,
    write: Write,
    instruments: tuple[Instrument, ...] = (),
    notifier: SystemdNotifier | None = None,
    helpers: Sequence[tuple[str, Helper]] = (),
    drain: float = 0.0,
    health: Runner | None = None,
) -> int:
    """Run ``runner`` until it ends or a signal stops it; return the exit status.

    0 after a clean stop; 1 if the runner failed (each failure and the path
    of the process that raised it are written with ``write``) or a second
    signal forced the shutdown; 2 if the ``health`` server could not start
    (its address is taken). SIGHUP reloads the tree
    (:func:`~proctree._ops.reload.reload_tree`). ``helpers`` are ``(name,
    fn)`` pairs, each started as ``fn(proc, root)`` under ``background()``
    before the runner.

    ``grace`` bounds the stop (contract 6): every process is forced at the
    latest ``grace`` seconds after the shutdown begins, each one earlier if
    its own grace says so. None (or ``inf``) imposes no bound: each process
    keeps its own grace. ``drain`` delays the shutdown after the first
    signal (``with_signals(drain=)``).
    """
    notifier = notifier or SystemdNotifier.from_environment()
    watch = _Watch(notifier)
    seen = 0
    try:
        # SIGUSR1 and SIGHUP are caught from before the runner starts, so a
        # signal sent as soon as the process is up does not kill it.
        with (
            trio.open_signal_receiver(signal.SIGUSR1) as usr1,
            trio.open_signal_receiver(signal.SIGHUP) as hup,
        ):
            async with (
                _serving(health),
                with_signals(
                    name="proctree", instruments=(watch, *instruments), drain=drain
                ) as root,
            ):
                watch.root = root
                host = host_of(root)
                go(
                    _print_tree_on_usr1,
                    usr1,
                    root,
                    write,
                    colour,
                    parent=background(),
                    grace=0,
                    name="sigusr1",
                )
                for helper_name, helper in helpers:
                    go(helper, root, parent=background(), grace=0, name=helper_name)
                app = new_process(runner, parent=root)
                extender = None
                if notifier.enabled:
                    extender = go(_extend_start, notifier, parent=background(), grace=0)
                try:
                    await app.start()
                finally:
                    if extender is not None:
                        await extender.aclose()
                go(
                    reload_on_signals,
                    hup,
                    root,
                    notifier,
                    parent=background(),
                    grace=0,
                    name="sighup",
                )
                notifier.notify("READY=1", f"STATUS=running {app.name}")
                interval = notifier.watchdog_interval
                if interval is not None:
                    go(_watchdog, notifier, interval, parent=background(), grace=0)
                if show_tree:
                    write(render_text(tree(root), colour=colour))
                try:
                    await app.wait()
                except BaseException:
                    # The root is closing (a signal, a failure): the body is
                    # cancelled, and the bound starts now.
                    if grace is not None and grace != math.inf:
                        close_by(app, trio.current_time() + grace)
                    raise
        seen = host.signals_seen
    except HealthError as error:
        write(f"proctree run: error: {error}", proctree_event="health_failed")
        return 2
    except BaseExceptionGroup as group:
        for exc in leaf_exceptions(group):
            where = watch.failed_in.get(id(exc), "proctree")
            write(
                f"proctree: {where} failed: {describe(exc)}",
                proctree_event="failed",
                proctree_path=where,
                proctree_error_type=type(exc).__name__,
                proctree_error=describe(exc),
            )
            if verbose:
                write("".join(traceback.format_exception(exc)).rstrip("\n"))
        return 1
    finally:
        notifier.close()
    if seen >= 2:
        write(FORCED_BY_SIGNAL, proctree_event="forced")
        return 1
    return 0
