"""Supernet training: the sandwich rule with in-place distillation, or FairNAS's fair paths.

Sandwich (Yu et al., BigNAS/OFA; the default): each step trains four subnets on one
batch: the largest on the labels, then the smallest and ``num_random`` random ones on the
largest's soft predictions (detached), so the big and the small ends of the space are
trained every step and the small ones learn from the big one rather than from hard
labels alone.

Fair (Chu et al., FairNAS; ``TrainConfig.sampling = "fair"``): each step trains the paths
of `edgenas.train.subnet_sampling.fair_paths`, all on the labels, so every op of every block
slot gets exactly one update's worth of gradient per step; there is no teacher.

Either way the gradients of all paths accumulate into the shared weights before one
optimiser step.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from edgenas.data.images import ImageSet
from edgenas.locking import folder_lock
from edgenas.nn.supernet import SuperNet
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace
from edgenas.train.checkpoint import (CHECKPOINT_FILE, RESULT_FILE, load_checkpoint, read_run,
                                      space_from_json, space_to_json, write_json_atomic)
from edgenas.train.evaluate import SupernetEvaluator
from edgenas.train.loop import TrainConfig, fit
from edgenas.train.rundata import RunData, prepare_data, reopen_data
from edgenas.train.placement import Placement, broadcast_parameters, place
from edgenas.train.subnet_sampling import fair_paths, largest_arch, sandwich, smallest_arch

log = logging.getLogger(__name__)


def distillation_loss(logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the teacher's soft predictions."""
    return -(teacher_probs * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def _sandwich_step(supernet: SuperNet, archs: list[Arch], inputs: torch.Tensor,
                   labels: torch.Tensor, placement: Placement, scaler: torch.amp.GradScaler
                   ) -> float:
    """Backward of the teacher ``archs[0]`` on the labels and of the rest on its predictions;
    gives the teacher's loss."""
    with placement.autocast():
        teacher = supernet(inputs, archs[0])
        loss = F.cross_entropy(teacher.float(), labels)
    scaler.scale(loss).backward()
    soft = teacher.detach().float().softmax(1)
    for arch in archs[1:]:
        with placement.autocast():
            student = distillation_loss(supernet(inputs, arch), soft)
        scaler.scale(student).backward()
    return float(loss.detach())


def _fair_step(supernet: SuperNet, archs: list[Arch], inputs: torch.Tensor,
               labels: torch.Tensor, placement: Placement, scaler: torch.amp.GradScaler) -> float:
    """Backward of every path on the labels; gives their mean loss."""
    total = 0.0
    for arch in archs:
        with placement.autocast():
            loss = F.cross_entropy(supernet(inputs, arch).float(), labels)
        scaler.scale(loss).backward()
        total += float(loss.detach())
    return total / len(archs)


def train_supernet(space: SearchSpace, data_spec: str, out_dir: str | Path,
                   config: TrainConfig, data: ImageSet | None = None,
                   placement: Placement | None = None, cache_dir: str | Path | None = None
                   ) -> dict[str, Any]:
    """Train (or resume) a supernet of ``space`` into ``out_dir``; gives the result record.

    ``data`` may be passed already opened (it must be what ``data_spec`` names). The result
    holds per-epoch history and the validation accuracy of the largest and the smallest
    subnet after BN recalibration.
    """
    placement = placement or place()
    with folder_lock(out_dir, "supernet training", enabled=placement.is_main):
        return _train_supernet(space, data_spec, Path(out_dir), config, data, placement, cache_dir)


def _train_supernet(space: SearchSpace, data_spec: str, out: Path, config: TrainConfig,
                    data: ImageSet | None, placement: Placement,
                    cache_dir: str | Path | None) -> dict[str, Any]:
    run_data = prepare_data(data_spec, space.num_classes, config.val_fraction, config.data_seed,
                            config.limit, data, cache_dir)
    identity = {"kind": "supernet", "space": space_to_json(space),
                "data": {**run_data.to_dict(), "limit": config.limit},
                "config": config.to_dict()}
    torch.manual_seed(config.seed)
    supernet = SuperNet(space).to(placement.device, memory_format=placement.memory_format)
    broadcast_parameters(supernet, placement)
    started = time.perf_counter()

    def step(inputs: torch.Tensor, labels: torch.Tensor, global_step: int,
             scaler: torch.amp.GradScaler) -> float:
        # the same archs on every rank: the sample depends only on (seed, step)
        rng = random.Random(config.seed * 1_000_003 + global_step)
        if config.sampling == "fair":
            return _fair_step(supernet, fair_paths(space, rng), inputs, labels, placement, scaler)
        return _sandwich_step(supernet, sandwich(space, rng, config.num_random), inputs,
                              labels, placement, scaler)

    history = fit(supernet, step, run_data.data, run_data.split, run_data.normalize, config,
                  out, identity, placement, "supernet")
    result: dict[str, Any] = {"history": history,
                              "train_seconds_this_call": time.perf_counter() - started}
    if placement.is_main:
        evaluator = SupernetEvaluator(supernet, run_data.data, run_data.split,
                                      run_data.normalize, placement, config.calib_batches,
                                      config.eval_batch_size, config.val_limit, config.seed)
        result["val_accuracy_largest"] = evaluator.evaluate(largest_arch(space))
        result["val_accuracy_smallest"] = evaluator.evaluate(smallest_arch(space))
        result["seconds_per_evaluate"] = sum(evaluator.seconds) / len(evaluator.seconds)
        result["split"] = run_data.split.to_dict()
        write_json_atomic(result, out / RESULT_FILE)
    return result


def load_supernet(run_dir: str | Path, placement: Placement | None = None,
                  data: ImageSet | None = None) -> tuple[SuperNet, RunData, dict[str, Any]]:
    """A trained supernet, its run's data (same split and normalisation) and ``run.json``."""
    placement = placement or place()
    run = read_run(Path(run_dir))
    space = space_from_json(run["space"])
    state = load_checkpoint(Path(run_dir) / CHECKPOINT_FILE)
    supernet = SuperNet(space)
    supernet.load_state_dict(state["model"])
    supernet.to(placement.device, memory_format=placement.memory_format).eval()
    return supernet, reopen_data(run["data"], data), run


def supernet_evaluator(run_dir: str | Path, placement: Placement | None = None,
                       data: ImageSet | None = None, val_limit: int | None = None
                       ) -> SupernetEvaluator:
    """An evaluator over a trained supernet run (``evaluate(arch) -> accuracy``)."""
    placement = placement or place()
    supernet, run_data, run = load_supernet(run_dir, placement, data)
    config = run["config"]
    return SupernetEvaluator(supernet, run_data.data, run_data.split, run_data.normalize,
                             placement, config["calib_batches"], config["eval_batch_size"],
                             val_limit if val_limit is not None else config["val_limit"],
                             config["seed"])
