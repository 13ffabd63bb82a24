"""An instrument that logs every event of a tree on a stdlib logger."""

from __future__ import annotations

import logging
from typing import final

from .._core import Instrument, Process, describe

__all__ = ["LoggingInstrument"]


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
        self.logger: logging.Logger = logger or logging.getLogger("proctree.events")
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
                "closed %s after %.3fs, failed: %s",
                process.path,
                duration,
                describe(error),
            )

    def grace_overrun(self, process: Process) -> None:
        """Log a grace overrun at WARNING."""
        self.logger.warning("%s overran its grace and was cancelled", process.path)
