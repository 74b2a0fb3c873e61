"""A fixed-length numeric description of any arch, for surrogate accuracy predictors.

Built from the `Arch` value itself rather than a space's Optuna encoding, so that archs
outside the space (the hand-designed baselines of a ground truth) get features too. It
holds what accuracy plausibly depends on: input size, exact costs (log MACs, params,
memory), how many blocks of each op the network runs, and per stage its width, depth and
way of down-sampling.
"""

from __future__ import annotations

import math

import numpy as np

from edgenas.cost.count import count
from edgenas.space.arch import DOWNSAMPLES, OPS, Arch
from edgenas.space.plan import stage_blocks

#: Per-stage features are kept for this many stages (padded with zeros, extra ones pooled).
MAX_STAGES = 8


def arch_features(arch: Arch) -> np.ndarray:
    """The feature vector (see `feature_names` for what each entry is)."""
    counts = count(arch)
    op_blocks = dict.fromkeys(OPS, 0.0)
    kernels, expansions, se, hswish, total = 0.0, 0.0, 0.0, 0.0, 0
    per_stage = np.zeros((MAX_STAGES, 2 + len(DOWNSAMPLES)))
    for i, stage in enumerate(arch.stages):
        # The blocks the network builds (the plan repeats a stage's last block, skips too),
        # not the listed ones scaled: a listed skip repeated is still no layer.
        live = [b for b in stage_blocks(arch, stage) if b.op != "skip"]
        depth = len(live)
        for block in live:
            op_blocks[block.op] += 1.0
            kernels += block.kernel
            expansions += block.expansion
            se += float(block.se)
            hswish += float(block.activation in ("hswish", "swish"))
            total += 1
        row = min(i, MAX_STAGES - 1)
        per_stage[row, 0] = max(per_stage[row, 0], stage.channels * arch.width_mult)
        per_stage[row, 1] += depth
        if stage.stride == 2:
            per_stage[row, 2 + DOWNSAMPLES.index(stage.downsample)] = 1.0
    total = max(total, 1)
    head = [arch.resolution, arch.width_mult, arch.depth_mult,
            math.log(counts.macs), math.log(counts.params),
            math.log(counts.memory_bytes("fp32")), len(arch.stages)]
    micro = [kernels / total, expansions / total, se / total, hswish / total]
    return np.array([*head, *op_blocks.values(), *micro, *per_stage.ravel()], dtype=float)


def feature_names() -> list[str]:
    """Names of `arch_features`' entries, in order."""
    names = ["resolution", "width_mult", "depth_mult", "log_macs", "log_params",
             "log_memory", "stages", *(f"blocks_{op}" for op in OPS),
             "mean_kernel", "mean_expansion", "se_share", "swish_share"]
    for i in range(MAX_STAGES):
        names += [f"s{i}.channels", f"s{i}.depth",
                  *(f"s{i}.down_{kind}" for kind in DOWNSAMPLES)]
    return names
