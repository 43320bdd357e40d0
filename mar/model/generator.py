"""MARGenerator: the backbone and its token head (diffusion or categorical), with the masked training loss."""

import torch
from torch import nn

from diffloss import DiffLoss
from mar.model.backbone import MARBackbone
from mar.model.categorical import CategoricalHead
from mar.model.causal import CausalBackbone
from mar.model.config import MARConfig
from mar.model.masking import draw_mask_ratio, mask_from_orders, num_masked_for_ratio, orders_for, random_orders
from mar.model.tokens import patchify


class MARGenerator(nn.Module):
    def __init__(self, config: MARConfig, codebook: torch.Tensor | None = None):
        """``codebook`` (codebook_size, latent_channels): the categorical head's code vectors, as the tokens hold them.

        Left out, it is zeros until a checkpoint's weights are loaded (they carry it).
        """
        super().__init__()
        self.config = config
        self.backbone = CausalBackbone(config) if config.attention == "causal" else MARBackbone(config)
        if config.head_kind == "categorical":
            shape = (config.head.codebook_size, config.latent_channels)
            if codebook is not None and tuple(codebook.shape) != shape:
                raise ValueError(
                    f"codebook of shape {tuple(codebook.shape)} does not fit the config's {shape} "
                    "(codebook_size, latent_channels)"
                )
            self.head = CategoricalHead(config.head, codebook if codebook is not None else torch.zeros(shape))
        else:
            self.head = DiffLoss(config.head)

    def training_mask(self, batch: int, device, generator=None) -> torch.Tensor:
        """(b, l) with 1 = masked: one ratio per batch from the truncated normal, a random order per sample."""
        seq_len = self.config.seq_len
        ratio = draw_mask_ratio(generator, std=self.config.mask_ratio_std, low=self.config.mask_ratio_min)
        orders = random_orders(batch, seq_len, generator=generator, device=device)
        return mask_from_orders(orders, num_masked_for_ratio(ratio, seq_len))

    def loss(self, latents: torch.Tensor, labels: torch.Tensor, generator=None) -> torch.Tensor:
        """The head's loss on the masked tokens of latents (b, c, h, w) with class ids labels (b,)."""
        tokens = patchify(latents, self.config.patch_size)  # (b, l, c)
        if self.config.attention == "causal":
            return self.causal_loss(tokens, labels, generator)
        mask = self.training_mask(tokens.shape[0], tokens.device, generator).bool()  # (b, l)
        if self.training:
            labels = self.backbone.drop_labels(labels, generator)
        # Unmasked positions carry no loss, so z is computed at the masked ones only and the head runs on them:
        # (b, m, d) -> (b·m, d), with the targets (b·m, c).
        z = self.backbone(tokens, labels, mask, wanted=mask).flatten(0, 1)
        return self.head.loss(z, tokens[mask], generator=generator)

    def causal_loss(self, tokens: torch.Tensor, labels: torch.Tensor, generator=None) -> torch.Tensor:
        """Teacher forcing: one forward pass gives every position's z from the tokens before it in the order, and the
        head's loss covers every token: (b, l, d) -> (b·l, d), with the targets (b·l, c)."""
        orders = orders_for(self.config.order, tokens.shape[0], self.config.seq_len, generator, tokens.device)
        if self.training:
            labels = self.backbone.drop_labels(labels, generator)
        z = self.backbone(tokens, labels, orders).flatten(0, 1)
        return self.head.loss(z, tokens.flatten(0, 1), generator=generator)

    def compile_blocks(self) -> "MARGenerator":
        """Compiles each transformer block and each head block with ``torch.compile``, in place; returns self.

        Shapes are dynamic (the visible-token count changes at every step), so one graph per block kind serves every
        step. Weights and state-dict names are unchanged; results match eager up to float rounding (tests state the
        tolerance). The first call of each shape kind pays the compilation (tens of seconds on a CPU).
        """
        blocks = self.backbone.all_blocks()
        if self.config.head_kind == "diffusion":
            blocks += [*self.head.net.blocks, self.head.net.final]
        for block in blocks:
            block.compile(dynamic=True)
        return self

    forward = loss  # DistributedDataParallel synchronises gradients of what runs through forward
