"""`edgenas export` and `edgenas deploy`: the deployment journey."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgenas.deploy.deploy import ROUNDS, classify_on_device, deploy
from edgenas.device.descriptor import get_device
from edgenas.errors import EdgenasError
from edgenas.export_arch import export_arch
from edgenas.search.results import load_front, pick
from edgenas.space import Arch
from edgenas.space.presets import resolve_arch


def _resolve(target: str, how: str | None, max_latency_ms: float | None,
             device: str | None = None) -> tuple[Arch, str | None]:
    """An arch from a search run (with --pick) or a preset / arch JSON file, and the run
    that trained it when the search did (a surrogate-assisted search trains its front)."""
    if (Path(target) / "front.json").exists():
        chosen = pick(load_front(Path(target)), how or "knee", max_latency_ms, device)
        return Arch.from_dict(chosen["arch"], f"{target}/front.json"), chosen.get("run_dir")
    if how:
        raise EdgenasError(f"--pick needs a search run directory; {target} has no front.json")
    return resolve_arch(target), None


def device_formats(target: str, device: str | None) -> tuple[str, ...]:
    """The reduced-precision models the target devices run (``--device``, else the devices
    the search ran for): a search on an INT8 device optimised INT8 latency, so its INT8
    model ships even below the agreement bar, with the shortfall in the bundle, rather than
    failing the export of the very model the user searched for."""
    names = [device] if device else []
    if not names and (Path(target) / "front.json").exists():
        names = [n for n in str(load_front(Path(target)).get("device") or "").split(",") if n]
    formats: list[str] = []
    for name in names:
        try:
            fmt = get_device(name).runtime.model_format
        except EdgenasError:  # a device whose descriptor is gone: nothing to keep for it
            continue
        if fmt != "onnx" and fmt not in formats:
            formats.append(fmt)
    return tuple(formats)


def cmd_export(args: argparse.Namespace) -> None:
    arch, trained = _resolve(args.target, args.pick, args.max_latency_ms, args.device)
    if args.weights is None and trained is not None:
        print(f"weights: {trained} (trained by the search)")
        args.weights = trained
    formats = tuple(f.strip() for f in args.formats.split(","))
    keep = tuple(fmt for fmt in device_formats(args.target, args.device) if fmt in formats)
    metrics = export_arch(arch, Path(args.out), formats, args.weights, args.data,
                          args.profiles_dir, keep=keep)
    v = metrics["verification"]
    print(f"{args.out}: {', '.join(formats)} verified; FP32 max |ONNX - PyTorch| = "
          f"{v['onnx']['max_abs_diff_vs_pytorch']:.2e}")
    for fmt in ("fp16", "int8"):
        if fmt in v:
            print(f"  {fmt}: top-1 agreement with FP32 {100 * v[fmt]['top1_agreement_with_fp32']:.2f} % "
                  f"on {v[fmt]['images']} images")
            if "below_bar" in v[fmt]:
                print(f"  {fmt}: shipped below the bar, because the device runs it: "
                      f"{v[fmt]['below_bar']}")
    print(f"  validation accuracy (ONNX FP32): {100 * metrics['accuracy']['top1']:.2f} % on "
          f"{metrics['accuracy']['images']} validation images")
    for device, p in metrics["predicted_latency_ms"].items():
        print(f"  predicted latency on {device}: {p['ms']:.3f} ms")


def cmd_deploy(args: argparse.Namespace) -> None:
    report = deploy(Path(args.bundle), get_device(args.device), rounds=args.rounds)
    stats = report["latency_ms"]
    rounds = stats["rounds_ms"]
    print(f"{args.device}: {report['model']} {stats['median_ms']:.4f} ms, the median of "
          f"{len(rounds)} rounds ({min(rounds):.4f}-{max(rounds):.4f} ms, spread "
          f"{100 * stats['round_spread']:.1f} %)")
    load = report.get("load")
    if "predicted_ms" in report:
        where = "" if load is None else " at the table's level"
        flag = (f"  <-- latency table drifting: more than 10 % from every round{where}; re-profile"
                if report["lut_drifting"] else
                f"  (within 10 % of a round{where}: the table holds)")
        print(f"predicted {report['predicted_ms']:.4f} ms, error {100 * report['prediction_error']:+.1f} %{flag}")
    if load is not None:
        print(f"load: the table's reference network ran at {load['ratio']:.2f}x its yardstick "
              f"({load['yardstick_ms']:.4f} ms) between these rounds; at the table's level the "
              f"model takes {load['median_at_table_level_ms']:.4f} ms"
              + (f", the prediction {100 * load['prediction_error_at_table_level']:+.1f} % from it"
                 if "prediction_error_at_table_level" in load else ""))
    else:
        print(report.get("prediction_note") or "no prediction in the bundle for this device "
              "(no latency table when exported)")
    if "ir" in report:  # an OpenVINO device wrote the bundle's ONNX as IR, and timed that
        print(f"OpenVINO IR written on {args.device}: "
              f"{Path(args.bundle) / 'deploy' / report['ir']['ir']} (and .bin)")
    print(f"report: {Path(args.bundle) / 'deploy' / (args.device + '.json')}")
    if args.classify:
        print(f"run.py on {args.device}, {args.classify}:")
        print(classify_on_device(Path(args.bundle), get_device(args.device),
                                 Path(args.classify)).rstrip())


def register(commands: argparse._SubParsersAction) -> None:
    """Add `export` and `deploy`."""
    export = commands.add_parser("export", help="export an arch as a verified ONNX/FP16/INT8 bundle")
    export.add_argument("target", help="search run directory (with --pick) or arch preset/JSON")
    export.add_argument("--pick", help="knee, best, fastest, or a front index (search runs)")
    export.add_argument("--max-latency-ms", type=float,
                        help="with --pick knee, best or fastest: leave out the front archs "
                             "predicted slower than this many ms before the pick chooses")
    export.add_argument("--device", help="with --pick after a search over several devices: "
                                         "whose latency the pick is judged on; and the device "
                                         "whose precision ships even below the agreement bar "
                                         "(default: the devices the search ran for)")
    export.add_argument("--weights", metavar="RUN",
                        help="stand-alone or supernet training run dir (default: the run that "
                             "trained the picked arch, when the search trained it)")
    export.add_argument("--data", default="digits",
                        help="dataset when no --weights (default %(default)s)")
    export.add_argument("--formats", default="onnx,fp16,int8",
                        help="comma-separated, from onnx (FP32, always), fp16 and int8 (static "
                             "QDQ); fp16 and int8 need trained weights (default %(default)s)")
    export.add_argument("--out", required=True, help="bundle directory to write")
    export.add_argument("--profiles-dir", default="profiles",
                        help="folder of latency tables (DIR/DEVICE/SPACE.json): the bundle "
                             "records the arch's predicted latency on every device with a "
                             "current table there (default %(default)s)")
    export.set_defaults(func=cmd_export)

    dep = commands.add_parser("deploy", help="benchmark a bundle on a device")
    dep.add_argument("bundle", help="bundle directory written by 'edgenas export'")
    dep.add_argument("--device", required=True,
                     help="device to run it on: a name from devices/ or a descriptor .toml")
    dep.add_argument("--rounds", type=int, default=ROUNDS,
                     help="timings of the model, each with its own warm-up "
                          "(default %(default)s); the table is called drifting only when its "
                          "prediction is more than 10 %% from every one of them")
    dep.add_argument("--classify", metavar="IMAGE",
                     help="also classify IMAGE (PNG, PPM/PGM or .npy) on the device with the "
                          "bundle's own run.py and the device's runtime")
    dep.set_defaults(func=cmd_deploy)
