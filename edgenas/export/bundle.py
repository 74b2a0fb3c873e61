"""A deployable bundle: verified models, the arch, metrics, preprocessing, labels, runner.

Layout (all plain files, listed with their SHA-256 in ``manifest.json``):

    model.onnx  model.fp16.onnx  model.int8.onnx   (the formats asked for that verified)
    arch.json  metrics.json  preprocess.json  labels.txt  run.py  manifest.json

Loading a bundle checks the manifest: every file is inside the folder and has the
recorded hash; nothing in a bundle is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgenas.cost.count import count
from edgenas.errors import EdgenasError
from edgenas.export.fp16 import to_fp16
from edgenas.export.int8 import RECIPE, to_int8
from edgenas.export.onnx_export import (ExportError, FormatRejected, check_agreement, export_onnx,
                                        run_onnx, top1_match_rate, verify_fp32)
from edgenas.jsonio import read_json, write_json_atomic
from edgenas.space.arch import Arch

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
FORMATS = ("onnx", "fp16", "int8")
MODEL_FILES = {"onnx": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
RUNNER = Path(__file__).with_name("runner.py")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_bundle(arch: Arch, model: torch.nn.Module, out: Path, *, val_inputs: np.ndarray,
                  val_labels: np.ndarray, calibration: np.ndarray, preprocess: dict[str, Any],
                  labels: list[str], formats: tuple[str, ...] = FORMATS,
                  provenance: dict[str, Any] | None = None,
                  predicted_latency: dict[str, Any] | None = None,
                  drop_rejected: bool = False, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Export, verify and write a bundle; returns its metrics. Raises `ExportError`.

    An FP16 or INT8 variant below the agreement bar raises `FormatRejected` (nothing is
    written), unless ``drop_rejected``: then it is left out, the bundle ships the formats
    that held, and ``metrics.json`` says why (``verification[fmt]["rejected"]``) and which
    formats the bundle holds (``formats``), so the reason travels with the bundle. A format
    in ``keep`` (the one the target device runs, whose latency a search optimised) is
    shipped below the bar, its shortfall in ``verification[fmt]["below_bar"]``.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or "onnx" not in formats:
        raise ExportError(f"--formats {','.join(formats)}: choose from {FORMATS}; 'onnx' "
                          "(FP32) is always needed as the reference")
    if len(val_inputs) < 500 and ("fp16" in formats or "int8" in formats):
        raise ExportError(f"FP16/INT8 verification needs at least 500 validation images, "
                          f"got {len(val_inputs)}")
    out = Path(out).absolute()  # '.' has no name to stage beside
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise ExportError(f"{out}: exists and is not a bundle; export into a new folder (a "
                          "re-export replaces a bundle, never other files)")
    # built beside the bundle and swapped in whole: a failed export (a full disk, a rejected
    # format) leaves the previous bundle as it was
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        metrics = _write_bundle(arch, model, staging, val_inputs, val_labels, calibration,
                                preprocess, labels, formats, provenance, predicted_latency,
                                drop_rejected, keep)
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return metrics


def _swap_in(staging: Path, out: Path) -> None:
    """Replace the bundle at ``out`` (if any) by ``staging``.

    Deploy reports of the previous bundle stay when its models are byte for byte the ones
    exported now (a re-run of the main job re-exports the same weights); otherwise they
    describe another model and go with it.
    """
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        if (out / "deploy").is_dir() and not (out / "deploy").is_symlink() and \
                _models(out) == _models(staging):
            os.replace(out / "deploy", staging / "deploy")
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _models(folder: Path) -> dict[str, str]:
    """The model files' digests listed in a bundle's manifest ({} when unreadable)."""
    try:
        files = json.loads((folder / "manifest.json").read_text())["files"]
        return {name: files[name] for name in MODEL_FILES.values() if name in files}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write_bundle(arch: Arch, model: torch.nn.Module, out: Path, val_inputs: np.ndarray,
                  val_labels: np.ndarray, calibration: np.ndarray, preprocess: dict[str, Any],
                  labels: list[str], formats: tuple[str, ...],
                  provenance: dict[str, Any] | None,
                  predicted_latency: dict[str, Any] | None,
                  drop_rejected: bool, keep: tuple[str, ...]) -> dict[str, Any]:
    labelled = val_labels >= 0  # callers may add unlabelled images for the agreement checks
    fp32_path = out / MODEL_FILES["onnx"]
    export_onnx(model, arch.resolution, fp32_path, arch.in_channels)
    max_diff = verify_fp32(model, fp32_path, val_inputs[:256])
    reference = run_onnx(fp32_path, val_inputs)
    counts = count(arch)
    verification: dict[str, Any] = {
        "onnx": {"max_abs_diff_vs_pytorch": max_diff, "images": int(min(256, len(val_inputs))),
                 "accuracy": float(np.mean(reference[labelled].argmax(1) == val_labels[labelled]))}}
    shipped = ["onnx"]
    for fmt in ("fp16", "int8"):
        if fmt not in formats:
            continue
        path = out / MODEL_FILES[fmt]
        if fmt == "fp16":
            to_fp16(fp32_path, path)
            how: dict[str, Any] = {}
        else:  # the recipe and the layers it left in float travel with the model
            how = {"recipe": RECIPE.to_dict(),
                   "nodes_in_float": to_int8(fp32_path, path, calibration, RECIPE)}
        logits = run_onnx(path, val_inputs)
        agree = top1_match_rate(reference, logits)
        verification[fmt] = {"top1_agreement_with_fp32": agree, "images": int(len(val_inputs)),
                             "accuracy": float(np.mean(logits[labelled].argmax(1) == val_labels[labelled])),
                             **how}
        try:
            check_agreement(fmt, agree, len(val_inputs))
        except FormatRejected as err:
            if fmt in keep:
                log.warning("%s; shipped all the same: the target device runs %s", err, fmt)
                verification[fmt]["below_bar"] = str(err)
                shipped.append(fmt)
                continue
            if not drop_rejected:
                raise
            log.warning("%s; %s left out of the bundle", err, fmt)
            path.unlink()
            verification[fmt]["rejected"] = str(err)
            continue
        shipped.append(fmt)
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "formats": shipped,
        "macs": counts.macs, "params": counts.params,
        "memory_bytes": {p: counts.memory_bytes(p) for p in ("fp32", "fp16", "int8")},
        "verification": verification,
        "accuracy": {"top1": verification["onnx"]["accuracy"], "images": int(labelled.sum()),
                     "measured_on": "the validation split (never trained on)",
                     **(provenance or {}).get("split", {})},
        "weights": (provenance or {}).get("weights", "untrained (random initialisation)"),
        "predicted_latency_ms": predicted_latency or {},
    }
    write_json_atomic(json.loads(arch.to_json()), out / "arch.json")
    write_json_atomic(metrics, out / "metrics.json")
    write_json_atomic(preprocess, out / "preprocess.json")
    (out / "labels.txt").write_text("".join(f"{name}\n" for name in labels), encoding="utf-8")
    shutil.copyfile(RUNNER, out / "run.py")
    files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "manifest.json"
                   and not p.name.startswith("."))
    write_json_atomic({"schema_version": SCHEMA_VERSION, "files": {f: sha256(out / f) for f in files}},
                      out / "manifest.json")
    return metrics


def precision_checks(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each reduced-precision format a bundle verified (fp16, int8): its top-1 agreement
    with FP32, its validation accuracy beside FP32's, whether it shipped, and why not."""
    verification = metrics.get("verification") or {}
    fp32 = (verification.get("onnx") or {}).get("accuracy")
    checks = {}
    for fmt in ("fp16", "int8"):
        check = verification.get(fmt)
        if isinstance(check, dict) and "top1_agreement_with_fp32" in check:
            checks[fmt] = {"top1_agreement_with_fp32": check["top1_agreement_with_fp32"],
                           "accuracy": check.get("accuracy"), "fp32_accuracy": fp32,
                           "shipped": fmt in metrics.get("formats", ()),
                           **{key: check[key] for key in ("rejected", "below_bar")
                              if key in check}}
    return checks


