"""A stratified sample of a search space, for a ground truth that covers it.

A uniform sample of the `cifar` space is nearly always a mixture of every op, and its
macro genes fall where chance puts them; an estimator judged on such a sample is never
tested on, say, an all-`dwsep` network at the narrowest width. So every op kind is made
dominant in an equal share of the sample (the rest are plain uniform draws, as a search
meets them), and the macro genes (resolution, width, depth multipliers) run through every
combination of their values once per block of draws, in a seeded order per block.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace

#: Share of a dominated arch's block slots that take the dominant op.
DOMINANCE = 0.75
MACRO_GENES = ("macro.resolution", "macro.width_mult", "macro.depth_mult")


@dataclass(frozen=True)
class SampledArch:
    """One arch of a ground-truth sample and the stratum it was drawn for."""

    arch: Arch
    stratum: str            # "op:<kind>" (that op dominates) or "uniform"


def stratified_sample(space: SearchSpace, n: int, seed: int = 0) -> list[SampledArch]:
    """``n`` distinct archs: op strata in turn (then "uniform"), macro combinations balanced.

    Deterministic for (space, n, seed), so a resumed or extended build sees the same archs
    in the same order (the first ``n`` of a larger sample are the smaller sample).
    """
    rng = random.Random(seed)
    genes = space.genes()
    ops = [op for op in space.ops if op != "skip"]
    strata = [f"op:{op}" for op in ops] + ["uniform"]
    macro = [name for name in MACRO_GENES if name in genes]
    combos = list(itertools.product(*(genes[name] for name in macro)))
    block: list[tuple[object, ...]] = []
    seen: set[str] = set()
    sample: list[SampledArch] = []
    attempts = 0
    while len(sample) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise RuntimeError(f"space {space.name!r} has fewer than {n} distinct archs")
        stratum = strata[len(sample) % len(strata)]
        params = {name: rng.choice(choices) for name, choices in genes.items()}
        if len(sample) % len(combos) == 0 and not block:
            block = rng.sample(combos, len(combos))   # every combination once per block
        params.update(zip(macro, block[len(sample) % len(combos)]))
        if stratum.startswith("op:"):
            dominant = stratum[3:]
            for name in genes:
                if name.endswith(".op") and dominant in genes[name] \
                        and rng.random() < DOMINANCE:
                    params[name] = dominant
        arch = space.decode(params)
        key = arch.to_json()
        if key in seen:
            continue
        seen.add(key)
        sample.append(SampledArch(arch, stratum))
        if len(sample) % len(combos) == 0:
            block = []
    return sample
