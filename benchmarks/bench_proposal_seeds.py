"""How well can any surrogate rank a search's proposals, and how well does the prior, once
each proposal's accuracy is measured with more than one training seed?

    EDGENAS_CIFAR10=... python -m benchmarks bench_proposal_seeds --out runs/proposal-seeds \
        [--strategy nsga2+prior-as-is] [--seeds 0 1 2] [--extra-seeds 1 2] \
        [--json benchmarks/results/bench_proposal_seeds.json]

A recorded comparison (`benchmarks/hypotheses.py`) trains each proposal once, with the recipe's
seed 0. Under this recipe two trainings of one arch differ by a std of 1.75 points, while a
run's ten proposals span about 5-9 points, so a single training is a noisy yardstick: the
tau between two seeds' accuracies of the same proposals is the most any predictor can be
expected to reach against one seed. This trains every proposal of the given runs again with
the recipe's other seeds (same data, same validation split; CPU minutes, resumable: each
training is kept under ``--out``) and scores, per run and pooled:

* the prior's values (what the as-is search ranked by) and the live surrogate's predictions
  against seed 0 alone and against the mean over seeds;
* seed 0 against seed 1 (the single-training ceiling).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edgenas.errors import EdgenasError
from edgenas.estimate.estimators import DEFAULT_TABLE
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.estimate.prior import accuracy_prior
from edgenas.profile.ranking import kendall_tau
from edgenas.jsonio import write_json_atomic
from edgenas.space.arch import Arch
from edgenas.train.loop import TrainConfig
from edgenas.train.standalone import recipe_trainer
from benchmarks.harness import command_line
from benchmarks.hypotheses import recorded_runs

RECORDED = Path(__file__).resolve().parent / "results" / "hypotheses-runs.jsonl"


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--out", type=Path, required=True, help="trainings are kept here")
    parser.add_argument("--strategy", default="nsga2+prior-as-is")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="the recorded runs (search seeds) whose proposals are retrained")
    parser.add_argument("--extra-seeds", type=int, nargs="+", default=[1, 2],
                        help="training seeds besides the recorded seed 0")
    parser.add_argument("--known", type=Path, default=RECORDED)
    parser.add_argument("--groundtruth", type=Path, default=DEFAULT_TABLE)
    tree = os.environ.get("EDGENAS_CIFAR10")
    parser.add_argument("--data", default=f"cifar10:{tree}" if tree else None,
                        help="the ground truth's images (default cifar10:$EDGENAS_CIFAR10)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("--data: give the ground truth's images (or set EDGENAS_CIFAR10)")
    if 0 in args.extra_seeds:
        parser.error("--extra-seeds: seed 0 is the recorded training; give others")
    gt = GroundTruth.load(args.groundtruth)
    try:  # each seed's proposals: its trained archs after the warm start (round 0)
        runs = {seed: [t for t in trained if t["round"]] for seed, trained
                in recorded_runs(args.known, args.strategy, args.seeds).items()}
    except EdgenasError as err:
        parser.error(str(err))
    trainers = {s: recipe_trainer(args.data, args.out / f"seed{s}",
                                  TrainConfig.from_dict({**gt.recipe, "seed": s},
                                                        args.groundtruth),
                                  cache_dir=args.out / "cache")
                for s in args.extra_seeds}
    results_path = args.out / "accuracies.json"
    done: dict[str, dict[str, float]] = (json.loads(results_path.read_text())
                                         if results_path.exists() else {})
    todo = [(t["arch"], s) for trained in runs.values() for t in trained
            for s in args.extra_seeds if str(s) not in done.get(t["arch"], {})]
    for i, (key, s) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] training seed {s}", flush=True)
        result = trainers[s](Arch.from_json(key))
        split = json.loads((Path(result["run_dir"]) / "result.json").read_text())["split"]
        if split["hash"] != gt.data["split"]["hash"]:  # accuracies would not be comparable
            raise SystemExit(f"--data {args.data}: validation split {split['hash']} is not "
                             f"the ground truth's {gt.data['split']['hash']}")
        accuracy = result["accuracy"]
        done.setdefault(key, {})[str(s)] = accuracy
        write_json_atomic(done, results_path)  # a kill loses only the training in flight

    prior = accuracy_prior(table=args.groundtruth)
    rows, pooled = [], {"prior": ([], []), "prior@mean": ([], []), "live": ([], []),
                        "live@mean": ([], []), "seed0 vs seed1": ([], [])}
    for seed, trained in sorted(runs.items()):
        keys = [t["arch"] for t in trained]
        first = [t["accuracy"] for t in trained]
        mean = [float(np.mean([t["accuracy"]] + [done[t["arch"]][str(s)]
                                                 for s in args.extra_seeds]))
                for t in trained]
        other = [done[k][str(args.extra_seeds[0])] for k in keys]
        prior_values = list(prior.values([Arch.from_json(k) for k in keys]))
        live = [t["predicted_accuracy"] for t in trained]
        pairs = {"prior": (prior_values, first), "prior@mean": (prior_values, mean),
                 "seed0 vs seed1": (first, other)}
        if all(v is not None for v in live):
            pairs.update({"live": (live, first), "live@mean": (live, mean)})
        row = {"seed": seed, "proposals": len(keys),
               "spread_pts": 100 * (max(mean) - min(mean))}
        for name, (x, y) in pairs.items():
            row[name] = kendall_tau(x, y, undefined=0.0)
            pooled[name][0].extend(x)
            pooled[name][1].extend(y)
        rows.append(row)
    totals = {name: kendall_tau(x, y, undefined=0.0) for name, (x, y) in pooled.items() if x}
    diffs = [done[t["arch"]][str(args.extra_seeds[0])] - t["accuracy"]
             for trained in runs.values() for t in trained]
    names = [n for n in pooled if n in totals]
    print(f"{args.strategy}: proposals' Kendall tau against 1 training (seed 0) and against "
          f"the mean of {1 + len(args.extra_seeds)} trainings")
    print("| search seed | proposals | spread (pts) | " + " | ".join(names) + " |")
    print("| --- " * (3 + len(names)) + "|")
    for row in rows:
        print(f"| {row['seed']} | {row['proposals']} | {row['spread_pts']:.1f} | "
              + " | ".join(f"{row[n]:.2f}" if n in row else "-" for n in names) + " |")
    print(f"| pooled | {sum(r['proposals'] for r in rows)} | | "
          + " | ".join(f"{totals[n]:.2f}" for n in names) + " |")
    print(f"two trainings of one proposal differ by a std of {100 * np.std(diffs, ddof=1):.2f} "
          f"points (seed {args.extra_seeds[0]} minus seed 0)")
    if args.json:
        write_json_atomic({"strategy": args.strategy, "search_seeds": args.seeds,
                           "training_seeds": [0, *args.extra_seeds], "by_run": rows,
                           "pooled": totals, "seed_diff_std_pts": 100 * np.std(diffs, ddof=1),
                           "accuracies": done,
                           "command": "python -m benchmarks bench_proposal_seeds "
                           f"--strategy {args.strategy} --seeds {' '.join(map(str, args.seeds))}"
                           f" --extra-seeds {' '.join(map(str, args.extra_seeds))}"},
                          args.json)
        print(f"wrote {args.json}")
