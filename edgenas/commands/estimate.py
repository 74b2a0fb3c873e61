"""CLI handler for ``edgenas estimate``: score archs with one accuracy estimator.

Usage::

    edgenas estimate ARCH [ARCH ...] [--estimator NAME] [--data DATA] [--json]

ARCH is a preset name or an arch JSON file. NAME is one of ``params``, ``macs``,
``naswot``, ``synflow``, ``supernet:DIR``, ``predictor:TABLE`` (default: ``predictor`` on
the committed CIFAR-10 ground truth). Scores are "higher is better"; only their order is
meaningful across estimators, except the supernet's and the predictor's, which are
accuracies (0..1).
"""

from __future__ import annotations

import argparse
import json

from edgenas.estimate.estimators import make_estimator
from edgenas.estimate.names import ESTIMATOR_NAMES
from edgenas.space.presets import resolve_arch


def cmd_estimate(args: argparse.Namespace) -> None:
    archs = [resolve_arch(spec) for spec in args.archs]
    estimator = make_estimator(args.estimator, args.data)
    scores = estimator.score_many(archs)
    if args.json:
        print(json.dumps([{"arch": spec, "score": score, "seconds": seconds}
                          for spec, score, seconds in zip(args.archs, scores,
                                                          estimator.seconds[-len(archs):])],
                         indent=2))
        return
    info = estimator.describe()
    print(f"estimator {estimator.name}" + (
        f" ({info['model']}, cross-validated Kendall tau {info['cv_kendall_tau']:.3f} on "
        f"{info['trained_archs']} trained archs)" if "model" in info else ""))
    width = max(len(spec) for spec in args.archs)
    for spec, score in zip(args.archs, scores):
        print(f"  {spec:<{width}}  {score:.6g}")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``estimate`` to the ``edgenas`` command line."""
    parser = subparsers.add_parser("estimate", help="score archs with an accuracy estimator",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archs", nargs="+", metavar="ARCH",
                        help="arch preset name or arch JSON file")
    parser.add_argument("--estimator", default=None,
                        help=f"{' | '.join(ESTIMATOR_NAMES)} (default: predictor)")
    parser.add_argument("--data", default=None,
                        help="images for naswot (default: digits) and the predictor's "
                             "zero-cost features (default: the table's data)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_estimate)
