"""Encoding a dataset once into posterior moments, and drawing training latents from them."""
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vae import KLTokenizer


@dataclass
class LatentSet:
    """Posterior moments per image and view (the image, and its mirror image when flips are on)."""

    mean: torch.Tensor  # (N, V, c, h, w), unscaled
    std: torch.Tensor  # (N, V, c, h, w)
    labels: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def draw(self, tokenizer: KLTokenizer, index: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled posterior draws for images ``index`` (b,), each from a random view: ((b, c, h, w), (b,))."""
        view = torch.randint(0, self.mean.shape[1], index.shape, generator=generator, device=index.device)
        mean, std = self.mean[index, view], self.std[index, view]
        return tokenizer.scale_latents(mean, std, generator), self.labels[index]


@torch.no_grad()
def encode_dataset(tokenizer: KLTokenizer, dataset: Dataset, flips: bool, batch_size: int = 256, num_workers: int = 0, progress: bool = True) -> LatentSet:
    """Moments of every image (and of its horizontal flip with ``flips``), kept on the tokenizer's device."""
    device = next(tokenizer.parameters()).device
    means, stds, labels = [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for images, batch_labels in tqdm(loader, desc="encoding", disable=not progress):
        images = images.to(device)
        views = torch.stack([images, images.flip(-1)], dim=1) if flips else images[:, None]  # (b, V, 3, s, s)
        mean, std = tokenizer.moments(views.flatten(0, 1))
        means.append(mean.unflatten(0, views.shape[:2]))
        stds.append(std.unflatten(0, views.shape[:2]))
        labels.append(torch.as_tensor(batch_labels))
    return LatentSet(torch.cat(means), torch.cat(stds), torch.cat(labels).to(device))
