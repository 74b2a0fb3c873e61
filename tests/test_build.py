"""build_model: plain PyTorch modules that match the reference networks exactly."""

from __future__ import annotations

import pytest
import torch
import torchvision

from conftest import random_archs
from edgenas import ArchError, build_model, get_preset
from edgenas.space import Block, Stage


def test_mobilenetv2_has_torchvisions_parameter_count() -> None:
    ours = build_model(get_preset("mobilenetv2"))
    assert sum(p.numel() for p in ours.parameters()) == 3_504_872
    reference = torchvision.models.mobilenet_v2()
    assert sum(p.numel() for p in reference.parameters()) == 3_504_872


def test_mobilenetv2_computes_the_same_function_as_torchvision() -> None:
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v2().eval()
    ours = build_model(get_preset("mobilenetv2")).eval()
    ref_state, our_state = reference.state_dict(), ours.state_dict()
    assert [v.shape for v in ref_state.values()] == [v.shape for v in our_state.values()]
    ours.load_state_dict(dict(zip(our_state, ref_state.values())))
    image = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, actual = reference(image), ours(image)
    assert actual.shape == (2, 1000)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_resnet56_is_the_papers_085m_baseline() -> None:
    params = sum(p.numel() for p in build_model(get_preset("resnet56")).parameters())
    assert params == pytest.approx(0.85e6, rel=0.01)


def test_every_preset_maps_images_to_logits(preset_name: str) -> None:
    arch = get_preset(preset_name)
    model = build_model(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, arch.in_channels, arch.resolution, arch.resolution))
    assert out.shape == (2, arch.num_classes)


def test_random_cifar_archs_build_and_run() -> None:
    for arch in random_archs("cifar", 20, seed=300):
        model = build_model(arch).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, arch.resolution, arch.resolution))
        assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_random_archs_train_one_step() -> None:
    arch = random_archs("cifar", 1, seed=11)[0]
    model = build_model(arch).train()
    loss = model(torch.randn(4, 3, arch.resolution, arch.resolution)).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_invalid_arch_fails_before_torch_sees_it() -> None:
    arch = get_preset("resnet20")
    bad = arch.with_stage(1, Stage(32, 2, (Block("skip"), Block("basic"))))
    with pytest.raises(ArchError, match=r"stages\[1\]\.blocks\[0\]\.op: 'skip' cannot open"):
        build_model(bad)
