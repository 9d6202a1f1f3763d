"""`python -m gqa_lib.cli ...` is the `gqa` command."""

import sys

from gqa_lib.cli.main import main

sys.exit(main())
