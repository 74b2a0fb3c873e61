"""SuperNet internals: slots per depth position, kernel centre crop, active path, refusals.

(Subnet equivalence, counts and 50 sampled archs: tests/test_supernet.py.)
"""

from __future__ import annotations

import pytest
import torch

from conftest import random_archs
from edgenas import ArchError, get_space
from edgenas.nn.supernet import SuperNet, stage_slots
from edgenas.space.plan import stage_blocks, stage_depth


@pytest.fixture(scope="module")
def cifar_supernet() -> SuperNet:
    """The cifar supernet with non-trivial BN statistics and affine parameters."""
    torch.manual_seed(0)
    supernet = SuperNet(get_space("cifar"))
    with torch.no_grad():
        for name, buffer in supernet.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
        for name, param in supernet.named_parameters():
            if "bn_weight" in name:
                param.uniform_(0.5, 1.5)
            elif "bn_bias" in name or name.endswith("bias"):
                param.normal_(0, 0.1)
        supernet.classifier.weight.normal_(0, 0.5)
    return supernet.eval()


def test_set_active_selects_the_path_forward_runs(cifar_supernet: SuperNet) -> None:
    arch = get_space("cifar").sample(7)
    image = torch.randn(1, 3, arch.resolution, arch.resolution)
    cifar_supernet.set_active(arch)
    with torch.no_grad():
        torch.testing.assert_close(cifar_supernet(image), cifar_supernet(image, arch))


def test_depth_slots_cover_the_deepest_stage_after_the_depth_multiplier() -> None:
    space = get_space("cifar")
    deepest = max(random_archs("cifar", 200, seed=4000),
                  key=lambda a: stage_depth(a, a.stages[1]))
    assert stage_slots(space, 1) >= stage_depth(deepest, deepest.stages[1])
    assert stage_slots(space, 1) == 6  # depths up to 4, depth multiplier up to 1.5


def test_repeated_blocks_get_their_own_slot_weights(cifar_supernet: SuperNet) -> None:
    arch = next(a for a in random_archs("cifar", 200, seed=5000)
                if a.depth_mult > 1 and len(list(stage_blocks(a, a.stages[1])))
                > len(a.stages[1].blocks) and a.stages[1].blocks[-1].op != "skip")
    keys = [key for key, _ in cifar_supernet.route(arch) if key.startswith("s1_")]
    assert len(keys) == len(set(keys)) == len(list(stage_blocks(arch, arch.stages[1])))


def test_smaller_kernel_is_the_centre_of_the_shared_kernel(cifar_supernet: SuperNet) -> None:
    arch = get_space("cifar").sample(11)
    key, unit = next((k, u) for k, u in cifar_supernet.route(arch) if "_b" in k and u.layers)
    layer = cifar_supernet.slots[key].layers[next(iter(cifar_supernet.slots[key].layers))]
    spec = next(s for s in unit.layers if hasattr(s, "kernel"))
    weight = layer.conv_weight(spec)
    start = (layer.max_kernel - spec.kernel) // 2
    assert weight.data_ptr() == layer.weight[:, :, start:, start:].data_ptr()


def test_arch_outside_the_space_is_refused(cifar_supernet: SuperNet) -> None:
    from dataclasses import replace

    arch = replace(get_space("cifar").sample(0), resolution=64)
    with pytest.raises(ArchError, match="resolution"):
        cifar_supernet(torch.randn(1, 3, 64, 64), arch)


def test_supernet_training_step_reaches_only_the_active_weights() -> None:
    from tiny_space import tiny_space

    space = tiny_space()
    supernet = SuperNet(space).train()
    arch = space.sample(3)
    supernet(torch.randn(4, 3, 32, 32), arch).logsumexp(1).mean().backward()
    used = {key for key, _ in supernet.route(arch)}
    for name, param in supernet.named_parameters():
        slot = name.split(".")[1] if name.startswith("slots.") else "classifier"
        if slot not in used and slot != "classifier":
            assert param.grad is None, name
