"""Why INT8 variants miss the 99 % agreement bar, and which quantisation recipe keeps them.

    .venv/bin/python -m benchmarks bench_int8 runs/main/search/trained/* \\
        --json benchmarks/results/bench_int8.json

Takes trained networks: stand-alone training runs (``edgenas train --out DIR``, or the
archs a trained search trained: ``edgenas run`` keeps them in ``runs/main/search/trained/``).
Each run's INT8 model is made under every recipe below (`edgenas.export.int8.Int8Recipe`,
one choice changed from the exporter's at a time, plus layers kept in float by ONNX
Runtime's `qdq_loss_debug`) and scored by top-1 agreement with the FP32 model on the run's
validation split: images never trained on and never calibrated on (at least 500), and by
the logits' signal-to-quantisation-noise ratio, which ranks recipes with far less noise
than agreement (that moves by whole near-tied images). Beside it, per run: FP16's
agreement (the floor set by near-ties, not by quantisation), the near-ties (images whose
FP32 top-2 logits are closer than 5 % of that image's logit range) and how many of a
recipe's flips fall on them, and the activations where the INT8 model departs most from
FP32 (SQNR, dB).

Calibration images are "first" (the first training images, what `export_arch` passes),
"spread" (a seeded sample of the training images) or "sorted" (the first training images
of a class-ordered dataset such as an ImageFolder tree: here the split sorted by class, so
the first 512 hold only a few classes). The JSON is rewritten after every run, so a killed
bench keeps what it measured.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx
import torch

from edgenas.cost.count import count
from edgenas.data.augment import prepare_batch
from edgenas.export.fp16 import to_fp16
from edgenas.export.int8 import RECIPE, Int8Recipe, to_int8
from edgenas.export.onnx_export import AGREEMENT_REQUIRED, export_onnx, run_onnx
from edgenas.jsonio import write_json_atomic
from edgenas.space import Arch
from edgenas.train.checkpoint import read_run
from edgenas.train.weights import trained_model
from benchmarks.harness import command_line

#: name -> (recipe, calibration images, layers kept in float by qdq_loss_debug: how many)
RECIPES: dict[str, tuple[Int8Recipe, str, int]] = {
    "exporter": (RECIPE, "first", 0),
    "spread-512": (RECIPE, "spread", 0),
    "class-sorted-512": (RECIPE, "sorted", 0),
    "calib-32": (replace(RECIPE, calibration_images=32), "first", 0),
    "calib-128": (replace(RECIPE, calibration_images=128), "first", 0),
    "minmax": (replace(RECIPE, calibration="minmax"), "first", 0),
    "percentile-99.99": (replace(RECIPE, percentile=99.99), "first", 0),
    "per-tensor": (replace(RECIPE, per_channel=False), "first", 0),
    "full-range": (replace(RECIPE, reduce_range=False), "first", 0),
    "all-int8": (replace(RECIPE, float_roles=()), "first", 0),
    "float-stem": (replace(RECIPE, float_roles=("stem",)), "first", 0),
    "float-classifier": (replace(RECIPE, float_roles=("classifier",)), "first", 0),
    "no-pre-process": (replace(RECIPE, pre_process=False), "first", 0),
    "asymmetric": (replace(RECIPE, symmetric_activations=False), "first", 0),
    "sensitive-3": (RECIPE, "first", 3),
    "no-refit": (replace(RECIPE, refit_classifier=False), "first", 0),
    "asymmetric-no-refit": (replace(RECIPE, symmetric_activations=False,
                                    refit_classifier=False), "first", 0),
}
def _batches(images: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    """Model inputs in batches of 32, as `qdq_loss_debug.collect_activations` reads them."""
    return ({"input": images[i:i + 32]} for i in range(0, len(images), 32))


def sensitive_nodes(fp32: Path, int8: Path, images: np.ndarray, work: Path) -> list[dict[str, Any]]:
    """The activations the exporter's INT8 model departs most from FP32 on, worst first,
    with the node that computes each (ONNX Runtime's qdq_loss_debug, on calibration images)."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations, compute_signal_to_quantization_noice_ratio as sqnr,
        create_activation_matching, modify_model_output_intermediate_tensors)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work / "pre.onnx"  # the graph the INT8 model was made from, tensor names and all
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    for source, augmented in ((prepared, work / "float-aug.onnx"), (int8, work / "int8-aug.onnx")):
        modify_model_output_intermediate_tensors(str(source), str(augmented))
    float_acts, int8_acts = (collect_activations(str(work / name), _batches(images))
                             for name in ("float-aug.onnx", "int8-aug.onnx"))
    matched = create_activation_matching(int8_acts, float_acts)
    producer = {out: node for node in onnx.load(str(prepared)).graph.node for out in node.output}
    rows = [{"tensor": name, "node": producer[name].name, "op": producer[name].op_type,
             "local_sqnr_db": sqnr(m["pre_qdq"], m["post_qdq"]),
             "vs_fp32_sqnr_db": sqnr(m["float"], m["post_qdq"]) if "float" in m else None}
            for name, m in matched.items() if name in producer]
    return sorted(rows, key=lambda r: r["local_sqnr_db"])


