"""Sample a grid of images from a MAR checkpoint, one row per class (python sample.py --help).

The logic lives in mar/cli/sample.py; ``mar sample`` is the same command.
"""

import sys

from mar.cli.sample import main

if __name__ == "__main__":
    sys.exit(main())
