"""A controlled neighbour: the load a shared host's other tenants add, on demand.

    python -m benchmarks neighbour [--kind compute] [--on 60] [--off 60] [--seconds 900]

Runs a busy process on every core but the one the timing agent pins itself to (the
highest), switched on for ``--on`` seconds and off for ``--off`` seconds until
``--seconds`` have passed (0: for ever), so that a profile or a benchmark can be run
through busy and quiet stretches that are known, instead of waiting for the host's. The
kinds: ``compute``, a cache-resident matrix product, which contends for the core's
arithmetic, and ``memory``, a stream over a 64 MiB array, which contends for memory
bandwidth (what each did to timings: docs/notebook/results-log.md §2).
`benchmarks/bench_reference.py` imports `Neighbour` from here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import command_line

LOADS = {
    "memory": "import numpy as np\na = np.ones(1 << 23)\nb = np.empty_like(a)\n"
              "while True:\n    np.copyto(b, a)\n",
    "compute": "import numpy as np\na = np.ones((64, 64))\nwhile True:\n    a @ a\n",
}


class Neighbour:
    """A busy process on every core but the timing's while the context is open
    (``none``: nothing)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Neighbour":
        if self.kind != "none":
            cores = sorted(os.sched_getaffinity(0))
            others = [str(c) for c in cores[:-1]] or [str(cores[0])]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
            self.process = subprocess.Popen(
                ["taskset", "-c", ",".join(others), sys.executable, "-c", LOADS[self.kind]],
                env=env)
            time.sleep(1.0)  # let it reach its steady state
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--kind", choices=sorted(LOADS), default="compute")
    parser.add_argument("--on", type=float, default=60.0, help="seconds busy")
    parser.add_argument("--off", type=float, default=60.0, help="seconds quiet")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after (0: never)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    while not args.seconds or time.monotonic() - started < args.seconds:
        with Neighbour(args.kind):
            print(f"{time.strftime('%H:%M:%S')} busy", flush=True)
            time.sleep(args.on)
        print(f"{time.strftime('%H:%M:%S')} quiet", flush=True)
        time.sleep(args.off)
