"""Stand-alone training of one arch, from scratch or from the supernet's weights.

This is the ground truth the supernet's estimates are checked against, and the final
training of a searched arch. Under torchrun the network is wrapped in
`DistributedDataParallel` (its graph is static, unlike the supernet's).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from edgenas.data import open_dataset
from edgenas.data.images import ImageSet
from edgenas.errors import CheckpointError
from edgenas.locking import folder_lock
from edgenas.nn.model import build_model
from edgenas.space.arch import Arch
from edgenas.train.checkpoint import RESULT_FILE, write_json_atomic
from edgenas.train.evaluate import accuracy
from edgenas.train.loop import TrainConfig, fit
from edgenas.train.rundata import prepare_data
from edgenas.train.placement import Placement, broadcast_parameters, place


def train_arch(arch: Arch, data_spec: str, out_dir: str | Path, config: TrainConfig,
               init_from: str | Path | None = None, data: ImageSet | None = None,
               placement: Placement | None = None, cache_dir: str | Path | None = None,
               until_epoch: int | None = None) -> dict[str, Any]:
    """Train ``arch`` (or resume) into ``out_dir``; gives history and validation accuracy.

    With ``init_from`` (a supernet run directory) the network starts from the inherited
    weights, and the supernet run's split is reused, so that validation images are never
    ones the supernet trained on.

    ``until_epoch`` (below ``config.epochs``): stop there on the full recipe's schedule and
    score the network, a rung of successive halving; a later call without it continues the
    same run to the full recipe. A rung's score is kept (`rung_file`) and returned as it is
    when asked for again, even after the run went on: the weights of that epoch are gone.
    """
    placement = placement or place()
    if until_epoch is not None and until_epoch >= config.epochs:
        until_epoch = None
    with folder_lock(out_dir, "training", enabled=placement.is_main):
        if until_epoch is not None and (Path(out_dir) / rung_file(until_epoch)).exists():
            return json.loads((Path(out_dir) / rung_file(until_epoch)).read_text("utf-8"))
        return _train_arch(arch, data_spec, Path(out_dir), config, init_from, data, placement,
                           cache_dir, until_epoch)


def rung_file(epoch: int) -> str:
    """Where a run stopped at ``epoch`` for successive halving keeps its score."""
    return f"result-epoch{epoch}.json"


def _train_arch(arch: Arch, data_spec: str, out: Path, config: TrainConfig,
                init_from: str | Path | None, data: ImageSet | None, placement: Placement,
                cache_dir: str | Path | None, until_epoch: int | None) -> dict[str, Any]:
    if init_from is not None:
        from edgenas.train.supernet_training import load_supernet

        supernet, run_data, _ = load_supernet(init_from, placement, data)
        network = supernet.subnet(arch)
        del supernet
    else:
        run_data = prepare_data(data_spec, arch.num_classes, config.val_fraction,
                                config.data_seed,
                                config.limit, data, cache_dir)
        torch.manual_seed(config.seed)
        network = build_model(arch)
    network = network.to(placement.device, memory_format=placement.memory_format)
    broadcast_parameters(network, placement)
    model: nn.Module = network
    if placement.distributed:
        device_ids = [placement.device.index] if placement.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(network, device_ids=device_ids)
    identity = {"kind": "arch", "arch": arch.to_json(),
                "init_from": str(init_from) if init_from is not None else None,
                "data": {**run_data.to_dict(), "limit": config.limit},
                "config": config.to_dict()}
    started = time.perf_counter()

    def step(inputs: torch.Tensor, labels: torch.Tensor, global_step: int,
             scaler: torch.amp.GradScaler) -> float:
        if inputs.shape[-1] != arch.resolution:
            inputs = F.interpolate(inputs, size=(arch.resolution, arch.resolution),
                                   mode="bilinear", align_corners=False, antialias=True)
        with placement.autocast():
            loss = F.cross_entropy(model(inputs).float(), labels)
        scaler.scale(loss).backward()
        return float(loss.detach())

    history = fit(model, step, run_data.data, run_data.split, run_data.normalize, config, out,
                  identity, placement, "train", state_module=network, until_epoch=until_epoch)
    epochs = config.epochs if until_epoch is None else until_epoch
    if len(history) != epochs:
        raise CheckpointError(f"{out}: asked for the score after epoch {epochs}, but the run "
                              f"was trained {len(history)} epochs and kept no score of epoch "
                              f"{epochs}; delete {out} to train it again")
    result: dict[str, Any] = {"history": history, "epochs": epochs,
                              "train_seconds_this_call": time.perf_counter() - started}
    if placement.is_main:
        val = run_data.split.val if config.val_limit is None \
            else run_data.split.val[:config.val_limit]
        result["val_accuracy"] = accuracy(network, run_data.data, val, run_data.normalize,
                                          arch.resolution, placement, config.eval_batch_size)
        result["split"] = run_data.split.to_dict()
        write_json_atomic(result, out / (RESULT_FILE if until_epoch is None
                                         else rung_file(until_epoch)))
    return result


#: A network trained by a recipe converged when its validation accuracy is at least this
#: multiple of chance (1 / classes) ...
MIN_ACCURACY_OVER_CHANCE = 1.5
#: ... and it rose above chance by at least this share of what the most accurate network
#: trained with the same recipe rose (a short recipe lifts every net that learns well clear
#: of chance: one still near it has not shown what it can do).
MIN_SHARE_OF_BEST_GAIN = 0.25
CONVERGENCE_RULE = (f"a network converged when its validation accuracy is at least "
                    f"{MIN_ACCURACY_OVER_CHANCE:g} x chance (1 / classes) and it rose above "
                    f"chance by at least {100 * MIN_SHARE_OF_BEST_GAIN:g} % of what the most "
                    f"accurate network trained with the same recipe rose")


def convergence_floor(num_classes: int, best_accuracy: float | None = None) -> float:
    """The lowest validation accuracy that counts as converged (`CONVERGENCE_RULE`);
    ``best_accuracy``: the most accurate network trained with the same recipe, if known."""
    chance = 1.0 / num_classes
    floor = MIN_ACCURACY_OVER_CHANCE * chance
    if best_accuracy is not None:
        floor = max(floor, chance + MIN_SHARE_OF_BEST_GAIN * (best_accuracy - chance))
    return floor


def converged(val_accuracy: float, num_classes: int, best_accuracy: float | None = None
              ) -> bool:
    """Whether a trained network learned enough for its accuracy to be compared as a
    result of that network, not of how the recipe failed it: `CONVERGENCE_RULE`."""
    return val_accuracy >= convergence_floor(num_classes, best_accuracy)


def arch_folder(arch: Arch) -> str:
    """A short, stable folder name for an arch's training run."""
    return hashlib.sha256(arch.to_json().encode()).hexdigest()[:16]


def recipe_trainer(data_spec: str, root: str | Path, config: TrainConfig,
                   cache_dir: str | Path | None = None
                   ) -> Callable[..., dict[str, Any]]:
    """Train any arch with one recipe into ``root/<arch_folder>``: what a surrogate-assisted
    search calls per candidate, ``train(arch)`` or ``train(arch, epochs=k)`` for a rung of
    successive halving. A killed training resumes from its epoch checkpoint, and a
    finished one is only evaluated again, never retrained."""
    data = open_dataset(data_spec, cache_dir=cache_dir)

    def train(arch: Arch, epochs: int | None = None) -> dict[str, Any]:
        run_dir = Path(root) / arch_folder(arch)
        result = train_arch(arch, data_spec, run_dir, config, data=data, cache_dir=cache_dir,
                            until_epoch=epochs)
        return {"accuracy": result["val_accuracy"], "run_dir": str(run_dir),
                "epochs": result.get("epochs", config.epochs)}

    return train
