"""Zero-cost proxies: scores of an untrained network, from the papers' formulas.

* NASWOT (Mellor et al., ICML 2021): a batch of real images gives each image a binary
  code, which side of zero every rectifier input falls on; a network that separates the
  images well has dissimilar codes. Score: log |det K| with K[i, j] the number of units
  on which images i and j agree. Higher is better (the paper's sign).
* synflow (Tanaka et al., NeurIPS 2020; used as a NAS proxy by Abdelfattah et al., ICLR
  2021): with every weight replaced by its absolute value and an all-ones input (it is
  data-free by design, only the input shape comes from the data), R = sum of the outputs;
  score = sum over parameters of |theta * dR/dtheta|. Computed in float64 with batch norm
  in inference mode at initialisation (an identity), and reported as its natural log so
  deep networks do not overflow the table. Higher is better.

Both use a network freshly initialised with a fixed seed, so a score is a pure function
of (arch, batch, seed).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgenas.nn.model import build_model
from edgenas.space.arch import Arch

#: Modules whose input sign defines a linear region (what NASWOT's codes record).
RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)


def _fresh_model(arch: Arch, seed: int) -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return build_model(arch)
    finally:
        torch.random.set_rng_state(state)


def _fit_resolution(batch: torch.Tensor, arch: Arch) -> torch.Tensor:
    if batch.shape[-1] == arch.resolution:
        return batch
    return nn.functional.interpolate(batch, size=(arch.resolution, arch.resolution),
                                     mode="bilinear", align_corners=False, antialias=True)


def naswot(arch: Arch, batch: torch.Tensor, seed: int = 0) -> float:
    """log |det K_H| of ``arch`` at initialisation on ``batch`` (normalised images)."""
    model = _fresh_model(arch, seed).train()   # batch statistics, as at the start of training
    inputs = _fit_resolution(batch, arch)
    n = inputs.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def record(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        codes = (args[0].detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(codes @ codes.T).add_((1 - codes) @ (1 - codes).T)

    hooks = [m.register_forward_pre_hook(record) for m in model.modules()
             if isinstance(m, RECTIFIERS)]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0 else -math.inf


def synflow(arch: Arch, seed: int = 0) -> float:
    """log of the synaptic-flow score of ``arch`` at initialisation."""
    model = _fresh_model(arch, seed).double().eval()
    with torch.no_grad():
        for param in model.parameters():
            param.abs_()
    ones = torch.ones(1, arch.in_channels, arch.resolution, arch.resolution,
                      dtype=torch.float64)
    model.zero_grad(set_to_none=True)
    model(ones).sum().backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters()
                if p.grad is not None)
    return math.log(total) if total > 0 and math.isfinite(total) else -math.inf
