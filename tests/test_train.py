"""Training on real digit images: the sandwich ends, learning, BN recalibration.

(Checkpoints, resume after kill -9, evaluate and --init-from: tests/test_training.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgenas.data import open_dataset
from edgenas.nn.supernet import SuperNet
from edgenas.train import (TrainConfig, largest_arch, recalibrate_bn, smallest_arch,
                           train_supernet)
from tiny_space import tiny_space


@pytest.fixture(scope="module")
def digits():
    return open_dataset("digits")


@pytest.fixture(scope="module")
def trained_supernet(tmp_path_factory, digits) -> Path:
    out = tmp_path_factory.mktemp("supernet")
    train_supernet(tiny_space(), "digits", out, TrainConfig(epochs=2, batch_size=16, lr=0.2,
                                                            limit=800, val_limit=200),
                   data=digits)
    return out


def test_sandwich_ends_are_the_largest_and_smallest_by_macs() -> None:
    from edgenas import count

    space = tiny_space()
    big, small = count(largest_arch(space)).macs, count(smallest_arch(space)).macs
    sampled = [count(space.sample(i)).macs for i in range(100)]
    assert small <= min(sampled) and big >= max(sampled)


def test_supernet_training_learns_the_digits(trained_supernet: Path) -> None:
    result = json.loads((trained_supernet / "result.json").read_text())
    losses = [epoch["loss"] for epoch in result["history"]]
    assert losses[1] < losses[0] - 0.1
    assert result["val_accuracy_largest"] > 0.15  # chance: 0.1 +- 0.03 (80 images)


def test_bn_recalibration_replaces_running_statistics(digits) -> None:
    model = SuperNet(tiny_space()).subnet(tiny_space().sample(1))
    batches = [digits.images[:64].float() / 255.0]
    recalibrate_bn(model, batches)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert not model.training and bn.momentum == 0.1


WORKER = """
import sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
import logging; logging.basicConfig(level=logging.INFO)
from edgenas.train import TrainConfig, train_supernet
from tiny_space import tiny_space
train_supernet(tiny_space(), "digits", {out!r},
               TrainConfig(epochs=3, batch_size=32, lr=0.1, limit=400, val_limit=40))
"""