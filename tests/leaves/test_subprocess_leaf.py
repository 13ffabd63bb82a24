"""The OS-process leaf, with real child processes (``sys.executable -c ...``).

Child processes are real I/O, so these tests run on trio's real clock;
every wait is bounded with ``trio.fail_after``. After each test, no child
may be left unreaped and no file descriptor open.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import trio

import proctree
from proctree import State
from proctree._leaves.os_process import OSProcess, OSProcessError, os_process

from .support import no_garbage

LIMIT = 10
PY = sys.executable

SLEEPER = "import time; time.sleep(60)"
READY_THEN_SLEEP = (
    "import time; print('listening on port 4242', flush=True); time.sleep(60)"
)
IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def exit_of(pid: int) -> None:
    """Wait until ``pid`` has exited, even if it is not our child (a pidfd)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)


async def started(runner: OSProcess) -> proctree.Process:
    p = proctree.new_process(runner)
    with trio.fail_after(LIMIT):
        await p.start()
    return p


async def test_ready_once_started_and_stopped_with_sigterm() -> None:
    runner = os_process([PY, "-c", SLEEPER])
    async with proctree.open_root():
        p = await started(runner)
        pid = runner.pid
        assert pid is not None
        assert alive(pid)
        assert p.state is State.RUNNING
        with trio.fail_after(LIMIT):
            await p.stop()
        assert not alive(pid)
    assert runner.returncode == -signal.SIGTERM
    assert runner.pid is None
    assert p.error is None


async def test_ready_when_it_prints_the_ready_line() -> None:
    script = (
        "import time; time.sleep(0.2); print('warming up', flush=True); "
        "time.sleep(0.2); print('listening on port 4242', flush=True); time.sleep(60)"
    )
    runner = os_process([PY, "-c", script], ready_line=re.compile(r"port (\d+)"))
    async with proctree.open_root():
        begin = trio.current_time()
        p = await started(runner)
        assert trio.current_time() - begin >= 0.4
        assert runner.ready_match is not None
        assert runner.ready_match.group(1) == "4242"
        await p.stop()


async def test_a_ready_line_may_come_on_stderr() -> None:
    script = (
        "import sys, time; print('ready', file=sys.stderr, flush=True); time.sleep(60)"
    )
    runner = os_process([PY, "-c", script], ready_line="ready")
    async with proctree.open_root():
        p = await started(runner)
        assert runner.ready_match is not None
        assert runner.ready_match.string == "ready"
        await p.stop()


