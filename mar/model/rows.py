"""Rows of a (b, s, d) tensor picked by index, not by a boolean mask: the host never reads how many rows there are,
so a loop over them needs no synchronisation with a GPU. Axis letters: b = batch, s = rows, m = rows picked,
d = width."""

import torch


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (b, s, d), index (b, m) long -> (b, m, d): row index[i, j] of sample i."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


def scatter_rows(x: torch.Tensor, index: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Writes rows (b, m, d) into x (b, s, d) at index (b, m), in place; returns x."""
    return x.scatter_(1, index[..., None].expand(-1, -1, x.shape[-1]), rows.to(x.dtype))


def positions_of(picked: torch.Tensor, count: int) -> torch.Tensor:
    """picked (b, s) bool with ``count`` True in every row -> their positions (b, count) long, ascending."""
    return torch.sort((~picked).to(torch.uint8), dim=1, stable=True).indices[:, :count]


def ascending(index: torch.Tensor) -> torch.Tensor:
    """index (b, m) -> the same positions in ascending order per row (the order a boolean mask picks them in)."""
    return index.sort(dim=1).values
