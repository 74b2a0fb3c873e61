"""Max-size layers whose smaller versions are slices: the weight sharing of the supernet.

Each class holds the weights of the largest layer a supernet slot can need and runs any
planned layer (`edgenas.space.plan.Conv`, `SqueezeExcite`) that fits inside it, by slicing
the first channels and centre-cropping the kernel (Once-for-All's elastic width, kernel
and expansion). ``export_into`` copies the slice into the plain module that
`edgenas.nn.blocks` builds for the same spec, so a subnet is an ordinary `Network`.

The functional forward passes here mirror `edgenas.nn.blocks` exactly (same padding,
BN eps/momentum, activation modules), which is what makes a subnet compute the same
function as the supernet on its active path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgenas.nn.blocks import ConvBNAct, SqueezeExcitation, UnitBlock, make_activation
from edgenas.space.plan import Conv, Layer, Pool, SqueezeExcite, Unit

# nn.BatchNorm2d's defaults, so exported BN layers behave like the shared ones
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def layer_kind(spec: Layer) -> str:
    """What kind of shared weights a layer needs, told apart by structure.

    Layers are named by structure (depth-wise or dense, followed by an activation or
    linear), not by position, so an optional layer (MBConv's expansion, SE) does not
    shift the others onto the wrong weights.
    """
    if isinstance(spec, Conv):
        kind = "dw" if spec.depthwise else "dense"
        return f"{kind}_{'linear' if spec.activation is None else 'act'}"
    if isinstance(spec, SqueezeExcite):
        return "se"
    return "pool"


def unit_layer_keys(unit: Unit) -> list[str]:
    """The name of the shared weights each layer of a unit uses: kind plus repeat count."""
    seen: dict[str, int] = {}
    keys = []
    for spec in unit.layers:
        kind = layer_kind(spec)
        keys.append(f"{kind}_{seen.get(kind, 0)}")
        seen[kind] = seen.get(kind, 0) + 1
    return keys


class ElasticConvBN(nn.Module):
    """Conv (no bias) + BN at maximum size; runs any `Conv` spec that fits by slicing."""

    def __init__(self, max_in: int, max_out: int, max_kernel: int, depthwise: bool) -> None:
        super().__init__()
        self.depthwise = depthwise
        self.max_in, self.max_out, self.max_kernel = max_in, max_out, max_kernel
        in_per_group = 1 if depthwise else max_in
        self.weight = nn.Parameter(torch.empty(max_out, in_per_group, max_kernel, max_kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn_weight = nn.Parameter(torch.ones(max_out))
        self.bn_bias = nn.Parameter(torch.zeros(max_out))
        self.register_buffer("running_mean", torch.zeros(max_out))
        self.register_buffer("running_var", torch.ones(max_out))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def fits(self, spec: Conv) -> bool:
        """Whether ``spec`` is a slice of these weights."""
        return (spec.depthwise == self.depthwise and spec.out_channels <= self.max_out
                and spec.in_channels <= self.max_in and spec.kernel <= self.max_kernel
                and (self.depthwise or spec.groups == 1))

    def conv_weight(self, spec: Conv) -> torch.Tensor:
        """First output/input channels, centre ``kernel x kernel`` of the max kernel."""
        start = (self.max_kernel - spec.kernel) // 2
        in_per_group = 1 if self.depthwise else spec.in_channels
        return self.weight[:spec.out_channels, :in_per_group,
                           start:start + spec.kernel, start:start + spec.kernel]

    def forward(self, x: torch.Tensor, spec: Conv) -> torch.Tensor:
        out = F.conv2d(x, self.conv_weight(spec), None, spec.stride, spec.kernel // 2, 1,
                       spec.groups)
        c = spec.out_channels
        if self.training:
            self.num_batches_tracked.add_(1)
        # slices of the running buffers are views: F.batch_norm updates them in place
        out = F.batch_norm(out, self.running_mean[:c], self.running_var[:c],
                           self.bn_weight[:c], self.bn_bias[:c], self.training,
                           BN_MOMENTUM, BN_EPS)
        return _activation(spec.activation)(out)

    @torch.no_grad()
    def export_into(self, module: ConvBNAct, spec: Conv) -> None:
        """Copy the slice for ``spec`` (weights and BN statistics) into a plain module."""
        conv, bn = module[0], module[1]
        c = spec.out_channels
        conv.weight.copy_(self.conv_weight(spec))
        bn.weight.copy_(self.bn_weight[:c])
        bn.bias.copy_(self.bn_bias[:c])
        bn.running_mean.copy_(self.running_mean[:c])
        bn.running_var.copy_(self.running_var[:c])
        bn.num_batches_tracked.copy_(self.num_batches_tracked)


class ElasticSE(nn.Module):
    """Squeeze-and-excitation at maximum width; smaller ones use the first channels."""

    def __init__(self, max_channels: int, max_squeeze: int) -> None:
        super().__init__()
        self.max_channels, self.max_squeeze = max_channels, max_squeeze
        reduce, expand = nn.Conv2d(max_channels, max_squeeze, 1), nn.Conv2d(max_squeeze,
                                                                            max_channels, 1)
        for conv in (reduce, expand):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        self.reduce_weight, self.reduce_bias = reduce.weight, reduce.bias
        self.expand_weight, self.expand_bias = expand.weight, expand.bias

    def fits(self, spec: SqueezeExcite) -> bool:
        """Whether ``spec`` is a slice of these weights."""
        return spec.channels <= self.max_channels and spec.squeeze_channels <= self.max_squeeze

    def _slices(self, spec: SqueezeExcite) -> tuple[torch.Tensor, ...]:
        c, s = spec.channels, spec.squeeze_channels
        return (self.reduce_weight[:s, :c], self.reduce_bias[:s],
                self.expand_weight[:c, :s], self.expand_bias[:c])

    def forward(self, x: torch.Tensor, spec: SqueezeExcite) -> torch.Tensor:
        reduce_w, reduce_b, expand_w, expand_b = self._slices(spec)
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = _activation(spec.reduce_activation)(F.conv2d(scale, reduce_w, reduce_b))
        return x * _activation(spec.gate)(F.conv2d(scale, expand_w, expand_b))

    @torch.no_grad()
    def export_into(self, module: SqueezeExcitation, spec: SqueezeExcite) -> None:
        """Copy the slice for ``spec`` into a plain module."""
        reduce_w, reduce_b, expand_w, expand_b = self._slices(spec)
        module.reduce.weight.copy_(reduce_w)
        module.reduce.bias.copy_(reduce_b)
        module.expand.weight.copy_(expand_w)
        module.expand.bias.copy_(expand_b)


class ElasticUnit(nn.Module):
    """The shared weights of every unit a supernet slot can hold (one op of one slot).

    Built from the set of planned units the slot can take; each layer key gets weights
    as large as the largest layer with that key.
    """

    def __init__(self, units: set[Unit] | list[Unit]) -> None:
        super().__init__()
        convs: dict[str, list[Conv]] = {}
        ses: dict[str, list[SqueezeExcite]] = {}
        shortcuts: list[Conv] = []
        for unit in units:
            for key, spec in zip(unit_layer_keys(unit), unit.layers):
                if isinstance(spec, Conv):
                    convs.setdefault(key, []).append(spec)
                elif isinstance(spec, SqueezeExcite):
                    ses.setdefault(key, []).append(spec)
            if isinstance(unit.shortcut, Conv):
                shortcuts.append(unit.shortcut)
        if shortcuts:
            convs["shortcut"] = shortcuts
        self.layers = nn.ModuleDict()
        for key, specs in sorted(convs.items()):
            self.layers[key] = ElasticConvBN(max(s.in_channels for s in specs),
                                             max(s.out_channels for s in specs),
                                             max(s.kernel for s in specs),
                                             specs[0].depthwise)
        for key, se_specs in sorted(ses.items()):
            self.layers[key] = ElasticSE(max(s.channels for s in se_specs),
                                         max(s.squeeze_channels for s in se_specs))

    def fits(self, unit: Unit) -> bool:
        """Whether every layer of ``unit`` is a slice of this slot's weights."""
        pairs = list(zip(unit_layer_keys(unit), unit.layers))
        if isinstance(unit.shortcut, Conv):
            pairs.append(("shortcut", unit.shortcut))
        for key, spec in pairs:
            if isinstance(spec, Pool):
                continue
            if key not in self.layers or not self.layers[key].fits(spec):  # type: ignore
                return False
        return True

    def forward(self, x: torch.Tensor, unit: Unit) -> torch.Tensor:
        out = x
        for key, spec in zip(unit_layer_keys(unit), unit.layers):
            out = run_layer(self.layers, key, spec, out)
        if unit.shortcut is None:
            return out
        residual = x if unit.shortcut == "identity" else self.layers["shortcut"](x, unit.shortcut)
        return _activation(unit.post_activation)(out + residual)

    def export_into(self, block: UnitBlock, unit: Unit) -> None:
        """Copy this unit's slices into the `UnitBlock` built for the same unit."""
        for key, spec, module in zip(unit_layer_keys(unit), unit.layers, block.layers):
            if not isinstance(spec, Pool):
                self.layers[key].export_into(module, spec)  # type: ignore[operator]
        if isinstance(unit.shortcut, Conv):
            self.layers["shortcut"].export_into(block.shortcut, unit.shortcut)  # type: ignore


def run_layer(layers: nn.ModuleDict, key: str, spec: Layer, x: torch.Tensor) -> torch.Tensor:
    """One planned layer on shared weights (pooling has none)."""
    if isinstance(spec, Pool):
        return F.max_pool2d(x, 2, 2) if spec.kind == "max" else F.avg_pool2d(x, 2, 2)
    return layers[key](x, spec)


class ElasticLinear(nn.Module):
    """The classifier's linear layer at maximum input width (first features are used)."""

    def __init__(self, max_in: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, max_in).normal_(0, 0.01))
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor, in_features: int) -> torch.Tensor:
        return F.linear(x, self.weight[:, :in_features], self.bias)

    @torch.no_grad()
    def export_into(self, module: nn.Linear) -> None:
        """Copy the slice into a plain `nn.Linear` of the subnet's width."""
        module.weight.copy_(self.weight[:, :module.in_features])
        module.bias.copy_(self.bias)


_ACTIVATIONS: dict[str | None, nn.Module] = {}


def _activation(name: str | None) -> nn.Module:
    """Activation modules hold no state, so one instance per name serves every layer."""
    if name not in _ACTIVATIONS:
        _ACTIVATIONS[name] = make_activation(name)
    return _ACTIVATIONS[name]