async def test_ready_when_the_readiness_check_passes(tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    script = (
        f"import time, pathlib; time.sleep(0.3); pathlib.Path({str(flag)!r}).touch(); "
        "time.sleep(60)"
    )
    checks = 0

    async def check() -> bool:
        nonlocal checks
        checks += 1
        return flag.exists()

    runner = os_process([PY, "-c", script], ready_check=check, check_interval=0.05)
    async with proctree.open_root():
        p = await started(runner)
        assert flag.exists()
        assert checks > 1
        await p.stop()


async def test_a_failing_readiness_check_fails_the_start_and_kills_the_child() -> None:
    async def check() -> bool:
        raise ValueError("cannot tell")

    runner = os_process([PY, "-c", SLEEPER], ready_check=check)
    async with proctree.open_root() as root:
        p = proctree.new_process(runner)
        with trio.fail_after(LIMIT), pytest.raises(ValueError, match="cannot tell"):
            await p.start()
        assert root.state is State.RUNNING
    assert runner.returncode == -signal.SIGKILL


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    runner = os_process([PY, "-c", IGNORES_SIGTERM], ready_line="ready", grace=0.5)
    async with proctree.open_root():
        p = await started(runner)
        pid = runner.pid
        assert pid is not None
        begin = trio.current_time()
        with trio.fail_after(LIMIT):
            await p.stop()
        took = trio.current_time() - begin
        assert not alive(pid)
    assert 0.5 <= took < 3
    assert runner.returncode == -signal.SIGKILL
    # Forcing is the documented end of a grace, not a failure.
    assert p.error is None


async def test_stop_grace_bounds_the_wait_for_sigterm() -> None:
    runner = os_process([PY, "-c", IGNORES_SIGTERM], ready_line="ready")
    async with proctree.open_root():
        p = await started(runner)
        begin = trio.current_time()
        with trio.fail_after(LIMIT):
            await p.stop(grace=0.3)
        assert 0.3 <= trio.current_time() - begin < 3
    assert runner.returncode == -signal.SIGKILL


async def test_exiting_before_ready_fails_the_start_with_code_and_stderr() -> None:
    script = "import sys; print('config file missing', file=sys.stderr); sys.exit(3)"
    runner = os_process([PY, "-c", script], ready_line="ready", name="db")
    async with proctree.open_root() as root:
        p = proctree.new_process(runner)
        with trio.fail_after(LIMIT), pytest.raises(OSProcessError) as info:
            await p.start()
        assert root.state is State.RUNNING
    error = info.value
    assert isinstance(error, proctree.ProctreeError)
    assert error.returncode == 3
    assert error.stderr_tail == "config file missing\n"
    assert error.command == (PY, "-c", script)
    assert "exited with code 3 before it was ready" in str(error)
    assert "config file missing" in str(error)
    assert p.error is error


async def test_exiting_while_running_is_a_failure_even_with_code_0() -> None:
    script = "import time; print('ready', flush=True); time.sleep(0.2)"
    runner = os_process([PY, "-c", script], ready_line="ready")
    with pytest.RaisesGroup(OSProcessError):
        async with proctree.open_root():
            p = await started(runner)
            with trio.fail_after(LIMIT):
                await p.closed.wait()
    assert isinstance(p.error, OSProcessError)
    assert p.error.returncode == 0
    assert "on its own while running" in str(p.error)
    assert "(nothing on stderr)" in str(p.error)


async def test_a_crash_reports_the_signal() -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    runner = os_process([PY, "-c", script], ready_line="never")
    async with proctree.open_root():
        p = proctree.new_process(runner)
        with trio.fail_after(LIMIT), pytest.raises(OSProcessError) as info:
            await p.start()
    assert info.value.returncode == -signal.SIGSEGV
    assert "killed by SIGSEGV" in str(info.value)


async def test_an_unexpected_exit_code_when_stopping_is_a_failure() -> None:
    script = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    print('flush failed', file=sys.stderr); sys.exit(5)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    runner = os_process([PY, "-c", script], ready_line="ready")
    with pytest.RaisesGroup(OSProcessError):
        async with proctree.open_root():
            p = await started(runner)
            with trio.fail_after(LIMIT):
                # The failure closes the root, which cancels this body.
                await p.stop()
    assert isinstance(p.error, OSProcessError)
    assert p.error.returncode == 5
    assert "when asked to stop with SIGTERM" in str(p.error)
    assert p.error.stderr_tail == "flush failed\n"


@pytest.mark.parametrize("code", [0, 128 + signal.SIGTERM])
async def test_exit_codes_of_a_clean_stop(code: int) -> None:
    script = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: sys.exit({code}))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    runner = os_process([PY, "-c", script], ready_line="ready")
    async with proctree.open_root():
        p = await started(runner)
        with trio.fail_after(LIMIT):
            await p.stop()
    assert runner.returncode == code
    assert p.error is None


async def test_the_stop_signal_can_be_chosen() -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(0))\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    runner = os_process(
        [PY, "-c", script], ready_line="ready", stop_signal=signal.SIGINT
    )
    async with proctree.open_root():
        p = await started(runner)
        with trio.fail_after(LIMIT):
            await p.stop()
    assert runner.returncode == 0


