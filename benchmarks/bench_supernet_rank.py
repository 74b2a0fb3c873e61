"""Benchmark: does the supernet rank archs like stand-alone training does? (Kendall tau)

    python -m benchmarks bench_supernet_rank --data cifar10:../shared/data/cifar10-jpeg \
        --limit 5000 --supernet-epochs 10 --arch-epochs 10 --archs 8 --json runs/rank.json

Trains a supernet of the `cifar` space (sandwich rule, in-place distillation) on the
training part of a seeded split, samples ``--archs`` archs, trains each stand-alone from
scratch with the same data and epochs, and compares the supernet's estimate (inherited
weights, BN recalibrated) with the stand-alone validation accuracy. Both are measured on
the same validation split carved from the training images (CIFAR-10 has no test split
here). Also reports the supernet's training throughput. Run directories are resumable.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch

from edgenas.jsonio import write_json_atomic
from edgenas.profile.ranking import kendall_tau
from edgenas.space import get_space
from edgenas.train.loop import TrainConfig
from edgenas.train.standalone import train_arch
from edgenas.train.supernet_training import supernet_evaluator, train_supernet
from benchmarks.harness import command_line


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--data", default=os.environ.get("EDGENAS_CIFAR10"),
                        required="EDGENAS_CIFAR10" not in os.environ,
                        help="the CIFAR-10 ImageFolder tree (cifar10:PATH or a folder; "
                             "default: $EDGENAS_CIFAR10)")
    parser.add_argument("--limit", type=int, default=5000, help="class-balanced training subset (0: all)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--supernet-epochs", type=int, default=10)
    parser.add_argument("--arch-epochs", type=int, default=10)
    parser.add_argument("--archs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", default="runs/bench_rank")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    space = get_space("cifar")
    out = Path(args.out)
    common = dict(batch_size=args.batch_size, limit=args.limit or None, val_fraction=args.val_fraction)
    started = time.perf_counter()
    supernet = train_supernet(space, args.data, out / "supernet",
                              TrainConfig(epochs=args.supernet_epochs, **common))
    supernet_seconds = time.perf_counter() - started
    evaluator = supernet_evaluator(out / "supernet")
    rows = []
    for i in range(args.archs):
        arch = space.sample(5000 + i)
        estimate = evaluator.evaluate(arch)
        result = train_arch(arch, args.data, out / f"arch{i}", TrainConfig(epochs=args.arch_epochs, **common))
        rows.append({"arch": i, "supernet_estimate": estimate, "standalone": result["val_accuracy"],
                     "mmacs": None})
        print(f"arch {i}: supernet {100 * estimate:.2f} %  stand-alone {100 * result['val_accuracy']:.2f} %",
              flush=True)
    tau = kendall_tau([r["supernet_estimate"] for r in rows], [r["standalone"] for r in rows])
    throughput = statistics.mean(h["images_per_s"] for h in supernet["history"])
    results = {"data": args.data, "limit": args.limit, "val_fraction": args.val_fraction,
               "split": supernet["split"], "supernet_epochs": args.supernet_epochs,
               "arch_epochs": args.arch_epochs, "kendall_tau": tau,
               "supernet_images_per_s": throughput, "supernet_train_seconds": supernet_seconds,
               "seconds_per_evaluate": statistics.mean(evaluator.seconds), "rows": rows,
               "threads": torch.get_num_threads()}
    print(f"\n{'arch':>5} {'supernet':>9} {'alone':>9}")
    for r in rows:
        print(f"{r['arch']:>5} {100 * r['supernet_estimate']:>8.2f}% {100 * r['standalone']:>8.2f}%")
    print(f"Kendall tau {tau:.3f} over {len(rows)} archs; supernet training {throughput:.1f} images/s "
          f"({torch.get_num_threads()} thread(s)); evaluate {results['seconds_per_evaluate']:.2f} s/arch")
    if args.json:
        write_json_atomic(results, args.json)
