"""``python -m mar <command>``: the same as the ``mar`` command (torchrun -m mar ... runs a tool in many processes)."""

import sys

from mar.cli.main import main

sys.exit(main())
