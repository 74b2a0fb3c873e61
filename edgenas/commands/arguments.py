"""Argument types shared by the commands: a count is checked where it is typed, so that a
zero chunk or a negative number of networks is one usage line, not a traceback or a
profile that runs for minutes and then fails."""

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
