"""The Arch value: JSON round trip, canonical form, and validation errors that name fields."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import random_archs
from edgenas import Arch, ArchError, get_preset, get_space
from edgenas.space import Block, Stage
from edgenas.space.arch import SCHEMA_VERSION, load_arch


def test_presets_round_trip_through_json(preset_name: str) -> None:
    arch = get_preset(preset_name)
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.from_json(arch.to_json(indent=2)) == arch


@pytest.mark.parametrize("space", ["cifar", "imagenet"])
def test_random_archs_round_trip_through_json(space: str) -> None:
    for arch in random_archs(space, 200):
        assert Arch.from_json(arch.to_json()) == arch


def test_json_carries_schema_version() -> None:
    data = json.loads(get_preset("resnet20").to_json())
    assert data["schema_version"] == SCHEMA_VERSION


def test_equal_archs_have_byte_equal_canonical_json() -> None:
    a, b = get_preset("mobilenetv2"), get_preset("mobilenetv2")
    assert a.to_json() == b.to_json() and hash(a) == hash(b)


def test_fields_an_op_ignores_are_neutral_so_equal_networks_compare_equal() -> None:
    assert Block("skip", kernel=7, se=True) == Block("skip")
    assert Block("conv", 3, expansion=6.0) == Block("conv", 3, expansion=1.0)
    assert Block("mbconv", 3, expansion=6.0) != Block("mbconv", 3, expansion=3.0)


def _with_block(arch: Arch, stage: int, block: int, **changes: object) -> dict:
    data = arch.to_dict()
    data["stages"][stage]["blocks"][block].update(changes)
    return data


def test_kernel_outside_space_is_named_by_field_path() -> None:
    space = get_space("cifar")
    arch = space.sample(3)
    data = _with_block(arch, 2, 0, op="mbconv", kernel=9)
    bad = Arch.from_dict(data)  # a valid network, just not in the space
    with pytest.raises(ArchError, match=r"^stages\[2\]\.blocks\[0\]\.kernel: 9 not in \(3, 5\)"):
        space.validate(bad)
    assert not space.contains(bad)


def test_unknown_op_is_rejected_with_the_choices() -> None:
    data = _with_block(get_preset("resnet20"), 1, 2, op="transformer")
    with pytest.raises(ArchError, match=r"stages\[1\]\.blocks\[2\]\.op: 'transformer' not in"):
        Arch.from_dict(data)


def test_even_kernel_is_rejected() -> None:
    data = _with_block(get_preset("resnet20"), 0, 0, kernel=4)
    with pytest.raises(ArchError, match=r"stages\[0\]\.blocks\[0\]\.kernel: 4 must be an odd"):
        Arch.from_dict(data)


def test_unknown_field_is_rejected() -> None:
    data = get_preset("resnet20").to_dict()
    data["stages"][0]["chanels"] = 16
    with pytest.raises(ArchError, match=r"stages\[0\]\.chanels: unknown field"):
        Arch.from_dict(data)


def test_wrong_type_is_rejected_not_coerced() -> None:
    data = get_preset("resnet20").to_dict()
    data["stages"][1]["channels"] = "32"
    with pytest.raises(ArchError, match=r"stages\[1\]\.channels: expected an integer"):
        Arch.from_dict(data)
    data = get_preset("resnet20").to_dict()
    data["resolution"] = True
    with pytest.raises(ArchError, match=r"^resolution: expected an integer"):
        Arch.from_dict(data)


def test_missing_field_is_named() -> None:
    data = get_preset("resnet20").to_dict()
    del data["stages"][2]["stride"]
    with pytest.raises(ArchError, match=r"stages\[2\]\.stride: missing"):
        Arch.from_dict(data)


def test_skip_cannot_open_a_stage_that_changes_shape() -> None:
    data = _with_block(get_preset("resnet20"), 1, 0, op="skip")
    with pytest.raises(ArchError, match=r"stages\[1\]\.blocks\[0\]\.op: 'skip' cannot open"):
        Arch.from_dict(data)


def test_skip_may_open_a_pooled_stage_of_equal_width() -> None:
    arch = get_preset("resnet20")
    stage = Stage(16, 2, (Block("skip"), Block("basic")), downsample="maxpool")
    Arch.from_dict(arch.with_stage(1, stage).to_dict())  # no error


def test_resolution_that_vanishes_under_downsampling_is_rejected() -> None:
    data = get_preset("resnet20").to_dict()
    data["resolution"] = 2
    for stage in data["stages"][1:]:
        stage["downsample"] = "maxpool"
    with pytest.raises(ArchError, match=r"stages\[2\]\.stride: resolution 2 is down-sampled"):
        Arch.from_dict(data)


def test_unsupported_schema_version_is_rejected() -> None:
    data = get_preset("resnet20").to_dict()
    data["schema_version"] = 99
    with pytest.raises(ArchError, match="schema_version: 99 is not supported"):
        Arch.from_dict(data)


def test_errors_from_a_file_name_the_file(tmp_path) -> None:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(_with_block(get_preset("resnet20"), 0, 1, kernel=0)))
    with pytest.raises(ArchError, match=rf"^{path}: stages\[0\]\.blocks\[1\]\.kernel"):
        load_arch(path)
    path.write_text("{not json")
    with pytest.raises(ArchError, match=rf"^{path}: not valid JSON"):
        load_arch(path)
    with pytest.raises(ArchError, match="cannot read arch file"):
        load_arch(tmp_path / "missing.json")


def test_with_stage_replaces_one_stage() -> None:
    arch = get_preset("resnet20")
    stage = replace(arch.stages[2], channels=128)
    assert arch.with_stage(2, stage).stages[2].channels == 128
    assert arch.stages[2].channels == 64
