"""Data details: the npz decode cache, subset limits, empty trees, crop and flip.

(Digits, splits, error messages, normalisation: tests/test_data.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from edgenas.data import load_image_folder, open_dataset, split_dataset
from edgenas.data.augment import random_crop, random_flip
from edgenas.errors import DataError


@pytest.fixture(scope="module")
def digits():
    return open_dataset("digits")


def _write_tree(root: Path, classes: int, per_class: int, digits) -> None:
    for label in range(classes):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        images = digits.images[digits.labels == label][:per_class]
        for i, image in enumerate(images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")


def test_split_limit_keeps_a_balanced_subset(digits) -> None:
    split = split_dataset(digits.labels, 0.1, seed=0, limit=200)
    assert 190 <= len(split.train) + len(split.val) <= 210
    assert torch.bincount(digits.labels[split.train], minlength=10).min() >= 15


def test_image_folder_decodes_and_caches_as_npz(tmp_path: Path, digits) -> None:
    _write_tree(tmp_path / "tree", 3, 4, digits)
    data = load_image_folder(tmp_path / "tree", cache_dir=tmp_path / "cache")
    assert data.images.shape == (12, 3, 32, 32) and data.classes == ("class0", "class1",
                                                                      "class2")
    assert torch.equal(data.images[:4], digits.images[digits.labels == 0][:4])
    cached = list((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 1
    again = load_image_folder(tmp_path / "tree", cache_dir=tmp_path / "cache")
    assert torch.equal(again.images, data.images) and torch.equal(again.labels, data.labels)


def test_empty_folder_error_says_what_layout_is_expected(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no class sub-folders; expected <root>/<class>"):
        open_dataset(str(tmp_path / "empty"))


def test_random_crop_shifts_content_by_at_most_the_padding(digits) -> None:
    batch = digits.images[:16]
    cropped = random_crop(batch, 4, torch.Generator().manual_seed(0))
    assert cropped.shape == batch.shape and not torch.equal(cropped, batch)
    assert cropped.sum() <= batch.sum()  # zero padding can only remove ink


def test_random_flip_mirrors_about_half_of_the_batch(digits) -> None:
    batch = digits.images[:200]
    flipped = random_flip(batch, torch.Generator().manual_seed(0))
    mirrored = sum(torch.equal(f, b.flip(2)) and not torch.equal(f, b)
                   for f, b in zip(flipped, batch))
    assert 60 <= mirrored <= 140