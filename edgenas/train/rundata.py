"""The data side of a run: dataset, split and normalisation, recorded and re-derived.

A run stores its dataset spec, split settings and hash and the normalisation it used, so
later steps (scoring archs on a trained supernet, stand-alone training initialised from
it) use the very same validation images and statistics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from edgenas.data import ImageSet, Normalize, Split, canonical_spec, open_dataset, split_dataset
from edgenas.errors import CheckpointError


@dataclass(frozen=True)
class RunData:
    """A dataset with its split and normalisation, and the spec that names it."""

    spec: str
    data: ImageSet
    split: Split
    normalize: Normalize

    def to_dict(self) -> dict[str, Any]:
        """What ``run.json`` records about the data."""
        return {"spec": self.spec, "source": canonical_spec(self.data.source), "size": len(self.data),
                "num_classes": self.data.num_classes, "split": self.split.to_dict(),
                "mean": list(self.normalize.mean), "std": list(self.normalize.std)}


def prepare_data(spec: str, num_classes: int, val_fraction: float = 0.1, seed: int = 0,
                 limit: int | None = None, data: ImageSet | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> RunData:
    """Open ``spec`` (unless ``data`` is given), check its classes, split, normalise."""
    if data is None:
        data = open_dataset(spec, cache_dir=cache_dir)
    data.check_classes(num_classes, "the search space")
    split = split_dataset(data.labels, val_fraction, seed, limit)
    mean, std = data.mean_std(split.train)
    return RunData(canonical_spec(spec), data, split, Normalize(tuple(mean), tuple(std)))


def reopen_data(recorded: dict[str, Any], data: ImageSet | None = None,
                cache_dir: str | os.PathLike[str] | None = None) -> RunData:
    """The `RunData` a run recorded, re-derived and checked against the recorded hash."""
    split_info = recorded["split"]
    if data is None:
        data = open_dataset(recorded["spec"], cache_dir=cache_dir)
    run_data = prepare_data(recorded["spec"], recorded["num_classes"],
                            split_info["val_fraction"], split_info["seed"],
                            recorded.get("limit"), data)
    if run_data.split.split_hash() != split_info["hash"]:
        raise CheckpointError(f"dataset {recorded['spec']!r} no longer gives the recorded "
                              f"split (hash {split_info['hash']}); the data changed since "
                              "the run was trained")
    return run_data
