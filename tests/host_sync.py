"""A guard that fails on every call that makes the host read a tensor: on a GPU each one waits for the device.

``torch.cuda.set_sync_debug_mode`` checks this where CUDA exists; this guard checks it on any device, by seeing every
torch call (a TorchFunctionMode) and refusing those that read values or sizes decided by values.
"""

import torch
from torch.overrides import TorchFunctionMode

READS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.numpy,
    torch.Tensor.__bool__,
    torch.Tensor.__int__,
    torch.Tensor.__float__,
    torch.Tensor.__index__,
    torch.Tensor.nonzero,
    torch.nonzero,
    torch.Tensor.masked_select,
    torch.masked_select,
    torch.unique,
    torch.Tensor.unique,
    torch.any,
    torch.all,
}
INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.index_put_, torch.Tensor.index_put}


class HostSync(AssertionError):
    pass


def boolean_index(args) -> bool:
    index = args[1] if len(args) > 1 else None
    parts = index if isinstance(index, (tuple, list)) else (index,)
    return any(isinstance(part, torch.Tensor) and part.dtype == torch.bool for part in parts)


class NoHostSync(TorchFunctionMode):
    """Raises HostSync at the first call that reads a tensor on the host (``any`` and ``all`` count: their result
    is meant for an ``if``)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in READS or (func in INDEXING and boolean_index(args)):
            raise HostSync(f"{getattr(func, '__qualname__', func)} reads a tensor on the host")
        return func(*args, **(kwargs or {}))
