"""Precision: what ``--amp`` resolves to on a device, and autocast for it."""

import torch


def resolve_precision(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp``: auto picks bf16 where the hardware runs it natively, else full fp32.

    fp16 needs a gradient scaler, which the training loops add for it.
    """
    if amp == "none":
        return None
    if amp in ("bf16", "fp16"):
        return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    if amp != "auto":
        raise ValueError(f"unknown --amp {amp!r}; use auto, bf16, fp16 or none")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    return None


def autocast(device: torch.device, precision: torch.dtype | None):
    """Mixed precision for the forward pass, or nothing when ``precision`` is None."""
    return torch.autocast(device_type=device.type, dtype=precision or torch.float32, enabled=precision is not None)
