"""A network's padded work (`edgenas.profile.padded_work`) and the correction fitted on it.

The devices here are written down, not timed: one whose networks cost their padded work
(a runtime computing in 16-channel blocks, whose isolated units add up to something else)
and one whose networks cost their unit sums. The cross-validated choice must tell them
apart, and a table that chose padded work must predict with the block it fitted.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edgenas.cost.count import count, unit_cost
from edgenas.device.descriptor import get_device
from edgenas.profile.correction import (PADDED_MIN, Networks, PaddedWork, describe_correction,
                                        fit_correction)
from edgenas.profile.keys import space_units
from edgenas.profile.latency import LatencyModel, unit_sum
from edgenas.profile.lut import LUT
from edgenas.profile.padded_work import BLOCKS, CONV_KINDS, TERMS, _kind, padded_work
from edgenas.profile.records import Timing
from edgenas.profile.profiler import fit_on
from edgenas.space import get_space
from edgenas.space.arch import Arch
from edgenas.space.plan import (Conv, Pool, SqueezeExcite, classifier, layer_output_size,
                                sites)

from tiny_space import tiny_space

CIFAR = get_space("cifar")


def _archs(space, n: int, seed: int) -> list[Arch]:
    return [space.sample(seed + i) for i in range(n)]


def _column(prefix: str) -> np.ndarray:
    return np.array([term.startswith(prefix) for term in TERMS])


def test_at_block_one_the_convolutions_work_is_the_counted_macs() -> None:
    for arch in _archs(CIFAR, 25, 100):
        work = padded_work(arch, 1)
        squeeze = sum(2 * layer.channels * layer.squeeze_channels for site in sites(arch)
                      if not site.unit.is_identity for layer in site.unit.layers
                      if isinstance(layer, SqueezeExcite))
        head = classifier(arch)
        convolutions = count(arch).macs - squeeze - head.in_features * head.num_classes
        assert work[_column("mmacs_")].sum() * 1e6 == pytest.approx(convolutions, rel=1e-9)


def test_padding_adds_work_but_never_layers() -> None:
    grew = 0
    for arch in _archs(CIFAR, 25, 200):
        by_block = [padded_work(arch, block) for block in BLOCKS]
        for smaller, larger in zip(by_block, by_block[1:]):
            assert np.all(larger >= smaller - 1e-12)
            layers = _column("layers_") | _column("adds") | _column("network")
            assert np.array_equal(larger[layers], smaller[layers])
        grew += by_block[-1][_column("mmacs_")].sum() > by_block[0][_column("mmacs_")].sum()
    assert grew == 25  # every cifar arch has a layer whose channels 16 does not divide


def test_a_skipped_block_does_no_work() -> None:
    arch = CIFAR.sample(7)
    work = padded_work(arch, 16)
    units = [site for site in sites(arch) if not site.unit.is_identity]
    assert work[TERMS.index("network")] == 1.0
    convs = sum(1 for site in units for layer in site.unit.layers if hasattr(layer, "kernel"))
    convs += sum(1 for site in units if hasattr(site.unit.shortcut, "kernel"))
    assert work[_column("layers_conv") | _column("layers_dw")].sum() == convs


def test_each_convolution_is_counted_under_its_own_kind() -> None:
    # depth-wise or dense, by kernel: each is a kernel of its own in the runtime
    for arch in _archs(CIFAR, 10, 300):
        counted: Counter = Counter()
        for site in sites(arch):
            if site.unit.is_identity:
                continue
            for layer in [*site.unit.layers, site.unit.shortcut]:
                if isinstance(layer, Conv):
                    counted[f"{'dw' if layer.depthwise else 'conv'}{layer.kernel}"] += 1
        work = padded_work(arch, 1)
        assert {kind: work[TERMS.index(f"layers_{kind}")] for kind in CONV_KINDS} == \
            {kind: counted[kind] for kind in CONV_KINDS}
        assert set(counted) <= set(CONV_KINDS)


def test_a_convolution_s_work_pads_its_channels_but_a_depth_wise_one_reads_one_channel() -> None:
    # recounted layer by layer at a 16-channel block: MACs and output elements per kind
    def pad(channels: int) -> int:
        return -(-channels // 16) * 16

    for arch in _archs(CIFAR, 10, 400):
        macs = {kind: 0.0 for kind in CONV_KINDS}
        elements = {kind: 0.0 for kind in CONV_KINDS}
        for site in sites(arch):
            if site.unit.is_identity:
                continue
            size, convs = site.height, []
            for layer in site.unit.layers:
                convs.append((layer, layer_output_size(layer, size)))
                size = convs[-1][1]
            if isinstance(site.unit.shortcut, Conv):
                convs.append((site.unit.shortcut, layer_output_size(site.unit.shortcut,
                                                                    site.height)))
            for layer, out in convs:
                if not isinstance(layer, Conv):
                    continue
                kind = f"{'dw' if layer.depthwise else 'conv'}{layer.kernel}"
                per_output = 1 if layer.depthwise else pad(layer.in_channels // layer.groups)
                macs[kind] += pad(layer.out_channels) * per_output * layer.kernel ** 2 * out ** 2
                elements[kind] += pad(layer.out_channels) * out ** 2
        work = padded_work(arch, 16)
        assert {kind: work[TERMS.index(f"mmacs_{kind}")] * 1e6 for kind in CONV_KINDS} == \
            pytest.approx(macs, rel=1e-12)
        assert {kind: work[TERMS.index(f"melements_{kind}")] * 1e6 for kind in CONV_KINDS} == \
            pytest.approx(elements, rel=1e-12)


def test_squeeze_excitation_pooling_and_residual_adds_are_counted_with_their_padded_elements(
        ) -> None:
    def pad(channels: int) -> int:
        return -(-channels // 16) * 16

    seen: Counter = Counter()
    for arch in _archs(CIFAR, 25, 500):
        counted = dict.fromkeys(("layers_se", "melements_se", "layers_pool", "melements_pool",
                                 "adds"), 0.0)
        for site in sites(arch):
            if site.unit.is_identity:
                continue
            size, channels = site.height, site.unit.in_channels
            for layer in site.unit.layers:
                out = layer_output_size(layer, size)
                if isinstance(layer, SqueezeExcite):
                    counted["layers_se"] += 1
                    counted["melements_se"] += pad(layer.channels) * size ** 2 / 1e6
                elif isinstance(layer, Pool):
                    counted["layers_pool"] += 1
                    counted["melements_pool"] += pad(channels) * out ** 2 / 1e6
                channels = layer.out_channels if isinstance(layer, Conv) else channels
                size = out
            counted["adds"] += site.unit.shortcut is not None
        work = padded_work(arch, 16)
        assert {term: work[TERMS.index(term)] for term in counted} == \
            pytest.approx(counted, rel=1e-12)
        seen.update({term: value > 0 for term, value in counted.items()})
    assert all(seen[term] > 0 for term in ("layers_se", "layers_pool", "adds"))


def test_a_kernel_between_or_beyond_the_listed_sizes_counts_as_the_next_larger_or_largest() -> None:
    assert _kind(Conv(8, 16, 2)) == "conv3" and _kind(Conv(8, 16, 9)) == "conv7"
    assert _kind(Conv(8, 8, 4, groups=8)) == "dw5" and _kind(Conv(8, 8, 11, groups=8)) == "dw7"
    assert _kind(Conv(8, 16, 3, groups=8)) == "conv3"  # grouped, not depth-wise


# -- the correction ---------------------------------------------------------------------------

def _device_on_padded_work(archs: list[Arch]) -> np.ndarray:
    """A runtime whose network time is its work in 16-channel blocks: MACs, memory traffic,
    a launch per layer and a call per network, no two kinds at the same price."""
    rng = np.random.default_rng(0)
    weights = np.zeros(len(TERMS))
    weights[TERMS.index("network")] = 0.05
    for prefix, scale in (("mmacs_", 0.004), ("melements_", 0.2), ("layers_", 0.003)):
        column = _column(prefix)
        weights[column] = scale * rng.uniform(0.5, 2.0, column.sum())
    return np.array([padded_work(arch, 16) @ weights for arch in archs])


def _inputs(archs: list[Arch]) -> dict:
    """What `fit_correction` is given: unit sums as an isolated-unit table would time them
    (plain MACs, one call per unit), per-kind sums, and the padded work by block."""
    sums = np.array([sum(unit_cost(site.unit, site.height).macs for site in sites(arch)
                         if not site.unit.is_identity) * 5e-6 for arch in archs])
    units = np.array([sum(not site.unit.is_identity for site in sites(arch)) for arch in archs])
    padded = {block: np.array([padded_work(arch, block) for arch in archs]) for block in BLOCKS}
    return {"sums": sums + 0.01 * units, "units": units, "padded": padded}


def test_a_runtime_that_computes_in_channel_blocks_is_fitted_by_its_padded_work() -> None:
    archs = _archs(CIFAR, 80, 300)
    measured = _device_on_padded_work(archs)
    fit, held = slice(0, 50), slice(50, 80)
    inputs = _inputs(archs)
    coef = fit_correction(inputs["sums"][fit], inputs["units"][fit], measured[fit],
                          padded={b: m[fit] for b, m in inputs["padded"].items()})
    assert coef["form"] == "padded_work" and coef["block"] == 16
    assert coef["cv"]["padded_work"]["within_10pct"] == 1.0
    assert max(score["within_10pct"] for form, score in coef["cv"].items()
               if form != "padded_work") < 0.9
    weights = np.array([coef["terms"][term] for term in TERMS])
    predicted = inputs["padded"][16][held] @ weights
    assert np.max(np.abs(predicted / measured[held] - 1)) < 0.01


def test_a_runtime_whose_units_add_up_keeps_a_line_through_their_sum() -> None:
    archs = _archs(CIFAR, 80, 400)
    inputs = _inputs(archs)
    rng = np.random.default_rng(1)
    measured = (1.08 * inputs["sums"] + 0.02) * rng.uniform(0.98, 1.02, len(archs))
    coef = fit_correction(inputs["sums"], inputs["units"], measured, padded=inputs["padded"])
    assert coef["form"] != "padded_work"
    assert coef["cv"][coef["form"]]["within_10pct"] == 1.0


def test_padded_work_is_no_candidate_on_too_few_networks() -> None:
    archs = _archs(CIFAR, PADDED_MIN - 1, 500)
    inputs = _inputs(archs)
    coef = fit_correction(inputs["sums"], inputs["units"], _device_on_padded_work(archs),
                          padded=inputs["padded"])
    assert "padded_work" not in coef["cv"]


def test_a_table_that_chose_padded_work_predicts_with_the_block_it_fitted() -> None:
    space = tiny_space()
    lut = LUT.new(get_device("host-cpu"), space, {})
    for key, (unit, size) in space_units(space).items():
        lut.entries[key] = Timing(1e-5 * unit_cost(unit, size).macs + 0.01)
    archs = _archs(space, 60, 600)
    measured = _device_on_padded_work(archs)
    fit_on(lut, archs, list(measured))
    assert (lut.correction["form"], lut.correction["block"]) == ("padded_work", 16)
    model = LatencyModel(lut)
    weights = np.array([lut.correction["terms"][term] for term in TERMS])
    for arch in _archs(space, 10, 700):
        assert model.predict(arch) == pytest.approx(padded_work(arch, 16) @ weights, rel=1e-9)
        assert model.predict(arch) != pytest.approx(unit_sum(lut, arch)[0], rel=0.05)


def test_the_block_kept_is_the_one_with_the_smallest_relative_error() -> None:
    """Networks differ in latency a hundredfold, and a table is judged in per cent: the
    block whose fit misses a large network by 20 % but the small ones by nothing is kept
    over one that fits the large network exactly but misses each small one by 30 %."""
    measured = np.array([1.0, 1.0, 1.0, 1.0, 100.0])

    def work(network_term: list[float]) -> np.ndarray:
        design = np.zeros((len(measured), len(TERMS)))
        design[:, TERMS.index("network")] = network_term
        return design

    padded = {8: work([1.3, 0.7, 1.3, 0.7, 100.0]), 16: work([1.0, 1.0, 1.0, 1.0, 120.0])}
    coef = PaddedWork().fit(Networks(measured, measured, padded=padded), measured)
    assert coef["block"] == 16


def test_a_term_a_stored_padded_work_correction_lacks_weighs_nothing() -> None:
    """A table fitted before a term existed still predicts: the term counts as weight 0."""
    work = np.random.default_rng(0).uniform(1.0, 2.0, (3, len(TERMS)))
    coef = {"form": "padded_work", "block": 16, "terms": {TERMS[0]: 0.5, TERMS[1]: 0.25}}
    predicted = PaddedWork().predict(coef, Networks(np.zeros(3), np.zeros(3),
                                                    padded={16: work}))
    assert predicted == pytest.approx(0.5 * work[:, 0] + 0.25 * work[:, 1])


def test_a_padded_work_correction_says_its_block_and_the_terms_it_weights() -> None:
    coef = {"form": "padded_work", "block": 8,
            "terms": {"network": 0.5, "mmacs_conv": 0.0, "melements_conv": 2.0}}
    assert describe_correction(coef) == ("padded_work: whole-network work, channels padded "
                                         "to blocks of 8, 2 of 3 terms weighted")


def test_the_readme_states_the_networks_padded_work_needs() -> None:
    from pathlib import Path
    import re

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    found = re.search(r"from (\d+) networks on, the network's padded work", readme)
    assert found and int(found.group(1)) == PADDED_MIN
    latency = " ".join((Path(__file__).resolve().parents[1] / "docs" / "latency.md")
                       .read_text().split())
    assert f"| padded work ({PADDED_MIN} networks or more) |" in latency
    assert "a block of " + ", ".join(str(b) for b in BLOCKS[:-1]) + f" or {BLOCKS[-1]}" in latency
