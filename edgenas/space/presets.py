"""Named search spaces and reference networks.

Reference networks are plain `Arch` values so that counts can be checked against
torchvision and baselines can be placed on the same axes as searched models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from edgenas.errors import PresetError
from edgenas.space.arch import Arch, Block, Head, Stage, Stem, load_arch
from edgenas.space.search_space import SearchSpace, StageChoices

STRIDE_OR_POOL = ("stride", "maxpool", "avgpool")


def cifar_space() -> SearchSpace:
    """CIFAR-10 setting: 32x32 RGB, 10 classes, three down-samplings.

    Sized so that every distinct block the space can produce (about 7,000 block shapes)
    can be timed on a device in minutes: latency tables must cover the whole space.
    """
    return SearchSpace(
        name="cifar",
        num_classes=10,
        stem=Stem(channels=24, kernel=3, stride=1, activation="relu"),
        head=Head(channels=512, activation="relu", dropout=0.0),
        stages=(
            StageChoices(channels=(16, 24), depths=(1, 2)),
            StageChoices(channels=(32, 48), depths=(1, 2, 3, 4), strides=(2,),
                         downsamples=STRIDE_OR_POOL),
            StageChoices(channels=(64, 96), depths=(1, 2, 3, 4), strides=(2,),
                         downsamples=STRIDE_OR_POOL),
            StageChoices(channels=(128, 160), depths=(1, 2, 3, 4), strides=(2,),
                         downsamples=STRIDE_OR_POOL),
        ),
        resolutions=(28, 32),
        width_mults=(0.75, 1.0),
        depth_mults=(0.5, 1.0, 1.5),
        kernels=(3, 5),
        expansions=(3.0, 6.0),
        se=(False, True),
        activations=("relu", "hswish"),
    )


def imagenet_space() -> SearchSpace:
    """ImageNet setting around MobileNetV2: 224x224 RGB, 1000 classes (contains it)."""
    return SearchSpace(
        name="imagenet",
        num_classes=1000,
        stem=Stem(channels=32, kernel=3, stride=2, activation="relu6"),
        head=Head(channels=1280, activation="relu6", dropout=0.2),
        stages=(
            StageChoices(channels=(16, 24), depths=(1, 2)),
            StageChoices(channels=(24, 32), depths=(1, 2, 3, 4), strides=(2,),
                         downsamples=STRIDE_OR_POOL),
            StageChoices(channels=(32, 40, 48), depths=(1, 2, 3, 4), strides=(2,),
                         downsamples=STRIDE_OR_POOL),
            StageChoices(channels=(64, 80), depths=(1, 2, 3, 4), strides=(2,),
                         downsamples=STRIDE_OR_POOL),
            StageChoices(channels=(96, 112, 128), depths=(1, 2, 3, 4)),
            StageChoices(channels=(160, 192), depths=(1, 2, 3, 4), strides=(2,),
                         downsamples=STRIDE_OR_POOL),
            StageChoices(channels=(320,), depths=(1,)),
        ),
        resolutions=(160, 192, 224),
        width_mults=(0.75, 1.0, 1.25),
        depth_mults=(1.0, 1.5),
        kernels=(3, 5, 7),
        expansions=(1.0, 3.0, 4.0, 6.0),
        se=(False, True),
        activations=("relu", "relu6", "hswish", "swish"),
    )


SPACES: dict[str, Callable[[], SearchSpace]] = {"cifar": cifar_space, "imagenet": imagenet_space}


def get_space(name: str) -> SearchSpace:
    """A preset search space by name."""
    try:
        return SPACES[name]()
    except KeyError:
        raise PresetError(f"unknown search space {name!r}; choose from {sorted(SPACES)}") from None


def spaces_holding(arch: Arch) -> list[SearchSpace]:
    """The preset spaces that hold ``arch``, in name order: found once per arch, since
    validating an arch against a space unfolds it."""
    return [space for space in map(get_space, sorted(SPACES)) if space.contains(arch)]


def mobilenetv2(num_classes: int = 1000, resolution: int = 224, width_mult: float = 1.0) -> Arch:
    """torchvision's MobileNetV2 (Sandler et al. 2018): the [t, c, n, s] table as stages."""
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1)]
    stages = tuple(
        Stage(c, s, tuple(Block("mbconv", 3, t, False, "relu6") for _ in range(n)))
        for t, c, n, s in table
    )
    return Arch(resolution=resolution, stem=Stem(32, 3, 2, "relu6"), stages=stages,
                head=Head(1280, "relu6", 0.2), num_classes=num_classes, width_mult=width_mult)


def cifar_resnet(depth: int) -> Arch:
    """He et al. (2016) CIFAR ResNet-``depth`` (6n + 2 layers); projection shortcuts."""
    if (depth - 2) % 6:
        raise PresetError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
    n = (depth - 2) // 6
    stages = tuple(Stage(c, s, tuple(Block("basic", 3) for _ in range(n)))
                   for c, s in ((16, 1), (32, 2), (64, 2)))
    return Arch(resolution=32, stem=Stem(16, 3, 1, "relu"), stages=stages, num_classes=10)


ARCH_PRESETS: dict[str, Callable[[], Arch]] = {
    "mobilenetv2": mobilenetv2,
    "mobilenetv2-cifar": lambda: mobilenetv2(num_classes=10, resolution=32),
    "resnet20": lambda: cifar_resnet(20),
    "resnet32": lambda: cifar_resnet(32),
    "resnet56": lambda: cifar_resnet(56),
}


def get_preset(name: str) -> Arch:
    """A reference network by name (see `ARCH_PRESETS`)."""
    try:
        return ARCH_PRESETS[name]()
    except KeyError:
        raise PresetError(f"unknown architecture preset {name!r}; choose from "
                          f"{sorted(ARCH_PRESETS)}") from None


def resolve_arch(spec: str) -> Arch:
    """An arch from a preset name or a JSON file path (what every ARCH argument takes)."""
    if spec in ARCH_PRESETS:
        return get_preset(spec)
    if Path(spec).suffix == ".json" or Path(spec).exists():
        return load_arch(spec)
    raise PresetError(f"{spec!r} is neither an arch preset ({', '.join(sorted(ARCH_PRESETS))}) "
                      "nor an arch JSON file")
