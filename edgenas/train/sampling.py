"""Which subnets a supernet trains on: the sandwich rule's largest, smallest and random ones.

"Largest" and "smallest" are by multiply-accumulates (`edgenas.cost.count`), found by
coordinate search over the genes (two passes; macro and meso genes first, since they
decide which micro genes are active). With several ops per block there is no single
"max of every gene", so MACs are the measure of size that the search also optimises.
"""

from __future__ import annotations

import random
from functools import lru_cache

from edgenas.cost import count
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace


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
