"""`edgenas export` and `edgenas deploy`: the deployment journey."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.errors import EdgenasError
from edgenas.space import SPACES, Arch, get_space

log = logging.getLogger(__name__)


def _resolve(target: str, how: str | None, max_latency_ms: float | None) -> Arch:
    """An arch from a search run (with --pick) or a preset / arch JSON file."""
    from edgenas.cli import resolve_arch

    if (Path(target) / "front.json").exists():
        from edgenas.search.results import load_front, pick

        chosen = pick(load_front(Path(target)), how or "knee", max_latency_ms)
        return Arch.from_dict(chosen["arch"], f"{target}/front.json")
    if how:
        raise EdgenasError(f"--pick needs a search run directory; {target} has no front.json")
    return resolve_arch(target)


def predicted_latencies(arch: Arch, profiles_dir: str) -> dict[str, Any]:
    """Predicted ms on every device with a (non-stale) table for a space holding ``arch``."""
    from edgenas.cost.latency import LatencyModel
    from edgenas.device.descriptor import list_devices
    from edgenas.profile.lut import lut_path, open_lut

    out = {}
    for device in list_devices():
        for name in SPACES:
            space = get_space(name)
            path = lut_path(profiles_dir, device.name, name)
            if path.exists() and space.contains(arch):
                try:
                    lut = open_lut(device, space, profiles_dir)
                except EdgenasError as err:
                    log.warning("skipping %s: %s", path, err)
                    continue
                out[device.name] = {"ms": LatencyModel(lut).predict(arch), "lut": str(path),
                                    "lut_updated": lut.updated}
    return out


def cmd_export(args: argparse.Namespace) -> None:
    import torch

    from edgenas.data.augment import prepare_batch
    from edgenas.export.bundle import export_bundle
    from edgenas.nn.model import build_model
    from edgenas.train.rundata import prepare_data

    arch = _resolve(args.target, args.pick, args.max_latency_ms)
    formats = tuple(f.strip() for f in args.formats.split(","))
    if not args.weights and set(formats) - {"onnx"}:
        raise EdgenasError("FP16/INT8 exports are verified by top-1 agreement with FP32, which "
                           "only means something for a trained network: pass --weights RUN, "
                           "or --formats onnx for an untrained (latency-only) export")
    if args.weights:
        from edgenas.export.weights import trained_model

        model, run_data, provenance = trained_model(arch, args.weights)
    else:
        log.warning("no --weights: exporting an untrained network (fine for latency, "
                    "meaningless for accuracy)")
        torch.manual_seed(0)
        model = build_model(arch).eval()
        run_data = prepare_data(args.data, arch.num_classes)
        provenance = {"split": {"split": run_data.split.to_dict(), "data": run_data.spec}}
    images, labels = run_data.data.images, run_data.data.labels
    val = run_data.split.val
    calibration_idx = run_data.split.train[:512]
    # agreement needs >= 500 images; top up a small validation split with training images
    # the INT8 calibration did not see (accuracy is still reported on validation only)
    extra = run_data.split.train[512:512 + max(0, 500 - len(val))]
    check_idx = torch.cat([val, extra])

    def batch(index: torch.Tensor) -> np.ndarray:
        return torch.cat([prepare_batch(images[index[i:i + 256]], run_data.normalize, False,
                                        arch.resolution) for i in range(0, len(index), 256)]).numpy()

    metrics = export_bundle(
        arch, model, Path(args.out), val_inputs=batch(check_idx),
        val_labels=np.concatenate([labels[val].numpy(), np.full(len(extra), -1)]),
        calibration=batch(calibration_idx),
        preprocess={"resolution": arch.resolution, "channels": arch.in_channels, "layout": "NCHW",
                    "scale": "pixels / 255", "mean": list(run_data.normalize.mean),
                    "std": list(run_data.normalize.std), "resize": "bilinear"},
        labels=list(run_data.data.classes), formats=formats, provenance=provenance,
        predicted_latency=predicted_latencies(arch, args.profiles_dir))
    v = metrics["verification"]
    print(f"{args.out}: {', '.join(formats)} verified; FP32 max |ONNX - PyTorch| = "
          f"{v['onnx']['max_abs_diff_vs_pytorch']:.2e}")
    for fmt in ("fp16", "int8"):
        if fmt in v:
            print(f"  {fmt}: top-1 agreement with FP32 {100 * v[fmt]['top1_agreement_with_fp32']:.2f} % "
                  f"on {v[fmt]['images']} images")
    if extra.numel():
        print(f"  (validation split has {len(val)} images; {len(extra)} unseen training images "
              "were added for the agreement checks)")
    print(f"  validation accuracy (ONNX FP32): {100 * metrics['accuracy']['top1']:.2f} % on "
          f"{metrics['accuracy']['images']} validation images")
    for device, p in metrics["predicted_latency_ms"].items():
        print(f"  predicted latency on {device}: {p['ms']:.3f} ms")


def cmd_deploy(args: argparse.Namespace) -> None:
    from edgenas.deploy.deploy import deploy
    from edgenas.device.descriptor import get_device

    report = deploy(Path(args.bundle), get_device(args.device))
    stats = report["latency_ms"]
    print(f"{args.device}: {report['model']} median {stats['median_ms']:.4f} ms "
          f"(p10 {stats['p10_ms']:.4f}, p90 {stats['p90_ms']:.4f}, n={stats['n']})")
    if "predicted_ms" in report:
        flag = "  <-- latency table drifting: re-profile" if report["lut_drifting"] else ""
        print(f"predicted {report['predicted_ms']:.4f} ms, error {100 * report['prediction_error']:+.1f} %{flag}")
    else:
        print("no prediction in the bundle for this device (no latency table when exported)")
    print(f"report: {Path(args.bundle) / 'deploy' / (args.device + '.json')}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add `export` and `deploy`."""
    export = commands.add_parser("export", help="export an arch as a verified ONNX/FP16/INT8 bundle")
    export.add_argument("target", help="search run directory (with --pick) or arch preset/JSON")
    export.add_argument("--pick", help="knee, best, or a front index (search runs)")
    export.add_argument("--max-latency-ms", type=float, help="with --pick best")
    export.add_argument("--weights", metavar="RUN", help="stand-alone or supernet training run dir")
    export.add_argument("--data", default="digits", help="dataset when no --weights (default digits)")
    export.add_argument("--formats", default="onnx,fp16,int8")
    export.add_argument("--out", required=True)
    export.add_argument("--profiles-dir", default="profiles")
    export.set_defaults(func=cmd_export)

    dep = commands.add_parser("deploy", help="benchmark a bundle on a device")
    dep.add_argument("bundle")
    dep.add_argument("--device", required=True)
    dep.set_defaults(func=cmd_deploy)
