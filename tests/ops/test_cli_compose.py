"""``proctree run`` of a Supervisor and a Service: they are runners too."""

from __future__ import annotations

import signal

from .test_cli_run import _finish, _spawn, _wait_for_line


def test_a_supervisor_is_a_target_of_proctree_run() -> None:
    with _spawn("tests.ops.compose_targets:fleet", "--tree") as proc:
        lines = _wait_for_line(proc, "worker-1 [RUNNING]")
        proc.send_signal(signal.SIGTERM)
        code, err = _finish(proc)
    assert code == 0, err
    assert any("fleet [RUNNING]" in line for line in lines)


def test_a_sequence_of_a_service_and_a_supervisor_runs_and_stops_cleanly() -> None:
    with _spawn("tests.ops.compose_targets:app", "--tree") as proc:
        lines = _wait_for_line(proc, "job [RUNNING]")
        proc.send_signal(signal.SIGINT)
        code, err = _finish(proc)
    assert code == 0, err
    text = "".join(lines)
    assert "sequential[db, sync, jobs] [RUNNING]" in text
    assert "Traceback" not in err
