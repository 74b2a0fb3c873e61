"""Which subnets a supernet trains on in one step: the sandwich rule, or FairNAS's fair paths.

Sandwich (Yu et al., BigNAS): the largest, the smallest and a few random archs.
"Largest" and "smallest" are by multiply-accumulates (`edgenas.cost.count`), found by
coordinate search over the genes (two passes; macro and meso genes first, since they
decide which micro genes are active). With several ops per block there is no single
"max of every gene", so MACs are the measure of size that the search also optimises.

Fair (Chu et al., FairNAS, ICCV 2021): as many paths as a block slot has op choices, so
that every slot trains every one of its ops exactly once per step; the sandwich trains
the largest's and smallest's ops every step and every other op only when a random path
happens to draw it.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

from edgenas.cost import count
from edgenas.space.arch import Arch
from edgenas.space.search_space import GeneValue, SearchSpace

#: which training paths `train_supernet` can sample (`TrainConfig.sampling`)
SAMPLINGS: tuple[str, ...] = ("sandwich", "fair")

_BLOCK_GENE = re.compile(r"^s\d+\.b\d+\.")   # s{i}.b{j}.op|kernel|...: see SearchSpace
_DEPTH_GENE = re.compile(r"^s\d+\.depth$")      # with macro.depth_mult: which slots run


def _extreme_arch(space: SearchSpace, largest: bool) -> Arch:
    genes = space.genes()
    params = {name: choices[0] for name, choices in genes.items()}
    sign = 1 if largest else -1
    for _ in range(2):
        for name, choices in genes.items():
            def score(value: object) -> int:
                trial = dict(params, **{name: value})
                return sign * count(space.decode(trial)).macs
            params[name] = max(choices, key=score)  # ties keep the earliest choice
    return space.decode(params)


@lru_cache(maxsize=16)
def largest_arch(space: SearchSpace) -> Arch:
    """The arch of ``space`` with (locally) the most MACs: the sandwich rule's teacher."""
    return _extreme_arch(space, largest=True)


@lru_cache(maxsize=16)
def smallest_arch(space: SearchSpace) -> Arch:
    """The arch of ``space`` with (locally) the fewest MACs."""
    return _extreme_arch(space, largest=False)


def sandwich(space: SearchSpace, rng: random.Random, num_random: int = 2) -> list[Arch]:
    """Largest, smallest, then ``num_random`` uniformly sampled archs (one training step)."""
    return [largest_arch(space), smallest_arch(space),
            *(space.sample(rng) for _ in range(num_random))]


def fair_paths(space: SearchSpace, rng: random.Random) -> list[Arch]:
    """FairNAS's paths of one step: every block slot takes each of its op choices once.

    There are m paths, m the most choices of any block gene: the op's in any space with
    more ops than kernels, expansions or activations (FairNAS's m). Each block gene (op,
    kernel, expansion, SE, activation of every slot) walks through a seeded permutation
    of its choices, cycled when it has fewer than m, so each choice is taken equally
    often (within one). Stage depths and the depth multiplier are at their maximum, so
    that every slot is present in every path (a drawn multiplier of 0.5 would switch off
    half the slots of a path, and those slots' ops would miss their update); the ``skip``
    op is what makes a stage shallower. The other macro genes (resolution, width) and meso
    genes (channels, stride, down-sampling) are drawn uniformly per path: they select
    slices of the same weights rather than separate weights.
    """
    genes = space.genes()
    block_genes = {name: choices for name, choices in genes.items() if _BLOCK_GENE.match(name)}
    m = max((len(choices) for choices in block_genes.values()), default=1)
    cycles = {name: rng.sample(choices, len(choices)) for name, choices in block_genes.items()}
    paths = []
    for p in range(m):
        params: dict[str, GeneValue] = {}
        for name, choices in genes.items():
            if name in cycles:
                params[name] = cycles[name][p % len(choices)]
            elif _DEPTH_GENE.match(name) or name == "macro.depth_mult":
                params[name] = max(choices)  # type: ignore[type-var]
            else:
                params[name] = rng.choice(choices)
        paths.append(space.decode(params))
    return paths

