"""Every accuracy estimator scored against the stand-alone ground truth.

    python -m benchmarks bench_estimators --table edgenas/resources/groundtruth/cifar-c10-cpu.json \
        [--supernet runs/supernet-c10 ...] [--folds 5] [--json runs/bench_estimators.json]

It also writes the zero-cost scores of the table's archs beside the table
(``*.zero-cost.json``), so that the default predictor fits in seconds on a fresh clone.

For each estimator: Kendall tau and Spearman rho against the table's accuracies (mean over
the seeds an arch was trained with), with bootstrap 95 % intervals, and seconds per arch.
The predictor is scored only on archs it was not fitted on: an outer k-fold, inside which
the predictor chooses its regressor by its own (inner) cross-validation. The last line is
the ceiling: how well one training seed ranks the archs of another.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from edgenas.estimate.estimators import (DEFAULT_TABLE, MacsEstimator, NaswotEstimator,
                                         ParamsEstimator, PredictorEstimator, ProxyStore,
                                         SupernetEstimator, SynflowEstimator, proxy_batch)
from edgenas.estimate.proxy_data import normalise_batch
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.estimate.predictor import folds as make_folds
from edgenas.estimate.rank import agreement
from edgenas.jsonio import write_json_atomic
from benchmarks.harness import command_line


def score_all(estimator, archs) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    scores = estimator.score_many(archs)
    return scores, (time.perf_counter() - started) / len(archs)


def cross_validated_predictor(table_path: str, n: int, k: int, cache: dict,
                              use_proxies: bool = True
                              ) -> tuple[np.ndarray, float, dict]:  # type: ignore[type-arg]
    """Out-of-fold predictions (outer k-fold), the seconds per prediction, the chosen models."""
    table = GroundTruth.load(table_path)
    archs = table.archs()
    predictions = np.empty(n)
    chosen: dict[str, int] = {}
    seconds: list[float] = []
    for test in make_folds(n, k, seed=1):
        train = sorted(set(range(n)) - set(test.tolist()))
        estimator = PredictorEstimator(table_path, entries=train, proxy_cache=cache,
                                       use_proxies=use_proxies)
        chosen[estimator.predictor.name] = chosen.get(estimator.predictor.name, 0) + 1
        for i in test:
            predictions[i] = estimator.score(archs[i])
        seconds.extend(estimator.seconds)
    return predictions, float(np.mean(seconds)), chosen


def main(argv: list[str] | None = None) -> int:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--supernet", nargs="*", default=[], help="trained supernet run dirs")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--data", help="zero-cost batch from this dataset instead of the "
                                       "images stored with the table")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)

    table = GroundTruth.load(args.table)
    archs, truth = table.archs(), table.accuracies()
    stored = table.proxy_images()
    batch = proxy_batch(args.data) if args.data or stored is None else normalise_batch(stored)
    print(f"{args.table}: {len(archs)} trained archs, accuracy "
          f"{100 * min(truth):.1f} .. {100 * max(truth):.1f} % "
          f"(validation split carved from the training images)", file=sys.stderr)
    rows = []
    cache: dict[str, list[float]] = {}
    scored: dict[str, list[float]] = {}
    estimators = [ParamsEstimator(), MacsEstimator(), NaswotEstimator(batch),
                  SynflowEstimator(), *(SupernetEstimator(d) for d in args.supernet)]
    for estimator in estimators:
        scores, seconds = score_all(estimator, archs)
        scored[estimator.name] = scores
        rows.append({"estimator": estimator.name, "seconds_per_arch": seconds,
                     **agreement(truth, scores).to_dict()})
        print(f"  {estimator.name}: tau {rows[-1]['kendall_tau']:.3f}", file=sys.stderr)
    for arch, naswot, synflow in zip(archs, scored["naswot"], scored["synflow"]):
        cache[arch.to_json()] = [naswot, synflow]
    if args.data is None:   # the table's own batch: commit these beside the table
        ProxyStore(batch, 0).write_beside(Path(args.table), cache)
    proxy_seconds = sum(r["seconds_per_arch"] for r in rows
                        if r["estimator"] in ("naswot", "synflow"))
    for use_proxies, label in ((True, "predictor"), (False, "predictor, arch features only")):
        predictions, seconds, chosen = cross_validated_predictor(
            args.table, len(archs), args.folds, cache, use_proxies)
        rows.append({"estimator": f"{label} ({args.folds}-fold, held-out)",
                     "seconds_per_arch": seconds + (proxy_seconds if use_proxies else 0.0),
                     "chosen_models": chosen,
                     "mean_abs_error": float(np.mean(np.abs(predictions - np.asarray(truth)))),
                     **agreement(truth, predictions.tolist()).to_dict()})
        print(f"  {label}: tau {rows[-1]['kendall_tau']:.3f} ({chosen})", file=sys.stderr)
    ceiling = table.seed_agreement()
    if ceiling is not None:
        rows.append({"estimator": "ceiling: seed 0 vs seed 1", "seconds_per_arch": None,
                     **ceiling.to_dict()})

    print(f"{'estimator':<44} {'Kendall tau [95 % CI]':>24} {'Spearman rho [95 % CI]':>24} "
          f"{'s/arch':>8} {'n':>4}")
    for row in rows:
        tau = f"{row['kendall_tau']:.3f} [{row['kendall_ci'][0]:.2f}, {row['kendall_ci'][1]:.2f}]"
        rho = (f"{row['spearman_rho']:.3f} [{row['spearman_ci'][0]:.2f}, "
               f"{row['spearman_ci'][1]:.2f}]")
        secs = "-" if row["seconds_per_arch"] is None else f"{row['seconds_per_arch']:.3f}"
        print(f"{row['estimator']:<44} {tau:>24} {rho:>24} {secs:>8} {row['n']:>4}")
    if args.markdown:
        print("\n| estimator | Kendall tau [95 % CI] | Spearman rho [95 % CI] | s / arch | archs |")
        print("| --- | --- | --- | --- | --- |")
        for row in rows:
            secs = "-" if row["seconds_per_arch"] is None else f"{row['seconds_per_arch']:.3g}"
            print(f"| {row['estimator']} | {row['kendall_tau']:.3f} [{row['kendall_ci'][0]:.2f}, "
                  f"{row['kendall_ci'][1]:.2f}] | {row['spearman_rho']:.3f} "
                  f"[{row['spearman_ci'][0]:.2f}, {row['spearman_ci'][1]:.2f}] | {secs} | "
                  f"{row['n']} |")
    if args.json:
        write_json_atomic({"table": args.table, "archs": len(archs), "rows": rows}, args.json)
    return 0
