"""PyTorch -> ONNX, and the checks every format is verified by (FP16: `edgenas.export.fp16`).

A failed verification raises: an export that silently disagrees with the trained model
is worse than no export.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch

from edgenas.errors import ExportError

log = logging.getLogger(__name__)
OPSET = 17
FP32_TOLERANCE = 1e-4
AGREEMENT_REQUIRED = 0.99


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


def top1_match_rate(reference: np.ndarray, other: np.ndarray) -> float:
    """Share of images whose top-1 class is the same (a format's top-1 agreement with FP32)."""
    return float(np.mean(reference.argmax(1) == other.argmax(1)))


def check_agreement(fmt: str, agreement: float, images: int) -> None:
    """Raise `FormatRejected` when a format's top-1 agreement with FP32 is below the bar."""
    if agreement < AGREEMENT_REQUIRED:
        raise FormatRejected(fmt, f"{fmt}: top-1 agreement with FP32 is {100 * agreement:.2f} % "
                                  f"on {images} images (needs >= {100 * AGREEMENT_REQUIRED:.0f} %)")
