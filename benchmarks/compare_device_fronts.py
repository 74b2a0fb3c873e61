"""Does "device-specific" change the pick? Compare searches run for different devices.

    python -m benchmarks compare_device_fronts runs/devsearch/host runs/devsearch/board \
        [runs/devsearch/both] --devices host-cpu,arm64-emulated [--json FILE]

Every arch any of the runs evaluated (their Optuna studies) forms one pool. For each device
the pool's accuracy-latency front is computed with that device's table, so the comparison
is free of the searches' own randomness: an arch on one device's front and off the other's
is a pick that only makes sense on one device. Each run's knee is then predicted on every
device. Prints a table and writes JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna

from edgenas.device.descriptor import get_device
from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import predict_on_device
from edgenas.search.pareto import non_dominated
from edgenas.search.results import load_front, pick
from edgenas.space import Arch
from benchmarks.harness import command_line


def pool(run: Path) -> dict[str, float]:
    """arch JSON -> estimated accuracy, for every finished trial of the run's study."""
    summary = load_front(run)
    study = optuna.load_study(study_name=summary["study_name"], storage=summary["storage"])
    out = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        arch = trial.user_attrs.get("arch")
        metrics = trial.user_attrs.get("metrics") or {}
        if arch and "accuracy" in metrics:
            out[arch if isinstance(arch, str) else json.dumps(arch, sort_keys=True)] = metrics["accuracy"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--devices", required=True)
    parser.add_argument("--profiles-dir", default="profiles")
    parser.add_argument("--json", default="benchmarks/results/device_fronts.json")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    devices = [get_device(name) for name in args.devices.split(",")]
    accuracy: dict[str, float] = {}
    for run in args.runs:
        accuracy.update(pool(Path(run)))
    keys = sorted(accuracy)
    archs = [Arch.from_json(k) if isinstance(k, str) else Arch.from_dict(k) for k in keys]
    latency = {d.name: np.array([predict_on_device(d, a, args.profiles_dir).ms for a in archs])
               for d in devices}
    acc = np.array([accuracy[k] for k in keys])
    fronts = {}
    for d in devices:
        points = np.column_stack([1 - acc, latency[d.name]])
        fronts[d.name] = set(np.flatnonzero(non_dominated(points)).tolist())
    names = [d.name for d in devices]
    shared = set.intersection(*fronts.values())
    print(f"{len(keys)} distinct archs evaluated by {len(args.runs)} runs")
    for name in names:
        only = fronts[name] - shared
        print(f"{name}: {len(fronts[name])} archs on its accuracy-latency front, {len(only)} on "
              "no other device's front")
    rank = {name: np.argsort(np.argsort(latency[name])) for name in names}
    spearman = float(np.corrcoef(rank[names[0]], rank[names[-1]])[0, 1])
    print(f"latency rank correlation (Spearman) between {names[0]} and {names[-1]} over the "
          f"pool: {spearman:.3f}")
    knees = []
    print(f"\n{'run':<28} {'knee accuracy':>13} " + " ".join(f"{n + ' ms':>20}" for n in names)
          + "  on whose front")
    for run in args.runs:
        chosen = pick(load_front(Path(run)), "knee")
        arch = Arch.from_dict(chosen["arch"], run) if isinstance(chosen["arch"], dict) \
            else Arch.from_json(chosen["arch"])
        ms = {d.name: predict_on_device(d, arch, args.profiles_dir).ms for d in devices}
        key = arch.to_json()
        where = [n for n in names if key in keys and keys.index(key) in fronts[n]]
        knees.append({"run": run, "accuracy": chosen.get("accuracy"), "latency_ms": ms,
                      "on_front_of": where, "arch": key})
        print(f"{run:<28} {chosen.get('accuracy', float('nan')):13.4f} "
              + " ".join(f"{ms[n]:20.4g}" for n in names) + f"  {', '.join(where) or '-'}")
    record = {"runs": args.runs, "devices": names, "archs": len(keys),
              "front_sizes": {n: len(fronts[n]) for n in names}, "shared_front": len(shared),
              "latency_rank_correlation": spearman, "knees": knees}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record, Path(args.json))
    print(f"\nwrote {args.json}")
