"""The batch the zero-cost proxies see: which images of a dataset, normalised how.

Its own module because both the estimators (scoring) and the ground-truth table (which
stores the batch beside itself) need it, and the estimators read ground-truth tables.
"""

from __future__ import annotations

from typing import Any

import torch

from edgenas.data import Normalize, prepare_batch

#: Images in the batch the zero-cost proxies see.
PROXY_BATCH = 64


def proxy_images(data: Any) -> torch.Tensor:
    """`PROXY_BATCH` seeded images of an `ImageSet` (uint8), the same for every caller."""
    generator = torch.Generator().manual_seed(0)
    return data.images[torch.randperm(len(data), generator=generator)[:PROXY_BATCH]]


def normalise_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> network input, normalised with the batch's own statistics."""
    floats = images.float() / 255.0
    mean = floats.mean(dim=(0, 2, 3)).tolist()
    std = floats.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    return prepare_batch(images, Normalize(tuple(mean), tuple(std)), False)
