"""The page's values checked by the command line's own rules, so the page refuses what sample.py refuses, in the
same words.

Each sampling value goes through the type of its option in ``mar.cli.add_sampling_arguments`` and then through
``mar.options.check_sampling``; options the page has no control for keep the command line's defaults.
"""

import argparse
import contextlib
import io

from mar.cli.common import add_sampling_arguments
from mar.cli.options import SEED, check_sampling, integer
from mar.sampling.config import SamplingConfig


class SettingsError(ValueError):
    """A value, or a combination of values, the sampler cannot take; the message names it and the fix."""


def _sampling_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    add_sampling_arguments(parser)
    return parser


def default_sampling() -> argparse.Namespace:
    """The command line's sampling defaults (K, head sampler and steps, temperature, cfg and its schedule ...)."""
    return _sampling_parser().parse_args([])


def sampling_choices(name: str) -> list[str]:
    """The values a sampling option with fixed choices (``head_sampler``, ``cfg_schedule``) takes."""
    return list(next(action.choices for action in _sampling_parser()._actions if action.dest == name))


def _as_text(value) -> str:
    """What a user would have typed: 16.0 from a slider reads as 16, so integer options accept it."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _parsed(parse, flag: str, value):
    try:
        return parse(_as_text(value))
    except argparse.ArgumentTypeError as error:
        raise SettingsError(f"{flag}: {error}") from None


def checked_sampling(values: dict, seq_len: int, head: str, num_train_timesteps: int) -> argparse.Namespace:
    """The command line's sampling arguments with ``values`` (by option name: ``num_iter``, ``cfg`` ...) put in.

    Raises SettingsError with the command line's message for a value its option refuses or a combination
    ``check_sampling`` refuses (K above the token count, head steps beyond the sampler's range).
    """
    parser = _sampling_parser()
    arguments = parser.parse_args([])
    if unknown := values.keys() - vars(arguments).keys():
        raise TypeError(f"no sampling option named {sorted(unknown)}")
    for action in parser._actions:
        if action.dest not in values:
            continue
        value, flag = values[action.dest], action.option_strings[0]
        if action.choices is not None and value not in action.choices:
            raise SettingsError(f"{flag} {value!r} is not one of {', '.join(action.choices)}")
        if action.type is not None and value is not None:
            value = _parsed(action.type, flag, value)
        setattr(arguments, action.dest, value)
    message = io.StringIO()
    try:
        with contextlib.redirect_stderr(message):  # check_sampling prints its one line and exits, as a script should
            check_sampling(arguments, seq_len, head, num_train_timesteps)
    except SystemExit:
        raise SettingsError(message.getvalue().strip().removeprefix("error: ")) from None
    return arguments


def preset_backbone_fields(name: str) -> dict:
    """The fields of the preset ``name`` that the page has no control for (guidance refresh, token cache, its buffer
    and growth), with the command line's defaults where the preset leaves them."""
    chosen = SamplingConfig().with_preset(name)
    return {field: getattr(chosen, field) for field in ("cfg_refresh", "token_cache", "cache_buffer", "cache_growth")}


def preset_controls(name: str) -> tuple[int, str, int]:
    """The autoregressive steps, head sampler and head steps the page shows for the preset ``name``."""
    chosen = SamplingConfig().with_preset(name)
    return chosen.num_iter, chosen.head_sampler, chosen.diffusion_steps


def checked_classes(chosen: list[str] | None, names: list[str]) -> list[int]:
    """Class ids of the names picked, in the order picked; at least one, each a class of the checkpoint."""
    if not chosen:
        raise SettingsError("no class is picked; pick at least one class")
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise SettingsError(f"class {unknown[0]!r} is not a class of this checkpoint; pick one of the list")
    return [names.index(name) for name in chosen]


def checked_count(num_classes: int, per_class, max_images: int) -> int:
    """Images per class, so that all the classes together make at most ``max_images`` images."""
    per_class = _parsed(integer(1, max_images), "--per-class", per_class)
    if num_classes * per_class > max_images:
        raise SettingsError(
            f"{num_classes} classes x {per_class} images = {num_classes * per_class} images, more than "
            f"the {max_images} this page draws at once (--max-images); pick fewer classes or images"
        )
    return per_class


def checked_seed(seed) -> int:
    return _parsed(SEED, "--seed", seed)
