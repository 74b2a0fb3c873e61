"""Truncated or corrupted files: each gives one error naming the file (and what to do), or
is rebuilt where that is safe (the decoded-image cache); none is silently used."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from edgenas.errors import EdgenasError
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.estimate.estimators import DEFAULT_TABLE
from edgenas.export.bundle import load_bundle
from edgenas.profile.lut import load_lut
from edgenas.search.study_store import open_storage
from edgenas.search.results import load_front
from edgenas.space.arch import load_arch
from edgenas.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def garble(path: Path) -> None:
    path.write_bytes(b"\x00\xff garbage \x13" * 20)


def _checkpoint(folder: Path) -> Path:
    path = folder / "checkpoint.pt"
    torch.save({"schema_version": 1, "model": {"w": torch.zeros(1000)}}, path)
    return path


def _study(folder: Path) -> Path:
    import optuna

    path = folder / "study.db"
    optuna.create_study(storage=f"sqlite:///{path}", study_name="s")
    return path


def _copy(source: Path) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        target = folder / source.name
        shutil.copy(source, target)
        return target
    return make


def _front(folder: Path) -> Path:
    (folder / "front.json").write_text('{"schema_version": 1, "front": [], "objectives": []}')
    return folder / "front.json"


def _manifest(folder: Path) -> Path:
    (folder / "manifest.json").write_text('{"schema_version": 1, "files": {}}')
    return folder / "manifest.json"


#: name -> (make a good file in a folder, read it back as edgenas does)
FILES: dict[str, tuple[Callable[[Path], Path], Callable[[Path], object]]] = {
    "latency table": (_copy(ROOT / "profiles" / "host-cpu" / "cifar.json"), load_lut),
    "checkpoint": (_checkpoint, load_checkpoint),
    "front.json": (_front, lambda path: load_front(path.parent)),
    "bundle manifest": (_manifest, lambda path: load_bundle(path.parent)),
    "ground truth": (_copy(DEFAULT_TABLE), GroundTruth.load),
    "arch JSON": (lambda folder: _arch(folder), load_arch),
    "study.db": (_study, lambda path: open_storage(f"sqlite:///{path}")),
}


def _arch(folder: Path) -> Path:
    from edgenas.space import get_space

    path = folder / "arch.json"
    path.write_text(get_space("cifar").sample(1).to_json())
    return path


@pytest.mark.parametrize("damage", [truncate, garble], ids=["truncated", "garbled"])
@pytest.mark.parametrize("kind", list(FILES))
def test_a_damaged_file_is_named_in_one_clear_error(tmp_path: Path, kind: str,
                                                    damage: Callable[[Path], None]) -> None:
    make, read = FILES[kind]
    path = make(tmp_path)
    if kind != "bundle manifest":  # a manifest alone is no bundle; the others read intact
        read(path)
    damage(path)
    with pytest.raises(EdgenasError) as caught:
        read(path)
    assert str(path) in str(caught.value) or path.name in str(caught.value)


def test_a_damaged_image_cache_is_decoded_again(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from edgenas.data.sources import load_image_folder

    tree = tmp_path / "images"
    for label in ("a", "b"):
        (tree / label).mkdir(parents=True)
        for i in range(3):
            pixels = np.full((8, 8, 3), 40 * i + (100 if label == "b" else 0), np.uint8)
            Image.fromarray(pixels).save(tree / label / f"{i}.png")
    cache = tmp_path / "cache"
    first = load_image_folder(tree, cache_dir=cache)
    (stored,) = cache.glob("*.npz")
    for damage in (truncate, garble):
        damage(stored)
        again = load_image_folder(tree, cache_dir=cache)
        assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
        assert "unreadable cache" in caplog.text
        assert load_image_folder(tree, cache_dir=cache).images.shape == first.images.shape
