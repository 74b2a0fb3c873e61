"""Every distinct unit a search space can produce, with its input size: the LUT's keys.

The enumeration walks the space stage by stage, carrying the set of (channels, size)
states a stage can be entered with, so it is exact without enumerating archs (the
`cifar` space has ~10^28 archs but about 7,000 distinct units).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from edgenas.space.arch import OP_USES, Block
from edgenas.space.plan import (Conv, Pool, SqueezeExcite, Unit, block_unit, conv_output_size,
                                make_divisible, unit_output_size)
from edgenas.space.search_space import SearchSpace


def _layer_key(layer: object) -> str:
    if isinstance(layer, Conv):
        kind = "dw" if layer.groups == layer.in_channels > 1 else "conv"
        return (f"{kind}{layer.kernel}s{layer.stride}:{layer.in_channels}>{layer.out_channels}"
                f":{layer.activation or 'linear'}")
    if isinstance(layer, SqueezeExcite):
        return f"se:{layer.channels}/{layer.squeeze_channels}"
    if isinstance(layer, Pool):
        return f"{layer.kind}pool2"
    raise TypeError(f"no key for {layer!r}")


@lru_cache(maxsize=262144)
def unit_key(unit: Unit, size: int) -> str:
    """A readable, exact key: input size, then the unit's layers, shortcut and activation.

    Example: ``@16|conv1s1:32>96:relu|dw3s2:96>96:relu|conv1s1:96>48:linear``.
    """
    parts = [f"@{size}", *(_layer_key(layer) for layer in unit.layers)]
    if isinstance(unit.shortcut, Conv):
        parts.append("+" + _layer_key(unit.shortcut))
    elif unit.shortcut == "identity":
        parts.append("+id")
    if unit.post_activation:
        parts.append(f"post:{unit.post_activation}")
    if not unit.layers and unit.shortcut is None:
        parts.append(f"identity:{unit.in_channels}")
    return "|".join(parts)


def _blocks(space: SearchSpace, slot: int) -> list[Block]:
    """Distinct blocks a slot can hold (skips excluded: they cost nothing)."""
    choices = space._block_choices(slot)
    out: dict[Block, None] = {}
    for op in choices["op"]:
        if op == "skip":
            continue
        names = [n for n in ("kernel", "expansion", "se", "activation") if n in OP_USES[op]]
        for values in itertools.product(*(choices[n] for n in names)):
            out[Block(op, **dict(zip(names, values)))] = None
    return list(out)


def space_units(space: SearchSpace) -> dict[str, tuple[Unit, int]]:
    """key -> (unit, input size) for every unit any arch of ``space`` can contain."""
    found: dict[str, tuple[Unit, int]] = {}

    def add(unit: Unit, size: int) -> None:
        found.setdefault(unit_key(unit, size), (unit, size))

    first, later = _blocks(space, 0), _blocks(space, 1)
    for resolution, width in itertools.product(space.resolutions, space.width_mults):
        scale = lambda channels: make_divisible(channels * width)  # noqa: E731
        stem_ch = scale(space.stem.channels)
        add(Unit(space.in_channels, stem_ch, (Conv(space.in_channels, stem_ch, space.stem.kernel,
                                                   space.stem.stride, 1, space.stem.activation),)),
            resolution)
        states = {(stem_ch, conv_output_size(resolution, space.stem.kernel, space.stem.stride))}
        for stage in space.stages:
            entered: set[tuple[int, int]] = set()
            for (in_ch, size), channels, stride in itertools.product(
                    sorted(states), stage.channels, stage.strides):
                out_ch = scale(channels)
                for downsample in stage.downsamples if stride == 2 else ("stride",):
                    block_size, block_stride = size, stride
                    if stride == 2 and downsample != "stride":
                        pool = Unit(in_ch, in_ch, (Pool("max" if downsample == "maxpool" else "avg"),))
                        add(pool, size)
                        block_size, block_stride = size // 2, 1
                    out_size = block_size
                    for block in first:
                        unit = block_unit(block, in_ch, out_ch, block_stride)
                        add(unit, block_size)
                        out_size = unit_output_size(unit, block_size)
                    if max(stage.depths) * max(space.depth_mults) > 1:
                        for block in later:
                            add(block_unit(block, out_ch, out_ch, 1), out_size)
                    entered.add((out_ch, out_size))
            states = entered
        if space.head.channels:
            head_ch = make_divisible(space.head.channels * max(1.0, width))
            for in_ch, size in states:
                add(Unit(in_ch, head_ch, (Conv(in_ch, head_ch, 1, 1, 1, space.head.activation),)),
                    size)
    return found
