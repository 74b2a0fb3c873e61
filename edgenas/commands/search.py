"""`edgenas search` and `edgenas pareto`: the search journey."""

from __future__ import annotations

import argparse
import sys
import json
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from edgenas.commands.arguments import ALLOW_STALE_HELP, PROFILES_DIR_HELP
from edgenas.device.descriptor import get_device
from edgenas.errors import EdgenasError
from edgenas.estimate.estimators import make_estimator
from edgenas.estimate.names import SEARCH_ESTIMATOR_NAMES, TRAINED
from edgenas.export.bundle import describe_check
from edgenas.jsonio import read_json
from edgenas.locking import folder_lock
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import open_lut
from edgenas.progress import Progress
from edgenas.search import accuracy_source
from edgenas.search.engine import SearchConfig
from edgenas.search.job import SearchJob, TrainedSearch, estimated_search, trained_search
from edgenas.search.objectives import (COST_METRICS, DEFAULT_OBJECTIVES, OBJECTIVES, Budgets,
                                       latency_metric, parse_weights)
from edgenas.search.measured_front import latency_targets, write_measured_results
from edgenas.search.results import (default_storage, front_status, latency_basis,
                                    load_exports, load_front, pick)
from edgenas.search.strategy import STRATEGIES
from edgenas.search.trained_search import SurrogateConfig
from edgenas.space import SPACES, get_space
from edgenas.train.loop import TrainConfig


def _latency(args: argparse.Namespace, space, objectives: tuple[str, ...]
             ) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Evaluator arguments for ``--device`` (one device, or several: A,B) and the objectives
    with ``latency`` expanded to one objective per device."""
    if args.device is None:
        return {}, objectives
    names = [n.strip() for n in args.device.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise EdgenasError(f"--device {args.device!r}: give one device or distinct devices "
                           f"separated by commas (A,B)")
    models = {name: LatencyModel(open_lut(get_device(name), space, args.profiles_dir,
                                          args.allow_stale)) for name in names}
    if len(models) == 1:
        return {"latency_model": models[names[0]]}, objectives
    expanded: list[str] = []
    for objective in objectives:
        expanded += map(latency_metric, names) if objective == "latency" else [objective]
    return {"latency_models": models}, tuple(expanded)


def _targets(args: argparse.Namespace, latency: dict[str, Any]):
    """The searched devices whose front is timed (`edgenas.search.measured_front`)."""
    if "latency_model" in latency:
        models = {"latency": latency["latency_model"]}
    else:
        models = {latency_metric(name): model
                  for name, model in latency.get("latency_models", {}).items()}
    return latency_targets(models, {metric: get_device(model.lut.device)
                                    for metric, model in models.items()}, args.profiles_dir)


def _print_measurement(summary: dict[str, Any]) -> None:
    """One line per device: how the search's predictions held on the measured front."""
    report = summary.get("front_measurement") or {}
    if report.get("status") != "measured":
        if report:
            print(f"front latency: predicted, not measured ({report.get('reason')})")
        return
    for device, numbers in report["devices"].items():
        before = numbers.get("search_prediction_on_front") or {}
        after = numbers.get("timed_after_a_refit") or numbers.get("refitted_table_on_held_out")
        line = (f"front measured on {device}: {numbers['front_archs_timed']} archs, the "
                f"search's predictions {100 * before.get('within_10pct', 0):.0f} % within "
                f"+-10 % (median bias {before.get('median_bias_pct', 0):+.1f} %)")
        if after:
            line += (f"; after refitting the table on them, {100 * after['within_10pct']:.0f} % "
                     f"of {after['n']} archs timed afterwards")
        print(line)
    if report.get("over_budget"):
        print(f"over the latency budget when measured (left off the front): "
              f"{len(report['over_budget'])} arch(s)")


