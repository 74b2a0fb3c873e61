"""How an `Arch` unfolds into layers: the one place that decides what each op is made of.

The model builder (`edgenas.nn`), the analytic cost model (`edgenas.cost`) and, later, the
profiler's micro-models all read these plans, so an op is defined once and the counts
cannot drift from what is built. Nothing here imports torch.

A network is a sequence of `Unit`s (stem, optional pooling, blocks, head convolution) and a
`Classifier`. A unit is a chain of layers plus an optional shortcut that is added to the
chain's output (then an optional activation, as in ResNet).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, NamedTuple, Union

from edgenas.space.arch import Arch, Block, Stage, Stem
from edgenas.space.widths import head_width, make_divisible, scale_width

if TYPE_CHECKING:
    from edgenas.space.search_space import SearchSpace


@dataclass(frozen=True)
class Conv:
    """Convolution + batch norm (+ activation, applied in place; None = linear)."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    groups: int = 1
    activation: str | None = None

    @property
    def depthwise(self) -> bool:
        """Whether this is one filter per channel, channels unchanged (dwsep's, MBConv's).

        Defined once because the LUT keys (``dw``) and the supernet's weight sharing (one
        input channel per filter) must agree on which convs are depth-wise.
        """
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels


@dataclass(frozen=True)
class SqueezeExcite:
    """Channel attention: global pool, 1x1 reduce + ReLU, 1x1 expand, sigmoid gate, scale."""

    channels: int
    squeeze_channels: int

    @property
    def reduce_activation(self) -> str:
        """Activation after the 1x1 reduce; fixed (MobileNetV3), so not a field of the plan."""
        return "relu"

    @property
    def gate(self) -> str:
        """Nonlinearity turning the expanded means into per-channel scales."""
        return "sigmoid"


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

    @property
    def is_identity(self) -> bool:
        """Whether the unit passes its input through unchanged (a skipped block)."""
        return not self.layers and self.shortcut is None


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
    index: int = -1  # in a space's enumeration: 0 a stage's first block, 1 any later one
    block: Block | None = None  # the block a "block" site builds


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
    return scale_width(channels, arch.width_mult)


def head_channels(arch: Arch) -> int:
    """Head convolution width; like MobileNetV2, never narrowed below its base width."""
    return head_width(arch.head.channels, arch.width_mult)


def stage_depth(arch: Arch, stage: Stage) -> int:
    """Blocks in a stage after the depth multiplier (EfficientNet's ceil rule)."""
    return depth_after(len(stage.blocks), arch.depth_mult)


def depth_after(blocks: int, depth_mult: float) -> int:
    """Blocks after the depth multiplier, from the numbers alone (spaces have no stages)."""
    return max(1, math.ceil(round(blocks * depth_mult, 6)))


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


# -- how a network unfolds: the steps shared by one arch and a whole space ------------------

def stem_unit(in_channels: int, channels: int, stem: Stem) -> Unit:
    """The stem convolution."""
    return Unit(in_channels, channels,
                (Conv(in_channels, channels, stem.kernel, stem.stride, 1, stem.activation),))


def head_unit(in_channels: int, channels: int, activation: str) -> Unit:
    """The head's 1x1 convolution (widening before the classifier)."""
    return Unit(in_channels, channels, (Conv(in_channels, channels, 1, 1, 1, activation),))


class StageOpening(NamedTuple):
    """How a stage starts: its pooling unit (if it pools) and what its first block sees."""

    pool: Unit | None
    block_size: int  # input size of the first block
    block_stride: int  # stride of the first block


