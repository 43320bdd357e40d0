"""What the head is told at each step, shared by the MAR loop and the causal loop: which head draws, its steps
(constant or annealed), its chain's spacing, and whether the official code's conventions hold."""

from dataclasses import replace

from mar.model.config import MARConfig
from mar.model.masking import annealed_steps
from mar.sampling.config import SamplingConfig


def drawing_head(model, sampling: SamplingConfig, guided_head=None):
    """The head that draws: the model's, or under guidance the given guided head when ``sampling.guided_head`` (it
    takes the same two conditions and evaluates them once per step: diffloss/guided_head.py)."""
    if sampling.guided_head and guided_head is None:
        raise ValueError(
            "guided_head needs the checkpoint's guided head, and none was given; write one with "
            "`mar distill-head --checkpoint RUN`, or sample without guided_head"
        )
    use = sampling.guided_head and sampling.cfg != 1.0 and model.config.head_kind == "diffusion"
    return guided_head if use else model.head


def head_steps_per_step(sampling: SamplingConfig, model_default: int | None) -> list[int | None]:
    """The head's steps at each of the K steps: constant, or annealed linearly to ``diffusion_steps_last`` (a head
    without steps, ``model_default`` None, takes them unused)."""
    if sampling.diffusion_steps_last is None or model_default is None:
        return [sampling.diffusion_steps] * sampling.num_iter
    first = model_default if sampling.diffusion_steps is None else sampling.diffusion_steps
    return annealed_steps(first, sampling.diffusion_steps_last, sampling.num_iter)


def head_plan(config: MARConfig, sampling: SamplingConfig, num_steps: int) -> tuple[bool, dict, list[int | None]]:
    """(official conventions?, keyword options of head.sample, head steps at each of ``num_steps`` steps)."""
    official = (config.compat if sampling.compat is None else sampling.compat) == "official"
    options = {"spacing": "iddpm" if official else "leading"} if config.head_kind == "diffusion" else {}
    steps = head_steps_per_step(replace(sampling, num_iter=num_steps), getattr(config.head, "num_sampling_steps", None))
    return official, options, steps
