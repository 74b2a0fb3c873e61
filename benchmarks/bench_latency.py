"""Latency prediction accuracy of a device's table, next to the host's own noise floor.

    python -m benchmarks bench_latency [--device host-cpu] [--space cifar] [--archs 50] \
        [--rounds 4] [--reprofile] [--calibrate 150] [--subsets 50,100] \
        [--json runs/bench_latency.json]

Times ``--archs`` archs of the space that neither fitted nor validated the table, end to
end, in ``--rounds`` interleaved rounds (one round over all archs, then the next), so that
a slow spell of a shared host hits every arch alike. The measured time of an arch is the
median of its round medians. Scored against it: the table's prediction (its chosen
correction), the plain sum of unit times, and the noise floor, which is the median of the
odd rounds as a "prediction" of the median of the even rounds: no table can be expected to
beat what the host's own repeated measurements agree on. The ``bias`` column is the median
relative error (negative: predicted too fast): a table kept at the wrong level of load
shows there, where a noisy one does not. ``--reprofile`` measures the table
anew first (and reports how long that took); otherwise the stored table is used as it is,
stale or not (``--profiles-dir`` says where, default ``profiles``).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.device.descriptor import get_device
from edgenas.device.session import DeviceSession
from edgenas.errors import ProfileError
from edgenas.jsonio import write_json_atomic
from edgenas.profile.correction import CORRECTIONS, form_of
from edgenas.profile.latency import LatencyModel, accuracy_metrics, unit_sum
from edgenas.profile.level import LEVELS, express_at, value
from edgenas.profile.lut import LUT, load_lut, lut_path, save_lut
from edgenas.profile.onnx_graph import network_model
from edgenas.profile.precision import DeviceModels
from edgenas.profile.profiler import CALIBRATE, fit_on, profile
from edgenas.profile.records import Timing
from edgenas.profile.timing import load_guard, time_batch
from edgenas.progress import StageProgress
from edgenas.space import get_space
from edgenas.space.arch import Arch
from benchmarks.harness import command_line, table_arguments

#: far from the table's own streams (calibration 1e6, validation 2e6)
BENCH_SEED = 3_000_000


def timed_rounds(device_name: str, lut: Any, archs: list, rounds: int
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any] | None]:
    """(rounds, archs) round medians in ms, one round over all archs after another, at the
    table's level (relative to the reference network as the table's are); the same at
    every level (`edgenas.profile.level`, "none" being as timed); and the guard's record."""
    device = get_device(device_name)
    # in the device's precision, as its table's networks are
    models = DeviceModels(device, {str(i): partial(network_model, arch)
                                   for i, arch in enumerate(archs)})
    times = np.zeros((rounds, len(archs)))
    levels = {level: np.zeros((rounds, len(archs))) for level in LEVELS}
    # measured like the table: against its reference, at its level
    guard = load_guard(device, get_space(lut.space), lut)
    with DeviceSession(device) as session:
        for r in range(rounds):
            def store(key: str, timing: Timing, r: int = r) -> None:
                times[r, int(key)] = timing.median_ms
                for level, values in levels.items():  # without a guard: as timed
                    scaled = value(timing.record, level)
                    values[r, int(key)] = timing.median_ms if scaled is None else scaled

            time_batch(session, models, store, chunk=len(models), checkpoint=lambda: None,
                       progress=StageProgress(), guard=guard)
            print(f"round {r + 1}/{rounds}: median of medians {np.median(times[r]):.3f} ms "
                  f"(as timed {np.median(levels['none'][r]):.3f} ms)", flush=True)
    return times, levels, guard.summary() if guard is not None else None


def refit(lut: LUT, first: int | None = None, only: list[str] | None = None) -> LUT:
    """A copy of the table with its correction fitted on its first ``first`` calibration
    networks (all by default) as profiling fits it, choosing among ``only`` (every form)."""
    items = (lut.networks.get("fitting") or [])[:first]
    table = replace(lut)
    fit_on(table, [Arch.from_json(item.arch) for item in items],
           [item.measured_ms for item in items], only=only)
    return table


def at_level(lut: LUT, level: str) -> LUT:
    """A copy of the table with every time at ``level`` and its correction refitted there,
    as profiling would have made it had it chosen that level."""
    table = LUT.from_dict(copy.deepcopy(lut.to_dict()), "copy")
    express_at(table, level)
    return refit(table)


