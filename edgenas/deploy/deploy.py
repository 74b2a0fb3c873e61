"""Deploy a bundle to a device: copy it, build there if TensorRT or OpenVINO, benchmark,
compare.

Engines are built on the device they run on (TensorRT engines are tied to the GPU and
the TensorRT version), by the same stand-alone agent that times models; an OpenVINO device
writes the bundle's ONNX as IR with its own OpenVINO, and the IR is what is timed. The report
goes into the bundle as ``deploy/<device>.json``, the engine as ``deploy/<device>.engine``,
the IR as ``deploy/<device>.xml`` and ``.bin``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import EdgenasError
from edgenas.export.bundle import MODEL_FILES, load_bundle
from edgenas.jsonio import write_json_atomic
from edgenas.profile.lut import LUT, load_lut, now
from edgenas.profile.timing import LoadGuard, load_guard
from edgenas.space import get_space

log = logging.getLogger(__name__)
#: A table is called drifting when its prediction is further than this from every round.
DRIFT_THRESHOLD = 0.10
#: The model is timed this many times, each with its own warm-up: one timing on a shared
#: device can land in a slow spell, and the rounds' spread says how far one can be trusted.
ROUNDS = 5


def model_for(device: Device, files: dict[str, str]) -> str:
    """Which bundle model a device runs (`Runtime.model_format`, the model its table was
    timed on): TensorRT builds FP16 from the FP32 graph and INT8 from the QDQ graph;
    OpenVINO compiles the FP32 graph at its pinned inference precision (fp32, fp16, bf16)
    and INT8 from the QDQ graph; ONNX Runtime runs the file of its precision."""
    fmt = device.runtime.model_format
    name = MODEL_FILES[fmt]
    if name not in files:
        raise EdgenasError(f"{device.name} runs {device.runtime.name} "
                           f"{device.runtime.precision}, which needs {name}; export with "
                           f"--formats onnx,{fmt}")
    return name


def _deploy_folder(bundle_dir: Path) -> Path:
    """``<bundle>/deploy``, where reports and engines are written: a real folder inside the
    bundle, never a link that would send those writes elsewhere."""
    out_dir = bundle_dir / "deploy"
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise EdgenasError(f"{out_dir}: not a folder of the bundle (a link or a file); remove "
                           "it and deploy again")
    out_dir.mkdir(exist_ok=True)
    return out_dir


def rounds_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One latency from several timings of a model: the median of the round medians, the
    rounds themselves, their spread ((max - min) / median) and the median round's
    percentiles."""
    rounds = [float(r["median_ms"]) for r in results]
    measured = float(np.median(rounds))
    middle = min(results, key=lambda r: abs(float(r["median_ms"]) - measured))
    return {**middle, "median_ms": measured, "rounds_ms": rounds,
            "round_spread": (max(rounds) - min(rounds)) / measured if measured else 0.0}


def drifting(predicted_ms: float, rounds_ms: list[float],
             threshold: float = DRIFT_THRESHOLD) -> bool:
    """Whether a prediction is further than ``threshold`` from every round: a table is only
    called off by more than the measurement's own spread shows."""
    return not min(rounds_ms) * (1 - threshold) <= predicted_ms <= max(rounds_ms) * (1 + threshold)


