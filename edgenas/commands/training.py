"""CLI handlers for training: ``supernet train`` and ``train``.

Usage::

    edgenas supernet train --space cifar --data DATA --epochs N --out DIR
                           [--sampling sandwich|fair] [--batch-size 64] [--lr 0.05]
                           [--limit N] [--seed 0]
    edgenas train ARCH --data DATA --epochs N --out DIR
    edgenas train ARCH --init-from SUPERNET_DIR --epochs N --out DIR   (DATA: the supernet's)

ARCH is an arch preset name or an arch JSON file. DATA is one of

* ``digits``         scikit-learn's embedded handwritten digits (no download);
* ``cifar10:PATH``   CIFAR-10 train set: torchvision's folder (``PATH/cifar-10-batches-py``)
  or a JPEG tree ``PATH/train/<class>/*.jpg``; add ``--download`` to fetch it to PATH;
* ``folder:PATH`` or ``PATH``  any ImageFolder tree ``PATH/<class>/*.jpg``.

Validation images are a seeded split of DATA (``--val-fraction``, default 0.1); there is
no separate test split. Re-running a killed command with the same arguments resumes from
the last finished epoch in ``--out``. Under ``torchrun`` the same command trains with
distributed data parallelism.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from edgenas.commands.arguments import add_recipe_arguments
from edgenas.data import open_dataset
from edgenas.errors import DataError
from edgenas.space import SPACES, get_space
from edgenas.space.presets import resolve_arch
from edgenas.train import TrainConfig, place, train_arch, train_supernet
from edgenas.train.checkpoint import read_run
from edgenas.train.subnet_sampling import SAMPLINGS


def _add_common(parser: argparse.ArgumentParser, data_required: bool = True) -> None:
    parser.add_argument("--data", required=data_required,
                        help="digits | cifar10:PATH | folder:PATH | PATH (ImageFolder)"
                             + ("" if data_required else
                                "; default with --init-from: the supernet run's data"))
    parser.add_argument("--epochs", type=int, required=True,
                        help="passes over the training images; the learning rate reaches 0 "
                             "at the last")
    parser.add_argument("--out", required=True, help="run directory (resumed if it exists)")
    add_recipe_arguments(parser, val_fraction=0.1)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights, the batch order, the augmentation "
                             "and the train/validation split (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="train on a class-balanced subset of this many images (default: "
                             "every image)")
    parser.add_argument("--val-limit", type=int, default=None,
                        help="score on the first N validation images only (default: all of "
                             "them)")
    parser.add_argument("--torch-device", default=None,
                        help="where to train: cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR-10 to the cifar10:PATH folder (needs network)")


def _config(args: argparse.Namespace, **extra: Any) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       weight_decay=args.weight_decay, seed=args.seed,
                       val_fraction=args.val_fraction, limit=args.limit,
                       val_limit=args.val_limit, **extra)


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    if args.data is None:
        if getattr(args, "init_from", None) is None:
            raise DataError("--data is needed unless --init-from names a supernet run")
        args.data = read_run(Path(args.init_from))["data"]["spec"]

    return open_dataset(args.data, download=args.download, cache_dir=args.out)


def cmd_supernet_train(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = _config(args, num_random=args.num_random, calib_batches=args.calib_batches,
                     sampling=args.sampling)
    result = train_supernet(get_space(args.space), args.data, args.out, config,
                            data=_open(args), placement=place(args.torch_device))
    _print_result(result, args.out)


def cmd_train(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arch = resolve_arch(args.arch)
    result = train_arch(arch, args.data, args.out, _config(args), init_from=args.init_from,
                        data=_open(args), placement=place(args.torch_device))
    _print_result(result, args.out)


def _print_result(result: dict[str, Any], out: str) -> None:
    if not result.get("history"):
        return
    last = result["history"][-1]
    print(f"epoch {last['epoch']}: loss {last['loss']:.4f}, "
          f"{last['images_per_s']:.1f} images/s")
    names = {"val_accuracy": "validation accuracy",
             "val_accuracy_largest": "validation accuracy (largest subnet)",
             "val_accuracy_smallest": "validation accuracy (smallest subnet)"}
    for key, name in names.items():
        if key in result:
            print(f"{name} {100 * result[key]:.2f} %")
    print(f"split: {json.dumps(result.get('split', {}), sort_keys=True)}")
    print(f"run directory: {out}")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``supernet train`` and ``train`` to the ``edgenas`` command line."""
    supernet = subparsers.add_parser("supernet", help="train weight-sharing supernets")
    supernet_cmds = supernet.add_subparsers(dest="supernet_command", required=True)
    train_super = supernet_cmds.add_parser(
        "train", help="supernet training: sandwich rule with in-place distillation, "
                      "or FairNAS's strict fairness",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train_super.add_argument("--space", required=True, choices=sorted(SPACES),
                             help="search space whose every arch the supernet holds")
    _add_common(train_super)
    train_super.add_argument("--sampling", choices=SAMPLINGS, default="sandwich",
                             help="paths per step: sandwich (largest, smallest, --num-random "
                                  "random; distillation) or fair (FairNAS: every op of every "
                                  "block slot once, all on the labels) (default %(default)s)")
    train_super.add_argument("--num-random", type=int, default=2,
                             help="random subnets per step besides largest and smallest "
                                  "(sandwich only) (default %(default)s)")
    train_super.add_argument("--calib-batches", type=int, default=4,
                             help="batches of 256 training images that recalibrate batch norm "
                                  "before a subnet is scored (default %(default)s)")
    train_super.set_defaults(func=cmd_supernet_train)

    train = subparsers.add_parser(
        "train", help="train one arch stand-alone (from scratch or from a supernet)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("arch", help="arch preset name or arch JSON file")
    _add_common(train, data_required=False)
    train.add_argument("--init-from", default=None,
                       help="supernet run directory whose weights the arch starts from; its "
                            "train/validation split is kept (--val-fraction and --limit are "
                            "then the supernet run's), so validation images stay unseen")
    train.set_defaults(func=cmd_train)
