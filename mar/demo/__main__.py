"""``python -m mar.demo``: the same as ``mar demo``."""

import sys

from mar.demo.launch import main

sys.exit(main())