def deploy(bundle_dir: Path, device: Device, rounds: int = ROUNDS) -> dict[str, Any]:
    """Benchmark the bundle on ``device`` in ``rounds`` timings; returns (and stores) the
    report."""
    if rounds < 1:
        raise EdgenasError(f"rounds: {rounds}; time the model at least once (--rounds 1 or more)")
    bundle = load_bundle(bundle_dir)
    model_name = model_for(device, bundle["manifest"]["files"])
    report: dict[str, Any] = {"device": device.name, "runtime": device.runtime_settings(),
                              "model": model_name, "measured": now()}
    out_dir = _deploy_folder(Path(bundle_dir))
    with DeviceSession(device) as session:
        report["fingerprint"] = session.fingerprint()
        if session.local:
            remote = str(Path(bundle_dir).resolve())
        else:
            # only the verified model travels: whatever else lies in the folder (links, files
            # outside the manifest) never reaches the device
            remote = f"{session.connector.workdir}/bundle"
            session.connector.run(["mkdir", "-p", "--", remote])
            session.connector.push(Path(bundle_dir) / model_name, f"bundle/{model_name}")
        target = f"{remote}/{model_name}"
        if device.runtime.name == "tensorrt":
            engine = f"{remote}/deploy/{device.name}.engine"
            session.connector.run(["mkdir", "-p", f"{remote}/deploy"])
            built = session.run_agent(["build", target, "--out", engine,
                                       "--precision", device.runtime.precision,
                                       "--workspace-mb", str(device.runtime.workspace_mb),
                                       "--timing-cache",
                                       f"{session.connector.workdir}/timing.cache"])
            report["engine"] = json.loads(built.strip().splitlines()[-1])
            if not session.local:
                session.connector.pull(engine, out_dir / f"{device.name}.engine")
            target = engine
        elif device.runtime.name == "openvino":
            report["ir"], target = _write_ir(session, target, remote, out_dir)
        predicted = bundle["metrics"].get("predicted_latency_ms", {}).get(device.name)
        table = _predicting_table(device, predicted)
        names = [f"m{i:06d}" for i in range(rounds)]
        with tempfile.TemporaryDirectory(prefix="edgenas-reference-") as folder:
            guard, reference = _place_reference(session, device, table, Path(folder), remote)
            order = names if guard is None else guard.layout(names)
            timed: list[dict[str, Any]] = []
            session.time_paths([target if name in names else reference for name in order],
                               timed.append)
    failed = [r for r in timed if "error" in r]
    if failed or len(timed) < len(order):
        why = failed[0]["error"] if failed else f"{len(timed)} of {len(order)} timings came back"
        raise EdgenasError(f"{device.name}: benchmarking {model_name} failed: {why}")
    results = dict(zip(order, timed))
    stats = rounds_summary([results[name] for name in names])  # as timed
    report["latency_ms"] = stats
    if guard is not None:
        assert table is not None
        report["load"] = load_during(guard, table, results, names)
    # bundles exported before predictions named it were predicted by the device's own table
    timed_as = (predicted or {}).get("precision", device.runtime.precision)
    if predicted is not None and timed_as != device.runtime.precision:
        # a prediction of another model's latency: nothing to compare like with like
        report["prediction_note"] = (f"the bundle's prediction for {device.name} is from a "
                                     f"{timed_as} table; the device runs "
                                     f"{device.runtime.precision}: re-export after profiling it")
    elif predicted is not None:
        measured = stats["median_ms"]
        report["predicted_ms"] = predicted["ms"]
        report["prediction_error"] = (predicted["ms"] - measured) / measured
        load = report.get("load")
        if load is None:
            report["lut_drifting"] = drifting(predicted["ms"], stats["rounds_ms"])
        else:
            # the table against the device at one level: the prediction at the table's
            # yardstick, the rounds as the reference network beside them puts them there
            at_level = predicted["ms"] / load["anchor_ratio"]
            report["lut_drifting"] = drifting(at_level, load["rounds_at_table_level_ms"])
            load["prediction_error_at_table_level"] = (
                (at_level - load["median_at_table_level_ms"]) / load["median_at_table_level_ms"])
    write_json_atomic(report, out_dir / f"{device.name}.json")
    return report


def _predicting_table(device: Device, predicted: dict[str, Any] | None) -> LUT | None:
    """The table the bundle's prediction for ``device`` came from, where it is still here
    and timed beside a reference network (not on TensorRT: every reference there would be
    an engine build)."""
    if predicted is None or device.runtime.name == "tensorrt":
        return None
    path = Path(str(predicted.get("lut") or ""))
    if not path.is_file():
        return None
    try:
        table = load_lut(path)
    except EdgenasError as err:
        log.info("%s: no load check against %s: %s", device.name, path, err)
        return None
    if table.device != device.name or not (table.timing.get("protocol") or {}).get("yardstick_ms"):
        return None
    return table


def _place_reference(session: DeviceSession, device: Device, table: LUT | None, folder: Path,
                     remote: str) -> tuple[LoadGuard | None, str]:
    """The table's load guard, a reference before, between and after the rounds, and its
    reference network (in the device's precision) where the device times it; no guard
    without a table to compare with."""
    guard = None if table is None else load_guard(device, get_space(table.space), table)
    if guard is None:
        return None, ""
    guard.every = 1  # a reference beside every round
    local = folder / "reference.onnx"
    onnx.save(guard.reference, local)
    if session.local:
        return guard, str(local)
    session.connector.push(local, "bundle/reference.onnx")
    return guard, f"{remote}/reference.onnx"


