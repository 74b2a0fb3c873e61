"""A network's work as a runtime's CPU kernels see it: channels padded to their vector block.

Some runtimes do not run a network as the sum of its layers timed one by one. OpenVINO's
CPU plugin fuses a block's layers and lays tensors out in channel blocks (16 channels
to a block with AVX-512, 8 with AVX2), so a 20-channel layer costs what a 32-channel one
does, and a unit timed alone pays for a layout change the network never makes. There, a
table of isolated units predicts whole networks poorly however it is corrected (on the
host of 2026-12-07: 7 % of held-out networks within +-10 % as a plain sum, 77 % after the
best correction, against a noise floor of 100 %), while a non-negative mix of the
network's padded work, fitted on 50 timed networks, predicts all 30 held-out networks
within +-10 % (docs/results.md, "Transfer between two native runtimes").

`padded_work` gives that work as `TERMS`, one row per network: per kind of convolution
(dense or depth-wise, by kernel) the multiply-accumulates and output elements with channels
rounded up to ``block``, and the count of such layers (each a kernel launch); squeeze-
excitation, pooling and residual adds by count and elements; the network's own call. The
block is not known in advance for a device: `edgenas.profile.correction.PaddedWork` fits
each of `BLOCKS` and keeps the one that fits best, and cross-validation then decides, as
for every form, whether this model or the table's unit sums predict the device better (on
ONNX Runtime here, the unit sums do: 97 % against 60-70 %).
"""

from __future__ import annotations

import numpy as np

from edgenas.space.arch import Arch
from edgenas.space.plan import Conv, Pool, SqueezeExcite, layer_output_size, sites

#: Channel blocks a fit tries: none, NEON's 4, AVX2's 8, AVX-512's 16.
BLOCKS: tuple[int, ...] = (1, 4, 8, 16)
#: Kernel sizes convolutions are counted by, dense and depth-wise; a kernel between two
#: counts as the next larger, one beyond them as the largest.
KERNELS: dict[str, tuple[int, ...]] = {"conv": (1, 3, 5, 7), "dw": (3, 5, 7)}
#: Convolutions by kind.
CONV_KINDS: tuple[str, ...] = tuple(f"{prefix}{size}" for prefix, sizes in KERNELS.items()
                                    for size in sizes)
TERMS: tuple[str, ...] = (
    "network",
    *(f"mmacs_{kind}" for kind in CONV_KINDS),
    *(f"melements_{kind}" for kind in CONV_KINDS),
    *(f"layers_{kind}" for kind in CONV_KINDS),
    "layers_se", "melements_se", "layers_pool", "melements_pool", "adds")
_INDEX = {term: i for i, term in enumerate(TERMS)}


def _kind(conv: Conv) -> str:
    prefix = "dw" if conv.depthwise else "conv"
    sizes = KERNELS[prefix]
    return f"{prefix}{next((size for size in sizes if size >= conv.kernel), sizes[-1])}"


def _pad(channels: int, block: int) -> int:
    return -(-channels // block) * block


def padded_work(arch: Arch, block: int) -> np.ndarray:
    """`TERMS` of ``arch`` with channels rounded up to ``block`` (a skipped block costs
    nothing: the runtime removes the Identity)."""
    work = np.zeros(len(TERMS))
    work[_INDEX["network"]] = 1.0

    def add(layer: object, size: int, in_channels: int) -> None:
        out = layer_output_size(layer, size)  # type: ignore[arg-type]
        if isinstance(layer, Conv):
            kind = _kind(layer)
            per_output = 1 if layer.depthwise else _pad(layer.in_channels // layer.groups, block)
            work[_INDEX[f"mmacs_{kind}"]] += (_pad(layer.out_channels, block) * per_output
                                             * layer.kernel ** 2 * out * out / 1e6)
            work[_INDEX[f"melements_{kind}"]] += _pad(layer.out_channels, block) * out * out / 1e6
            work[_INDEX[f"layers_{kind}"]] += 1
        elif isinstance(layer, SqueezeExcite):
            work[_INDEX["layers_se"]] += 1
            work[_INDEX["melements_se"]] += _pad(layer.channels, block) * size * size / 1e6
        elif isinstance(layer, Pool):
            work[_INDEX["layers_pool"]] += 1
            work[_INDEX["melements_pool"]] += _pad(in_channels, block) * out * out / 1e6

    for site in sites(arch):
        unit = site.unit
        if unit.is_identity:
            continue
        size, channels = site.height, unit.in_channels
        for layer in unit.layers:
            add(layer, size, channels)
            channels = layer.out_channels if isinstance(layer, Conv) else channels
            size = layer_output_size(layer, size)
        if isinstance(unit.shortcut, Conv):
            add(unit.shortcut, site.height, unit.in_channels)
        if unit.shortcut is not None:
            work[_INDEX["adds"]] += 1
    return work


def relative_nnls(design: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Weights >= 0 of ``design``'s columns, least squares on relative error (each
    network counts by its error in per cent, not in ms); columns are scaled to unit norm
    first so that no unit of measure decides."""
    from scipy.optimize import nnls

    scaled = design / measured[:, None]
    norms = np.linalg.norm(scaled, axis=0)
    norms[norms == 0] = 1.0
    weights, _ = nnls(scaled / norms, np.ones(len(measured)))
    return weights / norms
