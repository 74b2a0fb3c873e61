"""Channel widths after the width multiplier: the rounding every layer count depends on.

A leaf module (no other edgenas import at run time), so that `arch` can validate a
stage's shape and `plan` can unfold it with the same rule and without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgenas.space.arch import Arch


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10 % down.

    This is the rule torchvision's MobileNets use, so scaled presets match them exactly.
    """
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def scale_width(channels: int, width_mult: float) -> int:
    """Channels after the width multiplier (torchvision's rounding)."""
    return make_divisible(channels * width_mult)


def head_width(channels: int, width_mult: float) -> int:
    """Head convolution width; like MobileNetV2, never narrowed below its base width."""
    return make_divisible(channels * max(1.0, width_mult)) if channels else 0


def stage_in_channels(arch: Arch, index: int) -> tuple[int, int]:
    """(input, output) channels of stage ``index`` after width scaling."""
    previous = arch.stem.channels if index == 0 else arch.stages[index - 1].channels
    return (scale_width(previous, arch.width_mult),
            scale_width(arch.stages[index].channels, arch.width_mult))
