"""Datasets, splits and batch preparation.

A dataset is named by a *spec* string (the CLI's ``--data``):

* ``digits`` -- scikit-learn's embedded handwritten digits (no download, 1,797 images,
  10 classes, upscaled to 32x32 RGB);
* ``cifar10:PATH`` -- the CIFAR-10 training set from torchvision's folder
  (``PATH/cifar-10-batches-py``) or a JPEG tree ``PATH/train/<class>/*.jpg``;
* ``folder:PATH`` or plain ``PATH`` -- any ImageFolder tree ``PATH/<class>/*.jpg``.
"""

from __future__ import annotations

import os

from edgenas.data.augment import Normalize, prepare_batch
from edgenas.data.images import ImageSet
from edgenas.data.sources import load_cifar10, load_digits, load_image_folder
from edgenas.data.split import Split, split_dataset
from edgenas.errors import DataError

__all__ = ["ImageSet", "Normalize", "Split", "load_cifar10", "load_digits",
           "canonical_spec", "load_image_folder", "open_dataset", "prepare_batch", "split_dataset"]


def canonical_spec(spec: str) -> str:
    """``spec`` with its path made absolute: a run recorded as ``cifar10:../data`` is the
    same run when resumed as ``cifar10:/work/data`` or from another folder."""
    if spec == "digits" or not spec:
        return spec
    for prefix in ("cifar10:", "folder:"):
        if spec.startswith(prefix):
            path = spec[len(prefix):]
            return prefix + os.path.abspath(path) if path else spec
    return os.path.abspath(spec) if os.path.exists(spec) else spec  # not a path: as given


def open_dataset(spec: str, download: bool = False, image_size: int | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> ImageSet:
    """The `ImageSet` a spec string names (see the module docstring for the syntax)."""
    if not spec:
        raise DataError("empty dataset spec; use 'digits', 'cifar10:PATH' or an "
                        "ImageFolder path")
    if spec == "digits":
        return load_digits(image_size or 32)
    if spec.startswith("cifar10:"):
        path = spec[len("cifar10:"):]
        if not path:
            raise DataError("'cifar10:' needs a path, e.g. cifar10:/data/cifar10")
        if not download and not os.path.exists(path):
            raise DataError(f"{path}: does not exist; pass an existing CIFAR-10 folder, or "
                            "download it there (needs network)")
        return load_cifar10(path, download=download, cache_dir=cache_dir)
    path = spec[len("folder:"):] if spec.startswith("folder:") else spec
    if not os.path.exists(path):
        raise DataError(f"{path}: does not exist; expected 'digits', 'cifar10:PATH' or an "
                        "ImageFolder tree PATH/<class>/<image>.jpg")
    return load_image_folder(path, image_size=image_size, cache_dir=cache_dir)
