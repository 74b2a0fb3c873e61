"""PyTorch modules for the layers of `edgenas.space.plan`; one module per layer kind.

The plan decides *what* a block is made of; this file only turns each planned layer into
plain `torch.nn` modules, so the builder, the supernet and the profiler share one
implementation of every op.
"""

from __future__ import annotations

import torch
from torch import nn

from edgenas.space.lowering import nonlinearity
from edgenas.space.plan import Classifier, Conv, Layer, Pool, SqueezeExcite, Unit


def make_activation(name: str | None) -> nn.Module:
    """The module for an activation or gate name of `edgenas.space.lowering` (None: linear)."""
    if name is None:
        return nn.Identity()
    form = nonlinearity(name)
    module_class = getattr(nn, form.torch_module)
    return module_class(inplace=True) if form.torch_inplace else module_class()


class ConvBNAct(nn.Sequential):
    """Convolution (no bias), batch norm, optional activation: torchvision's Conv2dNormActivation."""

    def __init__(self, spec: Conv) -> None:
        super().__init__(
            nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel, spec.stride,
                      spec.kernel // 2, groups=spec.groups, bias=False),
            nn.BatchNorm2d(spec.out_channels),
            make_activation(spec.activation),
        )


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation: rescale channels by a gate computed from their means."""

    def __init__(self, spec: SqueezeExcite) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(spec.channels, spec.squeeze_channels, 1)
        self.act = make_activation(spec.reduce_activation)
        self.expand = nn.Conv2d(spec.squeeze_channels, spec.channels, 1)
        self.gate = make_activation(spec.gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


def make_layer(spec: Layer) -> nn.Module:
    """The module for one planned layer."""
    if isinstance(spec, Conv):
        return ConvBNAct(spec)
    if isinstance(spec, SqueezeExcite):
        return SqueezeExcitation(spec)
    if isinstance(spec, Pool):
        return nn.MaxPool2d(2, 2) if spec.kind == "max" else nn.AvgPool2d(2, 2)
    raise TypeError(f"no module for layer {spec!r}")


class UnitBlock(nn.Module):
    """A planned unit: a chain of layers, optionally plus a shortcut, then an activation."""

    def __init__(self, unit: Unit) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(make_layer(layer) for layer in unit.layers))
        self.shortcut: nn.Module | None = None
        if isinstance(unit.shortcut, Conv):
            self.shortcut = ConvBNAct(unit.shortcut)
        elif unit.shortcut == "identity":
            self.shortcut = nn.Identity()
        self.post_activation = make_activation(unit.post_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        if self.shortcut is not None:
            out = self.post_activation(out + self.shortcut(x))
        return out


class ClassifierHead(nn.Module):
    """Global average pool, flatten, dropout, linear."""

    def __init__(self, spec: Classifier) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.linear = nn.Linear(spec.in_features, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(torch.flatten(self.pool(x), 1)))