async def test_a_missing_program_is_a_clear_error() -> None:
    runner = os_process(["proctree-no-such-program", "--flag"])
    async with proctree.open_root():
        p = proctree.new_process(runner)
        with trio.fail_after(LIMIT), pytest.raises(FileNotFoundError) as info:
            await p.start()
    assert info.value.filename == "proctree-no-such-program"
    assert any(
        "could not start 'proctree-no-such-program'" in note
        for note in info.value.__notes__
    )
    assert runner.name == "proctree-no-such-program"


async def test_a_start_timeout_kills_and_reaps_the_child() -> None:
    runner = os_process([PY, "-c", SLEEPER], ready_line="never printed")
    async with proctree.open_root():
        p = proctree.new_process(runner)
        with trio.fail_after(LIMIT), pytest.raises(proctree.StartTimeoutError):
            await p.start(timeout=0.3)
        assert p.state is State.CLOSED
    assert runner.returncode == -signal.SIGKILL


async def test_a_stop_while_waiting_for_the_ready_line_sends_sigterm_at_once() -> None:
    runner = os_process([PY, "-c", SLEEPER], ready_line="never printed", grace=30)
    async with proctree.open_root() as root:
        p = proctree.new_process(runner)

        async def stop_soon(proc: proctree.Process) -> None:
            while runner.pid is None:
                await trio.sleep(0.01)
            await p.stop()

        root.go(stop_soon)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(proctree.InvalidStateError, match="stopped while starting"),
        ):
            await p.start()
    # SIGTERM at once, not SIGKILL after the 30 s grace.
    assert runner.returncode == -signal.SIGTERM
    assert p.error is None


async def test_closing_the_root_stops_the_child() -> None:
    runner = os_process([PY, "-c", READY_THEN_SLEEP], ready_line="listening")
    with trio.fail_after(LIMIT):
        async with proctree.open_root():
            p = await started(runner)
            pid = runner.pid
    assert p.state is State.CLOSED
    assert pid is not None
    assert not alive(pid)
    assert runner.returncode == -signal.SIGTERM