def _estimator(args: argparse.Namespace, objectives: tuple[str, ...]):
    """The accuracy estimator the arguments name (the default one when none is named)."""
    if "accuracy" not in objectives:
        return None
    if args.supernet and args.estimator:
        raise EdgenasError("--supernet DIR is short for --estimator supernet:DIR; give one")
    return make_estimator(f"supernet:{args.supernet}" if args.supernet else args.estimator,
                          args.data, SEARCH_ESTIMATOR_NAMES)


def _progress(job: SearchJob, objectives: tuple[str, ...]):
    """A bar on a terminal (plain lines in a log) with the front's size and hypervolume."""
    unit = "trained" if isinstance(job, TrainedSearch) else "trial"
    bar = Progress(job.total, "search", unit)

    def callback(study, trial) -> None:  # noqa: ANN001
        trials = job.scored(study)
        size, hv = front_status(trials, objectives)
        bar.update(min(job.total, len(trials)), note=f"front {size}, hv {hv:.4g}")

    return bar, callback


def _recipe(args: argparse.Namespace):
    """The training recipe: ``--recipe FILE`` (a ground truth's, or a JSON object), else
    ``--train-epochs`` on top of the defaults."""
    if args.recipe is None:
        return TrainConfig(epochs=args.train_epochs, seed=args.seed, val_fraction=0.3)
    data = read_json(Path(args.recipe), "give a ground-truth table or a JSON recipe")
    return TrainConfig.from_dict(data.get("recipe", data) if isinstance(data, dict) else data,
                                 args.recipe)


def _job(args: argparse.Namespace, space, objectives: tuple[str, ...], budgets: Budgets
         ) -> tuple[SearchJob, dict[str, Any], tuple[str, ...]]:
    """The search the arguments ask for, its latency arguments and its objectives (with
    ``latency`` expanded per device)."""
    if args.estimator != TRAINED:
        if args.worker:
            raise EdgenasError(f"--worker is for --estimator {TRAINED}; other searches share "
                               "a study by starting the same command again with --storage")
        estimator = _estimator(args, objectives)
        latency, objectives = _latency(args, space, objectives)
        config = SearchConfig(args.strategy, args.trials, args.population, args.seed,
                              parse_weights(args.weights))
        return (estimated_search(space, objectives, budgets, config, estimator=estimator,
                                 **latency), latency, objectives)
    if "accuracy" not in objectives:
        raise EdgenasError(f"--estimator {TRAINED} scores accuracy; keep it among --objectives")
    if not args.data:
        raise EdgenasError(f"--estimator {TRAINED} needs --data (digits, cifar10:DIR or an "
                           "ImageFolder tree) to train candidates on")
    latency, objectives = _latency(args, space, objectives)
    config = SurrogateConfig(args.train_budget, args.initial, args.per_round, args.strategy,
                             args.trials, args.population, args.seed, tuple(args.rungs),
                             args.halving, args.prior, args.prior_as_is)
    return (trained_search(space, objectives, budgets, config, _recipe(args), args.data,
                           Path(args.out), **latency), latency, objectives)


def cmd_search(args: argparse.Namespace) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says it shorter
    space = get_space(args.space)
    objectives = tuple(o.strip() for o in args.objectives.split(","))
    budgets = Budgets(args.max_latency_ms, args.max_memory_mb, args.max_mmacs, args.max_params)
    job, latency, objectives = _job(args, space, objectives, budgets)
    trained = isinstance(job, TrainedSearch)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or default_storage(out)
    bar, callback = _progress(job, objectives)
    start = time.perf_counter()
    try:  # one leader per trained run folder; workers cooperate through the study
        with folder_lock(out, "search leader", name=".leader.lock",
                         enabled=trained and not args.worker):
            if isinstance(job, TrainedSearch):
                study = job.run(storage=storage, study_name=args.study_name, on_trial=callback,
                                worker=args.worker)
            else:
                study = job.run(storage=storage, study_name=args.study_name,
                                resume=args.resume, on_trial=callback)
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    if args.worker:
        print(f"worker done: the leader finished the search in {storage}")
        return
    trials, outcome = job.outcome(study)
    info = {"space": space.name, "device": args.device, "strategy": outcome["strategy"],
            "seed": args.seed, "storage": storage, "study_name": args.study_name,
            "budgets": {k: v for k, v in vars(budgets).items() if v is not None}}
    if trained:
        info.update(recipe=outcome["recipe"], data=args.data, surrogate=outcome["surrogate"],
                    accuracy_source=outcome["accuracy_source"])
    else:
        info.update(supernet=args.supernet, estimator=outcome["estimator"],
                    accuracy_source=outcome["accuracy_source"])
    summary = write_measured_results(out, trials, objectives,
                                     args.per_round if trained else args.population, info,
                                     _targets(args, latency), args.measure_front)
    if trained:
        _print_trained(out, trials, outcome, summary, elapsed)
    else:
        _print_estimated(out, job.evaluator.accuracy_calls, info, summary, elapsed)
    print(f"see {out / 'pareto.png'}, {out / 'pareto.html'}; 'edgenas pareto {out}'")


