"""Benchmark transfer profiling on one device, side by side on the same held-out networks.

    python -m benchmarks bench_transfer --device arm64-emulated --source host-cpu \
        [--source host-cpu-2t] [--networks 50] [--ceiling 150] [--validate 30] \
        [--out runs/bench_transfer] [--json benchmarks/results/bench_transfer.json]

Every table is judged on the same ``--validate`` held-out archs, timed in two interleaved
rounds (whose agreement is the device's noise floor):

* transfer: ``edgenas profile DEVICE --from SOURCE --networks N`` (the library call), and
  the device time it took;
* MACs-only: a line through the same N networks' latencies against their MACs;
* sampled: a unit-sampled profile given the same device time (half on units, half on
  networks: the first N/2 of the transfer's networks, reused as timed);
* ceiling: the transfer refitted on ``--ceiling`` networks (the best table built here in
  the background);
* full: with ``--full PATH``, the device's own full profile (``edgenas profile DEVICE``,
  every unit timed), judged on the same held-out timings, its device time the profile's
  wall time;
* the curve: the transfer refitted on the first 10, 20, 30, 50, 100, ... networks of the
  ceiling and of the N-network table (each at its own level of load), from each
  ``--source`` (no further device time: the fits are offline).

Each step saves its table under ``--out`` as it goes and is skipped when done, so a killed
run resumes; ``--offline`` times nothing and judges what a finished run left (another
``--source``'s curve costs no device time). The last line says how far the transfer's
predictions depart from the MACs line against how far two timing rounds do: a gap far
below the noise means no held-out timing can tell the two apart on this device. On the
emulated board every latency is the emulator's.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.device.descriptor import get_device
from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import LUT, load_lut, lut_path, save_lut
from edgenas.profile.profiler import profile, validation_report
from edgenas.profile.records import TimedNetwork
from edgenas.profile.timing import noise_floor
from edgenas.profile.transfer import fit_transfer, macs_line_ms, macs_only_metrics, transfer
from edgenas.space import get_space
from edgenas.space.arch import Arch
from benchmarks.harness import command_line, table_arguments

CURVE = (10, 20, 50, 100, 150, 200)


def _load(path: Path) -> LUT | None:
    return load_lut(path) if path.exists() else None


def _timed(state: dict[str, Any], key: str, state_path: Path, run: Any) -> Any:
    """Run ``run()`` and add its wall time to ``state[key]`` (a resumed step adds up)."""
    started = time.perf_counter()
    try:
        return run()
    finally:
        state[key] = state.get(key, 0.0) + time.perf_counter() - started
        write_json_atomic(state, state_path)


def _row(name: str, report: dict[str, Any], board_s: float | None, networks: int | None,
         units: int | None) -> dict[str, Any]:
    keys = ("within_10pct", "within_5pct", "kendall_tau", "mean_abs_pct_error", "median_bias_pct")
    return {"table": name, **{k: report[k] for k in keys}, "device_s": board_s,
            "networks": networks, "units_timed": units}


def gap_from_macs(table: LUT, items: list[TimedNetwork]) -> float:
    """Median |table / MACs line - 1| over ``items``, in per cent: how far the table's
    predictions depart from counting at all. Two tables closer than the device's noise
    cannot be told apart on held-out timings, however many."""
    model = LatencyModel(table, anchored=False)
    archs = [Arch.from_json(item.arch) for item in items]
    return float(100 * np.median([abs(model.predict(a) / macs_line_ms(table, a) - 1)
                                  for a in archs]))


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    table_arguments(parser, device=None)
    parser.add_argument("--source", action="append", required=True,
                        help="source device(s) with a measured table; the first builds the tables")
    parser.add_argument("--networks", type=int, default=50)
    parser.add_argument("--ceiling", type=int, default=150)
    parser.add_argument("--validate", type=int, default=30)
    parser.add_argument("--out", default="runs/bench_transfer")
    parser.add_argument("--json", default="benchmarks/results/bench_transfer.json")
    parser.add_argument("--skip-sampled", action="store_true")
    parser.add_argument("--full", default=None,
                        help="a full profile of --device (every unit timed) to judge beside "
                             "the transfer on the same held-out timings")
    parser.add_argument("--offline", action="store_true",
                        help="time nothing: judge and refit the tables a finished run left "
                             "under --out (say, from another --source)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    device, space = get_device(args.device), get_space(args.space)
    out = Path(args.out) / device.name
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    sources = {name: load_lut(lut_path(args.profiles_dir, name, space.name)) for name in args.source}
    first = args.source[0]
    where = str(lut_path(args.profiles_dir, first, space.name))

    main_path = out / f"transfer{args.networks}.json"
    ceiling_path = out / f"transfer{args.ceiling}.json"
    sampled_path = out / "sampled.json"
    if args.offline:
        missing = [str(p) for p in (main_path, ceiling_path) if not p.exists()]
        if missing or not state.get("transfer_done"):
            why = ", ".join(missing) or "state.json says the transfer is unfinished"
            parser.error(f"--offline: no finished run under {out} ({why}); run without it first")
        lut, ceiling = load_lut(main_path), load_lut(ceiling_path)
        sampled = None if args.skip_sampled or not sampled_path.exists() else load_lut(sampled_path)
        held_out = lut.networks["validation"][:args.validate]
    else:
        lut, ceiling, sampled, held_out = _measure(args, device, space, sources[first], where,
                                                   state, state_path, main_path, ceiling_path,
                                                   sampled_path)
    _report(args, device, space, sources, first, state, lut, ceiling, sampled, held_out)


def full_profile_row(path: Path, held_out: list[TimedNetwork], count: int) -> dict[str, Any]:
    """The device's own full profile judged on the transfer's held-out timings (the same
    device, each timing at the yardstick, so another table's held-out set is fair to it).
    Its device time is not in the table (a later refit moves ``updated``): the profile's
    own last line says it."""
    table = copy.deepcopy(load_lut(path))
    if not table.entries or (table.sampling or {}).get("measured") not in (None, len(table.entries)):
        raise SystemExit(f"--full {path}: not a full profile (units predicted, not all timed)")
    table.networks = {**table.networks, "validation": held_out}
    return _row(f"full profile ({len(table.entries)} units, "
                f"{len(table.networks.get('fitting', []))} networks)",
                validation_report(table, count), None,
                len(table.networks.get("fitting", [])), len(table.entries))


def _measure(args: argparse.Namespace, device: Any, space: Any, source: LUT, where: str,
             state: dict[str, Any], state_path: Path, main_path: Path, ceiling_path: Path,
             sampled_path: Path) -> tuple[LUT, LUT, LUT | None, list[TimedNetwork]]:
    """Steps 1-3, on the device: each saved as it goes and skipped when done."""
    # 1. the transfer table, timed; then its held-out networks (not part of its cost)
    if not state.get("transfer_done"):
        _timed(state, "transfer_s", state_path, lambda: save_lut(transfer(
            device, space, source, where, _load(main_path), networks=args.networks,
            checkpoint=lambda t: save_lut(t, main_path)), main_path))
        state["transfer_done"] = True
        write_json_atomic(state, state_path)
    lut = transfer(device, space, source, where, load_lut(main_path),
                   networks=args.networks, validate=args.validate,
                   checkpoint=lambda t: save_lut(t, main_path))
    save_lut(lut, main_path)
    held_out = lut.networks["validation"][:args.validate]

    # 2. the ceiling: the same transfer on more networks, held-out networks reused
    if not ceiling_path.exists():
        save_lut(lut, ceiling_path)
    ceiling = _timed(state, "ceiling_s", state_path, lambda: transfer(
        device, space, source, where, load_lut(ceiling_path), networks=args.ceiling,
        validate=args.validate, checkpoint=lambda t: save_lut(t, ceiling_path)))
    save_lut(ceiling, ceiling_path)

    # 3. a unit-sampled profile given the transfer's device time: half of it on units (the
    #    count from a pilot's rate), half on networks (the transfer's first N/2, as timed)
    sampled = None
    if not args.skip_sampled:
        if not sampled_path.exists():
            seed = LUT.new(device, space, lut.fingerprint)
            seed.timing = copy.deepcopy(lut.timing)  # same reference, same level
            seed.networks = {"fitting": copy.deepcopy(lut.networks["fitting"][:args.networks // 2]),
                             "validation": copy.deepcopy(held_out)}
            save_lut(seed, sampled_path)
        budget = state["transfer_s"] / 2
        if "unit_s" not in state:
            started = time.perf_counter()
            pilot = profile(device, space, load_lut(sampled_path), max_units=10,
                            calibrate=args.networks // 2, checkpoint=lambda t: save_lut(t, sampled_path))
            save_lut(pilot, sampled_path)
            state["unit_s"] = (time.perf_counter() - started) / 10
            write_json_atomic(state, state_path)
        units = max(10, int(budget / state["unit_s"]))
        sampled = profile(device, space, load_lut(sampled_path), max_units=units,
                          calibrate=args.networks // 2, validate=args.validate,
                          checkpoint=lambda t: save_lut(t, sampled_path))
        save_lut(sampled, sampled_path)
    return lut, ceiling, sampled, held_out


def _report(args: argparse.Namespace, device: Any, space: Any, sources: dict[str, LUT],
            first: str, state: dict[str, Any], lut: LUT, ceiling: LUT, sampled: LUT | None,
            held_out: list[TimedNetwork]) -> None:
    """Steps 4-5, offline: the tables side by side, the curve, the JSON."""
    # 4. side by side on the same held-out networks
    rows = [_row(f"transfer from {first} ({args.networks} networks)", validation_report(lut, args.validate),
                 state["transfer_s"], args.networks, 0),
            _row(f"MACs-only line ({args.networks} networks)", macs_only_metrics(lut, held_out),
                 state["transfer_s"], args.networks, 0)]
    if sampled is not None:
        rows.append(_row("unit-sampled profile (same device time)",
                         validation_report(sampled, args.validate), state["transfer_s"],
                         args.networks // 2, (sampled.sampling or {}).get("measured")))
    rows.append(_row(f"ceiling: transfer from {first} ({args.ceiling} networks)",
                     validation_report(ceiling, args.validate),
                     state["transfer_s"] + state.get("ceiling_s", 0.0), args.ceiling, 0))
    if args.full:
        rows.append(full_profile_row(Path(args.full), held_out, args.validate))

    # 5. the curve: accuracy against networks, for each source (offline refits)
    curve = []
    for (name, source), (base_name, base) in [(s, b) for s in sources.items()
                                              for b in (("ceiling", ceiling), ("main", lut))]:
        for n in [n for n in sorted((*CURVE, 30)) if n <= len(base.networks["fitting"])]:
            table = copy.deepcopy(base)
            table.networks["fitting"] = table.networks["fitting"][:n]
            table.transfer = {**(table.transfer or {})}
            fit_transfer(table, source, space)
            report = validation_report(table, args.validate)
            macs = macs_only_metrics(table, held_out)
            curve.append({"source": name, "level_of": base_name, "networks": n,
                          "form": table.correction["form"],
                          **{k: report[k] for k in ("within_10pct", "kendall_tau",
                                                    "mean_abs_pct_error", "median_bias_pct")},
                          "macs_within_10pct": macs["within_10pct"],
                          "macs_kendall_tau": macs["kendall_tau"],
                          "source_weight": table.transfer["work"]["source_ms"],
                          "gap_from_macs_pct": gap_from_macs(table, held_out)})

    floor = noise_floor(held_out)
    print(f"{device.name} ({space.name}), {len(held_out)} held-out archs; noise floor: two rounds "
          f"agree within +-10 % for {100 * floor['within_10pct']:.1f} % (median gap "
          f"{floor['median_gap_pct']:.1f} %)")
    print(f"{'table':<52} {'<=10%':>6} {'<=5%':>6} {'tau':>6} {'|err|%':>7} {'bias%':>6} {'device s':>9}")
    for r in rows:
        print(f"{r['table']:<52} {100 * r['within_10pct']:6.1f} {100 * r['within_5pct']:6.1f} "
              f"{r['kendall_tau']:6.3f} {r['mean_abs_pct_error']:7.1f} {r['median_bias_pct']:+6.1f} "
              f"{r['device_s'] or 0:9.0f}")
    print(f"\n{'source':<14} {'level of':<9} {'N':>4} {'form':<12} {'<=10%':>6} {'tau':>6} {'|err|%':>7} "
          f"{'MACs <=10%':>10} {'MACs tau':>8} {'src wt':>7} {'vs MACs %':>9}")
    for c in curve:
        print(f"{c['source']:<14} {c['level_of']:<9} {c['networks']:>4} {c['form']:<12} {100 * c['within_10pct']:6.1f} "
              f"{c['kendall_tau']:6.3f} {c['mean_abs_pct_error']:7.1f} "
              f"{100 * c['macs_within_10pct']:10.1f} {c['macs_kendall_tau']:8.3f} "
              f"{c['source_weight']:7.3g} {c['gap_from_macs_pct']:9.1f}")
    apart = gap_from_macs(lut, held_out)
    print(f"\nthe transfer table's predictions depart from its MACs line by a median {apart:.1f} % "
          f"on the held-out archs; two rounds of their timings, by {floor['median_gap_pct']:.1f} %"
          + (": no number of held-out timings at this noise tells the two apart"
             if apart < floor["median_gap_pct"] / 2 else ""))
    record = {"device": device.name, "space": space.name, "fingerprint": lut.fingerprint,
              "noise_floor": floor, "rows": rows, "curve": curve, "state": state,
              "transfer_gap_from_macs_pct": apart,
              "command": "python -m benchmarks bench_transfer " + " ".join(
                  f"--source {s}" for s in args.source) + f" --device {device.name} "
              f"--networks {args.networks} --ceiling {args.ceiling} --validate {args.validate}"
              + (" --offline" if args.offline else "") + (f" --full {args.full}" if args.full else "")}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record, Path(args.json))
    print(f"\nwrote {args.json}")