async def test_the_stop_signal_reaches_the_childs_own_children() -> None:
    # The child starts a grandchild and prints its pid; both run in the
    # child's own process group, which the stop signal is sent to.
    script = (
        "import subprocess, sys, time\n"
        f"g = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        "print('grandchild', g.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    runner = os_process([PY, "-c", script], ready_line=re.compile(r"grandchild (\d+)"))
    async with proctree.open_root():
        p = await started(runner)
        assert runner.ready_match is not None
        grandchild = int(runner.ready_match.group(1))
        assert alive(grandchild)
        with trio.fail_after(LIMIT):
            await p.stop()
            await exit_of(grandchild)
        assert not alive(grandchild)


async def test_without_a_new_session_only_the_child_is_signalled() -> None:
    runner = os_process([PY, "-c", READY_THEN_SLEEP], new_session=False)
    async with proctree.open_root():
        p = await started(runner)
        assert runner.pid is not None
        assert os.getpgid(runner.pid) == os.getpgid(0)
        with trio.fail_after(LIMIT):
            await p.stop()
    assert runner.returncode == -signal.SIGTERM


async def test_by_default_the_child_has_its_own_process_group() -> None:
    runner = os_process([PY, "-c", SLEEPER])
    async with proctree.open_root():
        p = await started(runner)
        assert runner.pid is not None
        assert os.getpgid(runner.pid) == runner.pid
        await p.stop()


async def test_output_is_echoed_and_the_stderr_tail_is_bounded(
    capfd: pytest.CaptureFixture[str],
) -> None:
    script = (
        "import sys\n"
        "print('to stdout', flush=True)\n"
        "sys.stderr.write('x' * 100 + 'END')\n"
        "sys.exit(1)\n"
    )
    runner = os_process([PY, "-c", script], ready_line="never", tail_bytes=10)
    async with proctree.open_root():
        p = proctree.new_process(runner)
        with trio.fail_after(LIMIT), pytest.raises(OSProcessError) as info:
            await p.start()
    assert info.value.stderr_tail == "xxxxxxxEND"
    out, err = capfd.readouterr()
    assert "to stdout" in out
    assert "x" * 100 + "END" in err


async def test_without_echo_output_is_dropped_but_the_tail_kept(
    capfd: pytest.CaptureFixture[str],
) -> None:
    script = "import sys; print('quiet'); print('oops', file=sys.stderr); sys.exit(2)"
    runner = os_process([PY, "-c", script], echo=False)
    with pytest.RaisesGroup(OSProcessError):
        async with proctree.open_root():
            p = await started(runner)
            with trio.fail_after(LIMIT):
                await p.closed.wait()
    assert isinstance(p.error, OSProcessError)
    assert p.error.stderr_tail == "oops\n"
    out, err = capfd.readouterr()
    assert "quiet" not in out
    assert "oops" not in err


async def test_cwd_and_env_are_passed_on(tmp_path: Path) -> None:
    script = (
        "import os; print('ready', os.getcwd(), os.environ['PROCTREE_TEST'], "
        "flush=True); import time; time.sleep(60)"
    )
    runner = os_process(
        [PY, "-c", script],
        ready_line=re.compile(r"ready (\S+) (\S+)"),
        cwd=tmp_path,
        env={**os.environ, "PROCTREE_TEST": "yes"},
    )
    async with proctree.open_root():
        p = await started(runner)
        assert runner.ready_match is not None
        assert runner.ready_match.groups() == (str(tmp_path), "yes")
        await p.stop()


async def test_a_runner_runs_one_os_process_at_a_time_and_may_run_again() -> None:
    runner = os_process([PY, "-c", SLEEPER])
    async with proctree.open_root():
        p = await started(runner)
        first = runner.pid
        again = proctree.new_process(runner)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(proctree.InvalidStateError, match="already running"),
        ):
            await again.start()
        await p.stop()
        p2 = await started(runner)
        assert runner.pid not in (None, first)
        await p2.stop()


async def test_os_processes_stop_in_reverse_order_inside_sequential() -> None:
    db = os_process([PY, "-c", READY_THEN_SLEEP], ready_line="listening", name="db")
    app = os_process([PY, "-c", READY_THEN_SLEEP], ready_line="listening", name="app")
    exits: list[str] = []

    async with proctree.open_root():
        p = proctree.new_process(proctree.sequential(db, app))
        with trio.fail_after(LIMIT):
            await p.start()
        assert p.name == "sequential[db, app]"
        db_pid, app_pid = db.pid, app.pid
        assert db_pid is not None
        assert app_pid is not None

        async def watch(proc: proctree.Process, name: str, pid: int) -> None:
            await exit_of(pid)
            exits.append(name)

        watchers = [
            proctree.go(watch, "db", db_pid),
            proctree.go(watch, "app", app_pid),
        ]
        with trio.fail_after(LIMIT):
            await p.stop()
            for watcher in watchers:
                await watcher.wait()
    # db is asked to stop only once app has exited and been reaped.
    assert exits == ["app", "db"]
    assert (db.returncode, app.returncode) == (-signal.SIGTERM, -signal.SIGTERM)


async def test_a_stopped_os_process_leaves_no_garbage() -> None:
    async def scenario() -> weakref.ref[proctree.Process]:
        runner = os_process([PY, "-c", READY_THEN_SLEEP], ready_line="listening")
        async with proctree.open_root():
            p = await started(runner)
            with trio.fail_after(LIMIT):
                await p.stop()
        return weakref.ref(p)

    await scenario()  # first use warms up caches (trio's threads, imports)
    with no_garbage():
        ref = await scenario()
    assert ref() is None


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"shlex\.split"):
        os_process("python -m http.server")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        os_process([])
    with pytest.raises(TypeError, match="every part"):
        os_process(["python", 3])  # type: ignore[list-item]

    async def check() -> bool:
        return True

    with pytest.raises(ValueError, match="not both"):
        os_process([PY], ready_line="x", ready_check=check)

    def not_async() -> bool:
        return True

    with pytest.raises(TypeError, match="async function"):
        os_process([PY], ready_check=not_async)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ready_line is empty"):
        os_process([PY], ready_line="")
    with pytest.raises(ValueError, match="stop_signal"):
        os_process([PY], stop_signal=12345)
    with pytest.raises(ValueError, match="check_interval"):
        os_process([PY], check_interval=0)
    with pytest.raises(ValueError, match="tail_bytes"):
        os_process([PY], tail_bytes=-1)
    with pytest.raises(TypeError, match="env"):
        os_process([PY], env={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="grace"):
        os_process([PY], grace=-1)


def test_the_environment_stays_out_of_the_repr() -> None:
    runner = os_process([PY], env={"DB_PASSWORD": "hunter2"})
    assert runner.env == {"DB_PASSWORD": "hunter2"}
    assert "hunter2" not in repr(runner)


def test_paths_are_accepted_and_the_default_name_is_the_programs() -> None:
    runner = os_process([Path(PY), "-V"], cwd=Path("/"))
    assert runner.command == (PY, "-V")
    assert runner.cwd == "/"
    assert runner.name == os.path.basename(PY)


# A program whose os_process child prints its pid; the test kills the
# program with SIGKILL, which no code of the program can see.
PROGRAM_WITH_A_CHILD = """
import sys, trio, proctree

async def main():
    async with proctree.open_root() as root:
        runner = proctree.os_process(
            [sys.executable, "-c", "import time; print('up', flush=1); time.sleep(60)"],
            ready_line="up",
            echo=False,
        )
        p = proctree.new_process(runner, parent=root)
        await p.start()
        print(runner.pid, flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


async def test_a_child_dies_with_its_program_even_after_kill_9() -> None:
    with trio.fail_after(LIMIT):
        program = await trio.lowlevel.open_process(
            [PY, "-c", PROGRAM_WITH_A_CHILD], stdout=subprocess.PIPE
        )
        try:
            assert program.stdout is not None
            data = b""
            while not data.endswith(b"\n"):
                data += await program.stdout.receive_some()
            child = int(data.split()[-1])
            assert alive(child)
            program.kill()  # SIGKILL: the program runs no cleanup at all
            await program.wait()
            await exit_of(child)  # the kernel's parent-death signal
            assert not alive(child)
        finally:
            program.kill()
            await program.wait()
            if program.stdout is not None:
                await program.stdout.aclose()


# The direct child starts a grandchild in its process group that ignores
# SIGTERM, then exits at once when asked to stop.
LEAVES_A_GRANDCHILD = """
import signal, subprocess, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
grandchild = subprocess.Popen(
    [sys.executable, "-c", GRANDCHILD], stdout=subprocess.PIPE
)
grandchild.stdout.readline()  # it ignores SIGTERM from now on
print("ready", grandchild.pid, flush=True)
signal.sigwait({signal.SIGTERM})
""".replace(
    "GRANDCHILD",
    repr(
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}); "
        "print('armed', flush=True); time.sleep(60)"
    ),
)


async def test_after_the_grace_the_group_is_killed_though_the_child_has_exited() -> (
    None
):
    runner = os_process(
        [PY, "-c", LEAVES_A_GRANDCHILD],
        ready_line=re.compile(r"ready (\d+)"),
        grace=0.5,
    )
    with trio.fail_after(LIMIT):
        async with proctree.open_root() as root:
            p = proctree.new_process(runner, parent=root)
            await p.start()
            assert runner.ready_match is not None
            grandchild = int(runner.ready_match.group(1))
            assert alive(grandchild)
            t0 = trio.current_time()
            await p.stop()
            took = trio.current_time() - t0
            await exit_of(grandchild)
    assert not alive(grandchild)
    assert runner.returncode == 0  # the child itself stopped cleanly
    assert 0.5 <= took < 0.5 + 2  # the grandchild had the grace, then SIGKILL