def _print_trained(out: Path, trials: list[FrozenTrial], outcome: dict[str, Any], summary: dict[str, Any],
                   elapsed: float) -> None:
    rungs = outcome["surrogate"].get("rungs")
    trained = (f"{rungs['archs'][0]} archs scored after {rungs['epochs'][0]} epochs, "
               f"{len(trials)} of them trained to the full {rungs['epochs'][-1]}" if rungs
               else f"{len(trials)} archs trained")
    print(f"{out}: {trained} in {elapsed:.0f} s; "
          f"{len(summary['front'])} on the Pareto front (all trained in full), hypervolume "
          f"{summary['hypervolume']:.4g}")
    print(accuracy_source.describe(outcome["accuracy_source"], summary["front"]))
    _print_measurement(summary)
    final = outcome["surrogate"].get("final")
    if final:
        print(f"surrogate: {final['model']}, cross-validated Kendall tau "
              f"{final['cv_kendall_tau']:.2f} on {final['trained_archs']} trained archs")


def _print_estimated(out: Path, accuracy_calls: int, info: dict[str, Any],
                     summary: dict[str, Any], elapsed: float) -> None:
    rate = 60 * accuracy_calls / elapsed if elapsed else 0.0
    print(f"{out}: {summary['trials']} trials ({summary['distinct_archs']} distinct archs, "
          f"{summary['feasible_trials']} within budget) in {elapsed:.0f} s; "
          f"{len(summary['front'])} on the Pareto front, hypervolume {summary['hypervolume']:.4g}")
    if info["estimator"] is not None:
        print(accuracy_source.describe(info["accuracy_source"], summary["front"]))
    _print_measurement(summary)
    if accuracy_calls:
        print(f"accuracy estimates: {accuracy_calls} ({rate:.1f} archs/min in this worker)")


def cmd_pareto(args: argparse.Namespace) -> None:
    summary = load_front(Path(args.run))
    objectives = tuple(summary["objectives"])
    if args.pick:
        chosen = pick(summary, args.pick, args.max_latency_ms, args.device)
        print(latency_basis(summary), file=sys.stderr)
        print(json.dumps(chosen, indent=2) if args.json else json.dumps(chosen["arch"], indent=2))
        return
    if args.json:
        print(json.dumps(summary["front"], indent=2))
        return
    front = summary["front"]
    extra = [m for m in COST_METRICS if m not in objectives
             and front and m in front[0]]
    # a front trained at several fidelities shows each arch's, beside its accuracy
    fidelity = [accuracy_source.FIDELITY] if any(accuracy_source.FIDELITY in r
                                                 for r in front) else []
    # a measured front: the search's prediction beside each latency (measured where timed)
    predicted = sorted({k for r in front for k in r if k.startswith("predicted_latency_ms")})
    columns = ["#", "trial", *objectives, *extra, *fidelity, *predicted]
    print(f"{len(front)} Pareto-optimal archs of {summary['trials']} trials "
          f"(space {summary['space']}, device {summary['device']}, hypervolume "
          f"{summary['hypervolume']:.4g})")
    if "accuracy" in objectives:
        print(accuracy_source.describe(summary.get("accuracy_source"), front))
    print(latency_basis(summary))
    print("  ".join(f"{c:>10}" for c in columns))
    for i, r in enumerate(front):
        cells = [str(i), str(r["trial"]), *(f"{r[c]:.4g}" for c in (*objectives, *extra)),
                 *(str(r.get(c, "-")) for c in fidelity),
                 *(f"{r[c]:.4g}" if c in r else "-" for c in predicted)]
        print("  ".join(f"{c:>10}" for c in cells))
    _print_exports(load_exports(Path(args.run)))


