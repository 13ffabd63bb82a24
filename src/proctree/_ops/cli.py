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
from collections.abc import Sequence
from typing import NoReturn

import trio

from .._core import DEFAULT_GRACE, VERSION
from .demo import run_demo
from .logging_instrument import LoggingInstrument
from .run import TargetError, TargetImportError, load_target, run_target

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
            "STOPPING=1 and watchdog pings."
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
        "--tree",
        action="store_true",
        help="print the process tree to stderr once the runner is ready",
    )
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
    if args.command == "demo":

        def write(line: str) -> None:
            print(line, flush=True)

        return trio.run(
            lambda: run_demo(duration=args.duration, tick=args.tick, write=write)
        )
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


def _run(args: argparse.Namespace) -> int:
    level = getattr(logging, args.log_level.upper())
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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

    def write(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    return trio.run(
        lambda: run_target(
            runner,
            grace=args.grace,
            show_tree=args.tree,
            verbose=level <= logging.DEBUG,
            colour=sys.stderr.isatty(),
            write=write,
            # Failures are reported once, below; events only when asked for.
            instruments=(
                (LoggingInstrument(level=logging.INFO),)
                if level <= logging.INFO
                else ()
            ),
        )
    )


def console_main() -> None:
    """Entry point of the ``proctree`` console script."""
    sys.exit(main())
