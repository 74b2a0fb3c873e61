"""Where a trained network's weights come from: a stand-alone run or a supernet run.

Both kinds of run record their dataset spec and split, so the export is verified on the
very validation images the accuracy was measured on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgenas.data.augment import prepare_batch
from edgenas.errors import EdgenasError
from edgenas.nn.model import build_model
from edgenas.space.arch import Arch
from edgenas.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, read_run
from edgenas.train.evaluate import recalibrate_bn
from edgenas.train.rundata import reopen_data
from edgenas.train.supernet_training import load_supernet


def trained_model(arch: Arch, run_dir: str | Path) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """(model in eval mode, the run's RunData, provenance) for ``arch`` from ``run_dir``.

    A stand-alone run (``edgenas train``) must have trained this very arch; a supernet run
    (``edgenas supernet train``) gives the subnet's inherited weights with batch norm
    re-estimated on training batches, as the search scored it.
    """
    run = read_run(Path(run_dir))
    kind = run.get("kind")
    if kind == "arch":
        if Arch.from_json(run["arch"]) != arch:
            raise EdgenasError(f"{run_dir}: trained another arch than the one being exported; "
                               "pass the run of this arch, or a supernet run")
        model = build_model(arch)
        model.load_state_dict(load_checkpoint(Path(run_dir) / CHECKPOINT_FILE)["model"])
        run_data = reopen_data(run["data"])
        source = f"stand-alone training run {run_dir}"
    elif kind == "supernet":
        supernet, run_data, _ = load_supernet(run_dir, None)
        model = supernet.subnet(arch).cpu()
        train = run_data.split.train[:512]
        batches = [prepare_batch(run_data.data.images[train[i:i + 128]], run_data.normalize,
                                 False, arch.resolution) for i in range(0, len(train), 128)]
        recalibrate_bn(model, batches)
        source = f"supernet run {run_dir} (inherited weights, BN recalibrated)"
    else:
        raise EdgenasError(f"{run_dir}: run.json kind {kind!r} is neither 'arch' nor 'supernet'")
    return model.eval(), run_data, {"weights": source, "split": {"split": run_data.split.to_dict(),
                                                                  "data": run_data.spec}}