def every_form(lut: LUT) -> dict[str, LUT]:
    """The table with each correction form it could have chosen, fitted on its calibration
    networks."""
    forms = {}
    for form in CORRECTIONS:
        try:
            forms[form] = refit(lut, only=[form])
        except ProfileError:  # e.g. too few networks for trees
            continue
    return forms


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    table_arguments(parser)
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4, help="even, at least 2")
    parser.add_argument("--reprofile", action="store_true",
                        help="measure the table anew first (written to --profiles-dir)")
    parser.add_argument("--calibrate", type=int, default=CALIBRATE,
                        help="table-fitting networks when profiling anew")
    parser.add_argument("--subsets", default="",
                        help="also refit the correction on the first N table-fitting networks, "
                             "for each N of this comma list (how many networks are worth it)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--rescore", type=Path,
                        help="score the table against the rounds stored in this earlier --json "
                             "instead of timing them again (its table, archs and rounds)")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.rounds % 2:
        parser.error("--rounds must be even and at least 2 (odd rounds against even rounds)")
    earlier = json.loads(args.rescore.read_text()) if args.rescore else None
    if earlier is not None:  # the stored run's device and space, whatever the flags say
        args.device, args.space = earlier["device"], earlier["space"]
    device, space = get_device(args.device), get_space(args.space)
    path = lut_path(args.profiles_dir, device.name, space.name)
    profiling_s = None
    if earlier is not None:  # the same table and archs as the run being rescored
        path, args.archs, args.rounds = Path(earlier["table"]), earlier["archs"], earlier["rounds"]
    if earlier is None and (args.reprofile or not path.exists()):
        started = time.perf_counter()
        lut = profile(device, space, None, checkpoint=lambda table: save_lut(table, path),
                      validate=20, calibrate=args.calibrate)
        save_lut(lut, path)
        profiling_s = time.perf_counter() - started
        print(f"profiled {path} in {profiling_s:.0f} s")
    lut = load_lut(path)
    archs = [space.sample(BENCH_SEED + i) for i in range(args.archs)]
    if earlier is not None:
        times, guard = np.array(earlier["round_medians_ms"]), earlier["benchmark_guard"]
        levels = {k: np.array(v) for k, v in earlier["round_medians_by_level_ms"].items()}
        profiling_s = earlier["profiling_s"]
    else:
        times, levels, guard = timed_rounds(args.device, lut, archs, args.rounds)
    raw = levels["none"]
    measured = np.median(times, axis=0)
    odd, even = np.median(times[0::2], axis=0), np.median(times[1::2], axis=0)

    def predictions(table: LUT) -> list[float]:
        model = LatencyModel(table)
        return [model.predict(a) for a in archs]

    predicted = predictions(lut)
    rows = {
        "table (chosen correction)": accuracy_metrics(predicted, measured),
        "plain sum of units": accuracy_metrics([unit_sum(lut, a)[0] for a in archs], measured),
        "noise floor (odd vs even rounds)": accuracy_metrics(odd, even),
        "table, against times as timed": accuracy_metrics(predicted, np.median(raw, axis=0)),
    }
    for level, values in levels.items():  # what each way of scaling would have made of it
        rows[f"  noise floor, level {level}"] = accuracy_metrics(
            np.median(values[0::2], axis=0), np.median(values[1::2], axis=0))
        if (lut.timing.get("protocol") or {}).get("level_scores"):  # raw times recorded
            rows[f"  table at level {level}"] = accuracy_metrics(
                predictions(at_level(lut, level)), np.median(values, axis=0))
    for form, table in every_form(lut).items():  # each candidate, as if it had been chosen
        rows[f"  form {form}"] = accuracy_metrics(predictions(table), measured)
    for first in (int(n) for n in args.subsets.split(",") if n.strip()):
        table = refit(lut, first)
        rows[f"  first {first} networks ({table.correction['form']})"] = accuracy_metrics(
            predictions(table), measured)
    print(f"\n{args.archs} held-out archs of {space.name} on {device.name}, {args.rounds} "
          f"interleaved rounds; correction: {form_of(lut.correction or {}).name}; "
          f"times scaled by: {(lut.timing.get('protocol') or {}).get('level', 'neighbours')}")
    print(f"{'':34} {'within 10 %':>11} {'within 5 %':>10} {'tau':>6} {'mean |err|':>10} "
          f"{'bias':>7}")
    for name, m in rows.items():
        print(f"{name:34} {100 * m['within_10pct']:10.1f}% {100 * m['within_5pct']:9.1f}% "
              f"{m['kendall_tau']:6.3f} {m['mean_abs_pct_error']:9.1f}% "
              f"{m['median_bias_pct']:+6.1f}%")
    result = {"device": device.name, "space": space.name, "archs": args.archs,
              "rounds": args.rounds, "table": str(path), "profiling_s": profiling_s,
              "correction": {k: v for k, v in (lut.correction or {}).items() if k != "boosted"},
              "protocol": lut.timing.get("protocol"), "benchmark_guard": guard,
              "table_validation": lut.validation,
              "results": rows, "round_medians_ms": times.tolist(),
              "round_medians_as_timed_ms": raw.tolist(),
              "round_medians_by_level_ms": {k: v.tolist() for k, v in levels.items()},
              "date": time.strftime("%Y-%m-%d %H:%M")}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(result, args.json)
        print(f"wrote {args.json}")
