"""Static INT8 quantisation of an FP32 ONNX model (QDQ, what TensorRT reads), by recipe.

A recipe names every choice that moves the INT8 model's agreement with FP32: how many
calibration images, how they are turned into ranges, per-channel weights, the weights'
range, which layers stay in float, whether ONNX Runtime's pre-processing runs first, and
whether the float classifier is refitted to FP32's logits afterwards.
`benchmarks/bench_int8.py` measures recipes against each other; `RECIPE` is the one
exports use.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx

from edgenas.errors import ExportError
from edgenas.export.onnx_export import run_onnx, session

#: Layers a recipe can keep in float, by role: the stem sees raw pixels and the classifier
#: decides the class; both are a small share of the compute.
FLOAT_ROLES = ("stem", "classifier")
CALIBRATION_METHODS = ("percentile", "minmax", "entropy")


@dataclass(frozen=True)
class Int8Recipe:
    """How an FP32 model becomes INT8; recorded with every INT8 model of a bundle.

    Activations are symmetric (zero point 0) unless ``symmetric_activations`` is off:
    TensorRT requires it, and one INT8 file serves every target.
    """

    calibration_images: int = 512
    calibration: str = "percentile"
    percentile: float = 99.999      # of |activation|, with percentile calibration
    per_channel: bool = True
    reduce_range: bool = True
    float_roles: tuple[str, ...] = FLOAT_ROLES
    pre_process: bool = True
    symmetric_activations: bool = True
    refit_classifier: bool = True   # with the classifier in float (`refit_classifier`)

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise ExportError(f"Int8Recipe.calibration: {self.calibration!r} not in "
                               f"{CALIBRATION_METHODS}")
        unknown = [role for role in self.float_roles if role not in FLOAT_ROLES]
        if unknown:
            raise ExportError(f"Int8Recipe.float_roles: {unknown} not in {FLOAT_ROLES}")
        if not 50 < self.percentile <= 100:
            raise ExportError(f"Int8Recipe.percentile: {self.percentile}, needs (50, 100]")
        if self.calibration_images < 1:
            raise ExportError(f"Int8Recipe.calibration_images: {self.calibration_images}, "
                               "needs at least 1")

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-ready values (``float_roles`` a list)."""
        return {**asdict(self), "float_roles": list(self.float_roles)}


#: The exporter's recipe: each choice kept at least as many trained networks above the
#: agreement bar as its alternatives in `benchmarks/bench_int8.py`, the float classifier's
#: refit to FP32's logits too (its recipe ``no-refit``; docs/results.md, "The precision
#: you ship"). Per-channel weights;
#: percentile calibration, as min/max lets single outliers stretch a scale; 512 images, as
#: ranges from fewer are exceeded by images the calibration never saw; stem and classifier
#: in float. Weights use 7 of their 8 bits (``reduce_range``): x86 CPUs without
#: VNNI multiply int8 pairs through a saturating 16-bit instruction that full-range weights
#: overflowed, so one INT8 file holds on every x86. Asymmetric activations kept more
#: networks, but TensorRT reads only zero-point-0 INT8.
RECIPE = Int8Recipe()


class _Calibration:
    """onnxruntime.quantization's CalibrationDataReader over float32 batches of one size.

    ONNX Runtime's histogram calibrators stack the batches' outputs into one array, which
    fails on a shorter last batch (a small training set, e.g. ``--data-limit``), so the
    ragged tail is left out; fewer images than one batch make a single batch. A model whose
    batch size is fixed (the profiler's batch-1 graphs) is fed batches of that size.
    """

    def __init__(self, inputs: np.ndarray, batch: int = 32) -> None:
        whole = len(inputs) // batch * batch or len(inputs)
        self.batches: Iterator[np.ndarray] = iter(inputs[i:i + batch]
                                                  for i in range(0, whole, batch))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {"input": batch}


