"""FP16 conversion of an FP32 ONNX model (no torch: the profiler converts the graphs it times).
"""

from __future__ import annotations

from pathlib import Path

import onnx


def fp16_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """FP16 weights and compute, FP32 inputs and outputs (callers need not change)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)


def to_fp16(source: Path, target: Path) -> None:
    """``source`` written to ``target`` as `fp16_model` makes it."""
    onnx.save(fp16_model(onnx.load(str(source))), str(target))
