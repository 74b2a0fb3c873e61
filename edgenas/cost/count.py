"""Analytic MACs, parameters and peak inference memory of an `Arch`, without torch.

Definitions (the README repeats them, since papers use these words loosely):

* **MACs**: multiply-accumulates of convolution and linear layers at batch 1, exactly
  what `torch.utils.flop_counter.FlopCounterMode` reports divided by two. Batch norm,
  activations, pooling, additions and the SE scaling are not counted (as in PyTorch).
* **params**: ``sum(p.numel() for p in model.parameters())`` of `build_model(arch)`,
  batch-norm affine parameters included, running statistics excluded.
* **peak memory**: weights (params x element size) plus the largest total size of
  activation tensors that are alive at the same time during one batch-1 inference, with
  batch norm folded into its convolution and activations applied in place (what inference
  runtimes execute). A tensor is alive from the op that writes it until the last op that
  reads it (so residual inputs stay alive across their block); the network's input stays
  alive throughout, since it belongs to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from edgenas.space.arch import Arch
from edgenas.space.plan import (Classifier, Conv, Pool, SqueezeExcite, Unit, classifier,
                                layer_output_size, sites, unit_output_size)

#: Bytes per element for the precisions a deployment can use.
ELEMENT_BYTES: dict[str, int] = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class Counts:
    """What an arch costs, independent of any device."""

    macs: int
    params: int
    peak_activation_elements: int

    def memory_bytes(self, precision: str = "fp32") -> int:
        """Peak inference memory: weights plus peak live activations, in bytes."""
        try:
            size = ELEMENT_BYTES[precision]
        except KeyError:
            raise ValueError(f"precision {precision!r} not in {tuple(ELEMENT_BYTES)}") from None
        return (self.params + self.peak_activation_elements) * size

    def to_dict(self) -> dict[str, int]:
        """JSON-ready counts; ``memory_bytes`` is fp32, the others are named by precision."""
        out = {"macs": self.macs, "params": self.params,
               "memory_bytes": self.memory_bytes("fp32")}
        for precision in ("fp16", "int8"):
            out[f"memory_bytes_{precision}"] = self.memory_bytes(precision)
        out["peak_activation_elements"] = self.peak_activation_elements
        return out


@dataclass(frozen=True)
class UnitCost:
    """Cost of one unit at one input size; ``peak_elements`` includes the unit's input."""

    macs: int
    params: int
    peak_elements: int


def _conv_cost(conv: Conv, size: int) -> tuple[int, int, int]:
    """(macs, params, output elements) of conv + BN at an input of size x size."""
    out = layer_output_size(conv, size)
    weight = conv.out_channels * (conv.in_channels // conv.groups) * conv.kernel * conv.kernel
    return weight * out * out, weight + 2 * conv.out_channels, conv.out_channels * out * out


def _liveness_peak(sizes: list[int], reads: list[tuple[int, ...]]) -> int:
    """Peak of live elements over a tensor graph run in order.

    Tensor 0 is the input; op ``i`` (1-based) writes tensor ``i`` and reads ``reads[i-1]``.
    The last tensor is the result and stays alive.
    """
    last_read = [0] * len(sizes)
    for op, inputs in enumerate(reads, start=1):
        for tensor in inputs:
            last_read[tensor] = op
    last_read[-1] = len(sizes)
    live = sizes[0]
    peak = live
    for op in range(1, len(sizes)):
        live += sizes[op]
        peak = max(peak, live)
        live -= sum(sizes[t] for t in set(reads[op - 1]) if last_read[t] == op)
    return peak


@lru_cache(maxsize=262144)
def unit_cost(unit: Unit, size: int) -> UnitCost:
    """MACs, params and peak live elements of one unit at a square input of ``size``."""
    macs = params = 0
    in_size = size
    sizes = [unit.in_channels * size * size]
    reads: list[tuple[int, ...]] = []
    current = 0  # tensor id of the chain's running value

    def write(elements: int, *inputs: int) -> int:
        sizes.append(elements)
        reads.append(inputs)
        return len(sizes) - 1

    for layer in unit.layers:
        if isinstance(layer, Conv):
            m, p, elements = _conv_cost(layer, size)
            macs, params = macs + m, params + p
            current = write(elements, current)
        elif isinstance(layer, SqueezeExcite):
            c, s = layer.channels, layer.squeeze_channels
            macs += 2 * c * s
            params += 2 * c * s + s + c  # two 1x1 convs with bias
            pooled = write(c, current)
            squeezed = write(s, pooled)
            expanded = write(c, squeezed)
            gate = write(c, expanded)
            current = write(c * size * size, current, gate)
        elif isinstance(layer, Pool):
            current = write(layer_output_size(layer, size) ** 2 * unit.in_channels, current)
        size = layer_output_size(layer, size)
    if isinstance(unit.shortcut, Conv):
        m, p, elements = _conv_cost(unit.shortcut, in_size)
        macs, params = macs + m, params + p
        shortcut = write(elements, 0)
        current = write(sizes[current], current, shortcut)
    elif unit.shortcut == "identity":
        current = write(sizes[current], current, 0)
    return UnitCost(macs, params, _liveness_peak(sizes, reads))


def _classifier_cost(head: Classifier, size: int) -> UnitCost:
    features = head.in_features
    macs = features * head.num_classes
    peak = _liveness_peak([features * size * size, features, head.num_classes], [(0,), (1,)])
    return UnitCost(macs, macs + head.num_classes, peak)


def count(arch: Arch) -> Counts:
    """MACs, params and peak memory of ``arch`` at batch 1 (see the module docstring)."""
    image = arch.in_channels * arch.resolution * arch.resolution
    macs = params = peak = 0
    size = arch.resolution
    for site in sites(arch):
        cost = unit_cost(site.unit, site.height)
        macs += cost.macs
        params += cost.params
        held = 0 if site.role == "stem" else image  # the caller's input is never freed
        peak = max(peak, held + cost.peak_elements)
        size = unit_output_size(site.unit, site.height)
    head = _classifier_cost(classifier(arch), size)
    return Counts(macs + head.macs, params + head.params, max(peak, image + head.peak_elements))
