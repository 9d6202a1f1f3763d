"""The `gqa` command line: a thin argparse layer over the library, one module per command group
(cost: cost, models; train: train, sweep; recipe: optimize, table4), all registered here.

Every subcommand prints a readable table by default and JSON with ``--json``. Bad input exits
with status 2 and a one-line message, never a traceback: every flag and file is validated
(types, ranges, encodings, sizes) by argparse types here and by the library's checks, which
raise GQAError; an OSError (disk full, no permission) or running out of memory is one line
with exit 2 too. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from gqa_lib.cli import cost, recipe, train
from gqa_lib.cli.common import COMMANDS
from gqa_lib.errors import GQAError

GROUPS = (cost, train, recipe)  # the order of `gqa --help`


class _StoreOnce(argparse._StoreAction):
    """argparse's store, refusing a flag given twice (`--context 128k --context 8k` would
    otherwise keep the last value silently)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given", set())  # dests set in this parse
        if self.dest in given:
            parser.error(f"argument {option_string}: given more than once; give it once")
        given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is under --help), and a
    single-value flag given twice is an error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    args.flags_given = frozenset(args.__dict__.pop("_given", ()))  # dests given on the line
    try:
        return COMMANDS[args.command](args)
    except GQAError as e:
        text = _as_flags(_one_line(str(e)), parser, args)
        print(f"gqa {args.command}: error: {text}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gqa models | head`
        return 0
    except OSError as e:  # the machine, not the code: disk full, permissions, a vanished path
        print(f"gqa {args.command}: error: {os_error_text(e)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:  # the machine too: out of (GPU) memory
        if not isinstance(e, MemoryError) and type(e).__name__ != "OutOfMemoryError":
            raise
        print(f"gqa {args.command}: error: out of memory: {_one_line(str(e))[:200]} (a "
              "smaller batch, context or model)", file=sys.stderr)
        return 2
    # Anything else is a bug in gqa_lib and keeps its traceback: inputs are validated before
    # they reach the library, so a ValueError or TypeError from inside is worth a report.


def _as_flags(text: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The library names its parameters ('target_loss=2.0 is at or below ...'); on the
    command line they are the flags the user typed ('--target-loss 2.0 is at or below ...')."""
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {a.dest: max(a.option_strings, key=len)
             for a in subs.choices[args.command]._actions
             if a.option_strings and a.dest in args.flags_given}
    if not flags:
        return text
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    return re.sub(rf"(?<![\w.-])({names})=", lambda m: f"{flags[m.group(1)]} ", text)


def os_error_text(e: OSError) -> str:
    """'cannot write runs/x/ckpt.pt: No space left on device' from an OSError."""
    what = e.strerror or str(e) or type(e).__name__
    name = e.filename if e.filename is not None else ""
    return _one_line(f"{name}: {what}" if name else what)


def _one_line(text: str) -> str:
    return " ".join(text.split())
