"""The command line: ``python -m proctree`` (also the ``proctree`` script).

Thin by design: parse, then ``trio.run``. Each command's work lives in its
own module.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import trio

from .._core import (
    DEFAULT_GRACE,
    VERSION,
    Instrument,
    Process,
    ProctreeError,
    Runner,
    State,
    tree,
)
from .control_server import CloseLog, ControlError, bind_control, serve_control
from .demo import run_demo
from .health import Health, health_server
from .log_format import configure_logging
from .logging_instrument import LoggingInstrument
from .metrics import PrometheusInstrument
from .run import Helper, TargetError, TargetImportError, load_target, run_target
from .timeline import ShutdownTimeline
from .tree_command import DEFAULT_TIMEOUT, ps_command, tree_command
from .tree_json import tree_document
from .tree_page import tree_page_app

__all__ = ["console_main", "main"]


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}"
        )
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds >= 0 (or inf), got {text!r}"
        )
    return value


def _address(text: str) -> str:
    """``HOST:PORT`` for ``--health``; the host defaults to loopback."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT (like 127.0.0.1:8080), got {text!r}"
        ) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"the port must be in 0..65535, got {port} in {text!r}"
        )
    host = host or "127.0.0.1"
    if any(c.isspace() for c in host) or "/" in host:
        raise argparse.ArgumentTypeError(f"{host!r} is not a host name or address")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_LEVELS = ("debug", "info", "warning", "error")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and a pointer to ``--help``; exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="proctree",
        description="Run trees of trio processes with ordered, exactly-once teardown.",
    )
    parser.add_argument("--version", action="version", version=f"proctree {VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="run a runner (MODULE:ATTR) until SIGINT or SIGTERM",
        description=(
            "Import MODULE:ATTR, a runner ('async def run(ready)' or an object "
            "with such a run method), and run it under a root bound to SIGINT "
            "and SIGTERM: the first signal stops it gracefully, a second one "
            "forces. Exit status: 0 after a clean stop, 1 if it failed or was "
            "forced, 2 for bad arguments. SIGUSR1 prints the live tree to "
            "stderr. Under systemd (NOTIFY_SOCKET set) it reports READY=1, "
            "STOPPING=1 and watchdog pings; SIGHUP reloads (supervisors re-read "
            "their tables, runners' reload() are called)."
        ),
    )
    run.add_argument("target", metavar="MODULE:ATTR", help="the runner to run")
    run.add_argument(
        "--grace",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="a bound on the stop: every process is forced at the latest "
        "SECONDS after the shutdown begins (each earlier if its own grace "
        "says so; 'inf' for no bound). Default: no bound, each process keeps "
        f"its own grace ({DEFAULT_GRACE:g} s for those that set none)",
    )
    run.add_argument(
        "--log-level",
        choices=_LEVELS,
        default="warning",
        help="log level on stderr; info shows every process event, debug "
        "also prints tracebacks of failures (default: warning)",
    )
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text lines, or one JSON object a line with every record's "
        "proctree_* fields (default: text)",
    )
    run.add_argument(
        "--health",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help="serve /livez /startupz /readyz /metrics there (HOST defaults "
        "to 127.0.0.1; needs proctree[http,metrics])",
    )
    run.add_argument(
        "--drain",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="on the first SIGTERM or SIGINT, turn /readyz to 503 and keep "
        "serving for SECONDS before stopping (default: 0)",
    )
    run.add_argument(
        "--tree",
        action="store_true",
        help="print the process tree to stderr once the runner is ready",
    )
    _add_seeing_run_options(run)
    _add_seeing_commands(commands)
    demo = commands.add_parser(
        "demo",
        help="run a small tree (db pool, http server, workers); Ctrl-C closes it",
        description=(
            "Run a small process tree under a root bound to SIGINT and SIGTERM. "
            "Ctrl-C closes it leaves first and prints each teardown; a second "
            "Ctrl-C forces the shutdown."
        ),
    )
    demo.add_argument(
        "--duration",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="close the tree by itself after SECONDS (default: wait for Ctrl-C)",
    )
    demo.add_argument(
        "--tick",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between two jobs of a worker (default: 1)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 if the runner failed or was forced,
        2 for bad arguments.
    """
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "tree":
        return tree_command(
            args.target,
            view=args.view,
            timeout=args.timeout,
            serve=args.serve,
            colour=sys.stdout.isatty(),
        )
    if args.command == "ps":
        return ps_command(timeout=args.timeout)
    if args.command == "demo":

        def write(line: str) -> None:
            print(line, flush=True)

        return trio.run(
            lambda: run_demo(duration=args.duration, tick=args.tick, write=write)
        )
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


def _run(args: argparse.Namespace) -> int:
    level = getattr(logging, args.log_level.upper())
    configure_logging(level, args.log_format)
    # The console script does not put the working directory on sys.path,
    # ``python -m`` does: make both find the user's modules the same way.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        runner = load_target(args.target)
    except TargetImportError as exc:
        print(exc.traceback(), file=sys.stderr)
        print(f"proctree run: error: {exc}", file=sys.stderr)
        return 1
    except TargetError as exc:
        print(f"proctree run: error: {exc}", file=sys.stderr)
        return 2
    try:
        probes = _probes(args.health)
    except ModuleNotFoundError as exc:
        print(f"proctree run: error: {exc}", file=sys.stderr)
        return 2
    write = _writer(args.log_format)
    try:
        seeing, helpers, finish = _seeing_for_run(args, write)
    except ControlError as exc:
        print(f"proctree run: error: {exc}", file=sys.stderr)
        return 2
    try:
        return _run_target(args, runner, level, write, seeing, helpers, probes)
    finally:
        finish()


def _run_target(
    args: argparse.Namespace,
    runner: Runner,
    level: int,
    write: Callable[..., None],
    seeing: tuple[Instrument, ...],
    helpers: Sequence[tuple[str, Helper]],
    probes: tuple[Runner, Health, PrometheusInstrument] | None,
) -> int:
    instruments: list[Instrument] = []
    if level <= logging.INFO:
        # Failures are reported once, below; events only when asked for.
        instruments.append(LoggingInstrument(level=logging.INFO))
    instruments.extend(seeing)
    if probes is not None:
        instruments.extend(probes[1:])
    return trio.run(
        lambda: run_target(
            runner,
            grace=args.grace,
            show_tree=args.tree,
            verbose=level <= logging.DEBUG,
            colour=sys.stderr.isatty() and args.log_format == "text",
            write=write,
            instruments=tuple(instruments),
            helpers=helpers,
            drain=args.drain,
            health=None if probes is None else probes[0],
        )
    )


def _probes(bind: str | None) -> tuple[Runner, Health, PrometheusInstrument] | None:
    """The health server of ``--health`` (with the live page), Health, metrics."""
    if bind is None:
        return None
    health, metrics = Health(), PrometheusInstrument()

    async def document() -> dict[str, Any]:
        root = health.root
        if root is None or root.state is State.CLOSED:
            raise ProctreeError("the program's tree is not there (yet, or any more)")
        return tree_document(tree(root))

    # The live page of the tree shares the health server's port, at /tree/.
    mounts = {"/tree": tree_page_app(document)}
    server = health_server(health, bind=bind, metrics=metrics, mounts=mounts)
    return server, health, metrics


def _writer(log_format: str) -> Callable[..., None]:
    """Where the command's own lines go: stderr, or JSON records."""
    if log_format == "json":
        logger = logging.getLogger("proctree.run")

        def write_json(text: str, **fields: object) -> None:
            logger.warning(text, extra=fields)

        return write_json

    def write(text: str, **fields: object) -> None:
        print(text, file=sys.stderr, flush=True)

    return write


# ------------------------------------------------- seeing the tree (issue 15)


def _add_seeing_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--control",
        metavar="PATH",
        default=None,
        help="listen for 'proctree tree' on this Unix socket (default: "
        "PID.sock in $XDG_RUNTIME_DIR/proctree, or /tmp/proctree-UID)",
    )
    run.add_argument(
        "--no-control",
        action="store_true",
        help="do not listen on a control socket",
    )
    run.add_argument(
        "--shutdown-report",
        metavar="FILE",
        default=None,
        help="when the program ends, write a timeline of its shutdown to FILE "
        "(SVG if FILE ends in .svg, else a self-contained HTML page)",
    )


