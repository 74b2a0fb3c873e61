"""The epoch loop both supernet and stand-alone training share.

Seeded per epoch (shuffle, augmentation), learning rate per step (a linear warm-up when the
recipe has one, then cosine), SGD with Nesterov momentum, progress with loss and images/s
(a bar, or plain lines in a log), and a checkpoint after every epoch, so that re-running a
killed command resumes at the last finished epoch and then proceeds exactly as an
uninterrupted run would (up to floating-point non-determinism).
"""

from __future__ import annotations

import io
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from edgenas.data.augment import Normalize, prepare_batch
from edgenas.data.images import ImageSet
from edgenas.data.split import Split
from edgenas.errors import ConfigError
from edgenas.progress import Progress
from edgenas.train.checkpoint import (CHECKPOINT_FILE, SCHEMA_VERSION, load_checkpoint,
                                      save_checkpoint, start_or_resume)
from edgenas.train.placement import Placement, average_gradients
from edgenas.train.subnet_sampling import SAMPLINGS

log = logging.getLogger(__name__)

#: step(inputs, labels, global_step, scaler) -> loss; it runs forward and backward itself
StepFn = Callable[[torch.Tensor, torch.Tensor, int, torch.amp.GradScaler], float]


#: Recipe numbers a training can run with (NaN fails every check, and infinity the float
#: ones): a recipe file is refused with its field named, not left to fail mid-training.
RECIPE_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda v: v >= 1, "a whole number >= 1"),
    "batch_size": (lambda v: v >= 1, "a whole number >= 1"),
    "eval_batch_size": (lambda v: v >= 1, "a whole number >= 1"),
    "limit": (lambda v: v >= 1, "a whole number >= 1, or null for every image"),
    "val_limit": (lambda v: v >= 1, "a whole number >= 1, or null for every image"),
    "num_random": (lambda v: v >= 0, "a whole number >= 0"),
    "calib_batches": (lambda v: v >= 0, "a whole number >= 0"),
    "lr": (lambda v: 0 < v < math.inf, "a positive number"),
    "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: 0 <= v < math.inf, "a number >= 0"),
    "val_fraction": (lambda v: 0 < v < 1, "a number in (0, 1)"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run; recorded in ``run.json`` and checked on resume."""

    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    seed: int = 0
    val_fraction: float = 0.1
    limit: int | None = None        # train on a class-balanced subset of this many images
    num_random: int = 2             # random subnets per step besides largest and smallest
    calib_batches: int = 4          # BN recalibration batches before scoring a subnet
    eval_batch_size: int = 256
    val_limit: int | None = None    # score on the first val images only (quick estimates)
    split_seed: int | None = None   # seed of the train/val split; None: ``seed``
    sampling: str = "sandwich"      # supernet paths per step: "sandwich" or "fair" (FairNAS)
    warmup_epochs: float = 0.0      # linear learning-rate warm-up before the cosine decay

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"TrainConfig.sampling (--sampling): {self.sampling!r} not in "
                              f"{SAMPLINGS}")
        warmup = self.warmup_epochs
        if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) \
                or not (warmup == 0 or 0 < warmup < self.epochs):
            raise ConfigError(f"TrainConfig.warmup_epochs: {warmup!r} must be a number of "
                              f"epochs >= 0 and below epochs ({self.epochs}), so that the "
                              "learning rate also decays")

    @property
    def data_seed(self) -> int:
        """The split's seed: runs that differ only in ``seed`` can share validation images."""
        return self.seed if self.split_seed is None else self.split_seed

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "TrainConfig":
        """A recipe from JSON (a ground truth's ``recipe``); errors name ``source`` and field."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a recipe is a JSON object of TrainConfig fields")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown recipe field(s) {', '.join(unknown)}; "
                              f"known: {', '.join(known)}")
        for name, value in data.items():
            default = getattr(cls, name)
            if default is None and value is None:
                continue
            # None-defaulted fields are counts and seeds; floats take ints too (JSON "1")
            kinds = int if default is None else (int, float) if isinstance(default, float) \
                else type(default)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ConfigError(f"{source}: recipe field {name!r} is {value!r}; expected "
                                  f"{'a number' if kinds == (int, float) else kinds.__name__}")
            usable, expected = RECIPE_RANGES.get(name, (lambda _: True, ""))
            if value is not None and not usable(value):
                raise ConfigError(f"{source}: recipe field {name!r} is {value!r}; expected "
                                  f"{expected}")
        try:
            return cls(**data)
        except ConfigError as err:  # a setting judged with the others (sampling, warm-up)
            raise ConfigError(f"{source}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON; settings added later appear only when not at their
        default, so the identity of runs recorded before them still matches."""
        values = asdict(self)
        if values["split_seed"] is None:
            del values["split_seed"]
        if values["sampling"] == "sandwich":
            del values["sampling"]
        if values["warmup_epochs"] == 0:
            del values["warmup_epochs"]
        return values


def epoch_batches(indices: torch.Tensor, batch_size: int, seed: int, epoch: int,
                  placement: Placement) -> list[torch.Tensor]:
    """This process's batches of one epoch: a seeded shuffle, sharded by rank.

    Incomplete last batches are dropped (a batch of one breaks batch norm), unless the
    shard is smaller than one batch.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = indices[torch.randperm(len(indices), generator=generator)]
    shard = order[placement.rank::placement.world_size]
    size = min(batch_size, len(shard))
    return [shard[i:i + size] for i in range(0, len(shard) - size + 1, size)]


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Cosine decay from ``base_lr`` to 0 over ``total_steps``."""
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def scheduled_lr(base_lr: float, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """The learning rate of ``step``: linear from ``base_lr / warmup_steps`` up to ``base_lr``
    over the first ``warmup_steps``, then cosine decay to 0 over the remaining steps.

    A deep network (ResNet-56) fed the full rate from its first step can spend a short recipe
    recovering from the first updates, which its random batch-norm statistics make large;
    rising to the rate gets it past them. Without warm-up this is exactly `cosine_lr`, so runs
    recorded before warm-up existed resume on the schedule they started with.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    return cosine_lr(base_lr, step - warmup_steps, max(1, total_steps - warmup_steps))


def recipe_warmup_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """The recipe's warm-up in optimizer steps (at least one step of decay remains)."""
    total = max(1, steps_per_epoch * config.epochs)
    return min(round(config.warmup_epochs * steps_per_epoch), total - 1)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD with Nesterov momentum; no weight decay on BN and bias parameters."""
    decay, no_decay = [], []
    for param in model.parameters():
        (decay if param.dim() > 1 else no_decay).append(param)
    return torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}],
                           lr=config.lr, momentum=config.momentum, nesterov=True)


def fit(model: nn.Module, step: StepFn, data: ImageSet, split: Split, normalize: Normalize,
        config: TrainConfig, run_dir: Path, identity: dict[str, Any], placement: Placement,
        description: str, state_module: nn.Module | None = None,
        until_epoch: int | None = None) -> list[dict[str, float]]:
    """Train ``config.epochs`` epochs (resuming from ``run_dir``); gives per-epoch history.

    ``state_module`` is what is checkpointed (the unwrapped model under DDP). ``until_epoch``
    stops after that epoch on the full recipe's schedule (its learning rate is the one the
    full run would have there), so that a run stopped early to be scored can later be
    continued to the full recipe and end exactly as an uninterrupted run: how successive
    halving trains an arch in rungs without paying twice.
    """
    stop = config.epochs if until_epoch is None else until_epoch
    if not 1 <= stop <= config.epochs:
        raise ConfigError(f"until_epoch {until_epoch!r}: must be between 1 and the recipe's "
                          f"{config.epochs} epochs")
    state_module = state_module if state_module is not None else model
    optimizer = make_optimizer(state_module, config)
    scaler = placement.grad_scaler()
    checkpoint = _start(run_dir, identity, placement)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if checkpoint is not None:
        state_module.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        history = list(checkpoint["history"])
        start_epoch = int(checkpoint["epoch"])
        log.info("%s: resuming %s after epoch %d", description, run_dir, start_epoch)
    steps_per_epoch = len(epoch_batches(split.train, config.batch_size, config.seed, 0,
                                        placement))
    total_steps = max(1, steps_per_epoch * config.epochs)
    warmup = recipe_warmup_steps(config, steps_per_epoch)
    parameters = list(state_module.parameters())
    images_on_device = data.images.to(placement.device)
    labels_on_device = data.labels.to(placement.device)
    for epoch in range(start_epoch, stop):
        model.train()
        batches = epoch_batches(split.train, config.batch_size, config.seed, epoch, placement)
        augment_rng = torch.Generator().manual_seed(config.seed * 7919 + epoch * 31
                                                    + placement.rank)
        loss_sum, seen, started = 0.0, 0, time.perf_counter()
        bar = Progress(len(batches), f"{description} epoch {epoch + 1}/{config.epochs}",
                       "batch", stream=None if placement.is_main else io.StringIO())
        for i, index in enumerate(batches):
            global_step = epoch * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(config.lr, global_step, total_steps, warmup)
            index = index.to(placement.device)
            inputs = prepare_batch(images_on_device[index], normalize, True, None,
                                   augment_rng).contiguous(memory_format=placement.memory_format)
            optimizer.zero_grad(set_to_none=True)
            loss = step(inputs, labels_on_device[index], global_step, scaler)
            average_gradients(parameters, placement)
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss * len(index)
            seen += len(index)
            rate = seen * placement.world_size / (time.perf_counter() - started)
            bar.update(i + 1, note=f"loss {loss_sum / seen:.3f}, {rate:.1f} images/s")
        bar.close()
        seconds = time.perf_counter() - started
        record = {"epoch": epoch + 1, "loss": loss_sum / max(1, seen), "seconds": seconds,
                  "images_per_s": seen * placement.world_size / max(seconds, 1e-9)}
        history.append(record)
        log.info("%s epoch %d/%d: loss %.4f, %.1f images/s", description, epoch + 1,
                 config.epochs, record["loss"], record["images_per_s"])
        if placement.is_main:
            save_checkpoint(run_dir / CHECKPOINT_FILE, {
                "schema_version": SCHEMA_VERSION, "epoch": epoch + 1,
                "model": state_module.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "history": history})
    return history


def _start(run_dir: Path, identity: dict[str, Any], placement: Placement) -> dict[str, Any] | None:
    """Rank 0 checks/records the run identity first; the others then read the checkpoint."""
    if not placement.distributed:
        return start_or_resume(run_dir, identity)
    checkpoint = start_or_resume(run_dir, identity) if placement.is_main else None
    dist.barrier()
    if not placement.is_main:
        path = run_dir / CHECKPOINT_FILE
        checkpoint = load_checkpoint(path) if path.exists() else None
    return checkpoint


def iterate_eval(data: ImageSet, indices: torch.Tensor, batch_size: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels) batches of ``indices`` in order."""
    for i in range(0, len(indices), batch_size):
        index = indices[i:i + batch_size]
        yield data.images[index], data.labels[index]
