"""Batch-wise augmentation and normalisation on tensors, on whatever device they live.

Images stay uint8 until a batch is drawn; then a batch is cropped/flipped (training),
converted to float, normalised with the training split's mean/std, and resized to the
arch's resolution when it differs from the data's. Doing this on the batch (not per image
in a DataLoader worker) keeps one CPU core busy with the network, not with Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Normalize:
    """Per-channel mean and std in [0, 1] units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> normalised float."""
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255.0 - mean) / std


def random_crop(images: torch.Tensor, padding: int = 4,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding`` and cut a random window of the original size per image."""
    if padding == 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(images.device)
    rows = (dy[:, None] + torch.arange(height, device=images.device))[:, :, None]  # B,H,1
    cols = (dx[:, None] + torch.arange(width, device=images.device))[:, None, :]   # B,1,W
    index = torch.arange(batch, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Float images at ``resolution`` x ``resolution`` (unchanged when already there)."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear",
                         align_corners=False, antialias=True)


def prepare_batch(images: torch.Tensor, normalize: Normalize, train: bool,
                  resolution: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 batch -> network input: augment (train only), normalise, resize."""
    if train:
        images = random_flip(random_crop(images, 4, generator), generator)
    out = normalize(images)
    return resize(out, resolution) if resolution is not None else out
