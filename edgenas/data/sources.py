"""Where images come from: the embedded digits set, CIFAR-10, and any ImageFolder tree.

Each loader returns an `ImageSet` (decoded uint8 tensors). JPEG/PNG trees are decoded once
with a progress bar and may be cached as an ``.npz`` file (plain arrays, never pickles),
so the next run on the same tree starts in seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from edgenas.data.images import ImageSet
from edgenas.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def load_digits(image_size: int = 32) -> ImageSet:
    """scikit-learn's bundled 1,797 handwritten digits (8x8, 10 classes), as RGB images.

    Real data that needs no download: upscaled (bilinear) to ``image_size`` and copied to 3
    channels so that it fits the ``cifar`` space; small enough for tests and smoke runs.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # local: ~3 s, digits only

    bunch = sklearn_digits()
    pixels = torch.from_numpy(bunch.images).float().unsqueeze(1) / 16.0  # values 0..16
    pixels = F.interpolate(pixels, size=(image_size, image_size), mode="bilinear",
                           align_corners=False)
    images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    return ImageSet(images.contiguous(), torch.from_numpy(bunch.target).long(),
                    tuple(str(d) for d in range(10)), "digits (scikit-learn)")


def load_cifar10(root: str | os.PathLike[str], download: bool = False,
                 cache_dir: str | os.PathLike[str] | None = None) -> ImageSet:
    """The CIFAR-10 *training* set (50,000 images) from ``root``.

    ``root`` is either torchvision's folder (holding ``cifar-10-batches-py``; downloaded
    there when ``download``) or a JPEG tree with ``train/<class>/*.jpg``. There is no test
    split here on purpose: validation is carved from train (`edgenas.data.split`).
    """
    path = Path(root)
    if (path / "cifar-10-batches-py").is_dir() or download:
        from torchvision.datasets import CIFAR10  # local: torchvision ~4 s, this format only

        try:
            data = CIFAR10(str(path), train=True, download=download)
        except (RuntimeError, OSError) as err:
            raise DataError(f"{path}: cannot read CIFAR-10 ({err}); pass the folder that "
                            "holds cifar-10-batches-py, or download it first "
                            "(--download, needs network)") from None
        images = torch.from_numpy(np.asarray(data.data)).permute(0, 3, 1, 2).contiguous()
        return ImageSet(images, torch.tensor(data.targets, dtype=torch.long),
                        tuple(data.classes), f"cifar10:{path}")
    tree = path / "train" if (path / "train").is_dir() else path
    if not tree.is_dir():
        raise DataError(f"{path}: no CIFAR-10 here; expected cifar-10-batches-py/ "
                        "(torchvision format) or train/<class>/*.jpg")
    data = load_image_folder(tree, cache_dir=cache_dir)
    if data.classes != CIFAR10_CLASSES:
        raise DataError(f"{tree}: class folders {list(data.classes)} are not CIFAR-10's "
                        f"{list(CIFAR10_CLASSES)}; use an ImageFolder path instead")
    return ImageSet(data.images, data.labels, data.classes, f"cifar10:{path}")


def list_image_folder(root: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names (sorted sub-folders) and (file, label) pairs of an ImageFolder tree."""
    if not root.is_dir():
        raise DataError(f"{root}: not a directory; expected an ImageFolder tree "
                        "<root>/<class>/<image>.jpg (or 'digits' for the embedded dataset)")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not classes:
        raise DataError(f"{root}: no class sub-folders; expected <root>/<class>/<image>.jpg")
    files = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir()
                       if p.suffix.lower() in IMAGE_SUFFIXES)
        files.extend((p, label) for p in found)
    if not files:
        raise DataError(f"{root}: class folders hold no .jpg/.jpeg/.png images")
    return classes, files


def load_image_folder(root: str | os.PathLike[str], image_size: int | None = None,
                      cache_dir: str | os.PathLike[str] | None = None) -> ImageSet:
    """Every image of ``root/<class>/*`` decoded to RGB uint8 (resized to ``image_size``).

    Without ``image_size`` all images must share one square size. With ``cache_dir``,
    decoded arrays are stored there as ``imagefolder-<key>.npz`` (key: path, file list,
    sizes and size setting) and reused.
    """
    root = Path(root)
    classes, files = list_image_folder(root)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"imagefolder-{_tree_key(root, files, image_size)}.npz"
        if cache.exists():
            try:
                with np.load(cache, allow_pickle=False) as stored:
                    cached = ImageSet(torch.from_numpy(stored["images"]),
                                      torch.from_numpy(stored["labels"]), classes, str(root))
                if len(cached.labels) != len(files):
                    raise ValueError(f"{len(cached.labels)} images for {len(files)} files")
                log.info("decoded images from cache %s", cache)
                return cached
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                # truncated, corrupt or foreign: a cache is derived data, decoding is safe
                log.warning("%s: unreadable cache (%s); decoding the images again", cache, err)
    images, shape = [], None
    for path, _ in tqdm(files, desc=f"decoding {root.name}", unit="img", mininterval=1.0):
        try:
            with Image.open(path) as handle:
                image = torch.from_numpy(np.array(handle.convert("RGB"))).permute(2, 0, 1)
        except OSError as err:
            raise DataError(f"{path}: cannot decode image ({err}); remove or replace it") \
                from None
        if image_size is not None and tuple(image.shape[1:]) != (image_size, image_size):
            from torchvision.transforms.v2.functional import resize  # local: ~4 s, resizing only

            image = resize(image, [image_size, image_size], antialias=True)
        if shape is None:
            shape = tuple(image.shape)
        elif tuple(image.shape) != shape:
            raise DataError(f"{path}: size {tuple(image.shape[1:])} differs from "
                            f"{shape[1:]}; pass an image size to resize all images")
        images.append(image)
    stacked = torch.stack(images)
    labels = torch.tensor([label for _, label in files], dtype=torch.long)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".tmp.npz")
        np.savez(partial, images=stacked.numpy(), labels=labels.numpy())
        os.replace(partial, cache)
    return ImageSet(stacked, labels, classes, str(root))


def _tree_key(root: Path, files: list[tuple[Path, int]], image_size: int | None) -> str:
    digest = hashlib.sha256(f"{root.resolve()}|{image_size}|{len(files)}".encode())
    for path, label in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{label}|{stat.st_size}|{stat.st_mtime_ns}"
                      .encode())
    return digest.hexdigest()[:16]
