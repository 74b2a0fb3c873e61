"""Would the accuracy prior rank a search's proposals better with more trained archs?

    python -m benchmarks bench_prior_data [--known benchmarks/results/hypotheses-runs.jsonl] \
        [--json benchmarks/results/bench_prior_data.json]

The committed prior is a predictor fitted on the ground truth's 63 archs. The recorded
comparisons (`benchmarks/hypotheses.py`) trained about 180 more archs with the same recipe and
data. Each recorded run's proposals are scored three ways against their trained accuracies:

* ``committed prior``: the prior's own values (`edgenas.estimate.prior.accuracy_prior`);
* ``ground truth + recorded``: a predictor fitted the same way on the ground truth plus every
  recorded arch that no run of the same seed proposed (so no arch is predicted by a fit
  that saw it, nor by one that saw the run's other choices);
* ``live surrogate``: what the run itself predicted before training (none for random).

It trains nothing: a few seconds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.estimate.estimators import DEFAULT_TABLE
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.estimate.predictor import feature_matrix, fit_predictor
from edgenas.estimate.prior import accuracy_prior
from edgenas.profile.ranking import kendall_tau
from edgenas.jsonio import write_json_atomic
from edgenas.space.arch import Arch
from benchmarks.harness import command_line

RECORDED = Path(__file__).resolve().parent / "results" / "hypotheses-runs.jsonl"


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--known", type=Path, default=RECORDED)
    parser.add_argument("--groundtruth", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    gt = GroundTruth.load(args.groundtruth)
    truth = {e.arch.to_json(): e.mean_accuracy for e in gt.finished}
    runs = [json.loads(line) for line in args.known.read_text().splitlines() if line.strip()]
    recorded: dict[str, float] = {}
    seeds_of: dict[str, set[int]] = defaultdict(set)
    for run in runs:
        for t in run["trained"]:
            if t["round"] and t["arch"] not in truth:
                recorded[t["arch"]] = t["accuracy"]
                seeds_of[t["arch"]].add(run["seed"])

    def features(keys: list[str]) -> np.ndarray:
        return feature_matrix([Arch.from_json(k) for k in keys], None)

    prior = accuracy_prior(table=args.groundtruth)
    refits: dict[int, Any] = {}
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    pooled: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for run in runs:
        chosen = [t for t in run["trained"] if t["round"]]
        keys, accuracy = [t["arch"] for t in chosen], [t["accuracy"] for t in chosen]
        seed = run["seed"]
        if seed not in refits:
            rows = {**truth, **{k: v for k, v in recorded.items() if seed not in seeds_of[k]}}
            refits[seed] = fit_predictor(features(list(rows)), list(rows.values()), seed=0)
        predicted = {"committed prior": prior.values([Arch.from_json(k) for k in keys]),
                     "ground truth + recorded": refits[seed].predict(features(keys))}
        live = [t["predicted_accuracy"] for t in chosen]
        if all(v is not None for v in live):
            predicted["live surrogate"] = np.asarray(live, float)
        for name, values in predicted.items():
            scores[(run["strategy"], name)].append(kendall_tau(values, accuracy, undefined=0.0))
            pooled[name][0].extend(values)
            pooled[name][1].extend(accuracy)

    print(f"{len(truth)} ground-truth archs, {len(recorded)} other recorded archs, "
          f"{len(runs)} runs")
    print(f"| strategy | predictions | proposals' tau by run | mean |\n| --- | --- | --- | --- |")
    for (strategy, name), taus in sorted(scores.items()):
        print(f"| {strategy} | {name} | {', '.join(f'{t:.2f}' for t in taus)} | "
              f"{np.mean(taus):.2f} |")
    totals = {name: kendall_tau(values, accuracy, undefined=0.0)
              for name, (values, accuracy) in pooled.items()}
    for name, tau in totals.items():
        print(f"pooled over every run's proposals ({len(pooled[name][1])}): {name} {tau:.3f}")
    if args.json:
        write_json_atomic({"groundtruth_archs": len(truth), "recorded_archs": len(recorded),
                           "runs": len(runs),
                           "refits": {str(s): {"model": p.name, "cv_tau": p.cv_tau, "archs": p.n}
                                      for s, p in refits.items()},
                           "by_run": [{"strategy": s, "predictions": n, "taus": t}
                                      for (s, n), t in sorted(scores.items())],
                           "pooled": totals}, args.json)
        print(f"wrote {args.json}")
