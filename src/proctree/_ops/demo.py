"""The demo application: a small tree that starts in order and stops in reverse.

``python -m proctree demo`` runs it under a root bound to SIGINT and
SIGTERM: a database pool, a real TCP server on 127.0.0.1 that needs the
pool (it greets each connection with one line), and two workers under the
server. Ctrl-C closes the tree leaves first and prints each teardown as it
happens; a second Ctrl-C forces the shutdown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from .._core import Process, go, host_of, new_process, with_signals, with_teardown
from .._leaves import tcp_server
from .run import FORCED_BY_SIGNAL

__all__ = ["run_demo"]

GREETING = b"hello from the proctree demo\n"
"""What the demo's TCP server says to each connection."""


def _jobs(n: int) -> str:
    return "1 job" if n == 1 else f"{n} jobs"


async def _greet(proc: Process, stream: trio.SocketStream) -> None:
    await stream.send_all(GREETING)


async def run_demo(
    *,
    duration: float | None,
    tick: float,
    write: Callable[[str], object],
) -> int:
    """Run the demo tree until a signal arrives or ``duration`` seconds pass.

    Args:
        duration: close the tree by itself after this many seconds; None
            waits for SIGINT or SIGTERM.
        tick: seconds between two jobs of a worker.
        write: where each line of output goes (one call per line).

    Returns:
        The exit status, as ``proctree run`` gives it: 0 after a clean stop,
        1 when a second signal forced the shutdown.
    """
    start = trio.current_time()

    def say(text: str) -> None:
        write(f"[{trio.current_time() - start:6.2f}s] {text}")

    def teardown(label: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            say(f"{label}: teardown")
            await trio.sleep(tick / 10)

        return close

    async def worker(proc: Process) -> None:
        jobs = 0
        while not proc.closing.is_set():
            with trio.move_on_after(tick):
                await proc.closing.wait()
            if not proc.closing.is_set():
                jobs += 1
                say(f"{proc.name}: job {jobs} done")
        say(f"{proc.name}: closing seen, finished after {_jobs(jobs)}")

    async def announce(proc: Process) -> None:
        await proc.closing.wait()
        say("closing the tree: leaves first")

    async with with_signals(name="demo") as root:
        host = host_of(root)
        root.set_teardown(teardown("demo (root)"))
        go(announce, parent=root, name="announce")
        db = with_teardown(teardown("db pool"), parent=root, name="db")
        say("db pool: open")
        server = tcp_server(_greet, 0, host="127.0.0.1", grace=tick)
        tcp = new_process(server, parent=db, name="tcp server")
        tcp.set_teardown(teardown("tcp server"))
        await tcp.start()
        address = f"127.0.0.1:{server.port}"
        say(f"tcp server: listening on {address} (closes before the db pool)")
        say(f"  try: nc 127.0.0.1 {server.port}")
        for i in (1, 2):
            go(worker, parent=tcp, name=f"worker-{i}")
        if duration is None:
            say("running; press Ctrl-C to close the tree in order (twice to force)")
        else:
            say(f"running; closing by itself after {duration:g}s")
        await trio.sleep(float("inf") if duration is None else duration)
    say("every process is closed")
    if host.signals_seen >= 2:
        write(FORCED_BY_SIGNAL)
        return 1
    return 0
