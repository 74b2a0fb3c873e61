"""Datasets: the embedded digits, ImageFolder trees (real CIFAR-10 JPEGs), splits, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from edgenas.data import open_dataset, split_dataset
from edgenas.data.augment import prepare_batch
from edgenas.errors import DataError
from edgenas.train.rundata import prepare_data

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg" / "train"


def test_embedded_digits_are_real_images_that_fit_the_cifar_space() -> None:
    digits = open_dataset("digits")
    assert len(digits) == 1797 and digits.num_classes == 10
    assert digits.images.dtype == torch.uint8 and tuple(digits.images.shape[1:]) == (3, 32, 32)
    assert digits.images.float().std() > 10  # not blank


def test_split_is_seeded_disjoint_and_stratified() -> None:
    labels = open_dataset("digits").labels
    a, b = split_dataset(labels, 0.2, seed=3), split_dataset(labels, 0.2, seed=3)
    assert torch.equal(a.val, b.val) and a.split_hash() == b.split_hash()
    assert not set(a.val.tolist()) & set(a.train.tolist())
    assert len(a.val) + len(a.train) == len(labels)
    assert set(labels[a.val].tolist()) == set(range(10))
    assert split_dataset(labels, 0.2, seed=4).split_hash() != a.split_hash()


@pytest.fixture(scope="module")
def small_cifar_tree(tmp_path_factory):
    """A 10-class ImageFolder of real CIFAR-10 JPEGs from the shared data (12 per class)."""
    if not CIFAR.is_dir():
        pytest.skip(f"shared CIFAR-10 images not found at {CIFAR}")
    root = tmp_path_factory.mktemp("cifar")
    for folder in sorted(CIFAR.iterdir()):
        (root / folder.name).mkdir()
        for image in sorted(folder.iterdir())[:12]:
            shutil.copy(image, root / folder.name / image.name)
    return root


def test_image_folder_decodes_real_jpegs(small_cifar_tree) -> None:
    data = open_dataset(str(small_cifar_tree))
    assert len(data) == 120 and data.num_classes == 10 and "airplane" in data.classes
    assert tuple(data.images.shape[1:]) == (3, 32, 32)


def test_batches_are_normalised_and_resized_to_the_arch(small_cifar_tree) -> None:
    run = prepare_data(str(small_cifar_tree), 10, val_fraction=0.2)
    batch = prepare_batch(run.data.images[:8], run.normalize, True, 28)
    assert batch.shape == (8, 3, 28, 28) and batch.dtype == torch.float32
    assert abs(float(batch.mean())) < 1.0


def test_bad_dataset_paths_name_the_path_and_the_fix(tmp_path) -> None:
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'}: does not exist"):
        open_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        open_dataset(str(tmp_path / "empty"))


def test_class_count_must_match_the_space(small_cifar_tree, tmp_path) -> None:
    three = tmp_path / "three"
    for name in ("cat", "dog", "frog"):
        shutil.copytree(small_cifar_tree / name, three / name)
    with pytest.raises(DataError, match="3 classes"):
        prepare_data(str(three), 10)
