"""The `gqa` command line (``gqa = gqa_lib.cli:main``); see :mod:`gqa_lib.cli.main`."""

from gqa_lib.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
