"""Benchmark (hypothesis H1): hypervolume of search strategies at an equal number of
evaluations, on one evaluator (supernet accuracy + a device's latency table).

    python -m benchmarks bench_search --supernet runs/supernet --device host-cpu \
        --trials 200 --population 20 --seeds 0 1 2 --json runs/bench_search.json

Strategies: nsga2 (hierarchical variation), nsga2-flat (Optuna's NSGA-II as it comes),
weighted-sum (TPE on the paper's equation 2) and random, compared by
`benchmarks/strategies.py` (`compare_strategies`) (one cached evaluator, one reference point).
Prints mean and standard deviation over seeds and writes JSON. `benchmarks/hypotheses.py` runs
this comparison as H1 and H2 together with H3 and H4.
"""

from __future__ import annotations

import sys

import optuna

from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import LatencyModel
from edgenas.device.descriptor import get_device
from edgenas.profile.lut import open_lut
from benchmarks.harness import command_line, table_arguments
from benchmarks.strategies import compare_strategies, jsonable
from edgenas.search.objectives import Budgets, Evaluator
from edgenas.search.strategy import STRATEGIES
from edgenas.space import get_space


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    table_arguments(parser)
    parser.add_argument("--supernet", help="supernet run dir; without it the objectives must be costs")
    parser.add_argument("--objectives", default="accuracy,latency,memory")
    parser.add_argument("--val-limit", type=int, help="score accuracy on the first N validation images")
    parser.add_argument("--max-latency-ms", type=float)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    space = get_space(args.space)
    accuracy = None
    if args.supernet:
        from edgenas.train.supernet_training import supernet_evaluator

        accuracy = supernet_evaluator(args.supernet, val_limit=args.val_limit).evaluate
    latency = LatencyModel(open_lut(get_device(args.device), space, args.profiles_dir))
    objectives = tuple(args.objectives.split(","))
    shared = Evaluator(objectives, Budgets(max_latency_ms=args.max_latency_ms), latency, accuracy)

    def report(run: dict) -> None:
        print(f"{run['strategy']:>12} seed {run['seed']}: {len(run['trials'])} trials, "
              f"{run['seconds']:.0f} s", file=sys.stderr)

    summary = compare_strategies(space, shared, args.strategies, args.trials, args.population,
                                 args.seeds, on_run=report)
    print(f"\nhypervolume at {args.trials} evaluations, {len(args.seeds)} seeds "
          f"(objectives {', '.join(objectives)}; "
          f"reference {[round(r, 4) for r in summary['reference']]})")
    print(f"{'strategy':>12}  {'mean HV':>10}  {'std':>8}  {'front':>6}  {'s/run':>6}")
    for strategy, row in summary["strategies"].items():
        print(f"{strategy:>12}  {row['mean']:>10.5g}  {row['std']:>8.3g}  "
              f"{row['mean_front_size']:>6.1f}  {row['mean_seconds']:>6.0f}")
    results = {**jsonable(summary), "device": args.device, "supernet": args.supernet}
    if args.json:
        write_json_atomic(results, args.json)
