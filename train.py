"""Train a MAR generator, tokenizer included; one process, or many under torchrun (python train.py --help).

The logic lives in mar/cli/train.py; ``mar train`` is the same command.
"""

import sys

from mar.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
