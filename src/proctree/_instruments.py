"""Event hooks: instruments that watch processes come and go."""

from __future__ import annotations

import logging
from typing import final

from ._process import Process

__all__ = ["Instrument", "LoggingInstrument"]


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


@final
class LoggingInstrument(Instrument):
    """An instrument that logs every event on a stdlib logger.

    Lifecycle events are logged at ``level``; a failure on close and a grace
    overrun are logged at WARNING.

    Args:
        logger: where to log; by default the ``proctree.events`` logger.
        level: the level of lifecycle events (default DEBUG).
    """

    def __init__(
        self, logger: logging.Logger | None = None, level: int = logging.DEBUG
    ) -> None:
        self.logger = logger or logging.getLogger("proctree.events")
        self.level = level

    def created(self, process: Process) -> None:
        """Log the creation."""
        self.logger.log(self.level, "created %s", process.path)

    def started(self, process: Process) -> None:
        """Log the start."""
        self.logger.log(self.level, "started %s", process.path)

    def ready(self, process: Process) -> None:
        """Log that the runner is ready."""
        self.logger.log(self.level, "ready %s", process.path)

    def closing(self, process: Process) -> None:
        """Log the beginning of a close."""
        self.logger.log(self.level, "closing %s", process.path)

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """Log the end of a close, at WARNING if the process failed."""
        if error is None:
            self.logger.log(self.level, "closed %s after %.3fs", process.path, duration)
        else:
            self.logger.warning(
                "closed %s after %.3fs, failed: %s: %s",
                process.path,
                duration,
                type(error).__name__,
                error,
            )

    def grace_overrun(self, process: Process) -> None:
        """Log a grace overrun at WARNING."""
        self.logger.warning("%s overran its grace and was cancelled", process.path)
