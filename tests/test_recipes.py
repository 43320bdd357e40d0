"""--model auto: the named size train.py picks for the device, and the recipe for the machine's precision."""

import torch

from mar.cli import train
from mar.train.recipes import default_model


def test_auto_picks_mar_micro_on_a_cpu_only():
    assert default_model("cpu") == "mar-micro"
    assert default_model("cuda") == "mar-tiny"
    assert default_model("mps") == "mar-tiny"


def resolved(argv):
    return train.resolve_recipe(train.parse_args(argv), world=1, device=torch.device("cpu"))


def test_train_fills_the_picked_sizes_recipe_and_keeps_a_named_one():
    fp32 = resolved(["--amp", "none"])
    assert (fp32.model, fp32.batch_size, fp32.lr) == ("mar-micro", 32, 5e-4)
    assert train.schedule_length(fp32, steps_per_epoch=312) == (7488, 312)
    bf16 = resolved(["--amp", "bf16"])
    assert (bf16.model, bf16.lr) == ("mar-micro", 1e-3)
    assert train.schedule_length(bf16, steps_per_epoch=156) == (6240, 312)
    named = resolved(["--amp", "none", "--model", "mar-tiny", "--epochs", "3"])
    assert named.model == "mar-tiny" and train.schedule_length(named, 156) == (468, 78)  # --epochs kept, warmup 1/6


def test_a_run_is_as_long_whatever_the_size_of_its_folder():
    """The CPU recipes count steps: 1,000 and 50,000 images train for the same steps and warmup; the paper's epochs."""
    bf16 = resolved(["--amp", "bf16"])
    assert train.schedule_length(bf16, 1_000 // 64) == train.schedule_length(bf16, 50_000 // 64) == (6240, 312)
    assert train.schedule_length(resolved(["--amp", "bf16", "--steps", "900"]), 15) == (900, 45)
    paper = resolved(["--amp", "bf16", "--model", "mar-base"])
    assert train.schedule_length(paper, 100) == (40_000, 10_000)