def describe_check(fmt: str, check: dict[str, Any]) -> str:
    """One `precision_checks` entry in words."""
    accuracy = "" if check.get("accuracy") is None else (
        f", val. accuracy {100 * check['accuracy']:.1f} %"
        + ("" if check.get("fp32_accuracy") is None
           else f" (FP32 {100 * check['fp32_accuracy']:.1f} %)"))
    state = ("left out" if not check["shipped"] else
             "shipped below the bar" if "below_bar" in check else "shipped")
    agreement = check["top1_agreement_with_fp32"]
    return f"{fmt.upper()}: top-1 agreement with FP32 {100 * agreement:.2f} %{accuracy}; {state}"


def load_bundle(folder: Path) -> dict[str, Any]:
    """Validate a bundle and return its manifest, arch, metrics and preprocessing."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    manifest = read_json(manifest_path, f"is {folder} a bundle made by 'edgenas export'?")
    if manifest.get("schema_version") != SCHEMA_VERSION or not isinstance(manifest.get("files"), dict):
        raise EdgenasError(f"{manifest_path}: not a bundle manifest of this edgenas")
    root = folder.resolve()
    for name, digest in manifest["files"].items():
        path = (folder / name).resolve()
        if root not in path.parents:
            raise EdgenasError(f"{manifest_path}: files: {name!r} points outside the bundle")
        if not path.is_file():
            raise EdgenasError(f"{folder}: {name} is listed in the manifest but missing")
        if sha256(path) != digest:
            raise EdgenasError(f"{folder}: {name} does not match its manifest hash (modified "
                               "or corrupted); re-export the bundle")
    for required in ("model.onnx", "arch.json", "metrics.json", "preprocess.json"):
        if required not in manifest["files"]:
            raise EdgenasError(f"{manifest_path}: files: {required} missing")
    return {"manifest": manifest,
            "arch": Arch.from_json((folder / "arch.json").read_text(), str(folder / "arch.json")),
            "metrics": json.loads((folder / "metrics.json").read_text()),
            "preprocess": json.loads((folder / "preprocess.json").read_text())}
