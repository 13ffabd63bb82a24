"""Structured logs in-process: the JSON formatter, the path filter, the fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import trio
import trio.testing

import proctree
from proctree._ops.log_format import configure_logging


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(proctree.ProcessPathFilter())
    handler.setFormatter(proctree.JSONFormatter())
    logger = logging.getLogger("test.structured")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_the_filter_puts_the_current_process_path_on_records(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    async def work(proc: proctree.Process) -> None:
        logger.info("in work")

    async def teardown() -> None:
        logger.info("in teardown")

    logger.info("outside")
    async with proctree.open_root(name="app") as root:
        logger.info("in the body")
        db = proctree.with_teardown(teardown, parent=root, name="db")
        await db.go(work).wait()
    records = _records(stream)
    assert [r.get("proctree_path") for r in records] == [
        None,
        "app",
        "app/db/work",
        "app/db",  # its teardown: still linked under the root
    ]


def test_a_record_that_has_a_path_keeps_it(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("x", extra={"proctree_path": "given"})
    assert _records(stream)[0]["proctree_path"] == "given"


def test_json_lines_have_the_standard_keys_extras_and_the_traceback(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("it %s", "failed", extra={"order": 7, "obj": object()})
    (line,) = stream.getvalue().splitlines()  # one line, newlines escaped
    record = json.loads(line)
    assert record["message"] == "it failed"
    assert record["level"] == "ERROR"
    assert record["logger"] == "test.structured"
    assert str(record["time"]).endswith("Z")
    assert record["order"] == 7
    assert str(record["obj"]).startswith("<object object")
    assert "ValueError: bad" in str(record["exception"])


async def test_the_logging_instrument_records_carry_the_facts(
    autojump_clock: trio.testing.MockClock,
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    async def fails(proc: proctree.Process) -> None:
        await trio.sleep(2)
        raise OSError("disk gone")

    instrument = proctree.LoggingInstrument(logger, level=logging.INFO)
    with pytest.raises(BaseExceptionGroup):
        async with proctree.open_root(name="app", instruments=[instrument]) as root:
            root.go(fails)
    failed = [r for r in _records(stream) if r.get("proctree_error_type")]
    assert failed == [
        {
            **{k: failed[0][k] for k in ("time", "message")},
            "level": "WARNING",
            "logger": "test.structured",
            "proctree_event": "closed",
            "proctree_path": "app/fails",
            "proctree_state": "CLOSED",
            "proctree_duration": 2.0,
            "proctree_error_type": "OSError",
            "proctree_error": "disk gone",
        }
    ]


def test_configure_logging_leaves_one_handler_so_nothing_prints_twice() -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        stream = io.StringIO()
        configure_logging(logging.INFO, "json", stream)
        configure_logging(logging.INFO, "json", stream)
        assert len(root.handlers) == 1
        logging.getLogger("some.library").info("once")
        assert len(stream.getvalue().splitlines()) == 1
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
