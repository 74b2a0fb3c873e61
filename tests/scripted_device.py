"""A fake device for tests: model times come from a known cost model, not from a clock.

`ScriptedDevice` puts a `ScriptedSession` in place of `edgenas.device.session.DeviceSession`
wherever the profiler and the drift check time models. It reads each ONNX file it is given
and answers with the time a stated cost model gives it, so a test knows exactly what the
table should learn and runs in the same time on any host. Only the timing is fake: the models, the
table, its correction and every decision made on them are the real code.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import pytest

from edgenas.device.agent import timer
from edgenas.errors import DeviceError


@dataclass
class CostModel:
    """What a model costs on the scripted device, in ms.

    ``per_call_ms`` once per model timed (the runtime's fixed cost of one call), plus
    ``ms_per_mmac`` per million multiply-accumulates of its convolutions (depth-wise ones
    ``depthwise_factor`` times dearer per MAC: they are memory-bound). Work adds up exactly:
    a network costs one call plus the sum of its units' work. A whole network (a model
    with a classifier) runs ``network_factor`` times its work (fusion between units).
    ``scrambled`` gives every convolution a pseudo-random cost of its own instead (fixed
    by its shapes), unrelated to its MACs: a device whose order of networks no table of
    another device can predict. An INT8 (QDQ) model costs what its FP32 graph does.
    """

    per_call_ms: float = 0.0
    ms_per_mmac: float = 0.02
    depthwise_factor: float = 4.0
    network_factor: float = 1.0
    scrambled: bool = False

    def __call__(self, model: onnx.ModelProto) -> float:
        inferred = onnx.shape_inference.infer_shapes(model)
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                  for v in [*inferred.graph.value_info, *inferred.graph.output]}
        weights = {w.name: list(w.dims) for w in model.graph.initializer}
        weights.update({node.output[0]: weights[node.input[0]] for node in model.graph.node
                        if node.op_type == "DequantizeLinear" and node.input[0] in weights})
        work = 0.0
        for node in model.graph.node:
            if node.op_type != "Conv":
                continue
            weight, out = weights[node.input[1]], shapes[node.output[0]]
            if self.scrambled:
                key = f"{weight}@{out[-2:]}".encode()
                work += self.ms_per_mmac * 5 * (zlib.crc32(key) % 1000 / 1000) ** 3
                continue
            macs = float(np.prod(weight)) * out[-2] * out[-1]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            factor = self.depthwise_factor if group > 1 else 1.0
            work += self.ms_per_mmac * factor * macs / 1e6
        return self.per_call_ms + work * (self.network_factor if is_network(model) else 1.0)


def is_network(model: onnx.ModelProto) -> bool:
    """A whole network (it ends in a classifier), not a unit."""
    return any(node.op_type == "Gemm" for node in model.graph.node)


class DeviceKilled(BaseException):
    """The scripted device's process was killed: a BaseException, so that no handler of the
    code under test gets to write anything more, as after a SIGKILL."""


class ScriptedDevice:
    """A fake device: installed in place of the real device session for the profiler and
    the drift check, it times every model by ``cost``.

    Change its attributes between steps of a test to change the device: ``cost``;
    ``load`` multiplies every time (the reference network's too), a number or a function of
    how many models the device has timed so far (a slow stretch); ``noise`` adds a seeded
    relative jitter, uniform within +-noise, per timing; once ``killed_when()`` is true
    (checked before each model) the device raises `DeviceKilled`; once ``lost_when()`` is
    true, the connection is lost: a `DeviceError` as ssh's exit 255 gives, which the code
    under test may handle. ``timed`` counts the
    models timed, ``kinds`` what each was ("unit", "network" or "reference").
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cost: CostModel) -> None:
        from edgenas.profile import measure, profiler

        self.cost = cost
        self.load: float | Callable[[int], float] = 1.0
        self.noise = 0.0
        self.killed_when: Callable[[], bool] | None = None
        self.lost_when: Callable[[], bool] | None = None
        self.timed = 0
        self.kinds: list[str] = []
        self.rng = np.random.default_rng(0)
        monkeypatch.setattr(profiler, "DeviceSession", self.session)
        monkeypatch.setattr(measure, "DeviceSession", self.session)

    def session(self, device: Any) -> "ScriptedSession":
        return ScriptedSession(self, device)

    def time(self, file: Path) -> float:
        """One model's time now, in ms."""
        if self.killed_when is not None and self.killed_when():
            raise DeviceKilled(f"scripted device killed after {self.timed} models")
        if self.lost_when is not None and self.lost_when():
            raise DeviceError("ssh scripted: failed with exit code 255 (ssh could not reach the "
                              "device or lost the connection)")
        load = self.load(self.timed) if callable(self.load) else self.load
        model = onnx.load(str(file))
        ms = self.cost(model) * load
        if self.noise:
            ms *= 1 + self.rng.uniform(-self.noise, self.noise)
        self.timed += 1
        self.kinds.append("reference" if file.name.startswith("ref") else
                          "network" if is_network(model) else "unit")
        return ms


class ScriptedSession:
    """`DeviceSession`'s interface (a context manager with ``device``, ``fingerprint``
    and ``time_models``) answered by a `ScriptedDevice`."""

    def __init__(self, scripted: ScriptedDevice, device: Any) -> None:
        self.scripted, self.device = scripted, device

    def __enter__(self) -> "ScriptedSession":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def fingerprint(self) -> dict[str, Any]:
        """This host's: a table made here stays fresh for `open_lut`'s local check."""
        return timer.fingerprint(self.device.runtime.name)

    def time_models(self, files: list[Path], handle: Callable[[dict[str, Any]], None]) -> None:
        for file in files:
            ms = self.scripted.time(file)
            handle({"model": file.name, "median_ms": ms, "p10_ms": ms, "p90_ms": ms,
                    "min_ms": ms, "mean_ms": ms})


def scripted_device(monkeypatch: pytest.MonkeyPatch, cost: CostModel | None = None
                    ) -> ScriptedDevice:
    """A fake device whose timings follow ``cost`` (default: `CostModel()`)."""
    return ScriptedDevice(monkeypatch, cost or CostModel())
