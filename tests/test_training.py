"""Training helpers: weight decay by rule, the learning-rate schedule, the precision choice."""

import math

import pytest
import torch

from mar.precision import resolve_precision
from mar.train.optim import lr_factor, make_optimizer

from .tiny import tiny_model


def test_weight_decay_applies_to_matrices_and_embeddings_only():
    model = tiny_model()
    decayed, plain = make_optimizer(model, lr=1e-3, weight_decay=0.02).param_groups
    assert decayed["weight_decay"] == 0.02 and plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim < 2 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
    assert any(p is model.backbone.class_embed.weight for p in decayed["params"])


def test_lr_warmup_then_constant_or_cosine():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == 1.0 and lr_factor(99, 10, 100, "constant") == 1.0
    assert lr_factor(10, 10, 100, "cosine") == 1.0
    assert lr_factor(55, 10, 100, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 10, 100, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert all(lr_factor(s, 10, 100, "cosine") >= lr_factor(s + 1, 10, 100, "cosine") for s in range(10, 100))
    with pytest.raises(ValueError, match="'linear'"):
        lr_factor(50, 10, 100, "linear")


def test_precision_choice():
    cpu = torch.device("cpu")
    assert resolve_precision("none", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("auto", cpu) in (None, torch.bfloat16)
    with pytest.raises(ValueError, match="fp8"):
        resolve_precision("fp8", cpu)


def test_ema_decay_warms_up_so_a_short_run_forgets_the_initial_weights():
    from mar.train.ema import EMA

    model = torch.nn.Linear(3, 3)
    ema = EMA(model, decay=0.999)
    assert (
        ema.decay_at(0) == pytest.approx(0.1)
        and ema.decay_at(90) == pytest.approx(0.91)
        and ema.decay_at(10**6) == 0.999
    )
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, step=0)  # 0.1 x old + 0.9 x new
    assert torch.allclose(ema.module.weight, start + 0.9)
    initial_share = math.prod(ema.decay_at(step) for step in range(1000))
    assert initial_share < 1e-6 < 0.999**1000  # what is left of the initial weights after 1,000 updates
