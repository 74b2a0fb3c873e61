"""`edgenas devices`, `edgenas device init`, `edgenas profile`: the profiling journey."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgenas.device.descriptor import Device, device_dirs, get_device, list_devices, parse_device
from edgenas.device.session import check_local_runtime
from edgenas.commands.arguments import PROFILES_DIR_HELP, whole_number
from edgenas.errors import DeviceError, EdgenasError, ProfileError
from edgenas.locking import folder_lock
from edgenas.profile.anchor import reanchor
from edgenas.profile.keys import space_units
from edgenas.profile.correction import describe_correction
from edgenas.profile.lut import FORMAT_NAMES, LUT, load_lut, lut_path, save_lut
from edgenas.profile.profiler import CALIBRATE, CHUNK, profile
from edgenas.profile.sampling import SAMPLE_ABOVE
from edgenas.profile.transfer import CHUNK as TRANSFER_CHUNK
from edgenas.profile.transfer import NETWORKS, WORK, transfer, worse_than_macs
from edgenas.profile.trust import trusted_table
from edgenas.space import SPACES, SearchSpace, get_space

PROFILES_DIR = "profiles"


def cmd_devices(args: argparse.Namespace) -> None:
    devices = list_devices()
    if not devices:
        print("no device descriptors found in", ", ".join(map(str, device_dirs())) or "./devices")
        return
    width = max(len(d.name) for d in devices)
    for d in devices:
        where = {"local": "this machine", "ssh": f"ssh {d.connection.host}",
                 "adb": f"adb {d.connection.serial or '(first device)'}"}[d.connection.kind]
        runtime = d.runtime.name + (f" {d.runtime.precision}" if d.runtime.name == "tensorrt"
                                    else f" {d.runtime.device} {d.runtime.precision} "
                                         f"{d.runtime.threads} thread(s)"
                                    if d.runtime.name == "openvino"
                                    else f" {d.runtime.precision} {d.runtime.threads} thread(s)")
        profiled = sorted(p.stem for p in (Path(args.profiles_dir) / d.name).glob("*.json"))
        print(f"{d.name:<{width}}  {where:<24} {runtime:<24} "
              f"profiles: {', '.join(profiled) or '-'}   ({d.source})")


def cmd_device_init(args: argparse.Namespace) -> None:
    kind = "ssh" if args.ssh else "adb" if args.adb is not None else "local"
    user, _, host = (args.ssh or "").rpartition("@")
    data = {
        "name": args.name,
        "notes": args.notes or "",
        "connection": {"kind": kind, "host": host, "user": user, "port": args.port or 0,
                       "serial": args.adb or "", "python": args.python,
                       "workdir": args.workdir or ""},
        "runtime": {"name": args.runtime, "threads": args.threads, "precision": args.precision,
                    "providers": args.providers.split(","), "workspace_mb": args.workspace_mb,
                    **({"device": args.openvino_device or "CPU"}
                       if args.runtime == "openvino" or args.openvino_device else {}),
                    "perf_test": args.perf_test or ""},
    }
    folder = Path(args.dir)
    path = folder / f"{args.name}.toml"
    device = parse_device(data, str(path))  # the same validation a file gets
    if path.exists() and not args.force:
        raise DeviceError(f"{path} exists; pass --force to overwrite it")
    if kind == "local" and not args.python:
        check_local_runtime(device)  # its runtime imports here, OpenVINO lists the device
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(device.to_toml(), encoding="utf-8")
    print(f"wrote {path}")
    print(f"next: edgenas profile {args.name} --space cifar --validate 50")


#: The day the search-biased held-out set became the space's cheap corner.
CHEAP_CORNER_SINCE = "2026-12-08"


def _print_validation(report: dict) -> None:
    floor = report.get("noise_floor")

    def beside(key: str) -> str:  # the host's own limit next to the table's accuracy
        return f"   (noise floor {100 * floor[key]:.1f} %)" if floor else ""

    print(f"validation on {report['n']} held-out archs (end-to-end measured):")
    print(f"  within +-5 %   {100 * report['within_5pct']:6.1f} %{beside('within_5pct')}")
    print(f"  within +-10 %  {100 * report['within_10pct']:6.1f} %{beside('within_10pct')}   "
          f"(sum of units without correction: {100 * report['uncorrected_within_10pct']:.1f} %)")
    if floor:
        print(f"  noise floor: two rounds of the same {floor['n']} networks agree within +-10 % "
              f"for {100 * floor['within_10pct']:.1f} % of them (median gap "
              f"{floor['median_gap_pct']:.1f} %); no table can do better on this host now")
    print(f"  RMSE           {report['rmse_ms']:.4f} ms")
    print(f"  mean |error|   {report['mean_abs_pct_error']:.2f} %   (max {report['max_abs_pct_error']:.1f} %)")
    if "median_bias_pct" in report:  # tables validated before it was recorded lack it
        print(f"  median bias    {report['median_bias_pct']:+.1f} %   (negative: predicted "
              "too fast; a table at another level of load than its device shows here)")
    print(f"  Kendall tau    {report['kendall_tau']:.3f}")
    biased = report.get("search_biased")
    if biased:  # tables validated before it existed lack it
        floor = biased.get("noise_floor")
        # the set was the cheapest tenth of a random pool until the cheap corner replaced it
        # (a table validates on the new set when it is next profiled with --validate)
        where = ("from the space's cheap corner (where searches pick)"
                 if str(biased.get("measured", "")) >= CHEAP_CORNER_SINCE else
                 f"the cheapest tenth by MACs of a random pool (validated before "
                 f"{CHEAP_CORNER_SINCE}; re-run with --validate for the cheap corner)")
        print(f"search-biased: {biased['n']} held-out archs {where}: "
              f"{100 * biased['within_10pct']:.1f} % within +-10 %"
              + (f" (noise floor {100 * floor['within_10pct']:.1f} %)" if floor else "")
              + f", median bias {biased['median_bias_pct']:+.1f} %, Kendall tau "
              f"{biased['kendall_tau']:.3f}")


#: Default minutes of unit timing on a TensorRT device, where every unit is an engine build
#: of seconds: the `cifar` space whole would take hours on a Jetson.
TENSORRT_BUDGET_MIN = 30.0


def _time_budget_s(args: argparse.Namespace, space: SearchSpace, device: Device) -> float | None:
    """Seconds of timing (table-fitting networks, then units): as asked, else 8 minutes for
    a space too large to time whole and `TENSORRT_BUDGET_MIN` on a TensorRT device (its
    first chunk, builds included, says whether every unit fits; if not, the space is
    sampled)."""
    if args.max_units:
        return None
    if args.time_budget is not None:
        if not args.time_budget > 0:
            raise EdgenasError(f"--time-budget {args.time_budget}: give minutes above 0")
        return 60 * args.time_budget
    if device.runtime.name == "tensorrt":
        return 60 * TENSORRT_BUDGET_MIN
    return 8 * 60.0 if len(space_units(space)) > SAMPLE_ABOVE else None


def _transfer(args: argparse.Namespace, device: Device, space: SearchSpace, path: Path,
              existing: LUT | None) -> LUT:
    """`edgenas profile NEW --from SOURCE`: NEW's table from SOURCE's and a few networks."""
    source_path = lut_path(args.profiles_dir, args.source, space.name)
    if not source_path.exists():
        raise ProfileError(f"--from {args.source}: no table {source_path}; profile it first "
                           f"('edgenas profile {args.source} --space {space.name}')")
    if args.source == device.name:
        raise ProfileError(f"--from {args.source}: a table cannot be transferred from itself")
    validate = args.validate or len((existing.networks if existing else {})
                                    .get("validation", [])) or 0
    with folder_lock(path.parent, f"profiling of {space.name}", name=f".{space.name}.lock"):
        lut = transfer(device, space, load_lut(source_path), str(source_path), existing,
                       networks=args.networks, validate=validate,
                       chunk=args.chunk or TRANSFER_CHUNK,
                       checkpoint=lambda table: save_lut(table, path))
        save_lut(lut, path)
    info = lut.transfer or {}
    print(f"{path}: transferred from {info['source']} with {info['networks']} networks timed "
          f"on {device.name}, no units timed")
    weights = info["work"]
    print("  a unit's time here: " + " + ".join(
        f"{weights[name]:.3g} x {name}" for name in WORK if weights[name] > 0)
          + f"; a network's own call {weights['network_call_ms']:.3g} ms")
    if lut.validation and "macs_only" in info:
        macs = info["macs_only"]
        print(f"  a MACs-only line on the same networks: {100 * macs['within_10pct']:.1f} % "
              f"within +-10 %, mean |error| {macs['mean_abs_pct_error']:.1f} %, Kendall tau "
              f"{macs['kendall_tau']:.3f}")
        if worse_than_macs(lut):
            print(f"  the transfer predicts its held-out networks worse than counting MACs: "
                  f"profile the device itself ('edgenas profile {device.name} --space "
                  f"{space.name} --time-budget 30')")
    return lut


def cmd_profile(args: argparse.Namespace) -> None:
    device = get_device(args.device)
    space = get_space(args.space)
    path = lut_path(args.profiles_dir, device.name, space.name)
    existing = load_lut(path) if path.exists() else None
    if args.reanchor:
        if existing is None:
            raise ProfileError(f"--reanchor: no table {path} to anchor; profile it first")
        with folder_lock(path.parent, f"profiling of {space.name}", name=f".{space.name}.lock"):
            anchor = reanchor(device, space, existing)
            save_lut(existing, path)
        print(f"{path}: the reference network takes {anchor['reference_now_ms']:.4g} ms now "
              f"(fastest of {anchor['burst']}), {anchor['yardstick_ms']:.4g} ms at the table's "
              f"yardstick: predictions x {anchor['ratio']:.3f} from now on")
        return
    if args.source:
        lut = _transfer(args, device, space, path, existing)
        _print_table(args, lut)
        return
    if args.check:
        decision = trusted_table(device, space, args.profiles_dir,
                                 args.time_budget if args.time_budget else 1.5)
        check = decision.check
        if check:
            print(f"{path}: re-timed {check['n']} of its networks: median measured/predicted "
                  f"{check['median_ratio_measured_to_predicted']:.2f}, Kendall tau "
                  f"{check['kendall_tau']:.2f}")
        print(f"{path}: {decision.action}")
        _print_table(args, decision.lut)
        return
    validate = args.validate
    if not validate and (args.revalidate or args.recalibrate):
        # re-timing means re-judging: as many held-out archs as the table was judged on
        validate = len((existing.networks if existing else {}).get("validation", [])) or 20
    start = time.perf_counter()
    with folder_lock(path.parent, f"profiling of {space.name}", name=f".{space.name}.lock"):
        lut = profile(device, space, existing, checkpoint=lambda table: save_lut(table, path),
                      calibrate=args.fitting_networks, validate=validate, chunk=args.chunk or CHUNK,
                      allow_stale=args.allow_stale, revalidate=args.revalidate,
                      recalibrate=args.recalibrate,
                      max_units=args.max_units,
                      time_budget_s=_time_budget_s(args, space, device))
        save_lut(lut, path)
    elapsed = time.perf_counter() - start
    print(f"{path}: {len(lut.entries)} unit entries, {len(lut.networks.get('fitting', []))} "
          f"table-fitting networks ({elapsed:.0f} s this run)")
    _print_table(args, lut)


def _print_table(args: argparse.Namespace, lut: LUT) -> None:
    """How the table was sampled, corrected and timed, and how well it predicts."""
    models = lut.timing.get("models") or {}
    if models.get("format", "onnx") != "onnx":  # the precision the table was timed in
        print(f"models timed: {FORMAT_NAMES[models['format']]}"
              + (f", {models['converted']:,} converted on this host in "
                 f"{models['convert_s']:.0f} s" if models.get("converted") else ""))
        if models.get("note"):
            print(f"  note: {models['note']}")
    if lut.sampling:
        cv = lut.sampling["cross_validated"]
        print(f"sampled: {lut.sampling['measured']:,} units timed, {lut.sampling['predicted']:,} "
              f"predicted by a regressor that puts {100 * cv['within_10pct']:.0f} % of held-out "
              f"timed units within +-10 % ({100 * cv['within_20pct']:.0f} % within +-20 %); "
              "'--max-units N' times more")
    if lut.correction:
        c = lut.correction
        print(f"correction: {describe_correction(c)}")
        if "cv" in c:
            print(f"  chosen by {c['cv_folds']}-fold cross-validation on {c['networks']} "
                  "networks (within +-10 %): " + ", ".join(
                      f"{form} {100 * score['within_10pct']:.0f} %"
                      for form, score in c["cv"].items()))
    protocol = lut.timing.get("protocol")
    if protocol and protocol.get("load_p50"):
        print(f"timed beside a reference network (the table's level: "
              f"{protocol['yardstick_ms']:.3f} ms): this run's load was "
              f"{protocol['load_p50']:.2f}x that at the median, {protocol['load_p90']:.2f}x at "
              "the 90th percentile")
        agreement = protocol.get("level_scores") or {}
        if agreement:
            print(f"  times scaled by: {protocol.get('level')} (table-fitting rounds apart at "
                  "the median: " + ", ".join(f"{level} {score['median_gap_pct']:.1f} %"
                                             for level, score in agreement.items()) + ")")
    if args.validate:
        _print_validation(lut.validation)
    elif lut.validation:
        print("(stored validation:", json.dumps({k: lut.validation[k] for k in
                                                  ("n", "within_10pct", "kendall_tau")}), ")")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the device and profiling commands to the top-level parser."""
    devices = commands.add_parser("devices", help="list device descriptors and their profiles")
    devices.add_argument("--profiles-dir", default=PROFILES_DIR, help=PROFILES_DIR_HELP)
    devices.set_defaults(func=cmd_devices)

    device = commands.add_parser("device", help="create device descriptors")
    device_cmds = device.add_subparsers(dest="device_command", required=True)
    init = device_cmds.add_parser("init", help="write devices/NAME.toml")
    init.add_argument("name", help="the device's name: other commands call it this, and the "
                                   "descriptor is NAME.toml in --dir")
    where = init.add_mutually_exclusive_group()
    where.add_argument("--ssh", metavar="[USER@]HOST", help="reach it with ssh (HOST may be an ~/.ssh/config alias)")
    where.add_argument("--adb", metavar="SERIAL", nargs="?", const="", help="reach it with adb")
    init.add_argument("--port", type=int,
                      help="with --ssh: the ssh port (default: as the ssh configuration says, "
                           "usually 22)")
    init.add_argument("--runtime", default="onnxruntime",
                      choices=["onnxruntime", "tensorrt", "openvino"],
                      help="what runs the models on the device; tensorrt builds an engine "
                           "there for every model; openvino needs pip install "
                           "'edgenas[openvino]' where it runs (default %(default)s)")
    init.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8", "bf16"],
                      help="precision the device runs a model at, in its profile as on "
                           "deploy: ONNX Runtime times and runs the exporter's model of it "
                           "(int8: its static QDQ quantisation, fp16: its FP16 conversion), "
                           "TensorRT builds its engine at it (int8 from the QDQ model), "
                           "OpenVINO pins its inference precision to it (int8: f32 inference "
                           "of the QDQ model; bf16: OpenVINO only) (default %(default)s)")
    init.add_argument("--threads", type=int, default=1,
                      help="CPU threads ONNX Runtime or OpenVINO runs one inference on "
                           "(default %(default)s)")
    init.add_argument("--providers", default="CPUExecutionProvider",
                      help="ONNX Runtime execution providers, comma-separated, first "
                           "preferred (default %(default)s)")
    init.add_argument("--workspace-mb", type=int, default=1024,
                      help="TensorRT builder workspace in MiB (default %(default)s)")
    init.add_argument("--openvino-device", metavar="CPU|GPU|NPU",
                      help="with --runtime openvino: the OpenVINO device that runs the models "
                           "(GPU.1 for a second GPU); its inference precision is pinned to "
                           "--precision, as OpenVINO would otherwise run bf16 on CPUs that "
                           "have it (default CPU)")
    init.add_argument("--python", default="",
                      help="Python on the device (default: python3 on a remote device, "
                           "edgenas's own Python on this machine)")
    init.add_argument("--workdir", help="scratch folder on the device")
    init.add_argument("--perf-test", help="adb: path of onnxruntime_perf_test on the phone")
    init.add_argument("--notes", help="free text kept in the descriptor, e.g. the board's "
                                      "power mode")
    init.add_argument("--dir", default="devices",
                      help="folder the descriptor is written to (default %(default)s)")
    init.add_argument("--force", action="store_true",
                      help="overwrite an existing descriptor of the same name")
    init.set_defaults(func=cmd_device_init)

    prof = commands.add_parser("profile", help="measure a device's latency table for a space")
    prof.add_argument("device", help="device name (devices/NAME.toml) or descriptor path")
    prof.add_argument("--space", default="cifar", choices=sorted(SPACES),
                      help="search space the table is for (default %(default)s)")
    prof.add_argument("--validate", type=whole_number(0), default=0, metavar="N",
                      help="time N held-out archs end to end and report prediction accuracy "
                           "(default %(default)s: none)")
    prof.add_argument("--revalidate", action="store_true",
                      help="time the held-out archs again (check an existing table for drift; "
                           "N defaults to the table's held-out count)")
    prof.add_argument("--recalibrate", action="store_true",
                      help="time the table-fitting and held-out archs again and refit the "
                           "correction (the device got faster or slower; units are kept)")
    # "--calibrate" was its name until the table-fitting networks stopped being called
    # calibration networks (INT8's word); kept so that scripts written for it still run
    prof.add_argument("--fitting-networks", "--calibrate", dest="fitting_networks",
                      type=whole_number(0), default=CALIBRATE, metavar="M",
                      help="whole networks timed to choose and fit the correction (default %(default)s)")
    prof.add_argument("--chunk", type=whole_number(), metavar="N",
                      help=f"models per device round trip: what a kill -9 can lose (default "
                           f"{CHUNK} units, {TRANSFER_CHUNK} networks with --from)")
    prof.add_argument("--max-units", type=whole_number(), metavar="N",
                      help="time at most N units in all (a covering sample, then the least "
                           "certain) and predict the rest; default: every unit, or for a space "
                           f"of more than {SAMPLE_ABOVE:,} units as many as --time-budget allows")
    prof.add_argument("--time-budget", type=float, metavar="MIN",
                      help="minutes of timing: table-fitting networks first (up to half, at "
                           "least 60 of them), then units: the first chunk's rate says how many "
                           "fit, the rest are predicted (default: every unit, or 8 minutes for "
                           f"a space of more than {SAMPLE_ABOVE:,} units, or "
                           f"{TENSORRT_BUDGET_MIN:.0f} minutes on a TensorRT device)")
    prof.add_argument("--check", action="store_true",
                      help="is the stored table right on the device now? The main job's "
                           "policy: re-time 10 of its held-out networks and trust it if their "
                           "median measured/predicted is within 10 %% of 1 and their order "
                           "holds, else refit its correction on re-timed networks, and measure "
                           "it anew (within --time-budget, default 1.5 minutes) only if that "
                           "leaves it well below its own accuracy or the noise floor")
    prof.add_argument("--reanchor", action="store_true",
                      help="time the table's reference network a few times now and scale its "
                           "predictions to the device's present level (a shared host's or "
                           "board's slow and fast phases last minutes); seconds, not a re-profile")
    prof.add_argument("--from", dest="source", metavar="SOURCE",
                      help="transfer: build the table from device SOURCE's measured table of "
                           "the same space and --networks networks timed on this device, "
                           "instead of timing every unit")
    prof.add_argument("--networks", type=int, default=NETWORKS, metavar="N",
                      help="with --from: networks timed on this device (default %(default)s)")
    prof.add_argument("--allow-stale", action="store_true",
                      help="add to a table measured under other conditions instead of starting anew")
    prof.add_argument("--profiles-dir", default=PROFILES_DIR, help=PROFILES_DIR_HELP)
    prof.set_defaults(func=cmd_profile)
