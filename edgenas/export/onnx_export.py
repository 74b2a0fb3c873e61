"""PyTorch -> ONNX, FP16 and INT8 variants, each verified against its reference.

A failed verification raises: an export that silently disagrees with the trained model
is worse than no export.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
import torch

from edgenas.errors import EdgenasError

log = logging.getLogger(__name__)
OPSET = 17
FP32_TOLERANCE = 1e-4
AGREEMENT_REQUIRED = 0.99


class ExportError(EdgenasError):
    """An export failed or did not verify."""


class FormatRejected(ExportError):
    """A reduced-precision format disagreed with FP32: the others are still good to ship."""

    def __init__(self, fmt: str, message: str) -> None:
        super().__init__(message)
        self.format = fmt


def export_onnx(model: torch.nn.Module, resolution: int, path: Path, in_channels: int = 3) -> None:
    """Write ``model`` as ONNX (opset 17) with a dynamic batch dimension."""
    model = model.eval().cpu()
    example = torch.zeros(1, in_channels, resolution, resolution)
    torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=OPSET,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def session(path: Path):  # noqa: ANN201
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: Path, inputs: np.ndarray, batch: int = 256) -> np.ndarray:
    """Logits of an ONNX model for float32 NCHW inputs, in batches."""
    sess = session(path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: inputs[i:i + batch]})[0]
                           for i in range(0, len(inputs), batch)])


def verify_fp32(model: torch.nn.Module, path: Path, inputs: np.ndarray) -> float:
    """Max |ONNX Runtime - PyTorch| over ``inputs``; raises above 1e-4."""
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(inputs)).numpy()
    actual = run_onnx(path, inputs)
    diff = float(np.abs(actual - expected).max())
    if not diff <= FP32_TOLERANCE:
        raise ExportError(f"{path}: ONNX Runtime differs from PyTorch by {diff:.3g} "
                          f"(max allowed {FP32_TOLERANCE:g})")
    return diff


def to_fp16(source: Path, target: Path) -> None:
    """FP16 weights and compute, FP32 inputs and outputs (callers need not change)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))


class _Calibration:
    """onnxruntime.quantization's CalibrationDataReader over float32 batches of one size.

    ONNX Runtime's histogram calibrators stack the batches' outputs into one array, which
    fails on a shorter last batch (a small training set, e.g. ``--data-limit``), so the
    ragged tail is left out; fewer images than one batch make a single batch.
    """

    def __init__(self, inputs: np.ndarray, batch: int = 32) -> None:
        whole = len(inputs) // batch * batch or len(inputs)
        self.batches: Iterator[np.ndarray] = iter(inputs[i:i + batch]
                                                  for i in range(0, whole, batch))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {"input": batch}


def to_int8(source: Path, target: Path, calibration: np.ndarray) -> None:
    """Static INT8 quantisation in QDQ format (what TensorRT reads), per-channel weights.

    Activations are symmetric (zero point 0, as TensorRT requires) with percentile
    calibration: min/max calibration let single outliers stretch the scale, which cost
    1-2 % top-1 agreement on small models in our tests; percentile kept it above 99 %.
    Weights use 7 of their 8 bits (``reduce_range``): x86 CPUs without VNNI multiply int8
    pairs through a saturating 16-bit instruction, and full-range weights overflowed it
    (on an AVX2-only host: 95.4 % agreement and 91.1 % accuracy against FP32's 95.4 %;
    with the reduced range 99.2 % and 95.2 %). One INT8 file then holds on every x86 target.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        nodes = onnx.load(str(prepared)).graph.node
        # the stem sees raw pixels and the classifier decides the class: the two layers
        # most sensitive to 8-bit rounding, and a small share of the compute; keep them FP
        first_conv = next((n.name for n in nodes if n.op_type == "Conv"), None)
        classifier = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
        quantize_static(str(prepared), str(target), _Calibration(calibration),
                        nodes_to_exclude=[n for n in (first_conv, *classifier) if n],
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"ActivationSymmetric": True})
    finally:
        prepared.unlink(missing_ok=True)


def top1_match_rate(reference: np.ndarray, other: np.ndarray) -> float:
    """Share of images whose top-1 class is the same (a format's top-1 agreement with FP32)."""
    return float(np.mean(reference.argmax(1) == other.argmax(1)))
