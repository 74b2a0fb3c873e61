"""The cheap corner of a space: where searches put their fronts, and where a table is now
fitted and judged too. MACs are counted, not timed: nothing here depends on the host."""

from __future__ import annotations

import numpy as np

from edgenas.cost.count import count
from edgenas.profile.cheap_archs import cheap_arch
from edgenas.profile.profiler import (CHEAP_EVERY, CHEAP_FITTING_SEED, FITTING_SEED,
                                      arch_stream, fitting_archs, search_biased_archs)
from edgenas.space import get_space
from tiny_space import tiny_space


def cheap_archs(space, offset: int, number: int) -> list:
    """``number`` cheap archs from the seed ``offset`` on."""
    return [cheap_arch(space, offset + i) for i in range(number)]


def _mmacs(archs) -> np.ndarray:
    return np.array([count(arch).macs / 1e6 for arch in archs])


def test_cheap_archs_reach_below_where_random_archs_go_and_stay_in_the_space() -> None:
    space = get_space("cifar")
    cheap, random = _mmacs(cheap_archs(space, 7, 30)), _mmacs(arch_stream(space, 7, 300))
    assert np.median(cheap) < np.percentile(random, 10)  # the old search-biased set's edge
    assert cheap.min() < random.min()
    assert all(space.contains(arch) for arch in cheap_archs(space, 7, 30))


def test_cheap_archs_are_not_all_the_one_cheapest_arch() -> None:
    archs = cheap_archs(get_space("cifar"), 0, 20)
    assert len({arch.to_json() for arch in archs}) == 20
    assert np.ptp(_mmacs(archs)) > 1.0  # they span the corner, not a point


def test_a_seed_gives_the_same_cheap_arch() -> None:
    space = get_space("cifar")
    assert cheap_arch(space, 3) == cheap_arch(space, 3) != cheap_arch(space, 4)


def test_the_fitting_stream_interleaves_cheap_archs_and_keeps_the_random_ones_in_order() -> None:
    space = get_space("cifar")
    stream = [arch.to_json() for arch in fitting_archs(space, 22)]
    cheap = [arch.to_json() for arch in cheap_archs(space, CHEAP_FITTING_SEED, 22 // CHEAP_EVERY)]
    assert stream[CHEAP_EVERY - 1::CHEAP_EVERY] == cheap
    # the random archs are the stream tables were fitted on before: a table timed then
    # keeps its networks and only adds the cheap ones
    randoms = [a for i, a in enumerate(stream) if (i + 1) % CHEAP_EVERY]
    assert randoms == [arch.to_json() for arch in arch_stream(space, FITTING_SEED, len(randoms))]


def test_the_search_biased_held_out_set_is_cheap_and_apart_from_the_fitting_stream() -> None:
    space = get_space("cifar")
    held_out = {arch.to_json() for arch in search_biased_archs(space, 15)}
    assert not held_out & {arch.to_json() for arch in fitting_archs(space, 150)}
    assert np.median(_mmacs(search_biased_archs(space, 15))) < np.percentile(
        _mmacs(arch_stream(space, 0, 300)), 10)


def test_choices_that_cost_no_macs_stay_drawn_at_random() -> None:
    """An activation costs no MACs but does cost time: the corner keeps both kinds."""
    blocks = [block for arch in cheap_archs(get_space("cifar"), 0, 40)
              for stage in arch.stages for block in stage.blocks]
    hswish = np.mean([block.activation == "hswish" for block in blocks])
    assert 0.35 < hswish < 0.65


def test_in_a_small_space_the_fitting_stream_skips_repeats_and_still_grows_by_its_start() -> None:
    """A tiny space's corner repeats archs (169 distinct of 200 draws): a table times an
    arch once, so a repeat would leave it a network short."""
    stream = [arch.to_json() for arch in fitting_archs(tiny_space(), 60)]
    assert len(set(stream)) == 60
    assert [arch.to_json() for arch in fitting_archs(tiny_space(), 40)] == stream[:40]
    biased = [arch.to_json() for arch in search_biased_archs(tiny_space(), 30)]
    assert len(set(biased)) == 30
