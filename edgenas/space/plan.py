"""How an `Arch` unfolds into layers: the one place that decides what each op is made of.

The model builder (`edgenas.nn`), the analytic cost model (`edgenas.cost`) and, later, the
profiler's micro-models all read these plans, so an op is defined once and the counts
cannot drift from what is built. Nothing here imports torch.

A network is a sequence of `Unit`s (stem, optional pooling, blocks, head convolution) and a
`Classifier`. A unit is a chain of layers plus an optional shortcut that is added to the
chain's output (then an optional activation, as in ResNet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, NamedTuple, Union

from edgenas.space.arch import Arch, Block, Stage


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10 % down.

    This is the rule torchvision's MobileNets use, so scaled presets match them exactly.
    """
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


@dataclass(frozen=True)
class Conv:
    """Convolution + batch norm (+ activation, applied in place; None = linear)."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    groups: int = 1
    activation: str | None = None


@dataclass(frozen=True)
class SqueezeExcite:
    """Channel attention: global pool, 1x1 reduce + ReLU, 1x1 expand, sigmoid gate, scale."""

    channels: int
    squeeze_channels: int


@dataclass(frozen=True)
class Pool:
    """2x2 stride-2 pooling used as a stage's down-sampling choice."""

    kind: str  # "max" or "avg"


Layer = Union[Conv, SqueezeExcite, Pool]


