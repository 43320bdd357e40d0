"""The state sampling starts from: nothing drawn, or known tokens kept and visible from the first step (completion,
inpainting). Axis letters: b = batch, l = positions, c = token channels (c·p² of the latents)."""

import torch


def starting_tokens(
    batch: int,
    seq_len: int,
    token_dim: int,
    device,
    known_tokens: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """tokens (b, l, c), zero where not yet drawn, and the count of tokens still to draw in every row.

    ``known`` (b, l) bool keeps ``known_tokens`` (b, l, c) there; every row must leave the same number to draw.
    """
    tokens = torch.zeros(batch, seq_len, token_dim, device=device)
    if known is None:
        return tokens, seq_len
    to_complete = (~known).sum(dim=1)  # (b,)
    if not torch.all(to_complete == to_complete[0]):
        raise ValueError(
            f"every row must leave the same number of tokens to draw; unknown counts are {to_complete.tolist()}"
        )
    tokens = torch.where(known[..., None], known_tokens.to(tokens.dtype), tokens)
    return tokens, int(to_complete[0])
