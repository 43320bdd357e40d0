"""A web page to sample a MAR checkpoint and watch its tokens being unmasked: see mar/demo/ (this script is
``python -m mar.demo`` under another name).

Examples:
    python demo.py --checkpoint runs/default
    python demo.py --checkpoint runs/default --port 8000 --device cpu
"""
import sys

from mar.demo.launch import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