@dataclass(frozen=True)
class Unit:
    """A chain of layers, optionally added to a shortcut of the unit's input.

    ``shortcut`` is None (no residual), ``"identity"``, or a projection `Conv`; an empty
    chain with no shortcut is the identity (a skipped block).
    """

    in_channels: int
    out_channels: int
    layers: tuple[Layer, ...]
    shortcut: Union[None, str, Conv] = None
    post_activation: str | None = None

    def __post_init__(self) -> None:
        # units are memo keys on the hot path of count(); hash the nested value once
        object.__setattr__(self, "_hash", hash((self.in_channels, self.out_channels,
                                                self.layers, self.shortcut,
                                                self.post_activation)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined, no-any-return]


@dataclass(frozen=True)
class Classifier:
    """Global average pool, dropout, linear layer."""

    in_features: int
    num_classes: int
    dropout: float = 0.0


class Site(NamedTuple):
    """A unit at its place in a network: the unit and the spatial size of its input.

    This (unit, height, width) triple is all a unit's cost depends on, which makes it the
    key of latency lookup tables too. (A named tuple: count() makes ~25 per arch.)
    """

    unit: Unit
    height: int
    width: int
    role: str  # "stem", "pool", "block", "head"
    stage: int = -1
    index: int = -1


def squeeze_channels(channels: int) -> int:
    """Squeeze width of an SE layer: a quarter of its channels, rounded to 8 (MobileNetV3)."""
    return make_divisible(channels / 4, 8)


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Spatial size after a 'same'-padded convolution (padding kernel // 2)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def layer_output_size(layer: Layer, size: int) -> int:
    """Spatial size after one layer."""
    if isinstance(layer, Conv):
        return conv_output_size(size, layer.kernel, layer.stride)
    if isinstance(layer, Pool):
        return size // 2
    return size


@lru_cache(maxsize=262144)
def unit_output_size(unit: Unit, size: int) -> int:
    """Spatial size after a whole unit (a shortcut always matches the chain)."""
    for layer in unit.layers:
        size = layer_output_size(layer, size)
    return size


# -- macro scaling -------------------------------------------------------------------------

def scaled_channels(arch: Arch, channels: int) -> int:
    """Channels after the width multiplier (torchvision's rounding)."""
    return make_divisible(channels * arch.width_mult)


def head_channels(arch: Arch) -> int:
    """Head convolution width; like MobileNetV2, never narrowed below its base width."""
    if arch.head.channels == 0:
        return 0
    return make_divisible(arch.head.channels * max(1.0, arch.width_mult))


def stage_depth(arch: Arch, stage: Stage) -> int:
    """Blocks in a stage after the depth multiplier (EfficientNet's ceil rule)."""
    return max(1, math.ceil(round(len(stage.blocks) * arch.depth_mult, 6)))


def stage_in_channels(arch: Arch, index: int) -> tuple[int, int]:
    """(input, output) channels of stage ``index`` after width scaling."""
    in_ch = scaled_channels(arch, arch.stem.channels)
    if index > 0:
        in_ch = scaled_channels(arch, arch.stages[index - 1].channels)
    return in_ch, scaled_channels(arch, arch.stages[index].channels)


def stage_blocks(arch: Arch, stage: Stage) -> Iterator[Block]:
    """The blocks a stage builds: blocks beyond those listed repeat the last one."""
    last = len(stage.blocks) - 1
    for j in range(stage_depth(arch, stage)):
        yield stage.blocks[min(j, last)]


# -- op -> layers ---------------------------------------------------------------------------

@lru_cache(maxsize=65536)
def block_unit(block: Block, in_channels: int, out_channels: int, stride: int) -> Unit:
    """The layers of one block; each op in the search space is defined here and only here."""
    op, k, act = block.op, block.kernel, block.activation
    same_shape = stride == 1 and in_channels == out_channels
    projection = "identity" if same_shape else Conv(in_channels, out_channels, 1, stride)

    def se(channels: int) -> tuple[Layer, ...]:
        return (SqueezeExcite(channels, squeeze_channels(channels)),) if block.se else ()

    if op == "skip":
        return Unit(in_channels, out_channels, ())
    if op == "conv":
        layers = (Conv(in_channels, out_channels, k, stride, 1, act), *se(out_channels))
        return Unit(in_channels, out_channels, layers)
    if op == "basic":
        layers = (Conv(in_channels, out_channels, k, stride, 1, act),
                  Conv(out_channels, out_channels, k, 1, 1, None), *se(out_channels))
        return Unit(in_channels, out_channels, layers, projection, act)
    if op == "bottleneck":
        mid = make_divisible(out_channels * block.expansion / 4)
        layers = (Conv(in_channels, mid, 1, 1, 1, act), Conv(mid, mid, k, stride, 1, act),
                  Conv(mid, out_channels, 1, 1, 1, None), *se(out_channels))
        return Unit(in_channels, out_channels, layers, projection, act)
    if op == "dwsep":
        layers = (Conv(in_channels, in_channels, k, stride, in_channels, act), *se(in_channels),
                  Conv(in_channels, out_channels, 1, 1, 1, act))
        return Unit(in_channels, out_channels, layers)
    if op == "mbconv":
        hidden = int(round(in_channels * block.expansion))
        expand = (Conv(in_channels, hidden, 1, 1, 1, act),) if hidden != in_channels else ()
        layers = (*expand, Conv(hidden, hidden, k, stride, hidden, act), *se(hidden),
                  Conv(hidden, out_channels, 1, 1, 1, None))
        return Unit(in_channels, out_channels, layers, "identity" if same_shape else None)
    raise ValueError(f"unknown op {op!r}")  # validate() rejects this before we get here


def sites(arch: Arch) -> list[Site]:
    """Every unit of the network with its input size, in execution order."""
    size = arch.resolution
    stem_ch = scaled_channels(arch, arch.stem.channels)
    stem = Unit(arch.in_channels, stem_ch,
                (Conv(arch.in_channels, stem_ch, arch.stem.kernel, arch.stem.stride, 1,
                      arch.stem.activation),))
    out = [Site(stem, size, size, "stem")]
    size = conv_output_size(size, arch.stem.kernel, arch.stem.stride)
    channels = stem_ch
    for i, stage in enumerate(arch.stages):
        out_ch = scaled_channels(arch, stage.channels)
        pooled = stage.stride == 2 and stage.downsample != "stride"
        if pooled:
            pool = Pool("max" if stage.downsample == "maxpool" else "avg")
            out.append(Site(Unit(channels, channels, (pool,)), size, size, "pool", i))
            size //= 2
        for j, block in enumerate(stage_blocks(arch, stage)):
            stride = stage.stride if j == 0 and not pooled else 1
            unit = block_unit(block, channels, out_ch, stride)
            out.append(Site(unit, size, size, "block", i, j))
            size = unit_output_size(unit, size)
            channels = out_ch
    head_ch = head_channels(arch)
    if head_ch:
        head = Unit(channels, head_ch, (Conv(channels, head_ch, 1, 1, 1, arch.head.activation),))
        out.append(Site(head, size, size, "head"))
    return out


def classifier(arch: Arch) -> Classifier:
    """The classifier on top of the last unit."""
    features = head_channels(arch) or scaled_channels(arch, arch.stages[-1].channels)
    return Classifier(features, arch.num_classes, arch.head.dropout)