def _add_seeing_commands(
    commands: argparse._SubParsersAction[Any],  # pyright: ignore[reportPrivateUsage]
) -> None:
    tree = commands.add_parser(
        "tree",
        help="print the live tree of a running 'proctree run' program",
        description=(
            "Ask a program run by 'proctree run' (by PID, or by the path of "
            "its control socket) for its live tree, and print it as text, "
            "JSON (schema proctree.tree/1) or Graphviz DOT; or serve it as a "
            "live web page. Exit status: 0 when printed, 1 when the program "
            "could not be asked (not a proctree program, another user's, "
            "gone, a stale socket, which is then removed, or no answer in "
            "time), 2 for bad arguments."
        ),
    )
    tree.add_argument("target", metavar="PID|SOCKET", help="the program")
    views = tree.add_mutually_exclusive_group()
    views.add_argument(
        "--json", dest="view", action="store_const", const="json", help="print JSON"
    )
    views.add_argument(
        "--dot", dest="view", action="store_const", const="dot", help="print DOT"
    )
    views.add_argument(
        "--serve",
        metavar="HOST:PORT",
        default=None,
        help="serve a live web page of the tree on HOST:PORT until Ctrl-C "
        "(needs the http extra)",
    )
    tree.set_defaults(view="text")
    tree.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the answer (default: {DEFAULT_TIMEOUT:g})",
    )
    ps = commands.add_parser(
        "ps",
        help="list your running 'proctree run' programs",
        description=(
            "List the programs run by 'proctree run' as you, from their "
            "control sockets; stale sockets are reported and removed."
        ),
    )
    ps.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for each program (default: {DEFAULT_TIMEOUT:g})",
    )


def _seeing_for_run(
    args: argparse.Namespace, write: Callable[[str], None]
) -> tuple[tuple[Instrument, ...], list[tuple[str, Helper]], Callable[[], None]]:
    """The instruments and helpers of --control and --shutdown-report.

    Also returns what to do once the program has ended.

    Raises:
        ControlError: the control socket cannot be made.
    """
    instruments: list[Instrument] = []
    helpers: list[tuple[str, Helper]] = []
    timeline = None
    control = None
    if args.shutdown_report is not None:
        timeline = ShutdownTimeline()
        instruments.append(timeline)
    if not args.no_control:
        control = bind_control(args.control, write=write)
        log = CloseLog()
        instruments.append(log)
        program = {
            "pid": os.getpid(),
            "target": args.target,
            "started_at": time.time(),
            "socket": str(control.path),
        }

        async def serve(proc: Process, root: Process) -> None:
            await serve_control(proc, control, root, log, program)

        helpers.append(("control", serve))

    def finish() -> None:
        if control is not None:
            control.close()
        if timeline is not None:
            try:
                where = timeline.write(Path(args.shutdown_report))
            except OSError as exc:
                write(f"proctree: cannot write the shutdown report: {exc}")
            else:
                write(f"proctree: shutdown report written to {where}")

    return tuple(instruments), helpers, finish


def console_main() -> None:
    """Entry point of the ``proctree`` console script."""
    sys.exit(main())
