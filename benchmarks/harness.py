"""What every benchmark shares: its command line, the table it reads, how its record is
written, and archs spread over a space's MACs.

A benchmark is a module of this package with a ``main(argv)``; ``python -m benchmarks NAME
[ARGS]`` runs it (``__main__``). Its parser comes from `command_line`, so that its
``--help`` names that one way to run it. Its record (``--json``) is written with
`edgenas.jsonio.write_json_atomic`: a benchmark killed while writing leaves the previous
record whole.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgenas.cost.count import count
from edgenas.space import Arch, get_space


def summary(doc: str | None) -> str:
    """What a benchmark measures: the first paragraph of its module docstring, on one line."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def command_line(doc: str | None, module_file: str) -> argparse.ArgumentParser:
    """A benchmark's argument parser: its `summary` as the description, ``python -m
    benchmarks NAME`` as the program."""
    return argparse.ArgumentParser(prog=f"python -m benchmarks {Path(module_file).stem}",
                                   description=summary(doc))


def table_arguments(parser: argparse.ArgumentParser, device: str | None = "host-cpu") -> None:
    """``--device``, ``--space`` and ``--profiles-dir``: whose latency table a benchmark reads
    (``device=None``: the device must be named)."""
    parser.add_argument("--device", default=device, required=device is None)
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--profiles-dir", default="profiles")


def spread_archs(space_name: str, n: int, seed: int) -> list[Arch]:
    """``n`` archs at evenly spaced MACs quantiles of 20 n random samples."""
    space = get_space(space_name)
    pool = {}
    for i in range(20 * n):
        arch = space.sample(seed * 1_000_003 + i)
        pool.setdefault(arch.to_json(), arch)
    ranked = sorted(pool.values(), key=lambda a: count(a).macs)
    picks = ((np.arange(n) + 0.5) / n * len(ranked)).astype(int)
    return [ranked[i] for i in picks]