def stage_opening(channels: int, size: int, stride: int, downsample: str) -> StageOpening:
    """A pooled stage down-samples with a pooling unit and opens with a stride-1 block."""
    if stride == 2 and downsample != "stride":
        pool = Unit(channels, channels, (Pool("max" if downsample == "maxpool" else "avg"),))
        return StageOpening(pool, size // 2, 1)
    return StageOpening(None, size, stride)


def sites(arch: Arch) -> list[Site]:
    """Every unit of the network with its input size, in execution order."""
    size = arch.resolution
    channels = scaled_channels(arch, arch.stem.channels)
    out = [Site(stem_unit(arch.in_channels, channels, arch.stem), size, size, "stem")]
    size = conv_output_size(size, arch.stem.kernel, arch.stem.stride)
    for i, stage in enumerate(arch.stages):
        out_ch = scaled_channels(arch, stage.channels)
        opening = stage_opening(channels, size, stage.stride, stage.downsample)
        if opening.pool is not None:
            out.append(Site(opening.pool, size, size, "pool", i))
        size, stride = opening.block_size, opening.block_stride
        for j, block in enumerate(stage_blocks(arch, stage)):
            unit = block_unit(block, channels, out_ch, stride if j == 0 else 1)
            out.append(Site(unit, size, size, "block", i, j, block))
            size = unit_output_size(unit, size)
            channels = out_ch
    head_ch = head_channels(arch)
    if head_ch:
        out.append(Site(head_unit(channels, head_ch, arch.head.activation), size, size, "head"))
    return out


def space_sites(space: SearchSpace,
                slot_blocks: Callable[[int], Iterable[Block]] | None = None) -> Iterator[Site]:
    """Every site any arch of ``space`` can contain, without enumerating archs.

    The walk goes stage by stage with the same steps as `sites`, carrying the set of
    (channels, size) a stage can be entered with, so it is exact and fast (the `cifar`
    space has ~10^28 archs but about 7,000 distinct units). A block site's ``index`` is 0
    for a stage's first block and 1 for any later one (they all see the same shapes).
    ``slot_blocks(j)`` gives the blocks tried in slot j (default: `SearchSpace.slot_blocks`
    without skips, which build nothing). Sites repeat; callers keep the distinct ones.
    """
    if slot_blocks is None:
        def slot_blocks(slot: int) -> list[Block]:
            return [b for b in space.slot_blocks(slot) if b.op != "skip"]
    first, later = list(slot_blocks(0)), list(slot_blocks(1))
    for resolution, width in itertools.product(space.resolutions, space.width_mults):
        stem_ch = scale_width(space.stem.channels, width)
        yield Site(stem_unit(space.in_channels, stem_ch, space.stem), resolution, resolution,
                   "stem")
        states = {(stem_ch, conv_output_size(resolution, space.stem.kernel, space.stem.stride))}
        for i, stage in enumerate(space.stages):
            deep = depth_after(max(stage.depths), max(space.depth_mults)) > 1
            entered: set[tuple[int, int]] = set()
            for (in_ch, size), channels, stride in itertools.product(
                    sorted(states), stage.channels, stage.strides):
                out_ch = scale_width(channels, width)
                for downsample in stage.downsamples if stride == 2 else ("stride",):
                    opening = stage_opening(in_ch, size, stride, downsample)
                    if opening.pool is not None:
                        yield Site(opening.pool, size, size, "pool", i)
                    block_size, out_size = opening.block_size, opening.block_size
                    for block in first:
                        unit = block_unit(block, in_ch, out_ch, opening.block_stride)
                        yield Site(unit, block_size, block_size, "block", i, 0, block)
                        out_size = unit_output_size(unit, block_size)
                    if deep:
                        for block in later:
                            yield Site(block_unit(block, out_ch, out_ch, 1), out_size, out_size,
                                       "block", i, 1, block)
                    entered.add((out_ch, out_size))
            states = entered
        head_ch = head_width(space.head.channels, width)
        if head_ch:
            for in_ch, size in sorted(states):
                yield Site(head_unit(in_ch, head_ch, space.head.activation), size, size, "head")


def classifier(arch: Arch) -> Classifier:
    """The classifier on top of the last unit."""
    features = head_channels(arch) or scaled_channels(arch, arch.stages[-1].channels)
    return Classifier(features, arch.num_classes, arch.head.dropout)
