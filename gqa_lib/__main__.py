"""`python -m gqa_lib ...` is the `gqa` command."""

import sys

from gqa_lib.cli import main

sys.exit(main())
