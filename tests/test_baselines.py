"""Hand-designed baselines and the like-for-like assessment the report and H3 use."""

from __future__ import annotations

import pytest

from conftest import tiny_space
from edgenas import get_preset, get_space
from edgenas.assess import predict_latency, slug
from edgenas.profile.measure import measure_latency
from edgenas.cost.count import count
from edgenas.device.descriptor import get_device
from edgenas.errors import ProfileError
from edgenas.profile.lut import open_lut
from edgenas.space.baselines import baseline_archs, mobilenetv2_in_space


def test_cifar_baselines_are_the_papers_networks_sized_for_the_space() -> None:
    space = get_space("cifar")
    baselines = baseline_archs(space)
    assert list(baselines) == ["ResNet-20", "ResNet-56", "MobileNetV2 (in space)"]
    assert baselines["ResNet-20"] == get_preset("resnet20")
    assert count(baselines["ResNet-56"]).params == count(get_preset("resnet56")).params
    mbv2 = baselines["MobileNetV2 (in space)"]
    assert space.contains(mbv2)
    assert [len(s.blocks) for s in mbv2.stages] == [1, 2, 3, 4]
    assert {(b.op, b.kernel, b.expansion, b.se) for s in mbv2.stages for b in s.blocks} == {
        ("mbconv", 3, 6.0, False)}
    assert [s.channels for s in mbv2.stages] == [max(c.channels) for c in space.stages]


def test_imagenet_baselines_are_torchvision_mobilenetv2_at_two_widths() -> None:
    space = get_space("imagenet")
    baselines = baseline_archs(space)
    assert baselines["MobileNetV2 1.0"] == get_preset("mobilenetv2")
    assert count(baselines["MobileNetV2 1.0"]).params == 3_504_872  # torchvision's count
    assert count(baselines["MobileNetV2 0.5"]).macs < count(baselines["MobileNetV2 1.0"]).macs


def test_mobilenetv2_in_space_fits_any_space() -> None:
    space = tiny_space()
    arch = mobilenetv2_in_space(space)
    space.validate(arch)
    assert arch.resolution == max(space.resolutions)


def test_latency_is_measured_for_archs_outside_the_space_and_predicted_only_inside(
        tables_from_another_cpu) -> None:
    space = get_space("cifar")
    with pytest.raises(ProfileError, match="is stale"):  # the table names another CPU
        open_lut(get_device("host-cpu"), space, tables_from_another_cpu)
    lut = open_lut(get_device("host-cpu"), space, tables_from_another_cpu, allow_stale=True)
    baselines = baseline_archs(space)
    assert predict_latency(lut, baselines["ResNet-20"]) is None
    assert predict_latency(lut, baselines["MobileNetV2 (in space)"]) > 0
    assert predict_latency(None, baselines["MobileNetV2 (in space)"]) is None
    small = {"ResNet-20": baselines["ResNet-20"], "in space": space.sample(3)}
    measured = measure_latency(get_device("host-cpu"), small)
    assert set(measured) == set(small) and all(ms > 0 for ms in measured.values())


@pytest.mark.parametrize("name, expected", [("MobileNetV2 (in space)", "mobilenetv2-in-space"),
                                            ("ResNet-20", "resnet-20"), ("///", "net")])
def test_slug_gives_safe_folder_names(name: str, expected: str) -> None:
    assert slug(name) == expected
