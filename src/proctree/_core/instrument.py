"""Event hooks: the base class of instruments that watch processes come and go."""

from __future__ import annotations

from .node import Process

__all__ = ["Instrument"]


class Instrument:
    """Base class of event hooks; override the methods you need.

    Pass instruments to :func:`~proctree.open_root` (or
    :func:`~proctree.with_signals`); each hook is called synchronously when
    the event happens, for every process of that root. A hook that raises
    is logged on the ``proctree`` logger and otherwise ignored: hooks never
    break the tree. Hooks should be quick and must not block.

    Processes made by ``go``, ``with_parent`` and ``with_teardown`` are
    RUNNING from creation; only runners (:func:`~proctree.new_process`)
    report :meth:`ready` separately.
    """

    def created(self, process: Process) -> None:
        """A process was made (and linked under its parent)."""

    def started(self, process: Process) -> None:
        """A process's own code began: a ``go`` task, or a runner's ``start()``."""

    def ready(self, process: Process) -> None:
        """A runner called ``ready()``: its process is RUNNING."""

    def closing(self, process: Process) -> None:
        """A process began closing."""

    def teardown_started(self, process: Process) -> None:
        """A process's teardown began (its children and task had ended).

        Not called for a process that has no teardown: it goes from
        CLOSING to CLOSED without one.
        """

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """A process is CLOSED.

        Args:
            process: the process (its :attr:`~proctree.Process.path` is
                still its path in the tree during this call).
            duration: seconds on trio's clock since it was made (or, for a
                runner, since ``start()``).
            error: its own failure, or None.
        """

    def grace_overrun(self, process: Process) -> None:
        """A process's task outlived its grace and was cancelled."""

    def draining(self, process: Process, seconds: float) -> None:
        """A root bound to signals got its first one and drains before closing.

        Everything keeps running for ``seconds`` (the root's ``drain``),
        then the root closes as for any first signal. Readiness probes turn
        to "not ready" here, so that load balancers stop sending work.

        Args:
            process: the root.
            seconds: how long the drain lasts.
        """

    def supervisor_event(self, process: Process, event: object) -> None:
        """A supervisor of this tree reported an event.

        Args:
            process: the supervisor's own process.
            event: a :data:`~proctree.SupervisorEvent` (``ChildStarted``,
                ``ChildRestarting``...), the same object its ``on_event``
                hook gets.
        """
