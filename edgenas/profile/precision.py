"""The model a device runs for one of the profiler's ONNX graphs: its precision applied.

A table is only as true as the models it times are the ones a device ships. Every place
that times a unit or a network for a device asks `device_model` (or `DeviceModels`, which
asks it lazily): on a device whose runtime runs the bundle's INT8 model, the exporter's
static QDQ quantisation (`edgenas.export.int8`, its `RECIPE`); on ONNX Runtime at FP16,
the exporter's FP16 conversion (`edgenas.export.fp16`); otherwise the FP32 graph itself
(TensorRT and OpenVINO build FP16 from it). Which one is `Runtime.model_format`, the rule
deploy picks the bundle's file by. Models are converted here, on the host: the device's
agent only times files.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import onnx

from edgenas.device.descriptor import Device
from edgenas.export.fp16 import fp16_model
from edgenas.export.int8 import RECIPE, to_int8
from edgenas.profile.lut import LUT
from edgenas.profile.onnx_graph import role

log = logging.getLogger(__name__)
#: Calibration inputs per INT8 model. They set the scales, not the graph, and so not the
#: time; a few keep the quantisation of a space's thousands of units to minutes.
CALIBRATION_INPUTS = 8
#: The exporter's recipe, calibrated on `CALIBRATION_INPUTS` random normal inputs.
TIMING_RECIPE = replace(RECIPE, calibration_images=CALIBRATION_INPUTS,
                        refit_classifier=False)  # new weights, the same graph: the same time
#: CPUs on which ONNX Runtime's CPU provider has FP16 kernels (64-bit ARM; a phone's
#: fingerprint names its ABI instead of a machine).
FP16_MACHINES = ("aarch64", "arm64", "arm64-v8a")


def device_model(device: Device, graph: onnx.ModelProto) -> onnx.ModelProto:
    """The model ``device`` runs for ``graph``, an FP32 graph of
    `edgenas.profile.onnx_graph`: quantised to INT8, converted to FP16, or ``graph``."""
    fmt = device.runtime.model_format
    if fmt == "int8":
        return int8_model(graph)
    if fmt == "fp16":
        return fp16_model(graph)
    return graph


def int8_model(graph: onnx.ModelProto, calibration: np.ndarray | None = None,
               seed: int = 0) -> onnx.ModelProto:
    """``graph`` quantised by the exporter's recipe (`TIMING_RECIPE`), calibrated on
    ``calibration`` or on random normal inputs.

    What the recipe keeps in float is kept where a network has it: a stem unit's
    convolution is the network's stem, a block unit's first convolution is not.
    """
    roles = TIMING_RECIPE.float_roles
    if role(graph) not in ("network", "stem"):
        roles = tuple(name for name in roles if name != "stem")
    if calibration is None:
        dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
        calibration = np.random.default_rng(seed).standard_normal(
            (CALIBRATION_INPUTS, *dims[1:])).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="edgenas-int8-") as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save(graph, source)
        to_int8(source, target, calibration, replace(TIMING_RECIPE, float_roles=roles))
        return onnx.load(str(target))


def fp16_note(device: Device, fingerprint: dict[str, Any]) -> str | None:
    """Why ``device``'s FP16 times may be no FP16 kernel's (None: nothing to say). ONNX
    Runtime's CPU provider has FP16 kernels on ARM only; elsewhere it casts the model back
    to float, and the table times that, as the device runs it."""
    runtime = device.runtime
    machine = str(fingerprint.get("machine") or fingerprint.get("abi") or "")
    if runtime.model_format != "fp16" or runtime.providers[:1] != ("CPUExecutionProvider",) \
            or machine in FP16_MACHINES:
        return None
    return (f"ONNX Runtime's CPUExecutionProvider has no FP16 kernels on {machine or 'this CPU'}: "
            "it runs the FP16 model through casts to float, and these times are that")


class DeviceModels(Mapping[str, onnx.ModelProto]):
    """The models a device runs for named graphs (`device_model`), each made when first
    asked for: a profile quantises a chunk of units as it times them, not the whole space
    before the first. ``keep``: hold made models for a second round (networks) or not
    (thousands of units). ``seconds`` and ``made`` say what the conversion cost."""

    def __init__(self, device: Device, graphs: Mapping[str, Callable[[], onnx.ModelProto]],
                 keep: bool = True) -> None:
        self.device, self.graphs, self.keep = device, graphs, keep
        self.kept: dict[str, onnx.ModelProto] = {}
        self.seconds, self.made = 0.0, 0

    def __getitem__(self, key: str) -> onnx.ModelProto:
        if key in self.kept:
            return self.kept[key]
        graph = self.graphs[key]()
        if self.device.runtime.model_format == "onnx":
            return graph
        started = time.perf_counter()
        model = device_model(self.device, graph)
        self.seconds += time.perf_counter() - started
        self.made += 1
        if self.keep:
            self.kept[key] = model
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(self.graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def record(self, lut: LUT) -> None:
        """Add what this conversion cost to ``lut``'s record of its models (`describe`)."""
        if not self.made:
            return
        models = lut.timing.setdefault("models", describe(self.device))
        models["converted"] = models.get("converted", 0) + self.made
        models["convert_s"] = round(models.get("convert_s", 0.0) + self.seconds, 3)
        self.seconds, self.made = 0.0, 0


def describe(device: Device, fingerprint: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a table records of the models it timed: their format (what staleness compares:
    `Runtime.model_format`), the device's precision, and how they were made."""
    fmt = device.runtime.model_format
    out: dict[str, Any] = {"format": fmt, "precision": device.runtime.precision}
    if fmt == "int8":
        out["quantization"] = {**TIMING_RECIPE.to_dict(),
                               "calibration_inputs": "random normal, per model",
                               "how": "edgenas.export.int8.to_int8, static QDQ, as exported"}
    elif fmt == "fp16":
        out["conversion"] = "edgenas.export.fp16.fp16_model, as exported (FP32 inputs/outputs)"
    note = fp16_note(device, fingerprint or {})
    if note:
        out["note"] = note
    return out
