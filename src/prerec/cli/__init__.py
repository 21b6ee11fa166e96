"""The ``prerec`` command. Each sub-command lives in its own module with a ``register`` function.

Bad input raises :class:`~prerec.errors.PrerecError`, which becomes one line on stderr and exit
code 2 (the command-line contract of docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from prerec.constants import set_thread_environment

set_thread_environment()  # before any sub-command imports torch

from prerec import __version__  # noqa: E402
from prerec.errors import PrerecError  # noqa: E402

# modules under prerec.cli, in the order ``prerec --help`` lists them
COMMANDS = ("demo", "data", "encode", "pretrain", "finetune", "evaluate", "recommend", "experiment", "export", "serve",
            "simulate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prerec",
        description="Pre-trained, cross-domain, zero-shot recommendation with causal debiasing.",
    )
    parser.add_argument("--version", action="version", version=f"prerec {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"prerec.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="prerec: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except PrerecError as exc:
        print(f"prerec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prerec: interrupted", file=sys.stderr)
        return 130
