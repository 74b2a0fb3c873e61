"""`edgenas run`: the main job (profile if needed, search, train, export, deploy, report)."""

from __future__ import annotations

import argparse
from typing import Any

import optuna

from edgenas.pipeline import RunConfig, run_pipeline


def cmd_run(args: argparse.Namespace) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar says it shorter

    config = RunConfig(
        device=args.device, space=args.space, data=args.data, out=args.out,
        profiles_dir=args.profiles_dir, estimator=args.estimator,
        supernet_epochs=args.supernet_epochs, train_epochs=args.train_epochs,
        train_budget=args.train_budget, train_warmup_epochs=args.train_warmup_epochs,
        rungs=tuple(args.rungs), halving=args.halving,
        trials=args.trials, population=args.population,
        val_limit=args.val_limit, max_latency_ms=args.max_latency_ms,
        max_memory_mb=args.max_memory_mb, seed=args.seed,
        check_table=not args.skip_table_check, table_minutes=args.table_minutes,
        baselines=args.baselines, data_limit=args.data_limit)
    summary = run_pipeline(config)
    for line in summary_lines(summary, args.device):
        print(line)
    print(f"report: {args.out}/report.html")


def summary_lines(summary: dict[str, Any], device: str) -> list[str]:
    """What the main job tells the user at the end: each exported pick (and a pick that is
    the same arch as another), then each baseline, or why it has no accuracy to compare."""
    lines = []
    surrogate = (summary.get("search") or {}).get("surrogate") or {}
    rungs = surrogate.get("rungs")
    if rungs:
        lines.append(f"   front: {summary['front_size']} archs, each trained to the full "
                     f"{rungs['epochs'][-1]} epochs ({rungs['archs'][-1]} of the "
                     f"{rungs['archs'][0]} scored after {rungs['epochs'][0]} went on)")
    elif "front_size" in summary:
        lines.append(f"   front: {summary['front_size']} trained archs")
    for m in summary["models"]:
        lines.append(f"{m['name']:>8}: val. accuracy {100 * m['accuracy_exported']:.1f} %, "
                     f"{m['macs'] / 1e6:.2f} M MACs, predicted {m['predicted_ms']:.3f} ms, "
                     f"measured {m['measured_ms']:.3f} ms on {device} -> {m['bundle']} "
                     f"({', '.join(m['formats'])})")
    for name, same in summary.get("same_picks", {}).items():
        lines.append(f"{name:>8}: same arch as {same} (exported once, as {same})")
    for b in summary["baselines"]:
        costs = f"{b['macs'] / 1e6:.2f} M MACs, measured {b['measured_ms']:.3f} ms"
        if b["converged"]:
            lines.append(f"{b['name']:>8}: val. accuracy {100 * b['val_accuracy']:.1f} %, "
                         f"{costs} (hand-designed)")
        else:
            lines.append(f"{b['name']:>8}: {b['verdict']}; {costs} (hand-designed)")
    return lines


def register(commands: argparse._SubParsersAction) -> None:
    """Add `run`."""
    run = commands.add_parser("run", help="the whole job on one device (embedded default: "
                                          "host-cpu, cifar space, digits data)")
    run.add_argument("--device", default="host-cpu",
                     help="device to search for and deploy on: a name from devices/ or a "
                          "descriptor .toml (default %(default)s)")
    run.add_argument("--space", default="cifar",
                     help="search space: cifar or imagenet (default %(default)s)")
    run.add_argument("--data", default="digits",
                     help="images to train and validate on: digits (built in), cifar10:DIR "
                          "or an ImageFolder tree (default %(default)s)")
    run.add_argument("--out", default="runs/main",
                     help="run directory; re-running the same command there resumes it "
                          "(default %(default)s)")
    run.add_argument("--profiles-dir", default="profiles",
                     help="where latency tables are read and written (default %(default)s)")
    run.add_argument("--estimator", choices=("trained", "supernet"), default="trained",
                     help="trained: a surrogate-assisted search whose front holds trained "
                          "archs; supernet: a weight-sharing supernet scores every trial "
                          "(worth it with a GPU) (default %(default)s)")
    run.add_argument("--supernet-epochs", type=int, default=15,
                     help="with --estimator supernet: epochs of supernet training "
                          "(default %(default)s)")
    run.add_argument("--train-epochs", type=int, default=2,
                     help="epochs of the one recipe the searched archs and the baselines "
                          "are trained with (default %(default)s)")
    run.add_argument("--train-warmup-epochs", type=float, default=0.5, metavar="EPOCHS",
                     help="the recipe's linear learning-rate warm-up, in epochs (fractions "
                          "allowed), before the cosine decay; 0 for none, below "
                          "--train-epochs (default %(default)s)")
    run.add_argument("--train-budget", type=int, default=24,
                     help="archs the search trains in all (with --rungs: each at least to "
                          "the first rung; default %(default)s)")
    run.add_argument("--rungs", type=int, nargs="*", default=[], metavar="EPOCHS",
                     help="successive halving: every arch is first trained this many epochs "
                          "of the recipe and scored, and 1 in --halving goes on to the next "
                          "rung, the last to the full recipe (default: none, every arch "
                          "trained in full; with the default 2-epoch recipe an arch scored "
                          "after 1 epoch is mostly at chance)")
    run.add_argument("--halving", type=int, default=2,
                     help="with rungs: 1 in this many archs of a rung goes on to the next "
                          "(default %(default)s)")
    run.add_argument("--trials", type=int, default=300,
                     help="inner-search trials per round (supernet: trials in all; "
                          "default %(default)s)")
    run.add_argument("--population", type=int, default=20,
                     help="NSGA-II population of the search (default %(default)s)")
    run.add_argument("--val-limit", type=int, default=200,
                     help="with --estimator supernet: validation images each trial is scored "
                          "on (default %(default)s)")
    run.add_argument("--max-latency-ms", type=float,
                     help="latency budget in ms on the device, as its latency table "
                          "predicts it: the front and the picks hold only archs within it "
                          "(default: none)")
    run.add_argument("--max-memory-mb", type=float,
                     help="budget on peak inference memory at FP32, in MB (1e6 bytes), as "
                          "the latency budget (default: none)")
    run.add_argument("--seed", type=int, default=0,
                     help="seed of the search, the split and the training "
                          "(default %(default)s)")
    run.add_argument("--table-minutes", type=float, default=1.5,
                     help="minutes of unit timing when the device's table must be measured "
                          "anew (a sample of units, the rest predicted; 'edgenas profile' "
                          "times them all) (default %(default)s)")
    run.add_argument("--baselines", default="all",
                     help="hand-designed networks trained with the same recipe for comparison: "
                          "all, none, or a comma list (resnet-20, resnet-56, "
                          "mobilenetv2-in-space for the cifar space) (default %(default)s)")
    run.add_argument("--data-limit", type=int, metavar="N",
                     help="train and validate on a class-balanced subset of N images (quick "
                          "trial runs; the default uses them all)")
    run.add_argument("--skip-table-check", action="store_true",
                     help="trust the stored latency table without re-timing 10 of its "
                          "networks first (a table that no longer holds is otherwise "
                          "refitted, or measured anew)")
    run.set_defaults(func=cmd_run)
