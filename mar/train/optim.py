"""The optimizer with weight decay by rule, and the learning-rate schedule."""

import math

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and embeddings (ndim >= 2), none on biases and norm gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def make_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float = 0.02, fused: bool = True
) -> torch.optim.AdamW:
    """AdamW (0.9, 0.95); ``fused`` updates every parameter in one kernel per group where torch has one for the
    device (CPU since torch 2.4, CUDA), else falls back to the per-parameter loop. The state is the same either way."""
    groups = param_groups(model, weight_decay)
    if fused:
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=True)
        except RuntimeError:  # no fused kernel for this device or torch version
            groups = param_groups(model, weight_decay)
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str = "constant") -> float:
    """Linear warmup from ~0 to 1 over ``warmup_steps``, then constant or a cosine down to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; use 'constant' or 'cosine'")
