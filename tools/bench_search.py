"""Benchmark (hypothesis H1): hypervolume of search strategies at an equal number of
evaluations, on one evaluator (supernet accuracy + a device's latency table).

    python tools/bench_search.py --supernet runs/supernet --device host-cpu \
        --trials 200 --population 20 --seeds 0 1 2 --json runs/bench_search.json

Strategies: nsga2 (hierarchical variation), nsga2-flat (Optuna's NSGA-II as it comes),
weighted-sum (TPE on the paper's equation 2) and random. Every strategy is scored by the
same cached evaluator, so an arch's accuracy is estimated once for all of them. The
hypervolume reference point is shared: error 1 for accuracy, 1.1 x the worst cost any run
saw. Prints mean and standard deviation over seeds and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

from edgenas.cost.latency import LatencyModel
from edgenas.device.descriptor import get_device
from edgenas.profile.lut import open_lut
from edgenas.search.engine import STRATEGIES, SearchConfig, completed, front, objective_matrix, run_search
from edgenas.search.objectives import Budgets, Evaluator
from edgenas.search.pareto import hypervolume
from edgenas.space import get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--device", default="host-cpu")
    parser.add_argument("--profiles-dir", default="profiles")
    parser.add_argument("--supernet", help="supernet run dir; without it the objectives must be costs")
    parser.add_argument("--objectives", default="accuracy,latency,memory")
    parser.add_argument("--val-limit", type=int, help="score accuracy on the first N validation images")
    parser.add_argument("--max-latency-ms", type=float)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    space = get_space(args.space)
    accuracy = None
    if args.supernet:
        from edgenas.train.supernet_training import supernet_evaluator

        accuracy = supernet_evaluator(args.supernet, val_limit=args.val_limit).evaluate
    latency = LatencyModel(open_lut(get_device(args.device), space, args.profiles_dir))
    objectives = tuple(args.objectives.split(","))
    shared = Evaluator(objectives, Budgets(max_latency_ms=args.max_latency_ms), latency, accuracy)

    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for strategy in args.strategies:
            for seed in args.seeds:
                start = time.perf_counter()
                calls = shared.accuracy_calls
                study = run_search(space, shared, SearchConfig(strategy, args.trials, args.population, seed),
                                   storage=f"sqlite:///{folder}/{strategy}-{seed}.db", study_name="bench")
                trials = completed(study)
                runs.append({"strategy": strategy, "seed": seed, "trials": trials,
                             "seconds": time.perf_counter() - start,
                             "new_accuracy_calls": shared.accuracy_calls - calls})
                print(f"{strategy:>12} seed {seed}: {len(trials)} trials, "
                      f"{runs[-1]['seconds']:.0f} s", file=sys.stderr)

    reference = [1.0 if name == "accuracy" else
                 1.1 * max(t.user_attrs["metrics"][name] for r in runs for t in r["trials"])
                 for name in objectives]
    table = {}
    for run in runs:
        points = front(run["trials"], objectives)
        run["hypervolume"] = hypervolume(objective_matrix(points, objectives), reference) if points else 0.0
        run["front_size"] = len(points)
        table.setdefault(run["strategy"], []).append(run)

    print(f"\nhypervolume at {args.trials} evaluations, {len(args.seeds)} seeds "
          f"(objectives {', '.join(objectives)}; reference {[round(r, 4) for r in reference]})")
    print(f"{'strategy':>12}  {'mean HV':>10}  {'std':>8}  {'front':>6}  {'s/run':>6}")
    results = {"objectives": list(objectives), "reference": reference, "trials": args.trials,
               "population": args.population, "seeds": args.seeds, "space": args.space,
               "device": args.device, "supernet": args.supernet, "strategies": {}}
    for strategy, items in table.items():
        hvs = [r["hypervolume"] for r in items]
        mean = statistics.mean(hvs)
        std = statistics.stdev(hvs) if len(hvs) > 1 else 0.0
        fronts = statistics.mean(r["front_size"] for r in items)
        seconds = statistics.mean(r["seconds"] for r in items)
        print(f"{strategy:>12}  {mean:>10.5g}  {std:>8.3g}  {fronts:>6.1f}  {seconds:>6.0f}")
        results["strategies"][strategy] = {"hypervolume": hvs, "mean": mean, "std": std,
                                           "mean_front_size": fronts, "mean_seconds": seconds}
    results["accuracy_estimates"] = shared.accuracy_calls
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
