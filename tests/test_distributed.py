"""Training under `torchrun --nproc_per_node 2` (gloo, CPU) against one process with the
same global batch.

Both see the same images in the same global batches (each rank takes every second image
of a batch); they differ in batch-norm statistics (per rank, over half the batch) and in
floating-point summation order, so losses and accuracies agree within a tolerance, not
exactly: per-epoch training loss within 15 % (stand-alone) and 5 % (supernet), validation
accuracy within 10 points.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgenas.cli import main

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(TORCHRUN is None, reason="torchrun not installed beside python")


def torchrun(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([TORCHRUN, "--nproc_per_node", "2", "-m", "edgenas.cli", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def result(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())


def losses(run: Path) -> list[float]:
    return [epoch["loss"] for epoch in result(run)["history"]]


def test_standalone_training_on_two_processes_matches_one(tmp_path: Path) -> None:
    arch = tmp_path / "arch.json"
    arch.write_text(subprocess.run([sys.executable, "-m", "edgenas.cli", "arch", "sample",
                                    "--space", "cifar", "--seed", "5"], capture_output=True,
                                   text=True, check=True).stdout)
    common = ["train", str(arch), "--data", "digits", "--epochs", "2", "--limit", "600",
              "--torch-device", "cpu"]
    assert main([*common, "--batch-size", "64", "--out", str(tmp_path / "one")]) == 0
    torchrun([*common, "--batch-size", "32", "--out", str(tmp_path / "two")], tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    assert result(one)["split"] == result(two)["split"]
    for a, b in zip(losses(one), losses(two), strict=True):
        assert abs(a - b) <= 0.15 * a, (losses(one), losses(two))
    assert abs(result(one)["val_accuracy"] - result(two)["val_accuracy"]) <= 0.10


def test_supernet_training_on_two_processes_matches_one(tmp_path: Path) -> None:
    common = ["supernet", "train", "--space", "cifar", "--data", "digits", "--epochs", "1",
              "--limit", "240", "--val-limit", "60", "--torch-device", "cpu"]
    assert main([*common, "--batch-size", "32", "--out", str(tmp_path / "one")]) == 0
    torchrun([*common, "--batch-size", "16", "--out", str(tmp_path / "two")], tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    for a, b in zip(losses(one), losses(two), strict=True):
        assert abs(a - b) <= 0.05 * a, (losses(one), losses(two))
    for key in ("val_accuracy_largest", "val_accuracy_smallest"):
        assert abs(result(one)[key] - result(two)[key]) <= 0.10