def bench_run(run_dir: str, work: Path, recipes: list[str]) -> dict[str, Any]:
    """Each of ``recipes``' INT8 agreement with FP32 for one training run's network."""
    run = read_run(Path(run_dir))
    arch = Arch.from_json(run["arch"], f"{run_dir}/run.json")
    model, run_data, _ = trained_model(arch, run_dir)

    def inputs(index: torch.Tensor) -> np.ndarray:
        return torch.cat([prepare_batch(run_data.data.images[index[i:i + 256]],
                                        run_data.normalize, False, arch.resolution)
                          for i in range(0, len(index), 256)]).numpy()

    split = run_data.split
    if len(split.val) < 500:
        raise SystemExit(f"{run_dir}: {len(split.val)} validation images; the bar needs 500")
    val, labels = inputs(split.val), run_data.data.labels[split.val].numpy()
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(split.train)))
    by_class = split.train[np.argsort(run_data.data.labels[split.train].numpy(), kind="stable")]
    calibration = {"first": inputs(split.train[:512]), "spread": inputs(split.train[order[:512]]),
                   "sorted": inputs(by_class[:512])}
    fp32 = work / "model.onnx"
    export_onnx(model, arch.resolution, fp32, arch.in_channels)
    reference = run_onnx(fp32, val)
    top2 = np.sort(reference, 1)[:, -2:]
    near_tie = top2[:, 1] - top2[:, 0] < 0.05 * (reference.max(1) - reference.min(1))
    to_fp16(fp32, work / "fp16.onnx")
    row: dict[str, Any] = {
        "arch": arch.to_json(), "macs": count(arch).macs, "run_dir": run_dir,
        "training": run.get("config"), "data": run_data.spec,
        "val_images": len(val), "fp32_accuracy": float(np.mean(reference.argmax(1) == labels)),
        "fp16_agreement": float(np.mean(run_onnx(work / "fp16.onnx", val).argmax(1)
                                        == reference.argmax(1))),
        "near_ties": float(np.mean(near_tie)),
        "recipes": {}}
    sensitive: list[dict[str, Any]] = []
    exporter_float: set[str] = set()
    for name in ["exporter", *(r for r in recipes if r != "exporter")]:
        recipe, images, keep = RECIPES[name]
        started = time.perf_counter()
        float_nodes = tuple(dict.fromkeys(r["node"] for r in sensitive  # unnamed: not excludable
                                          if r["node"] and r["node"] not in exporter_float))[:keep]
        in_float = to_int8(fp32, work / "int8.onnx", calibration[images], recipe, float_nodes)
        logits = run_onnx(work / "int8.onnx", val)
        flipped = logits.argmax(1) != reference.argmax(1)
        noise = np.linalg.norm(logits - reference)
        row["recipes"][name] = {
            "agreement": float(np.mean(~flipped)),
            # logits' signal-to-quantisation-noise ratio: ranks recipes with far less noise
            # than agreement, which moves by whole near-tied images
            "logit_sqnr_db": float(20 * np.log10(np.linalg.norm(reference) / max(noise, 1e-12))),
            "flips_at_near_ties": int(np.sum(flipped & near_tie)), "flips": int(np.sum(flipped)),
            "accuracy": float(np.mean(logits.argmax(1) == labels)),
            "nodes_in_float": in_float, "seconds": time.perf_counter() - started}
        if name == "exporter":
            exporter_float = set(in_float)
            sensitive = sensitive_nodes(fp32, work / "int8.onnx", calibration["first"][:64], work)
            row["worst_activations"] = sensitive[:6]
    return row


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per recipe: archs kept (agreement >= 99 %), median and lowest agreement."""
    table = []
    for name in RECIPES:
        results = [(r, r["recipes"][name]) for r in rows if name in r["recipes"]]
        if not results:
            continue
        agreements = np.array([v["agreement"] for _, v in results])
        sqnr = [v["logit_sqnr_db"] for _, v in results if "logit_sqnr_db" in v]
        table.append({"recipe": name, "archs": len(agreements),
                      "kept": int(np.sum(agreements >= AGREEMENT_REQUIRED)),
                      "median_agreement": float(np.median(agreements)),
                      "lowest_agreement": float(agreements.min()),
                      "median_logit_sqnr_db": float(np.median(sqnr)) if sqnr else None,
                      "mean_accuracy_drop": float(np.mean([r["fp32_accuracy"] - v["accuracy"]
                                                           for r, v in results])),
                      "seconds": float(np.mean([v["seconds"] for _, v in results]))})
    return table


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("runs", nargs="+", help="stand-alone training run directories")
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES),
                        help="recipes to measure (the exporter's always; default all)")
    parser.add_argument("--json", help="write the result here (after every run)")
    args = parser.parse_args(argv)
    settings = {**vars(args), "vnni": _has_vnni(), "recipes": {
        name: {**r.to_dict(), "calibration_images_from": images, "sensitive_in_float": keep}
        for name, (r, images, keep) in RECIPES.items() if name in args.recipes}}
    rows: list[dict[str, Any]] = []
    for i, run_dir in enumerate(args.runs, 1):
        with tempfile.TemporaryDirectory() as work:
            rows.append(bench_run(run_dir, Path(work), args.recipes))
        r = rows[-1]
        print(f"run {i}/{len(args.runs)}: {r['macs'] / 1e6:.1f} M MACs, FP32 "
              f"{100 * r['fp32_accuracy']:.1f} %, FP16 agrees {100 * r['fp16_agreement']:.1f} %, "
              + ", ".join(f"{name} {100 * v['agreement']:.1f}" for name, v in r["recipes"].items()),
              flush=True)
        if args.json:
            write_json_atomic({"settings": settings, "rows": rows, "table": summarise(rows)},
                              Path(args.json))
    print(f"\n{len(rows)} networks; INT8 top-1 agreement with FP32 on "
          f"{min(r['val_images'] for r in rows)}+ validation images (VNNI: {_has_vnni()})")
    print("| recipe | kept (>= 99 %) | median | lowest | logit SQNR (median) | accuracy drop "
          "| s per export |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t in summarise(rows):
        sqnr = "-" if t["median_logit_sqnr_db"] is None else f"{t['median_logit_sqnr_db']:.1f} dB"
        print(f"| {t['recipe']} | {t['kept']} of {t['archs']} | {100 * t['median_agreement']:.1f} % "
              f"| {100 * t['lowest_agreement']:.1f} % | {sqnr} "
              f"| {100 * t['mean_accuracy_drop']:+.1f} pts | {t['seconds']:.1f} |")


def _has_vnni() -> bool:
    """Whether this x86 CPU multiplies int8 with VNNI (without it, full-range weights can
    saturate ONNX Runtime's 16-bit accumulation)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


if __name__ == "__main__":
    main()
