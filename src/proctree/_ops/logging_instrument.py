"""An instrument that logs every event of a tree on a stdlib logger."""

from __future__ import annotations

import logging
from typing import final

from .._core import Instrument, Process, describe
from .log_format import process_facts

__all__ = ["LoggingInstrument"]


@final
class LoggingInstrument(Instrument):
    """An instrument that logs every event on a stdlib logger.

    Lifecycle events are logged at ``level``; a failure on close is logged
    at WARNING. Each record carries its facts as ``extra`` fields
    (``proctree_event``, ``proctree_path``, ``proctree_state``, and
    ``proctree_duration``, ``proctree_error_type``, ``proctree_error`` where
    they apply; see ``docs/production.rst``). Grace overruns are logged at
    ``level`` too: the core already logs one WARNING summary for the
    overruns of a shutdown.

    Args:
        logger: where to log; by default the ``proctree.events`` logger.
        level: the level of lifecycle events (default DEBUG).
    """

    def __init__(
        self, logger: logging.Logger | None = None, level: int = logging.DEBUG
    ) -> None:
        self.logger: logging.Logger = logger or logging.getLogger("proctree.events")
        self.level = level

    def _log(self, event: str, process: Process) -> None:
        if self.logger.isEnabledFor(self.level):
            self.logger.log(
                self.level,
                "%s %s",
                event,
                process.path,
                extra=process_facts(process, event),
            )

    def created(self, process: Process) -> None:
        """Log the creation."""
        self._log("created", process)

    def started(self, process: Process) -> None:
        """Log the start."""
        self._log("started", process)

    def ready(self, process: Process) -> None:
        """Log that the runner is ready."""
        self._log("ready", process)

    def closing(self, process: Process) -> None:
        """Log the beginning of a close."""
        self._log("closing", process)

    def closed(
        self, process: Process, duration: float, error: BaseException | None
    ) -> None:
        """Log the end of a close, at WARNING if the process failed."""
        if error is None:
            if self.logger.isEnabledFor(self.level):
                self.logger.log(
                    self.level,
                    "closed %s after %.3fs",
                    process.path,
                    duration,
                    extra=process_facts(process, "closed", duration=duration),
                )
        else:
            self.logger.warning(
                "closed %s after %.3fs, failed: %s",
                process.path,
                duration,
                describe(error),
                extra=process_facts(process, "closed", duration=duration, error=error),
            )

    def grace_overrun(self, process: Process) -> None:
        """Log a grace overrun."""
        if self.logger.isEnabledFor(self.level):
            self.logger.log(
                self.level,
                "%s overran its grace and was cancelled",
                process.path,
                extra=process_facts(process, "grace_overrun"),
            )

    def draining(self, process: Process, seconds: float) -> None:
        """Log the start of a drain, at WARNING (it is rare and matters)."""
        self.logger.warning(
            "%s drains for %gs before it stops",
            process.path,
            seconds,
            extra=process_facts(process, "draining", seconds=seconds),
        )
