"""FairNAS's strict fairness: every block slot trains each of its op choices once per step."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from edgenas import get_space
from edgenas.cli import main
from edgenas.commands.training import SAMPLINGS as SAMPLING_CHOICES  # the command offers the trainer's
from edgenas.errors import ConfigError
from edgenas.nn.supernet import SuperNet
from edgenas.space import SearchSpace
from edgenas.train.checkpoint import read_run
from edgenas.train.loop import TrainConfig
from edgenas.train.subnet_sampling import SAMPLINGS, fair_paths
from tiny_space import tiny_space


def _slot_counts(space: SearchSpace, paths: list, field: str) -> dict[str, tuple[Counter, tuple]]:
    """Per encoded block gene ``s{i}.b{j}.{field}``: how often each value was taken, choices."""
    counts = {}
    for name, choices in space.genes().items():
        if name.endswith(f".{field}") and ".b" in name:
            i, j = (int(part[1:]) for part in name.split(".")[:2])
            counts[name] = (Counter(getattr(p.stages[i].blocks[j], field) for p in paths),
                            choices)
    return counts


@pytest.mark.parametrize("seed", range(5))
def test_each_slot_takes_every_op_once_when_it_has_the_most_choices(seed: int) -> None:
    space = get_space("cifar")
    paths = fair_paths(space, random.Random(seed))
    m = max(len(choices) for choices in space.genes().values())
    assert len(paths) == m == len(space.ops)
    for name, (counts, choices) in _slot_counts(space, paths, "op").items():
        assert set(counts) == set(choices), name
        if len(choices) == m:
            assert set(counts.values()) == {1}, name
        else:  # a stage's first slot has no 'skip': its permutation cycles
            assert max(counts.values()) - min(counts.values()) <= 1, name


def test_other_block_genes_take_their_choices_equally_often() -> None:
    # both ops read every field, so the fields are visible in the archs
    space = SearchSpace(
        name="fields", num_classes=10, stem=get_space("cifar").stem, head=tiny_space().head,
        stages=tiny_space().stages, resolutions=(32,), ops=("mbconv", "bottleneck"),
        kernels=(3, 5, 7), expansions=(3.0, 6.0), activations=("relu", "hswish", "swish"))
    for seed in range(5):
        paths = fair_paths(space, random.Random(seed))
        assert len(paths) == 3  # the kernel and activation genes have the most choices
        for field in ("op", "kernel", "expansion", "se", "activation"):
            for name, (counts, choices) in _slot_counts(space, paths, field).items():
                assert set(counts) == set(choices), name
                assert max(counts.values()) - min(counts.values()) <= 1, name


def test_fair_paths_are_archs_of_the_space_with_every_slot_present() -> None:
    for space in (get_space("cifar"), tiny_space()):
        for seed in range(5):
            for arch in fair_paths(space, random.Random(seed)):
                space.validate(arch)
                assert [len(s.blocks) for s in arch.stages] == [max(c.depths)
                                                                for c in space.stages]
                assert arch.depth_mult == max(space.depth_mults)


def test_macro_and_meso_genes_are_drawn_per_path() -> None:
    space = get_space("cifar")
    paths = [p for seed in range(4) for p in fair_paths(space, random.Random(seed))]
    assert {p.resolution for p in paths} == set(space.resolutions)
    assert {p.width_mult for p in paths} == set(space.width_mults)
    assert {p.stages[2].channels for p in paths} == set(space.stages[2].channels)
    assert {p.stages[1].downsample for p in paths} == set(space.stages[1].downsamples)


def test_fair_paths_are_a_function_of_the_seed() -> None:
    space = get_space("cifar")
    assert fair_paths(space, random.Random(3)) == fair_paths(space, random.Random(3))
    assert fair_paths(space, random.Random(3)) != fair_paths(space, random.Random(4))


def test_one_fair_step_reaches_the_weights_of_every_op_of_every_slot() -> None:
    space = tiny_space()
    torch.manual_seed(0)
    supernet = SuperNet(space).train()
    images, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for arch in fair_paths(space, random.Random(0)):
        F.cross_entropy(supernet(images, arch), labels).backward()
    weighted = [key for key in supernet.slots if key.startswith("s") and key != "stem"
                and not key.endswith("_skip")]
    assert len(weighted) == 2 * 3 * 3  # 2 stages x 3 slots (depth 2 x 1.5) x 3 ops
    for key in weighted:
        grads = [p.grad for p in supernet.slots[key].parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), key


def test_sampling_setting_is_checked_and_recorded_only_when_not_the_default() -> None:
    assert "sampling" not in TrainConfig().to_dict()  # runs recorded before it still match
    assert TrainConfig(sampling="fair").to_dict()["sampling"] == "fair"
    with pytest.raises(ConfigError, match=r"sampling.*'greedy' not in \('sandwich', 'fair'\)"):
        TrainConfig(sampling="greedy")
    assert SAMPLING_CHOICES == SAMPLINGS


def test_supernet_train_command_trains_with_fair_sampling(tmp_path: Path, capsys) -> None:
    assert main(["supernet", "train", "--space", "cifar", "--data", "digits",
                 "--sampling", "fair", "--epochs", "1", "--out", str(tmp_path),
                 "--batch-size", "8", "--limit", "24", "--val-limit", "8",
                 "--calib-batches", "1"]) == 0
    assert "validation accuracy (largest subnet)" in capsys.readouterr().out
    assert read_run(tmp_path)["config"]["sampling"] == "fair"
    result = json.loads((tmp_path / "result.json").read_text())
    assert len(result["history"]) == 1 and result["history"][0]["loss"] > 0
