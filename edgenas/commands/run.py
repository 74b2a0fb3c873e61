"""`edgenas run`: the main job (profile if needed, search, train, export, deploy, report)."""

from __future__ import annotations

import argparse


def cmd_run(args: argparse.Namespace) -> None:
    from edgenas.pipeline import RunConfig, run_pipeline
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar says it shorter

    config = RunConfig(
        device=args.device, space=args.space, data=args.data, out=args.out,
        profiles_dir=args.profiles_dir, estimator=args.estimator,
        supernet_epochs=args.supernet_epochs, train_epochs=args.train_epochs,
        train_budget=args.train_budget, trials=args.trials, population=args.population,
        val_limit=args.val_limit, max_latency_ms=args.max_latency_ms,
        max_memory_mb=args.max_memory_mb, seed=args.seed,
        check_table=not args.skip_table_check, table_minutes=args.table_minutes,
        baselines=args.baselines, data_limit=args.data_limit)
    summary = run_pipeline(config)
    for m in summary["models"]:
        print(f"{m['name']:>8}: val. accuracy {100 * m['accuracy_exported']:.1f} %, "
              f"{m['macs'] / 1e6:.2f} M MACs, predicted {m['predicted_ms']:.3f} ms, measured "
              f"{m['measured_ms']:.3f} ms on {args.device} -> {m['bundle']} ({', '.join(m['formats'])})")
    for b in summary["baselines"]:
        print(f"{b['name']:>8}: val. accuracy {100 * b['val_accuracy']:.1f} %, "
              f"{b['macs'] / 1e6:.2f} M MACs, measured {b['measured_ms']:.3f} ms (hand-designed)")
    print(f"report: {args.out}/report.html")


def register(commands: argparse._SubParsersAction) -> None:
    """Add `run`."""
    run = commands.add_parser("run", help="the whole job on one device (embedded default: "
                                          "host-cpu, cifar space, digits data)")
    run.add_argument("--device", default="host-cpu")
    run.add_argument("--space", default="cifar")
    run.add_argument("--data", default="digits")
    run.add_argument("--out", default="runs/main")
    run.add_argument("--profiles-dir", default="profiles")
    run.add_argument("--estimator", choices=("trained", "supernet"), default="trained",
                     help="trained (default): a surrogate-assisted search whose front holds "
                          "trained archs; supernet: a weight-sharing supernet scores every "
                          "trial (worth it with a GPU)")
    run.add_argument("--supernet-epochs", type=int, default=15, help="with --estimator supernet")
    run.add_argument("--train-epochs", type=int, default=2,
                     help="epochs of the one recipe the searched archs and the baselines "
                          "are trained with")
    run.add_argument("--train-budget", type=int, default=14,
                     help="archs the search trains in all")
    run.add_argument("--trials", type=int, default=300,
                     help="inner-search trials per round (supernet: trials in all)")
    run.add_argument("--population", type=int, default=20)
    run.add_argument("--val-limit", type=int, default=200)
    run.add_argument("--max-latency-ms", type=float)
    run.add_argument("--max-memory-mb", type=float)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--table-minutes", type=float, default=1.5,
                     help="minutes of unit timing when the device's table must be measured "
                          "anew (a sample of units, the rest predicted; 'edgenas profile' "
                          "times them all)")
    run.add_argument("--baselines", default="all",
                     help="hand-designed networks trained with the same recipe for comparison: "
                          "all (default), none, or a comma list (resnet-20, resnet-56, "
                          "mobilenetv2-in-space for the cifar space)")
    run.add_argument("--data-limit", type=int, metavar="N",
                     help="train and validate on a class-balanced subset of N images (quick "
                          "trial runs; the default uses them all)")
    run.add_argument("--skip-table-check", action="store_true",
                     help="trust the stored latency table without re-timing 10 of its "
                          "networks first (a table that no longer holds is otherwise "
                          "refitted, or measured anew)")
    run.set_defaults(func=cmd_run)
