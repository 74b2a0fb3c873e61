"""count(): MACs and params equal PyTorch's own counts; peak memory equals a live trace."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import random_archs
from edgenas import build_model, count, get_preset
from memory_trace import measured_peak_activation_bytes


def torch_counts(arch) -> tuple[int, int]:
    """(MACs, params) as PyTorch counts them, on the meta device (no compute)."""
    with torch.device("meta"):
        model = build_model(arch).eval()
        image = torch.empty(1, arch.in_channels, arch.resolution, arch.resolution)
        with FlopCounterMode(display=False) as flops:
            model(image)
    total = flops.get_total_flops()
    assert total % 2 == 0
    return total // 2, sum(p.numel() for p in model.parameters())


def test_presets_count_exactly_like_pytorch(preset_name: str) -> None:
    arch = get_preset(preset_name)
    counts = count(arch)
    assert (counts.macs, counts.params) == torch_counts(arch)


#: Random archs per space held to PyTorch's counts: as many as fit in about half a minute of
#: CI each (an `imagenet` arch takes PyTorch's counter about 0.6 s, a `cifar` one 0.3 s).
RANDOM_ARCHS = {"cifar": 100, "imagenet": 50}


@pytest.mark.parametrize("space", ["cifar", "imagenet"])
def test_random_archs_count_exactly_like_pytorch(space: str) -> None:
    for arch in random_archs(space, RANDOM_ARCHS[space], seed=5000):
        counts = count(arch)
        assert (counts.macs, counts.params) == torch_counts(arch), arch.to_json()


def test_mobilenetv2_is_300_8_mmacs() -> None:
    assert count(get_preset("mobilenetv2")).macs == pytest.approx(300.8e6, rel=0.01)


def _check_memory(arch) -> None:
    model = build_model(arch)
    image = torch.randn(1, arch.in_channels, arch.resolution, arch.resolution)
    expected = measured_peak_activation_bytes(model, image)
    counts = count(arch)
    assert counts.peak_activation_elements * 4 == expected, arch.to_json()
    params = sum(p.numel() for p in model.parameters())
    assert counts.memory_bytes("fp32") == 4 * params + expected


def test_peak_memory_of_presets_matches_a_live_tensor_trace(preset_name: str) -> None:
    _check_memory(get_preset(preset_name))


def test_peak_memory_of_random_cifar_archs_matches_a_live_tensor_trace() -> None:
    for arch in random_archs("cifar", 30, seed=700):
        _check_memory(arch)


def test_peak_memory_of_random_imagenet_archs_matches_a_live_tensor_trace() -> None:
    for arch in random_archs("imagenet", 3, seed=900):
        _check_memory(arch)


def test_memory_scales_with_element_size() -> None:
    counts = count(get_preset("resnet20"))
    assert counts.memory_bytes("fp32") == 2 * counts.memory_bytes("fp16")
    assert counts.memory_bytes("fp16") == 2 * counts.memory_bytes("int8")
    with pytest.raises(ValueError, match="precision 'fp64' not in"):
        counts.memory_bytes("fp64")


def test_residual_inputs_stay_alive_so_resnets_peak_above_two_tensors() -> None:
    # stage 0 of resnet20: input, conv1 output, conv2 output live together (3 x 16x32x32)
    # plus the caller's image (3x32x32)
    assert count(get_preset("resnet20")).peak_activation_elements >= 3 * 16 * 32 * 32 + 3 * 32 * 32


def test_analytic_side_imports_neither_torch_nor_tensorrt() -> None:
    code = ("import sys, edgenas; edgenas.count(edgenas.get_preset('mobilenetv2')); "
            "print('torch' in sys.modules, 'tensorrt' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
