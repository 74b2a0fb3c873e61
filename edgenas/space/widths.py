"""Channel widths after the width multiplier: the rounding every layer count depends on.

A leaf module (no other edgenas import), so that `arch` can validate a stage's shape and
`plan` can unfold it with the same rule; it knows channel counts, not archs.
"""

from __future__ import annotations


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

