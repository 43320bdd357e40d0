"""Every script's option rules in one place: a parser whose errors are one line, types that refuse bad values at
parse time, and checks of paths that are cheap enough to run before any expensive work.

Each option of every script takes one of the types below (or ``choices``, or is a flag), so a value outside its
range never reaches the code: ``tests/test_cli_errors.py`` checks that no option is left untyped.
"""

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the docstring's example lines as written and adds each option's default to its help."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``error: ...``, with exit status 2 (no usage block)."""

    def __init__(self, description: str | None = None, **kwargs):
        super().__init__(description=description, formatter_class=HelpFormatter, **kwargs)

    def error(self, message: str):
        fail(f"{message} (see --help)")


def fail(message: str):
    """Exits with a one-line error instead of a traceback."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def named_type(name: str, parse):
    """Names a type function so argparse's help and the untyped-option test can see what it checks."""
    parse.__name__ = name
    parse.validates = True
    return parse


def integer(low: int | None = None, high: int | None = None):
    """An int in [low, high] (either bound may be left open)."""
    bounds = (
        f"in [{low}, {high}]"
        if low is not None and high is not None
        else (f">= {low}" if low is not None else f"<= {high}")
    )

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give an integer {bounds}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range; give an integer {bounds}")
        return value

    return named_type(f"integer {bounds}", parse)


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False):
    """A finite float in the interval given; ``*_open`` excludes the bound itself."""
    left = f"{'(' if low_open else '['}{low if low is not None else '-inf'}"
    right = f"{high if high is not None else 'inf'}{')' if high_open else ']'}"
    interval = f"{left}, {right}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a finite number in {interval}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give a finite number in {interval}")
        return value

    return named_type(f"number in {interval}", parse)


def _text(text: str) -> str:
    if not text.strip() or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is empty or holds a NUL character; give a path or a name")
    return text


text = named_type("text", _text)


def _image_file(path: str) -> str:
    suffix = Path(_text(path)).suffix.lower()
    if suffix not in Image.registered_extensions() or Image.registered_extensions()[suffix] not in Image.SAVE:
        raise argparse.ArgumentTypeError(f"{path!r} is not an image file name Pillow can write; end it in .png or .jpg")
    return path


image_file = named_type("image file", _image_file)

POSITIVE = integer(1)
NON_NEGATIVE = integer(0)
SEED = integer(0, 2**31 - 1)
PROBABILITY = number(0.0, 1.0)
POSITIVE_NUMBER = number(0.0, low_open=True)
NON_NEGATIVE_NUMBER = number(0.0)


def _growth_factor(text: str) -> float:
    value = NON_NEGATIVE_NUMBER(text)
    if 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below 1; give 0 (off) or a growth factor of at least 1")
    return value


GROWTH_FACTOR = named_type("0 or a factor of at least 1", _growth_factor)


def untyped_options(parser: argparse.ArgumentParser) -> list[str]:
    """Options that take a value but neither a type from this module nor a fixed set of choices."""
    return [
        action.option_strings[0]
        for action in parser._actions
        if action.option_strings
        and action.nargs != 0
        and action.choices is None
        and not getattr(action.type, "validates", False)
    ]


def check_writable_folder(path: str | Path, what: str, parent_must_exist: bool = False) -> Path:
    """``path`` is (or can be made as) a folder this process can write to; one-line error otherwise. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        fail(f"{what} {path} is a file, not a folder; pass a folder path")
    existing = path if path.exists() else path.parent
    if parent_must_exist and not existing.is_dir():
        fail(f"{what} {path}: its parent folder {path.parent} does not exist; create it first or pass another path")
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        fail(f"{what} {path} lies under {existing}, which is a file; pass a folder path")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        fail(f"{what} {path} cannot be written ({error.strerror} in {existing}); pass a folder you can write to")
    return path


def check_writable_file(path: str | Path, what: str) -> Path:
    """A file path whose folder exists (or can be made) and is writable, and which is not itself a folder."""
    path = Path(path)
    if path.is_dir():
        fail(f"{what} {path} is a folder; pass a file name such as {path / 'samples.png'}")
    check_writable_folder(path.parent if str(path.parent) else Path("."), f"folder of {what}")
    if path.exists() and not os.access(path, os.W_OK):
        fail(f"{what} {path} exists and is read-only; pass another file name")
    return path


def check_image_geometry(image_size: int, stride: int, patch_size: int) -> None:
    multiple = stride * patch_size
    if image_size % multiple:
        fail(
            f"image size {image_size} is not divisible by the tokenizer stride {stride} x patch size {patch_size} "
            f"= {multiple}; use a multiple of {multiple} such as {max(multiple, image_size // multiple * multiple)}"
        )


def check_sampling(args, seq_len: int, head: str, num_train_timesteps: int) -> None:
    """K within the token count, and a diffusion head's steps (first and, annealed, last) within its sampler's range."""
    if not 1 <= args.num_iter <= seq_len:
        fail(f"--num-iter {args.num_iter} must lie in [1, {seq_len}], the number of tokens per image")
    if head != "diffusion":
        return
    from diffloss.samplers import FIRST_SOLVER_TIMESTEP

    most = num_train_timesteps - 1 if args.head_sampler == "ddpm" else FIRST_SOLVER_TIMESTEP
    for name, steps in (
        ("--diffusion-steps", args.diffusion_steps),
        ("--diffusion-steps-last", args.diffusion_steps_last),
    ):
        if steps is not None and not 1 <= steps <= most:
            fail(f"{name} {steps} must lie in [1, {most}] for --head-sampler {args.head_sampler}")
