"""Making processes: the constructors, and how they find their parent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVarTuple

import trio

from .checks import check_async_callable, check_grace
from .current import CURRENT, owner
from .errors import ProctreeError
from .host import Host
from .node import Process, adopt, host_for, spawn_go
from .protocols import RunFn, Runner, Teardown
from .state import State

if TYPE_CHECKING:
    from typing import Unpack

__all__ = [
    "go",
    "go_child",
    "new_process",
    "resolve_parent",
    "runner_callable",
    "runner_name",
    "with_parent",
    "with_teardown",
]

_Ts = TypeVarTuple("_Ts")


def resolve_parent(parent: object, what: str) -> tuple[Process, Host]:
    """Find the parent (None: the current process) and the host to use."""
    if parent is None:
        current = CURRENT.get(None)
        if current is None:
            raise ProctreeError(
                f"{what}() was called outside every proctree root and without "
                "parent=: run it inside 'async with proctree.open_root():' "
                "or pass parent="
            )
        parent = owner(current)
    elif not isinstance(parent, Process):
        raise TypeError(
            f"{what}(): parent must be a proctree.Process or None, "
            f"got {type(parent).__name__}"
        )
    return parent, host_for(parent, what)


def _plain(
    parent: object,
    name: str | None,
    what: str,
    default: str,
    teardown: Teardown | None = None,
) -> Process:
    parent_p, host = resolve_parent(parent, what)
    if name is None:
        name = default
    elif not isinstance(name, str):
        raise TypeError(f"{what}(): name must be a str, got {type(name).__name__}")
    p = Process._create(name, host, host.grace, State.RUNNING)
    p._teardown = teardown
    p._born = trio.current_time()
    adopt(parent_p, host, p)
    return p


def go(
    fn: Callable[[Process, Unpack[_Ts]], Awaitable[object]],
    *args: *_Ts,
    parent: Process | None = None,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc, *args)`` in a new process under ``parent``.

    Args:
        fn: an async function taking the new process first.
        *args: further positional arguments for ``fn``.
        parent: the parent process; None means the current process.
        name: the process's name; by default ``fn``'s name.
        grace: seconds ``fn`` may run on once the process is closing; by
            default the tree's grace (:data:`DEFAULT_GRACE` unless the root
            said otherwise).

    Returns:
        The new process (RUNNING, or CLOSING if the parent is).

    Raises:
        ProctreeError: no ``parent`` and no current process (outside roots).
        InvalidStateError: the parent is CLOSED.
        TypeError: ``fn`` is not an async function or ``parent`` not a Process.
    """
    check_async_callable(fn, "go", "fn(proc)", nargs=1 + len(args))
    parent_p, _ = resolve_parent(parent, "go")
    return spawn_go(parent_p, fn, args, name, grace)


def go_child(
    parent: Process,
    fn: Callable[[Process, Unpack[_Ts]], Awaitable[object]],
    *args: *_Ts,
    name: str | None = None,
    grace: float | None = None,
) -> Process:
    """Start ``await fn(proc, *args)`` in a new child of ``parent``.

    The same as ``go(fn, *args, parent=parent)``; see :func:`go`.
    """
    check_async_callable(fn, "go", "fn(proc)", nargs=1 + len(args))
    parent_p, _ = resolve_parent(parent, "go")
    return spawn_go(parent_p, fn, args, name, grace)


def with_parent(parent: Process | None, name: str | None = None) -> Process:
    """Make a new process, a child of ``parent``, with no task and no teardown.

    Useful to group processes: closing it closes the ones added under it.

    Args:
        parent: the parent process; None means the current process.
        name: the process's name (default ``"process"``).

    Raises:
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
        TypeError: ``parent`` is not a Process.
    """
    return _plain(parent, name, "with_parent", "process")


def with_teardown(
    fn: Teardown, parent: Process | None = None, name: str | None = None
) -> Process:
    """Make a new process whose teardown is ``async def fn() -> None``.

    Args:
        fn: the teardown, run exactly once when the process closes.
        parent: the parent process; None means the current process.
        name: the process's name; by default ``fn``'s name.

    Raises:
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
        TypeError: ``fn`` is not an async function or ``parent`` not a Process.
    """
    check_async_callable(fn, "with_teardown", "teardown()", nargs=0)
    default = getattr(fn, "__name__", None) or "process"
    return _plain(parent, name, "with_teardown", default, fn)


def runner_callable(runner: object, what: str) -> RunFn:
    """The ``run`` of a runner (a function, or an object with ``run``)."""
    run = getattr(runner, "run", None)
    if run is None or not callable(run):
        run = runner
    check_async_callable(run, what, "run(ready)", nargs=1)
    return run  # type: ignore[return-value]


def runner_name(runner: object) -> str:
    """The default name of a runner's process."""
    name = getattr(runner, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(runner, "__name__", None)
    return name if isinstance(name, str) else type(runner).__name__


def new_process(
    runner: Runner,
    parent: Process | None = None,
    name: str | None = None,
    *,
    grace: float | None = None,
) -> Process:
    """Make an INITIAL process that will run ``runner`` once started.

    Call :meth:`Process.start` to start it; :meth:`Process.stop` (or a
    close of its parent) stops it. The runner's ``ready()`` returns when the
    process starts closing; its task is cancelled after its grace.

    Args:
        runner: ``async def run(ready)``, or an object with such a ``run``.
        parent: the parent process; None means the current process.
        name: the process's name; by default the runner's ``name`` or
            function name.
        grace: seconds the runner may take to stop once asked; by default
            the runner's ``default_grace`` if it has one (combinators wait
            for their dependencies, so theirs is infinite), else the tree's.

    Returns:
        The new process, INITIAL (CLOSED at once if the parent is closing).

    Raises:
        TypeError: ``runner`` is not a runner, or ``parent`` not a Process.
        ProctreeError: no ``parent`` and no current process.
        InvalidStateError: the parent is CLOSED.
    """
    run = runner_callable(runner, "new_process")
    parent_p, host = resolve_parent(parent, "new_process")
    if name is None:
        name = runner_name(runner)
    elif not isinstance(name, str):
        raise TypeError(f"new_process(): name must be a str, got {type(name).__name__}")
    if grace is None:
        preferred = getattr(runner, "default_grace", None)
        chosen = host.grace if preferred is None else check_grace(preferred)
    else:
        chosen = check_grace(grace)
    p = Process._create(name, host, chosen, State.INITIAL)
    p._run = run
    p._kind = "runner"
    p._born = trio.current_time()
    adopt(parent_p, host, p)
    return p
