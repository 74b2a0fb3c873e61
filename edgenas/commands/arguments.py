"""Argument types and options shared by the commands: a count is checked where it is
typed, so that a zero chunk or a negative number of networks is one usage line, not a
traceback or a profile that runs for minutes and then fails; an option several commands
take is described once, so that its help says the same everywhere."""

from __future__ import annotations

import argparse
from typing import Callable


def whole_number(minimum: int = 1) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: give a whole number >= {minimum}")
        return value

    parse.__name__ = "whole_number"  # argparse names the type in its messages
    return parse


# Help shared by the commands that take the same option, so that it means one thing
# everywhere; argparse fills in each command's own %(default)s.
PROFILES_DIR_HELP = ("folder of latency tables, one DIR/DEVICE/SPACE.json each "
                     "(default %(default)s)")
ALLOW_STALE_HELP = ("use a latency table even if it no longer matches the device (its runtime "
                    "settings, the host's fingerprint or the space changed)")


def add_recipe_arguments(parser: argparse.ArgumentParser, val_fraction: float) -> None:
    """Add the training recipe's optimizer and split options: they mean the same for every
    command that trains, and only the validation share's default differs between them."""
    parser.add_argument("--batch-size", type=int, default=64,
                        help="images per optimizer step (under torchrun: per process) "
                             "(default %(default)s)")
    parser.add_argument("--lr", type=float, default=0.05,
                        help="learning rate of SGD with Nesterov momentum 0.9, decayed to 0 "
                             "on a cosine schedule (default %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=4e-5,
                        help="L2 weight decay of the convolution and linear weights (none on "
                             "batch norm and biases) (default %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=val_fraction,
                        help="fraction of every class's images held out for validation, a "
                             "seeded split of the training images (default %(default)s)")