def _print_exports(picks: dict[str, Any]) -> None:
    """Per exported pick, how its FP16 and INT8 models held against FP32."""
    for name, record in picks.items():
        checks = record.get("precision_checks") or {}
        print(f"{name}: {record.get('bundle')} ({', '.join(record.get('formats', []))})")
        for fmt, check in checks.items():
            print(f"  {describe_check(fmt, check)}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add `search` and `pareto` to the top-level parser."""
    search = commands.add_parser("search", help="multi-objective search for a device")
    search.add_argument("--space", default="cifar", choices=sorted(SPACES),
                        help="search space (default %(default)s)")
    search.add_argument("--device", help="device whose latency table predicts latency; several "
                                         "(A,B): one latency objective per device")
    search.add_argument("--estimator", metavar="NAME",
                        help=f"accuracy estimator: {', '.join(SEARCH_ESTIMATOR_NAMES)} "
                             "(default: predictor on the committed CIFAR-10 ground truth); "
                             f"{TRAINED}: train candidates with one recipe, a surrogate "
                             "choosing them (the front holds trained archs); see "
                             "'edgenas estimate -h'")
    search.add_argument("--supernet", metavar="DIR",
                        help="short for --estimator supernet:DIR")
    search.add_argument("--data", help="images for the zero-cost proxies (naswot, predictor); "
                                       f"--estimator {TRAINED}: the images candidates are "
                                       "trained on")
    search.add_argument("--objectives", default=",".join(DEFAULT_OBJECTIVES),
                        help=f"comma-separated, from {', '.join(OBJECTIVES)} "
                             "(default %(default)s)")
    search.add_argument("--strategy", default="nsga2", choices=STRATEGIES,
                        help="how candidates are proposed: nsga2 (NSGA-II with hierarchical "
                             "crossover and per-level mutation), nsga2-flat (Optuna's own "
                             "NSGA-II variation), weighted-sum (TPE on one sum, see --weights), "
                             "random (default %(default)s)")
    search.add_argument("--weights", help="with --strategy weighted-sum: the lambda of each cost "
                                          "objective, e.g. latency=0.5,memory=0.1, on costs "
                                          "scaled by their median over random archs, accuracy "
                                          "counting 1 (default: 0.25 each)")
    search.add_argument("--trials", type=int, default=100,
                        help="trials in all (--estimator trained: surrogate evaluations per "
                             "round) (default %(default)s)")
    search.add_argument("--population", type=int, default=20,
                        help="NSGA-II population: trials per generation (weighted-sum: random "
                             "trials before TPE starts; --estimator trained: of the search on "
                             "the surrogate) (default %(default)s)")
    search.add_argument("--seed", type=int, default=0,
                        help="seed of the search (--estimator trained: also of the first archs, "
                             "the surrogate and the training); workers sharing a study give "
                             "distinct seeds (default %(default)s)")
    search.add_argument("--max-latency-ms", type=float,
                        help="latency budget in ms, as the --device table predicts it (with "
                             "several devices: on each); archs over it never enter the front, "
                             "nor does a front arch measured over it (default: none)")
    search.add_argument("--max-memory-mb", type=float,
                        help="budget on peak inference memory at FP32, in MB (1e6 bytes) "
                             "(default: none)")
    search.add_argument("--max-mmacs", type=float,
                        help="budget on multiply-accumulates, in millions (default: none)")
    search.add_argument("--max-params", type=float,
                        help="budget on parameters, as a count, e.g. 500000 (default: none)")
    search.add_argument("--out", default="runs/search",
                        help="run directory (default %(default)s)")
    search.add_argument("--storage", help="Optuna storage URL (default: SQLite in --out); "
                                          "postgresql://... to share a study between workers")
    search.add_argument("--study-name", default="edgenas",
                        help="the Optuna study's name in --storage; workers of one search give "
                             "the same name (default %(default)s)")
    search.add_argument("--resume", action="store_true", help="continue a stopped run")
    search.add_argument("--measure-front", action=argparse.BooleanOptionalAction, default=None,
                        help="after the search, time every front arch on the --device as a "
                             "whole network (the table's protocol: interleaved rounds), refit "
                             "the table on them and rank the front on measured latency; "
                             "--no-measure-front keeps predictions (default: measure when the "
                             "device can be reached, else keep predictions and say so)")
    trained = search.add_argument_group("--estimator trained (surrogate-assisted search)")
    trained.add_argument("--train-budget", type=int, default=30,
                         help="archs trained in all (default %(default)s)")
    trained.add_argument("--initial", type=int, default=10,
                         help="archs trained before the first surrogate (default %(default)s)")
    trained.add_argument("--per-round", type=int, default=4,
                         help="candidates trained per round (default %(default)s)")
    trained.add_argument("--train-epochs", type=int, default=4,
                         help="epochs of the training recipe; unused with --recipe "
                              "(default %(default)s)")
    trained.add_argument("--rungs", type=int, nargs="*", default=[], metavar="EPOCHS",
                         help="successive halving: every arch is first trained this many "
                              "epochs of the recipe and scored, and 1 in --halving goes on to "
                              "the next rung, the last to the full recipe (default: none, "
                              "every arch trained in full; 'edgenas run' uses half the recipe)")
    trained.add_argument("--prior", action="store_true",
                         help="fit the accuracy surrogate around the committed predictor (the "
                              "CIFAR-10 ground truth's: worth it with its --recipe), which it "
                              "keeps unless a regressor of the trained archs ranks clearly "
                              "better")
    trained.add_argument("--prior-as-is", action="store_true",
                         help="with --prior, when the search trains with the ground truth's own "
                              "recipe and data: use the prior's values unscaled (a rescale "
                              "fitted on a round's few trained archs reorders the proposals "
                              "of different rounds)")
    trained.add_argument("--halving", type=int, default=2,
                         help="with --rungs: 1 in this many archs of a rung goes on "
                              "(default %(default)s)")
    trained.add_argument("--recipe", metavar="FILE",
                         help="the recipe as JSON, e.g. a ground truth's "
                              "(edgenas/resources/groundtruth/cifar-c10-cpu.json, shipped)")
    trained.add_argument("--worker", action="store_true",
                         help="only train candidates for a leader on the same --storage "
                              "(start the same command without --worker once)")
    search.add_argument("--profiles-dir", default="profiles", help=PROFILES_DIR_HELP)
    search.add_argument("--allow-stale", action="store_true", help=ALLOW_STALE_HELP)
    search.set_defaults(func=cmd_search)

    pareto = commands.add_parser("pareto", help="print a search's Pareto front or pick a point")
    pareto.add_argument("run", help="search run directory")
    pareto.add_argument("--pick", help="knee, best, fastest, or a front index")
    pareto.add_argument("--max-latency-ms", type=float,
                        help="with --pick knee, best or fastest: leave out the front archs "
                             "predicted slower than this many ms before the pick chooses")
    pareto.add_argument("--device", help="with --pick after a search over several devices: "
                                         "whose latency the pick is judged on")
    pareto.add_argument("--json", action="store_true",
                        help="machine-readable output: the front, or with --pick the chosen "
                             "point with its metrics instead of its arch alone")
    pareto.set_defaults(func=cmd_pareto)
