"""Hand-designed networks to place beside a search's results, sized for a search space.

A searched model is only worth shipping if it beats what an engineer would have picked
without a search, so every report and benchmark compares against the same few classics,
built for the space's input size and number of classes so that they are trained and timed
exactly like the searched archs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from edgenas.space.arch import Arch, Block, Stage
from edgenas.space.presets import cifar_resnet, mobilenetv2
from edgenas.space.search_space import SearchSpace

#: Above this input size a space is ImageNet-like and gets ImageNet baselines.
SMALL_INPUT = 64
#: MobileNetV2's blocks per resolution stage after the first (Sandler et al. 2018, table 2).
MOBILENETV2_DEPTHS = (2, 3, 4, 3)


def _nearest(choices: Sequence[Any], target: float) -> Any:
    return min(choices, key=lambda value: (abs(value - target), value))


def mobilenetv2_in_space(space: SearchSpace) -> Arch:
    """MobileNetV2's design (inverted bottlenecks, kernel 3, expansion 6, no SE) in the
    space's skeleton: its stem, head and stages at their widest, MobileNetV2's depths.

    Unlike torchvision's MobileNetV2 at 32x32 (which down-samples a CIFAR image to 1x1),
    this is the network a practitioner would hand-design for the space, and every block is
    in the space, so its latency comes from the device's table like a searched arch's.
    """
    activation = "relu6" if "relu6" in space.activations else space.activations[0]
    expansion = _nearest(space.expansions, 6.0)
    kernel = _nearest(space.kernels, 3)
    stages = []
    for i, choice in enumerate(space.stages):
        target = 1 if i == 0 else MOBILENETV2_DEPTHS[min(i - 1, len(MOBILENETV2_DEPTHS) - 1)]
        depth = _nearest(choice.depths, target)
        stride = max(choice.strides)
        stages.append(Stage(max(choice.channels), stride,
                            tuple(Block("mbconv", kernel, expansion, False, activation)
                                  for _ in range(depth)),
                            "stride" if "stride" in choice.downsamples
                            else choice.downsamples[0]))
    return Arch(resolution=max(space.resolutions), stem=space.stem, stages=tuple(stages),
                head=space.head, num_classes=space.num_classes,
                width_mult=_nearest(space.width_mults, 1.0),
                depth_mult=_nearest(space.depth_mults, 1.0), in_channels=space.in_channels)


def baseline_archs(space: SearchSpace) -> dict[str, Arch]:
    """The hand-designed baselines for ``space``, by display name.

    Small-input spaces (CIFAR-like) get the CIFAR ResNet-20 and ResNet-56 of He et al.
    (2016) and MobileNetV2 in the space; larger inputs get torchvision's MobileNetV2 at
    width 1.0 and 0.5.
    """
    resolution = max(space.resolutions)
    common = {"num_classes": space.num_classes, "in_channels": space.in_channels}
    if resolution <= SMALL_INPUT:
        return {"ResNet-20": replace(cifar_resnet(20), resolution=resolution, **common),
                "ResNet-56": replace(cifar_resnet(56), resolution=resolution, **common),
                "MobileNetV2 (in space)": mobilenetv2_in_space(space)}
    return {"MobileNetV2 1.0": replace(mobilenetv2(space.num_classes, resolution), **common),
            "MobileNetV2 0.5": replace(mobilenetv2(space.num_classes, resolution, 0.5),
                                       **common)}
