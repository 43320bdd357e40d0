"""Process-group helpers that are no-ops in a single process, so scripts run the same with or without torchrun."""

import os

import torch
import torch.distributed as dist


def init_from_environment(device: torch.device) -> torch.device:
    """Joins the process group torchrun describes (NCCL on CUDA, gloo otherwise); returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The elementwise sum over processes (the tensor itself in one process)."""
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor
