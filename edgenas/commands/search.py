"""`edgenas search` and `edgenas pareto`: the search journey."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edgenas.errors import EdgenasError
from edgenas.search.engine import STRATEGIES, SearchConfig, completed, run_search
from edgenas.search.objectives import (DEFAULT_OBJECTIVES, OBJECTIVES, Budgets, Evaluator,
                                       check_budgets_reachable, parse_weights)
from edgenas.search.results import default_storage, front_status, load_front, pick, write_results
from edgenas.space import SPACES, get_space


def _latency_model(device_name: str | None, space, profiles_dir: str, allow_stale: bool):
    if device_name is None:
        return None
    from edgenas.profile.latency import LatencyModel
    from edgenas.device.descriptor import get_device
    from edgenas.profile.lut import open_lut

    return LatencyModel(open_lut(get_device(device_name), space, profiles_dir, allow_stale))


def _estimator(args: argparse.Namespace, objectives: tuple[str, ...]):
    """The accuracy estimator the arguments name (the default one when none is named)."""
    if "accuracy" not in objectives:
        return None
    if args.supernet and args.estimator:
        raise EdgenasError("--supernet DIR is short for --estimator supernet:DIR; give one")
    from edgenas.estimate.estimators import make_estimator

    return make_estimator(f"supernet:{args.supernet}" if args.supernet else args.estimator,
                          args.data)


def _progress(total: int, objectives: tuple[str, ...]):
    """A bar on a terminal (plain lines in a log) with the front's size and hypervolume."""
    from edgenas.progress import Progress

    bar = Progress(total, "search", "trial")

    def callback(study, trial) -> None:  # noqa: ANN001
        trials = completed(study)
        size, hv = front_status(trials, objectives)
        bar.update(min(total, len(trials)), note=f"front {size}, hv {hv:.4g}")

    return bar, callback


def cmd_search(args: argparse.Namespace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says it shorter
    space = get_space(args.space)
    objectives = tuple(o.strip() for o in args.objectives.split(","))
    budgets = Budgets(args.max_latency_ms, args.max_memory_mb, args.max_mmacs, args.max_params)
    estimator = _estimator(args, objectives)
    evaluator = Evaluator(objectives, budgets,
                          _latency_model(args.device, space, args.profiles_dir, args.allow_stale),
                          estimator.score if estimator is not None else None)
    check_budgets_reachable(space, evaluator)
    config = SearchConfig(args.strategy, args.trials, args.population, args.seed,
                          parse_weights(args.weights))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or default_storage(out)
    bar, callback = _progress(args.trials, objectives)
    start = time.perf_counter()
    try:
        study = run_search(space, evaluator, config, storage=storage, study_name=args.study_name,
                           resume=args.resume, callbacks=[callback])
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    trials = completed(study)
    info = {"space": space.name, "device": args.device, "strategy": args.strategy,
            "seed": args.seed, "storage": storage, "study_name": args.study_name,
            "budgets": {k: v for k, v in vars(budgets).items() if v is not None},
            "supernet": args.supernet,
            "estimator": estimator.describe() if estimator is not None else None}
    summary = write_results(out, trials, objectives, args.population, info)
    rate = 60 * evaluator.accuracy_calls / elapsed if elapsed else 0.0
    print(f"{out}: {summary['trials']} trials ({summary['distinct_archs']} distinct archs, "
          f"{summary['feasible_trials']} within budget) in {elapsed:.0f} s; "
          f"{len(summary['front'])} on the Pareto front, hypervolume {summary['hypervolume']:.4g}")
    if evaluator.accuracy_calls:
        print(f"accuracy estimates: {evaluator.accuracy_calls} ({rate:.1f} archs/min in this worker)")
    print(f"see {out / 'pareto.png'}, {out / 'pareto.html'}; 'edgenas pareto {out}'")


def cmd_pareto(args: argparse.Namespace) -> None:
    summary = load_front(Path(args.run))
    objectives = tuple(summary["objectives"])
    if args.pick:
        chosen = pick(summary, args.pick, args.max_latency_ms)
        print(json.dumps(chosen, indent=2) if args.json else json.dumps(chosen["arch"], indent=2))
        return
    if args.json:
        print(json.dumps(summary["front"], indent=2))
        return
    extra = [m for m in ("macs", "params", "memory", "latency") if m not in objectives
             and summary["front"] and m in summary["front"][0]]
    columns = ["#", "trial", *objectives, *extra]
    print(f"{len(summary['front'])} Pareto-optimal archs of {summary['trials']} trials "
          f"(space {summary['space']}, device {summary['device']}, hypervolume "
          f"{summary['hypervolume']:.4g})")
    print("  ".join(f"{c:>10}" for c in columns))
    for i, r in enumerate(summary["front"]):
        cells = [str(i), str(r["trial"]), *(f"{r[c]:.4g}" for c in (*objectives, *extra))]
        print("  ".join(f"{c:>10}" for c in cells))


def register(commands: argparse._SubParsersAction) -> None:
    """Add `search` and `pareto` to the top-level parser."""
    search = commands.add_parser("search", help="multi-objective search for a device")
    search.add_argument("--space", default="cifar", choices=sorted(SPACES))
    search.add_argument("--device", help="device whose latency table predicts latency")
    search.add_argument("--estimator", metavar="NAME",
                        help="accuracy estimator: params, macs, naswot, synflow, supernet:DIR, "
                             "predictor[:TABLE] (default: predictor on the committed "
                             "CIFAR-10 ground truth); see 'edgenas estimate -h'")
    search.add_argument("--supernet", metavar="DIR",
                        help="short for --estimator supernet:DIR")
    search.add_argument("--data", help="images for the zero-cost proxies (naswot, predictor)")
    search.add_argument("--objectives", default=",".join(DEFAULT_OBJECTIVES),
                        help=f"comma-separated, from {', '.join(OBJECTIVES)}")
    search.add_argument("--strategy", default="nsga2", choices=STRATEGIES)
    search.add_argument("--weights", help="weighted-sum lambdas, e.g. latency=0.5,memory=0.1")
    search.add_argument("--trials", type=int, default=100)
    search.add_argument("--population", type=int, default=20)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--max-latency-ms", type=float)
    search.add_argument("--max-memory-mb", type=float)
    search.add_argument("--max-mmacs", type=float)
    search.add_argument("--max-params", type=float, help="a parameter count, e.g. 500000")
    search.add_argument("--out", default="runs/search", help="run directory")
    search.add_argument("--storage", help="Optuna storage URL (default: SQLite in --out); "
                                          "postgresql://... to share a study between workers")
    search.add_argument("--study-name", default="edgenas")
    search.add_argument("--resume", action="store_true", help="continue a stopped run")
    search.add_argument("--profiles-dir", default="profiles")
    search.add_argument("--allow-stale", action="store_true")
    search.set_defaults(func=cmd_search)

    pareto = commands.add_parser("pareto", help="print a search's Pareto front or pick a point")
    pareto.add_argument("run", help="search run directory")
    pareto.add_argument("--pick", help="knee, best, or a front index")
    pareto.add_argument("--max-latency-ms", type=float, help="with --pick best")
    pareto.add_argument("--json", action="store_true")
    pareto.set_defaults(func=cmd_pareto)
