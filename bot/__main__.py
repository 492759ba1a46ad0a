"""`python -m bot` does what the `dangjian` command does."""

import sys

from bot.cli import main

sys.exit(main())
