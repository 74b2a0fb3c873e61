"""CLI handlers for ``groundtruth build`` and ``groundtruth show``.

Usage::

    edgenas groundtruth build --data cifar10:PATH --out TABLE.json [--space cifar]
        [--archs 60] [--reseed 15] [--epochs 2] [--limit 5000] [--workers 2]
        [--work runs/groundtruth]
    edgenas groundtruth show TABLE.json

``build`` trains a stratified sample of the space (plus its hand-designed baselines) from
scratch with one recipe, each on one thread in one of ``--workers`` processes, and
rewrites TABLE.json after every finished training. Re-running the same command resumes:
finished trainings are kept, an interrupted one continues from its last epoch. Several
machines sharing ``--work`` can run it at once. ``--limit 0`` trains on every image (the
GPU-scale version, with ``--torch-device cuda --workers 1`` and more epochs).
"""

from __future__ import annotations

import argparse
import sys

from edgenas.commands.arguments import add_recipe_arguments
from edgenas.estimate.groundtruth import GroundTruth, build_ground_truth, plan_jobs
from edgenas.progress import Progress
from edgenas.space import SPACES, get_space
from edgenas.train import TrainConfig


def cmd_build(args: argparse.Namespace) -> None:
    space = get_space(args.space)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         weight_decay=args.weight_decay, val_fraction=args.val_fraction,
                         limit=args.limit or None)
    jobs = plan_jobs(space, args.archs, args.reseed, args.sample_seed,
                     not args.no_baselines)
    state: dict[str, Progress] = {}

    def progress(done: int, total: int, eta: float | None) -> None:
        if "bar" not in state:
            state["bar"] = Progress(total, "ground truth", "trainings", initial=done)
        state["bar"].update(done, eta)

    print(f"ground truth: {len(jobs)} trainings ({args.archs} sampled archs, "
          f"{len(jobs) - args.archs - (0 if args.no_baselines else 3)} re-seeded, "
          f"baselines {'off' if args.no_baselines else 'on'}), {args.workers} workers "
          f"x {args.threads} thread(s); table: {args.out}; work: {args.work}",
          file=sys.stderr)
    table = build_ground_truth(space, args.data, jobs, config, args.work, args.out,
                               args.workers, args.threads, args.torch_device, progress)
    if "bar" in state:
        state["bar"].close()
    _print_summary(table)


def cmd_show(args: argparse.Namespace) -> None:
    _print_summary(GroundTruth.load(args.table), verbose=True)


def _print_summary(table, verbose: bool = False) -> None:  # type: ignore[no-untyped-def]
    finished = table.finished
    print(f"{table.source}: space {table.space}, {len(finished)}/{len(table.entries)} archs "
          f"trained; data {table.data.get('spec')} (limit {table.data.get('limit')}, "
          f"validation {table.data.get('split', {}).get('val_size')} images carved from "
          "the training images)")
    if finished:
        accs = [100 * a for a in table.accuracies()]
        print(f"accuracy: {min(accs):.1f} .. {max(accs):.1f} %")
    ceiling = table.seed_agreement()
    if ceiling is not None:
        print(f"seed-to-seed Kendall tau {ceiling.kendall_tau:.3f} "
              f"(95 % CI {ceiling.kendall_ci[0]:.2f} .. {ceiling.kendall_ci[1]:.2f}, "
              f"{ceiling.n} archs trained twice)")
    if verbose:
        for entry in finished:
            seeds = ", ".join(f"s{s} {100 * a:.1f}" for s, a in sorted(entry.accuracy.items()))
            print(f"  {entry.id:<22} {entry.stratum:<14} {seeds}")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``groundtruth build|show`` to the ``edgenas`` command line."""
    parser = subparsers.add_parser("groundtruth", help="stand-alone accuracy ground truth")
    commands = parser.add_subparsers(dest="groundtruth_command", required=True)
    build = commands.add_parser("build", help="train a stratified sample of archs from scratch",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--space", default="cifar", choices=sorted(SPACES),
                       help="search space to sample archs from (default %(default)s)")
    build.add_argument("--data", required=True,
                       help="digits | cifar10:PATH | folder:PATH | PATH (ImageFolder)")
    build.add_argument("--out", required=True, help="the table (JSON), rewritten as it grows")
    build.add_argument("--work", default="runs/groundtruth",
                       help="checkpoints, queue and worker logs (resumed if it exists) "
                            "(default %(default)s)")
    build.add_argument("--archs", type=int, default=60,
                       help="archs sampled from the space, stratified by op and balanced "
                            "over the macro settings (default %(default)s)")
    build.add_argument("--reseed", type=int, default=15,
                       help="archs trained again with a second seed (seed-to-seed ceiling) "
                            "(default %(default)s)")
    build.add_argument("--no-baselines", action="store_true",
                       help="leave out the space's hand-designed baselines")
    build.add_argument("--sample-seed", type=int, default=0,
                       help="seed of the stratified sample: another seed, other archs "
                            "(default %(default)s)")
    build.add_argument("--epochs", type=int, default=2,
                       help="epochs of the one recipe every arch is trained with "
                            "(default %(default)s)")
    build.add_argument("--limit", type=int, default=5000,
                       help="train on a class-balanced subset of this many images; 0: every "
                            "image (default %(default)s)")
    add_recipe_arguments(build, val_fraction=0.2)
    build.add_argument("--workers", type=int, default=2,
                       help="training processes, each training one arch at a time "
                            "(default %(default)s)")
    build.add_argument("--threads", type=int, default=1,
                       help="torch threads per worker (default %(default)s)")
    build.add_argument("--torch-device", default="cpu",
                       help="where to train: cpu, cuda, cuda:1 (default %(default)s)")
    build.set_defaults(func=cmd_build)
    show = commands.add_parser("show", help="summarise a ground-truth table")
    show.add_argument("table", help="a ground-truth table (JSON) written by 'groundtruth "
                                    "build'")
    show.set_defaults(func=cmd_show)
