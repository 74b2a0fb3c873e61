"""How well a rung of successive halving ranks archs as the full recipe does.

Successive halving (`edgenas search --estimator trained --rungs`, `edgenas run --rungs`)
scores every arch after the first epochs of the recipe's own schedule and trains only the
better share in full. That pays only when the early score ranks archs like the full one.
This trains ``--archs`` archs spread over the space's MACs, each stopped at every rung and
scored, then continued to the full recipe, and prints per rung: the Kendall tau between
the rung's scores and the full recipe's, the share of archs still at chance (below 1.5 x
chance), and the training time a rung costs against the full recipe.

    .venv/bin/python -m benchmarks bench_rungs --data digits --epochs 2 --rungs 1 --lr 0.1 \\
        --json runs/bench_rungs.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgenas.cost.count import count
from edgenas.profile.ranking import kendall_tau
from edgenas.jsonio import write_json_atomic
from edgenas.train.loop import TrainConfig
from edgenas.train.standalone import recipe_trainer
from benchmarks.harness import command_line, spread_archs


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--data", default="digits", help="images to train on (default digits)")
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--archs", type=int, default=12, help="archs to train (default 12)")
    parser.add_argument("--epochs", type=int, default=2, help="the full recipe's epochs")
    parser.add_argument("--rungs", type=int, nargs="+", default=[1],
                        help="epochs at which each arch is scored before the full recipe")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_rungs", help="training runs go here")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if any(not 1 <= r < args.epochs for r in args.rungs):
        parser.error(f"--rungs: each between 1 and {args.epochs - 1} (below --epochs)")
    recipe = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr, seed=args.seed,
                         val_fraction=0.3, warmup_epochs=args.warmup)
    folder = Path(args.out) / f"lr{args.lr:g}-warmup{args.warmup:g}-e{args.epochs}"
    train = recipe_trainer(args.data, folder, recipe)
    archs = spread_archs(args.space, args.archs, args.seed)
    rows = []
    for i, arch in enumerate(archs, 1):
        scores, seconds = {}, {}
        for rung in [*sorted(args.rungs), None]:
            started = time.perf_counter()
            scores[rung or args.epochs] = train(arch, epochs=rung)["accuracy"]
            seconds[rung or args.epochs] = time.perf_counter() - started
        rows.append({"arch": arch.to_json(), "macs": count(arch).macs, "scores": scores,
                     "seconds": seconds})
        print(f"arch {i}/{len(archs)}: {count(arch).macs / 1e6:.1f} M MACs, "
              + ", ".join(f"epoch {e}: {100 * a:.1f} %" for e, a in scores.items()), flush=True)
    chance = 1.0 / archs[0].num_classes
    full = np.array([r["scores"][args.epochs] for r in rows])
    table = []
    for rung in sorted(args.rungs):
        early = np.array([r["scores"][rung] for r in rows])
        # a rung's cost: the epochs up to it (a continued run pays the rest only if promoted)
        table.append({"rung": rung, "kendall_tau_vs_full": kendall_tau(full, early, undefined=0.0),
                      "at_chance": float(np.mean(early < 1.5 * chance)),
                      "cost_share": rung / args.epochs})
    print(f"\n{len(rows)} archs, {args.data}, {args.epochs} epochs, lr {args.lr:g}, "
          f"warm-up {args.warmup:g} epochs; full-recipe accuracy {100 * full.min():.1f}-"
          f"{100 * full.max():.1f} %")
    print("| rung (epochs) | Kendall tau vs full | archs still at chance | cost of the rung |")
    print("| --- | --- | --- | --- |")
    for t in table:
        print(f"| {t['rung']} of {args.epochs} | {t['kendall_tau_vs_full']:.2f} | "
              f"{100 * t['at_chance']:.0f} % | {100 * t['cost_share']:.0f} % |")
    if args.json:
        write_json_atomic({"settings": vars(args), "rows": rows, "rungs": table},
                          Path(args.json))
