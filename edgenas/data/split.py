"""A seeded, stratified train/validation split carved from one labelled set.

The datasets used here have no separate test split that search may look at, so
validation images are held out of the training images. The split is a pure function of
(labels, fraction, seed), and its hash is stored with every run so that a supernet and
the archs scored on it are known to share one validation set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgenas.errors import DataError


@dataclass(frozen=True)
class Split:
    """Train and validation indices into an `ImageSet`, and how they were drawn."""

    train: torch.Tensor
    val: torch.Tensor
    seed: int
    val_fraction: float

    def split_hash(self) -> str:
        """Short hash of both index lists (equal hashes: the same split)."""
        digest = hashlib.sha256(self.train.numpy().astype(np.int64).tobytes())
        digest.update(b"|")
        digest.update(self.val.numpy().astype(np.int64).tobytes())
        return digest.hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """What a run records about its split (indices are re-derived from the seed)."""
        return {"seed": self.seed, "val_fraction": self.val_fraction,
                "train_size": len(self.train), "val_size": len(self.val),
                "hash": self.split_hash()}


def split_dataset(labels: torch.Tensor, val_fraction: float = 0.1, seed: int = 0,
                  limit: int | None = None) -> Split:
    """Hold out ``val_fraction`` of every class (rounded, at least one) for validation.

    ``limit`` first keeps a seeded, class-balanced subset of that many images (for quick
    runs); the validation share is then taken from the subset.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction {val_fraction} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    labels_np = labels.numpy()
    classes = np.unique(labels_np)
    per_class = {c: rng.permutation(np.flatnonzero(labels_np == c)) for c in classes}
    if limit is not None:
        if limit < 2 * len(classes):
            raise DataError(f"a subset of {limit} images cannot hold {len(classes)} classes "
                            "in both splits; use a larger limit")
        share = limit / len(labels_np)
        per_class = {c: idx[:max(2, int(round(len(idx) * share)))]
                     for c, idx in per_class.items()}
    train, val = [], []
    for idx in per_class.values():
        if len(idx) < 2:
            raise DataError("a class has fewer than 2 images; cannot split it")
        n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return Split(torch.from_numpy(np.sort(np.concatenate(train))).long(),
                 torch.from_numpy(np.sort(np.concatenate(val))).long(), seed, val_fraction)
