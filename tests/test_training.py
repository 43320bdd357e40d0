"""Training helpers: weight decay by rule, the learning-rate schedule, the precision choice."""
import math

import pytest
import torch

from mar.training import lr_factor, make_optimizer, resolve_precision

from .test_model import tiny_model


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
