"""SearchSpace: fixed-length encoding, sampling, membership, exact size."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from dataclasses import replace

import pytest

from conftest import random_archs, tiny_space
from edgenas import Arch, SearchSpace, SpaceError, get_preset, get_space
from edgenas.errors import PresetError
from edgenas.space import Head, StageChoices, Stem
from edgenas.space.arch import OP_USES


@pytest.mark.parametrize("space_name", ["cifar", "imagenet"])
def test_encode_decode_round_trips_for_many_random_archs(space_name: str) -> None:
    space = get_space(space_name)
    for arch in random_archs(space_name, 500, seed=1000):
        assert space.contains(arch)
        assert space.decode(space.encode(arch)) == arch


@pytest.mark.parametrize("space_name", ["cifar", "imagenet"])
def test_every_gene_is_always_present(space_name: str) -> None:
    space = get_space(space_name)
    genes = space.genes()
    for arch in random_archs(space_name, 50):
        params = space.encode(arch)
        assert list(params) == list(genes)
        assert all(params[name] in choices for name, choices in genes.items())


def test_inactive_genes_are_ignored_on_decode() -> None:
    space = get_space("cifar")
    rng = random.Random(7)
    for arch in random_archs("cifar", 50):
        params = space.encode(arch)
        inactive = [name for name in params if _inactive(arch, name)]
        assert inactive, "every random cifar arch has some unused slot or field"
        for name in inactive:
            params[name] = rng.choice(space.genes()[name])
        assert space.decode(params) == arch


def _inactive(arch: Arch, gene: str) -> bool:
    parts = gene.split(".")
    if len(parts) != 3 or not parts[0].startswith("s"):
        return False
    stage = arch.stages[int(parts[0][1:])]
    slot = int(parts[1][1:])
    if slot >= len(stage.blocks):
        return True
    return parts[2] != "op" and parts[2] not in OP_USES[stage.blocks[slot].op]


def test_sampling_is_reproducible_from_a_seed() -> None:
    space = get_space("cifar")
    assert space.sample(42) == space.sample(42)
    assert space.sample(random.Random(5)) == space.sample(5)
    assert len({space.sample(seed).to_json() for seed in range(100)}) == 100


def test_mobilenetv2_lies_in_the_imagenet_space() -> None:
    space = get_space("imagenet")
    mbv2 = get_preset("mobilenetv2")
    assert space.contains(mbv2)
    assert space.decode(space.encode(mbv2)) == mbv2


def test_resnet_is_not_in_the_cifar_space_and_validate_says_why() -> None:
    space = get_space("cifar")
    assert not space.contains(get_preset("resnet20"))
    with pytest.raises(Exception, match="stem: Stem"):
        space.validate(get_preset("resnet20"))


def test_size_equals_brute_force_enumeration_of_a_small_space() -> None:
    space = tiny_space()
    genes = space.genes()
    distinct = {space.decode(dict(zip(genes, values)))
                for values in itertools.product(*genes.values())}
    assert 1000 < len(distinct) < 100_000  # big enough to mean something, small enough to run
    assert space.size() == len(distinct)


def test_size_of_presets_is_astronomical_but_exact() -> None:
    assert isinstance(get_space("cifar").size(), int)
    assert get_space("cifar").size() > 10**25


def test_decode_rejects_missing_and_unknown_values() -> None:
    space = get_space("cifar")
    params = space.encode(space.sample(0))
    del params["s1.depth"]
    with pytest.raises(SpaceError, match="lack gene 's1.depth'"):
        space.decode(params)
    params = space.encode(space.sample(0))
    params["s0.b0.kernel"] = 9
    with pytest.raises(SpaceError, match=r"gene 's0.b0.kernel' = 9 not in \(3, 5\)"):
        space.decode(params)


def test_first_block_of_a_stage_never_samples_skip() -> None:
    space = get_space("cifar")
    assert "skip" not in space.genes()["s1.b0.op"]
    assert "skip" in space.genes()["s1.b1.op"]


def test_bad_space_definitions_are_refused() -> None:
    with pytest.raises(SpaceError, match="kernels"):
        SearchSpace(name="x", num_classes=10, stem=Stem(8), head=Head(),
                    stages=(StageChoices((8,), (1,)),), resolutions=(32,), kernels=())
    with pytest.raises(SpaceError, match=r"ops: 'attention' not in"):
        SearchSpace(name="x", num_classes=10, stem=Stem(8), head=Head(),
                    stages=(StageChoices((8,), (1,)),), resolutions=(32,), ops=("attention",))


def test_unknown_names_list_the_choices() -> None:
    with pytest.raises(PresetError, match=r"unknown search space 'cifar100'; choose from"):
        get_space("cifar100")
    with pytest.raises(PresetError, match=r"unknown architecture preset 'vgg'"):
        get_preset("vgg")


def test_equal_spaces_hash_alike_and_any_changed_choice_changes_the_hash() -> None:
    spelt_out = SearchSpace(  # tiny_space() built again, every default written out
        name="tiny", num_classes=10, stem=Stem(channels=8, kernel=3, stride=1, activation="relu"),
        head=Head(channels=0, activation="relu", dropout=0.0),
        stages=(StageChoices(channels=(8, 16), depths=(1, 2), strides=(1,),
                             downsamples=("stride",)),
                StageChoices(channels=(16,), depths=(1, 2), strides=(1, 2),
                             downsamples=("stride", "avgpool"))),
        resolutions=(32,), width_mults=(1.0,), depth_mults=(1.0, 2.0),
        ops=("conv", "mbconv", "skip"), kernels=(3, 5), expansions=(6.0,), se=(False,),
        activations=("relu",), in_channels=3)
    space = tiny_space()
    assert spelt_out is not space and spelt_out.space_hash() == space.space_hash()
    changed = [replace(space, kernels=(3,)), replace(space, ops=("conv", "mbconv")),
               replace(space, resolutions=(32, 40)), replace(space, head=Head(channels=64)),
               replace(space, stages=(space.stages[0], replace(space.stages[1], channels=(24,))))]
    assert len({space.space_hash(), *(other.space_hash() for other in changed)}) == 6


def test_space_hash_is_the_same_in_every_process() -> None:
    """Tables and searches store the hash: another process, with another string hash seed,
    must compute the same one."""
    code = "import edgenas; print(edgenas.get_space('cifar').space_hash())"
    elsewhere = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert elsewhere.stdout.strip() == get_space("cifar").space_hash()
