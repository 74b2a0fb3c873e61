"""Archs from the cheap corner of a space, where searches put their fronts.

A search drives towards the cheapest archs that still classify well, so its fronts sit at
the floor of the space's MACs. Random archs almost never go there: on the `cifar` space the
cheapest tenth of a random pool spans 3.5-15 M MACs, while a main job's front of 2026-12-07
(host J) spanned 1.6-2.8 M, below every network the table had been fitted and judged on.
Its predictions there were extrapolations, and the fastest pick's was 30 % off. A table
fitted and judged on archs from that corner knows it (docs/latency.md).

A cheap arch is a random arch in which a random share of the genes, from half of them to
all, is set one gene after the other to the choice with the fewest MACs given the others
(ties drawn at random: an activation or a pooling choice costs no MACs but does cost time).
The genes left alone keep the random arch's diversity, so the set spans the corner rather
than repeating its single cheapest arch.
"""

from __future__ import annotations

import random

from edgenas.cost.count import count
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace

#: The least share of genes a cheap arch has set to their cheapest choice.
LEAST_SHARE = 0.5


def cheap_arch(space: SearchSpace, seed: int) -> Arch:
    """One arch of ``space``'s cheap corner (see the module docstring), fixed by ``seed``."""
    rng = random.Random(seed)
    genes = space.genes()
    params = {name: rng.choice(choices) for name, choices in genes.items()}
    names = list(genes)
    rng.shuffle(names)
    for name in names[:round(len(names) * rng.uniform(LEAST_SHARE, 1.0))]:
        macs = {}
        for choice in genes[name]:
            params[name] = choice
            macs[choice] = count(space.decode(params)).macs
        fewest = min(macs.values())
        params[name] = rng.choice([choice for choice, m in macs.items() if m == fewest])
    return space.decode(params)