def load_during(guard: LoadGuard, table: LUT, results: dict[str, dict[str, Any]],
                names: list[str]) -> dict[str, Any]:
    """How loaded the device was while the model was timed, from the reference network
    timed before, between and after its rounds, and the rounds at the table's level (the
    guard's own scaling, as the table's networks were timed): a prediction is judged
    against the device at the level its table was made at, so a busy spell is not called a
    drifting table, and the report says how busy."""
    assert guard.yardstick_ms is not None
    references = [float(r["median_ms"]) for name, r in results.items() if name not in names]
    timings = guard.scale(results, names)
    at_level = [float(timings[name].median_ms) for name in names]
    return {"yardstick_ms": guard.yardstick_ms, "references_ms": references,
            "level": guard.level, "ratio": float(np.median(references)) / guard.yardstick_ms,
            "anchor_ratio": float((table.timing.get("anchor") or {}).get("ratio", 1.0)),
            "rounds_at_table_level_ms": at_level,
            "median_at_table_level_ms": float(np.median(at_level))}


def _write_ir(session: DeviceSession, onnx_path: str, remote: str, out_dir: Path
              ) -> tuple[dict[str, Any], str]:
    """The bundle's ONNX written as OpenVINO IR on the device, by the device's OpenVINO (an
    IR is what an OpenVINO application ships; a newer runtime reads an older IR, not the
    other way round). Returns the agent's report and the IR's path on the device; a remote
    IR is fetched into ``out_dir``."""
    name = session.device.name
    ir = f"{remote}/deploy/{name}.xml"
    session.connector.run(["mkdir", "-p", f"{remote}/deploy"])
    written = session.run_agent(["build", "--runtime", "openvino", onnx_path, "--out", ir])
    if not session.local:
        for suffix in (".xml", ".bin"):
            session.connector.pull(f"{remote}/deploy/{name}{suffix}", out_dir / f"{name}{suffix}")
    return json.loads(written.strip().splitlines()[-1]), ir


#: What the bundle's runner needs beside the model to classify an image on the device.
RUNNER_FILES = ("run.py", "preprocess.json", "labels.txt")


def classify_on_device(bundle_dir: Path, device: Device, image: Path, top: int = 5) -> str:
    """The bundle's own ``run.py`` classifying ``image`` on ``device``, with the device's
    Python and runtime (what a user runs there); returns its output (score, label lines).

    Only the runner, its two small inputs, the device's model and the image travel, as
    verified against the bundle's manifest."""
    bundle = load_bundle(bundle_dir)  # hashes checked: nothing tampered travels
    model_name = model_for(device, bundle["manifest"]["files"])
    if device.runtime.name == "tensorrt":
        raise EdgenasError(f"{device.name}: run.py runs ONNX models with ONNX Runtime or "
                           "OpenVINO; TensorRT devices run the engine deploy builds")
    runtime = runner_args(device, (Path(bundle_dir) / "run.py").read_text(encoding="utf-8"))
    if not Path(image).is_file():
        raise EdgenasError(f"--classify {image}: no such image file")
    with tempfile.TemporaryDirectory(prefix="edgenas-classify-") as folder:
        staged = Path(folder) / "classify"
        staged.mkdir()
        for name in (*RUNNER_FILES, model_name):
            shutil.copyfile(Path(bundle_dir) / name, staged / name)
        shutil.copyfile(image, staged / f"image{Path(image).suffix}")
        with DeviceSession(device) as session:
            remote = str(staged) if session.local else session.connector.push(staged, "classify")
            return session.connector.run(
                [session.python, f"{remote}/run.py", f"{remote}/image{Path(image).suffix}",
                 "--bundle", remote, "--model", model_name, "--top", str(top), *runtime])


def runner_args(device: Device, runner: str) -> list[str]:
    """run.py's arguments for the device's runtime: none for ONNX Runtime (its default);
    for OpenVINO the device and the precision the profile and benchmark pinned. A bundle
    exported before run.py read OpenVINO cannot classify there: it says so, and how."""
    if device.runtime.name != "openvino":
        return []
    if "--runtime" not in runner:
        raise EdgenasError(f"{device.name}: this bundle's run.py runs ONNX Runtime only (it "
                           "was exported before run.py read OpenVINO); export the bundle "
                           "again, or classify on an onnxruntime device")
    return ["--runtime", "openvino", "--device", device.runtime.device or "CPU",
            "--precision", device.runtime.precision]
