"""A small search space that trains in seconds on one CPU core (every kind of gene varies)."""

from __future__ import annotations

from edgenas.space import Head, SearchSpace, StageChoices, Stem


def tiny_space() -> SearchSpace:
    return SearchSpace(
        name="tiny", num_classes=10, stem=Stem(8), head=Head(0),
        stages=(StageChoices((8, 16), (1, 2)),
                StageChoices((16, 24), (1, 2), strides=(2,), downsamples=("stride", "maxpool"))),
        resolutions=(24, 32), width_mults=(0.75, 1.0), depth_mults=(1.0, 1.5),
        ops=("mbconv", "dwsep", "conv", "skip"), kernels=(3, 5), expansions=(3.0, 6.0),
        activations=("relu", "hswish"))
