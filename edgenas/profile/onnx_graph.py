"""ONNX graphs straight from the layer plan, for timing (no torch needed).

Latency does not depend on weight values, so profiling builds each micro-model with
`onnx.helper` from `edgenas.space.plan` in about a millisecond, instead of exporting a
torch module (hundreds of milliseconds). Batch norm is folded into the convolution, as
every inference runtime does; the graph is what a deployed network runs, op for op.
The same emitters build the whole-network graphs used to validate the latency model, so
micro-models and networks cannot disagree about what an op is.

Each graph names its place in a network (`ROLE`: a unit's site role, or "network"), so
that a device's precision is applied to it as to that part of a network
(`edgenas.profile.precision`): INT8 keeps a network's stem in float, not every unit's
first convolution.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgenas.space.arch import Arch
from edgenas.space.lowering import nonlinearity
from edgenas.space.plan import Conv, Pool, SqueezeExcite, Unit, classifier, sites

OPSET = 17
#: The metadata key a graph's role is stored under.
ROLE = "edgenas.role"


class _Graph:
    """Accumulates nodes and initialisers; names values uniquely."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def weight(self, shape: tuple[int, ...], fan_in: int) -> str:
        name = self.name("w")
        values = (self.rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype(np.float32)
        self.weights.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        out = self.name(op.lower())  # names the node too: quantisation excludes by name
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def activation(self, x: str, name: str | None) -> str:
        if name is None:
            return x
        form = nonlinearity(name)
        y = self.node(form.onnx_op, [x, *(self.constant(bound) for bound in form.onnx_bounds)])
        return self.node("Mul", [x, y]) if form.onnx_times_input else y

    def constant(self, value: float) -> str:
        name = self.name("c")
        self.weights.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        return name

    def conv(self, x: str, spec: Conv, bias: bool = True) -> str:
        fan_in = spec.in_channels // spec.groups * spec.kernel * spec.kernel
        w = self.weight((spec.out_channels, spec.in_channels // spec.groups, spec.kernel,
                         spec.kernel), fan_in)
        inputs = [x, w]
        if bias:  # the folded batch norm
            inputs.append(self.weight((spec.out_channels,), 1))
        pad = spec.kernel // 2
        y = self.node("Conv", inputs, kernel_shape=[spec.kernel] * 2, strides=[spec.stride] * 2,
                      pads=[pad] * 4, group=spec.groups)
        return self.activation(y, spec.activation)

    def squeeze_excite(self, x: str, spec: SqueezeExcite) -> str:
        pooled = self.node("GlobalAveragePool", [x])
        reduce = self.conv(pooled, Conv(spec.channels, spec.squeeze_channels, 1, 1, 1,
                                        spec.reduce_activation))
        expand = self.conv(reduce, Conv(spec.squeeze_channels, spec.channels, 1, 1, 1, None))
        return self.node("Mul", [x, self.activation(expand, spec.gate)])

    def unit(self, x: str, unit: Unit) -> str:
        if unit.is_identity:
            return self.node("Identity", [x])
        y = x
        for layer in unit.layers:
            if isinstance(layer, Conv):
                y = self.conv(y, layer)
            elif isinstance(layer, SqueezeExcite):
                y = self.squeeze_excite(y, layer)
            elif isinstance(layer, Pool):
                op = "MaxPool" if layer.kind == "max" else "AveragePool"
                y = self.node(op, [y], kernel_shape=[2, 2], strides=[2, 2])
        if isinstance(unit.shortcut, Conv):
            y = self.activation(self.node("Add", [y, self.conv(x, unit.shortcut)]),
                                unit.post_activation)
        elif unit.shortcut == "identity":
            y = self.activation(self.node("Add", [y, x]), unit.post_activation)
        return y

    def model(self, x: str, y: str, in_shape: list[int], out_shape: list[int | str],
              role: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "edgenas", [helper.make_tensor_value_info(x, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, out_shape)], self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="edgenas")
        model.ir_version = 8  # readable by every ONNX Runtime >= 1.14
        helper.set_model_props(model, {ROLE: role})
        return model


def unit_model(unit: Unit, size: int, seed: int = 0, role: str = "block") -> onnx.ModelProto:
    """A batch-1 model of one unit at a square input of ``size``; ``role``: its site's
    (`edgenas.space.plan.Site.role`: "stem", "pool", "block" or "head")."""
    graph = _Graph(seed)
    y = graph.unit("input", unit)
    return graph.model("input", y, [1, unit.in_channels, size, size],
                       [1, unit.out_channels, "h", "w"], role)


def role(model: onnx.ModelProto) -> str:
    """The role a graph of this module was built for ("network" or a unit's site role)."""
    return next((prop.value for prop in model.metadata_props if prop.key == ROLE), "network")


def network_model(arch: Arch, seed: int = 0) -> onnx.ModelProto:
    """The whole network as a batch-1 model, built from the same emitters as the units."""
    graph = _Graph(seed)
    y = "input"
    for site in sites(arch):
        y = graph.unit(y, site.unit)
    head = classifier(arch)
    flat = graph.node("Flatten", [graph.node("GlobalAveragePool", [y])], axis=1)
    w = graph.weight((head.num_classes, head.in_features), head.in_features)
    b = graph.weight((head.num_classes,), 1)
    logits = graph.node("Gemm", [flat, w, b], transB=1)
    return graph.model("input", logits, [1, arch.in_channels, arch.resolution, arch.resolution],
                       [1, head.num_classes], "network")
