"""Scoring archs: BN recalibration, validation accuracy, and the supernet evaluator.

A subnet's batch-norm statistics in the supernet are a blend over every subnet that ran
through the shared BN layers, so before a subnet is scored its statistics are re-estimated
on a few fixed training batches (Once-for-All's recalibration). The fixed batches make
the score a deterministic function of (supernet, arch).
"""

from __future__ import annotations

import time
from typing import Iterable

import torch
from torch import nn

from edgenas.data.augment import Normalize, prepare_batch
from edgenas.data.images import ImageSet
from edgenas.data.split import Split
from edgenas.nn.supernet import SuperNet
from edgenas.space.arch import Arch
from edgenas.train.loop import iterate_eval
from edgenas.train.placement import Placement


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Replace every BN layer's running statistics by their average over ``batches``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches, not an EMA
    model.train()
    for inputs in batches:
        model(inputs)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, data: ImageSet, indices: torch.Tensor, normalize: Normalize,
             resolution: int, placement: Placement, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on the images ``indices`` (no augmentation)."""
    model.eval()
    correct = 0
    for images, labels in iterate_eval(data, indices, batch_size):
        inputs = prepare_batch(images.to(placement.device), normalize, False, resolution)
        with placement.autocast():
            logits = model(inputs.contiguous(memory_format=placement.memory_format))
        correct += int((logits.argmax(1).cpu() == labels).sum())
    return correct / max(1, len(indices))


class SupernetEvaluator:
    """``evaluate(arch)``: validation accuracy of a subnet with inherited weights."""

    def __init__(self, supernet: SuperNet, data: ImageSet, split: Split, normalize: Normalize,
                 placement: Placement, calib_batches: int = 4, batch_size: int = 256,
                 val_limit: int | None = None, seed: int = 0) -> None:
        self.supernet, self.data, self.normalize, self.placement = supernet, data, normalize, \
            placement
        self.batch_size = batch_size
        generator = torch.Generator().manual_seed(seed)
        order = split.train[torch.randperm(len(split.train), generator=generator)]
        self.calibration = order[:calib_batches * batch_size]
        self.val = split.val if val_limit is None else split.val[:val_limit]
        self.seconds: list[float] = []

    def evaluate(self, arch: Arch) -> float:
        """Recalibrate BN of ``arch``'s subnet on fixed train batches; validation accuracy."""
        started = time.perf_counter()
        model = self.supernet.subnet(arch)
        calibration = (
            prepare_batch(images.to(self.placement.device), self.normalize, False,
                          arch.resolution).contiguous(memory_format=self.placement.memory_format)
            for images, _ in iterate_eval(self.data, self.calibration, self.batch_size))
        with self.placement.autocast():
            recalibrate_bn(model, calibration)
        score = accuracy(model, self.data, self.val, self.normalize, arch.resolution,
                         self.placement, self.batch_size)
        self.seconds.append(time.perf_counter() - started)
        return score
