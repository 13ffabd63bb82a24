"""``proctree run MODULE:ATTR``: run a runner under a signal-bound root."""

from __future__ import annotations

import importlib
import signal
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import final

import trio

from .._core import (
    Instrument,
    Process,
    ProctreeError,
    Runner,
    background,
    exception_tree,
    go,
    host_of,
    leaf_exceptions,
    new_process,
    render_text,
    runner_callable,
    tree,
    with_signals,
)
from .systemd import SystemdNotifier

__all__ = ["TargetError", "load_target", "run_target"]

Write = Callable[[str], object]

Helper = Callable[[Process, Process], Awaitable[object]]
"""``async def fn(proc, root)``: a helper ``proctree run`` starts beside the
runner, under :func:`~proctree.background` with no grace (the control
socket is one)."""


class TargetError(ProctreeError):
    """``MODULE:ATTR`` does not name a runner; the message says why."""


def load_target(spec: str) -> Runner:
    """Import ``MODULE:ATTR`` and check that it is a runner.

    Raises:
        TargetError: with a one-line message naming what is wrong.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"expected MODULE:ATTR (like myapp.main:app), got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            raise TargetError(f"no module named {exc.name!r}") from None
        raise TargetError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    except Exception as exc:
        raise TargetError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
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
    except TypeError:
        raise TargetError(
            f"{spec} is a {type(target).__name__}, not a runner: expected "
            "'async def run(ready)' or an object with an async 'run(ready)' method"
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


async def run_target(
    runner: Runner,
    *,
    grace: float,
    show_tree: bool,
    verbose: bool,
    colour: bool,
    write: Write,
    instruments: tuple[Instrument, ...] = (),
    notifier: SystemdNotifier | None = None,
    helpers: Sequence[tuple[str, Helper]] = (),
) -> int:
    """Run ``runner`` until it ends or a signal stops it; return the exit status.

    0 after a clean stop; 1 if the runner failed (each failure and the path
    of the process that raised it are written with ``write``) or a second
    signal forced the shutdown. ``helpers`` are ``(name, fn)`` pairs, each
    started as ``fn(proc, root)`` under ``background()`` before the runner.
    """
    notifier = notifier or SystemdNotifier.from_environment()
    watch = _Watch(notifier)
    seen = 0
    try:
        # SIGUSR1 is caught from before the runner starts, so a signal sent
        # as soon as the process is up prints the tree instead of killing it.
        with trio.open_signal_receiver(signal.SIGUSR1) as usr1:
            async with with_signals(
                name="proctree", grace=grace, instruments=(watch, *instruments)
            ) as root:
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
                app = new_process(runner, parent=root, grace=grace)
                await app.start()
                notifier.notify("READY=1", f"STATUS=running {app.name}")
                interval = notifier.watchdog_interval
                if interval is not None:
                    go(_watchdog, notifier, interval, parent=background(), grace=0)
                if show_tree:
                    write(render_text(tree(root), colour=colour))
                await app.wait()
        seen = host.signals_seen
    except BaseExceptionGroup as group:
        for exc in leaf_exceptions(group):
            where = watch.failed_in.get(id(exc), "proctree")
            write(f"proctree: {where} failed: {type(exc).__name__}: {exc}")
            if verbose:
                write("".join(traceback.format_exception(exc)).rstrip("\n"))
        return 1
    finally:
        notifier.close()
    if seen >= 2:
        write("proctree: a second signal forced the shutdown")
        return 1
    return 0
