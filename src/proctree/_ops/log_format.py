"""Structured logs: the facts proctree's records carry, a JSON formatter, a filter.

Every record proctree logs carries its facts as ``extra`` fields whose
names start with ``proctree_`` (the list is in ``docs/production.rst``);
:class:`JSONFormatter` prints a record, those fields included, as one JSON
object a line; :class:`ProcessPathFilter` puts the current process's path
on the application's own records. ``proctree run --log-format json`` uses
both.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Final, TextIO, final

from .._core import Process, current_or_none

__all__ = [
    "JSONFormatter",
    "ProcessPathFilter",
    "configure_logging",
    "process_facts",
]

_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
"""The attributes every record has: the rest came as ``extra``."""


def process_facts(process: Process, event: str, **more: object) -> dict[str, object]:
    """The ``extra`` fields of a record about ``process``.

    Args:
        process: the process the record is about.
        event: what happened (``created``, ``closed``...).
        **more: further ``proctree_*`` fields, by their name without the
            prefix (``duration=0.5``); an exception given as ``error``
            becomes ``proctree_error_type`` and ``proctree_error``.

    Returns:
        The fields, to pass as ``extra=``.
    """
    fields: dict[str, object] = {
        "proctree_event": event,
        "proctree_path": process.path,
        # The closed hook runs just before the state becomes CLOSED.
        "proctree_state": "CLOSED" if event == "closed" else process.state.name,
    }
    for name, value in more.items():
        if name == "error" and isinstance(value, BaseException):
            fields["proctree_error_type"] = type(value).__name__
            fields["proctree_error"] = str(value)
        else:
            fields[f"proctree_{name}"] = value
    return fields


@final
class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    The object has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and
    ``message``, then every ``extra`` field of the record (proctree's
    ``proctree_*`` fields, and the application's own), then ``exception``
    (the formatted traceback) when the record has one. A value JSON cannot
    hold is written as its ``str()``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line (without the newline)."""
        data: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


@final
class ProcessPathFilter(logging.Filter):
    """Puts the path of the current process on each record, as ``proctree_path``.

    Add it to a handler (not a logger, so that it sees the records of every
    logger): a record logged from a process's function, teardown or root
    body gets that process's path; a record that already has a
    ``proctree_path`` (proctree's own), or is logged outside every process,
    is left as it is. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the path; always True."""
        if not hasattr(record, "proctree_path"):
            current = current_or_none()
            if current is not None:
                record.proctree_path = current.path
        return True


def configure_logging(
    level: int, log_format: str, stream: TextIO | None = None
) -> logging.Handler:
    """Set up the root logger as ``proctree run`` does; return its handler.

    One handler on the root logger, with :class:`ProcessPathFilter`; text
    (``asctime level logger: message``) or JSON lines. Handlers that
    another call put there before are replaced, so no line comes out twice.
    """
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(ProcessPathFilter())
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return handler