def role_nodes(model: onnx.ModelProto, roles: tuple[str, ...]) -> list[str]:
    """Names of the nodes that play ``roles`` in ``model`` (first Conv; Gemm and MatMul)."""
    nodes = model.graph.node
    names = []
    if "stem" in roles:
        names += [n.name for n in nodes if n.op_type == "Conv"][:1]
    if "classifier" in roles:
        names += [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
    return names


def to_int8(source: Path, target: Path, calibration: np.ndarray, recipe: Int8Recipe = RECIPE,
            float_nodes: tuple[str, ...] = ()) -> list[str]:
    """Quantise ``source`` into ``target`` by ``recipe``; gives the nodes left in float.

    ``calibration`` is cut to ``recipe.calibration_images``; ``float_nodes`` names nodes
    (of the pre-processed graph) to keep in float besides the recipe's roles.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax,
              "entropy": CalibrationMethod.Entropy}[recipe.calibration]
    prepared = target.with_suffix(".pre.onnx")
    try:
        if recipe.pre_process:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        else:
            onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(source))), str(prepared))
        graph = onnx.load(str(prepared))
        present = {n.name for n in graph.graph.node}
        missing = [name for name in float_nodes if name not in present]
        if missing:
            raise ExportError(f"{source}: float_nodes {missing} are not nodes of the "
                               "pre-processed graph")
        excluded = list(dict.fromkeys([*role_nodes(graph, recipe.float_roles), *float_nodes]))
        fixed = graph.graph.input[0].type.tensor_type.shape.dim[0].dim_value
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrators print progress
            quantize_static(str(prepared), str(target),
                            _Calibration(calibration[:recipe.calibration_images], fixed or 32),
                            nodes_to_exclude=excluded, quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            per_channel=recipe.per_channel, reduce_range=recipe.reduce_range,
                            calibrate_method=method,
                            extra_options={"ActivationSymmetric": recipe.symmetric_activations,
                                           "CalibPercentile": recipe.percentile})
    finally:
        prepared.unlink(missing_ok=True)
    if recipe.refit_classifier and "classifier" in recipe.float_roles:
        images = calibration[:recipe.calibration_images]
        refit_classifier(target, images, run_onnx(source, images, batch=fixed or 256))
    return excluded


#: The classifier refit's ridge penalty per image, pulling it towards the trained weights.
REFIT_RIDGE = 0.1


def refit_classifier(int8: Path, images: np.ndarray, fp32_logits: np.ndarray,
                     ridge: float = REFIT_RIDGE) -> None:
    """Refit, in place, the float classifier (the last Gemm) of an INT8 model so that its
    logits on ``images`` match FP32's ``fp32_logits``.

    Quantisation distorts the features the INT8 layers hand the classifier, partly in a
    way a linear map undoes (a channel's scale or offset shifted by its ranges). A ridge
    least-squares fit of the classifier to FP32's logits on the calibration images, pulled
    towards the trained weights, removes that part; per-image noise it cannot. The graph
    stays as it is, so a latency table that timed the exporter's INT8 graph still holds.
    """
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(int8))
    gemms = [n for n in model.graph.node if n.op_type == "Gemm" and len(n.input) == 3]
    fix = ("keep 'classifier' in Int8Recipe.float_roles, or set "
           "Int8Recipe.refit_classifier=False")
    if not gemms:
        raise ExportError(f"{int8}: no float classifier with a bias (Gemm) to refit; {fix}")
    gemm = gemms[-1]
    attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
    transposed = bool(attrs.get("transB", 0))
    inits = {i.name: i for i in model.graph.initializer}
    missing = [name for name in gemm.input[1:] if name not in inits]
    if missing or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 \
            or attrs.get("beta", 1.0) != 1.0:
        raise ExportError(f"{int8}: classifier {gemm.name!r} is not a plain float Gemm "
                          f"(weights {missing or 'stored'}, attributes {attrs}); {fix}")
    weight = numpy_helper.to_array(inits[gemm.input[1]]).astype(np.float64)
    weight = weight if transposed else weight.T  # (classes, features)
    bias = numpy_helper.to_array(inits[gemm.input[2]]).astype(np.float64)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info(gemm.input[0], TensorProto.FLOAT, None))
    probed = int8.with_suffix(".probe.onnx")
    try:
        onnx.save(probe, str(probed))
        sess = session(probed)
        fixed = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
        batch = fixed or 256  # a graph of one batch size is fed batches of that size
        whole = len(images) // batch * batch if fixed else len(images)
        if not whole:
            raise ExportError(f"{int8}: {len(images)} images, fewer than the graph's fixed "
                              f"batch of {batch}, to refit its classifier on; {fix}")
        images, fp32_logits = images[:whole], fp32_logits[:whole]
        features = np.concatenate([sess.run(None, {"input": images[i:i + batch]})[-1]
                                   .reshape(len(images[i:i + batch]), -1)
                                   for i in range(0, whole, batch)]).astype(np.float64)
    finally:
        probed.unlink(missing_ok=True)
    n, dim = features.shape
    x = np.hstack([features, np.ones((n, 1))])
    prior = np.hstack([weight, bias[:, None]]).T  # (features + 1, classes)
    fitted = np.linalg.solve(x.T @ x + ridge * n * np.eye(dim + 1),
                             x.T @ fp32_logits.astype(np.float64) + ridge * n * prior)
    new_weight = fitted[:-1].T if transposed else fitted[:-1]
    inits[gemm.input[1]].CopyFrom(numpy_helper.from_array(new_weight.astype(np.float32),
                                                          gemm.input[1]))
    inits[gemm.input[2]].CopyFrom(numpy_helper.from_array(fitted[-1].astype(np.float32),
                                                          gemm.input[2]))
    onnx.save(model, str(int8))
