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
    assert (fp32.model, fp32.epochs, fp32.warmup_epochs, fp32.batch_size, fp32.lr) == ("mar-micro", 24, 1, 32, 5e-4)
    bf16 = resolved(["--amp", "bf16"])
    assert (bf16.model, bf16.epochs, bf16.warmup_epochs, bf16.lr) == ("mar-micro", 40, 2, 1e-3)
    named = resolved(["--amp", "none", "--model", "mar-tiny", "--epochs", "3"])
    assert (named.model, named.epochs, named.warmup_epochs) == ("mar-tiny", 3, 1)  # its own fp32 recipe, --epochs kept
