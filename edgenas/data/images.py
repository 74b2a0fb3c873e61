"""`ImageSet`: a whole labelled dataset decoded once into memory as uint8 tensors.

An epoch over 50,000 CIFAR images must not re-decode JPEGs, and the supernet trains many
subnets per batch, so images live in one (N, C, H, W) uint8 tensor (150 MB for CIFAR-10)
and augmentation happens later, batch-wise, on tensors (`edgenas.data.augment`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from edgenas.errors import DataError


@dataclass(frozen=True)
class ImageSet:
    """Images (N, C, H, W) uint8, labels (N,) int64, class names, and where they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"{self.source}: images must be uint8 (N, C, H, W), got "
                            f"{self.images.dtype} {tuple(self.images.shape)}")
        if len(self.labels) != len(self.images):
            raise DataError(f"{self.source}: {len(self.images)} images but "
                            f"{len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        """Number of classes (the classifier's output width)."""
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Side of the (square) images."""
        return int(self.images.shape[-1])

    def fingerprint(self) -> str:
        """Short content hash of images and labels: a run records it to detect other data."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.labels.numpy()).tobytes())
        digest.update(np.ascontiguousarray(self.images.numpy()).tobytes())
        return digest.hexdigest()[:16]

    def mean_std(self, indices: torch.Tensor | None = None) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1] units (of ``indices`` only: the train split)."""
        images = self.images if indices is None else self.images[indices]
        pixels = images.transpose(0, 1).reshape(images.shape[1], -1).double() / 255.0
        return pixels.mean(1).tolist(), pixels.std(1).tolist()

    def check_classes(self, num_classes: int, what: str) -> None:
        """Raise `DataError` unless the data has exactly ``num_classes`` classes."""
        if self.num_classes != num_classes:
            raise DataError(f"{self.source}: has {self.num_classes} classes but {what} "
                            f"expects {num_classes}; use a dataset with {num_classes} classes "
                            "or a search space built for this one")
