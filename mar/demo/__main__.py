"""``python -m mar.demo``: the same as ``python demo.py``."""
import sys

from .launch import main

sys.exit(main())
