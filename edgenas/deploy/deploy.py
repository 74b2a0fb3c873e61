"""Deploy a bundle to a device: copy it, build there if TensorRT, benchmark, compare.

Engines are built on the device they run on (TensorRT engines are tied to the GPU and
the TensorRT version), by the same stand-alone agent that times models. The report goes
into the bundle as ``deploy/<device>.json``, the engine as ``deploy/<device>.engine``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import EdgenasError
from edgenas.export.bundle import MODEL_FILES, load_bundle
from edgenas.jsonio import write_json_atomic
from edgenas.profile.lut import now

log = logging.getLogger(__name__)
DRIFT_THRESHOLD = 0.10


def model_for(device: Device, files: dict[str, str]) -> str:
    """Which bundle model a device runs: TensorRT builds FP16 from the FP32 graph and INT8
    from the QDQ graph; ONNX Runtime runs the file of its precision."""
    precision = device.runtime.precision
    name = MODEL_FILES["int8"] if precision == "int8" else (
        MODEL_FILES["fp16"] if precision == "fp16" and device.runtime.name == "onnxruntime"
        else MODEL_FILES["onnx"])
    if name not in files:
        raise EdgenasError(f"{device.name} runs {device.runtime.name} {precision}, which needs "
                           f"{name}; export with --formats onnx,{'int8' if 'int8' in name else 'fp16'}")
    return name


def deploy(bundle_dir: Path, device: Device) -> dict[str, Any]:
    """Benchmark the bundle on ``device``; returns (and stores) the report."""
    bundle = load_bundle(bundle_dir)
    model_name = model_for(device, bundle["manifest"]["files"])
    report: dict[str, Any] = {"device": device.name, "runtime": device.runtime_settings(),
                              "model": model_name, "measured": now()}
    out_dir = Path(bundle_dir) / "deploy"
    out_dir.mkdir(exist_ok=True)
    with DeviceSession(device) as session:
        report["fingerprint"] = session.fingerprint()
        remote = (str(Path(bundle_dir).resolve()) if session.local
                  else session.connector.push(Path(bundle_dir), "bundle"))
        target = f"{remote}/{model_name}"
        if device.runtime.name == "tensorrt":
            engine = f"{remote}/deploy/{device.name}.engine"
            session.connector.run(["mkdir", "-p", f"{remote}/deploy"])
            built = session.connector.run([session.python, session.agent_path(), "build", target,
                                           "--out", engine, "--precision", device.runtime.precision,
                                           "--workspace-mb", str(device.runtime.workspace_mb),
                                           "--timing-cache", f"{session.connector.workdir}/timing.cache"])
            report["engine"] = json.loads(built.strip().splitlines()[-1])
            if not session.local:
                session.connector.pull(engine, out_dir / f"{device.name}.engine")
            target = engine
        results: list[dict[str, Any]] = []
        session.time_paths([target], results.append)
    stats = results[0] if results else {"error": "no result"}
    if "error" in stats:
        raise EdgenasError(f"{device.name}: benchmarking {model_name} failed: {stats['error']}")
    report["latency_ms"] = stats
    predicted = bundle["metrics"].get("predicted_latency_ms", {}).get(device.name)
    if predicted is not None:
        measured = stats["median_ms"]
        error = (predicted["ms"] - measured) / measured
        report["predicted_ms"] = predicted["ms"]
        report["prediction_error"] = error
        report["lut_drifting"] = abs(error) > DRIFT_THRESHOLD
    write_json_atomic(report, out_dir / f"{device.name}.json")
    return report
