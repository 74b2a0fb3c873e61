"""The weight-sharing supernet: subnets are real, standalone, and inherit its weights."""

from __future__ import annotations

import torch

from conftest import random_archs
from edgenas import count, get_space
from edgenas.nn.model import Network
from edgenas.nn.supernet import SuperNet
from edgenas.train.subnet_sampling import largest_arch, smallest_arch


def _supernet() -> SuperNet:
    torch.manual_seed(0)
    return SuperNet(get_space("cifar"))


def test_subnet_computes_exactly_what_the_supernet_path_computes() -> None:
    supernet = _supernet().eval()
    for arch in random_archs("cifar", 12, seed=70):
        subnet = supernet.subnet(arch).eval()
        assert isinstance(subnet, Network)
        image = torch.randn(2, 3, arch.resolution, arch.resolution)
        with torch.no_grad():
            torch.testing.assert_close(subnet(image), supernet(image, arch), rtol=1e-5, atol=1e-6)


def test_subnet_counts_equal_the_analytic_counts() -> None:
    supernet = _supernet()
    for arch in random_archs("cifar", 20, seed=90):
        subnet = supernet.subnet(arch)
        assert sum(p.numel() for p in subnet.parameters()) == count(arch).params


def test_every_sampled_arch_trains_through_the_supernet() -> None:
    supernet = _supernet().train()
    for arch in [largest_arch(get_space("cifar")), smallest_arch(get_space("cifar")),
                 *random_archs("cifar", 30, seed=11)]:
        out = supernet(torch.randn(2, 3, arch.resolution, arch.resolution), arch)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert any(p.grad is not None for p in supernet.parameters())


def test_subnets_share_weights_with_the_supernet() -> None:
    supernet = _supernet()
    arch = get_space("cifar").sample(3)
    before = supernet.subnet(arch).state_dict()
    with torch.no_grad():
        for p in supernet.parameters():
            p.add_(1.0)
    after = supernet.subnet(arch).state_dict()
    changed = [k for k in before if before[k].dtype.is_floating_point
               and not torch.equal(before[k], after[k]) and "running" not in k]
    assert changed  # the subnet's weights are slices of the supernet's
