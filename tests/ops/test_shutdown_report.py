"""``proctree run --shutdown-report FILE``, as a real program."""

from __future__ import annotations

import xml.dom.minidom
from pathlib import Path

import pytest

from .seeing_support import program


@pytest.mark.parametrize("suffix", [".html", ".svg"])
def test_the_report_is_written_when_the_program_ends(
    tmp_path: Path, suffix: str
) -> None:
    report = tmp_path / f"shutdown{suffix}"
    with program(
        tmp_path, "--shutdown-report", str(report), target="stubborn_shutdown"
    ) as prog:
        code, err = prog.stop()
    assert code == 0, err
    assert f"proctree: shutdown report written to {report}" in err
    text = report.read_text()
    if suffix == ".svg":
        xml.dom.minidom.parseString(text)
    else:
        assert text.startswith("<!doctype html>")
    # The worker that ignored the stop was forced after its 0.2 s grace,
    # then db's teardown ran: that chain made the shutdown last.
    assert "proctree/stubborn_shutdown/db/stubborn: at " in text
    assert "stubborn: " in text.split("Critical path", 1)[1]
    assert "began closing: signal" in text


def test_the_report_is_written_when_the_program_fails(tmp_path: Path) -> None:
    report = tmp_path / "shutdown.html"
    with program(tmp_path, "--shutdown-report", str(report), target="failing") as prog:
        assert prog.proc.stdin is not None
        prog.proc.stdin.close()  # the runner fails
        code = prog.proc.wait(timeout=60)
    assert code == 1
    text = report.read_text()
    assert "began closing: failure below" in text
    assert "proctree/failing: ValueError: the disk is full" in text


def test_an_unwritable_report_is_one_line(tmp_path: Path) -> None:
    report = tmp_path / "no" / "such" / "folder.html"
    with program(tmp_path, "--shutdown-report", str(report)) as prog:
        code, err = prog.stop()
    assert code == 0
    assert "proctree: cannot write the shutdown report: " in err
    assert "Traceback" not in err
