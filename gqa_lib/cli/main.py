"""The `gqa` command line: a thin argparse layer over the library, one module per command group
(cost: cost, models; train: train, sweep; recipe: optimize, table4), all registered here.

Every subcommand prints a readable table by default and JSON with ``--json``. Bad input exits
with status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gqa_lib.cli import cost, recipe, train
from gqa_lib.cli.common import COMMANDS
from gqa_lib.errors import GQAError

GROUPS = (cost, train, recipe)  # the order of `gqa --help`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gqa", description="Cost model and cost-optimal recipe for grouped-query attention "
        "(companion to Chen et al., EMNLP 2025).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GQAError as e:
        print(f"gqa {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gqa models | head`
        return 0
