"""What both backbones share: the class as input, with a learned null class that stands in for a dropped label (for
classifier-free guidance), and their initialisation."""

import torch
from torch import nn


class ClassConditioned(nn.Module):
    """A backbone over ``config.num_classes`` classes; the id ``num_classes`` is the null class."""

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def drop_labels(self, labels: torch.Tensor, generator=None) -> torch.Tensor:
        """Replaces each label by the null class with probability ``label_drop_prob``."""
        drop = torch.rand(labels.shape, device=labels.device, generator=generator) < self.config.label_drop_prob
        return torch.where(drop, torch.full_like(labels, self.null_class), labels)

    def initialize_weights(self, embeddings: list[torch.Tensor]) -> None:
        """Embeddings and positions normal(0, 0.02), linear layers Xavier-uniform with zero biases, norms identity."""
        for param in embeddings:
            nn.init.normal_(param, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
