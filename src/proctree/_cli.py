"""The command line: ``python -m proctree`` (also the ``proctree`` script).

Thin by design: parse, then ``trio.run``. Each command's work lives in its
own module.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import trio

from ._demo import run_demo

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proctree",
        description="Run trees of trio processes with ordered, exactly-once teardown.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
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
        The exit status: 0 on success, 2 for bad arguments.
    """
    args = _parser().parse_args(argv)
    if args.command == "demo":

        def write(line: str) -> None:
            print(line, flush=True)

        trio.run(lambda: run_demo(duration=args.duration, tick=args.tick, write=write))
        return 0
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


def console_main() -> None:
    """Entry point of the ``proctree`` console script."""
    sys.exit(main())
