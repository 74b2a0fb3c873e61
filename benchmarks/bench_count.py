"""Benchmark: how many archs per second `count()` evaluates, and how that compares to
counting the same archs with PyTorch (FlopCounterMode on the meta device); with --lut,
also how long `LatencyModel.predict` takes per arch.

    python -m benchmarks bench_count [--space cifar] [--archs 5000] [--lut profiles/host-cpu/cifar.json] [--json out.json]

Prints a table and writes JSON. Absolute rates depend on the machine; the ratio to the
PyTorch count, measured in the same run, is the number to quote.
"""

from __future__ import annotations

import platform
import time

import edgenas
from edgenas.cost.count import unit_cost
from edgenas.jsonio import write_json_atomic
from edgenas.space.plan import block_unit, unit_output_size
from benchmarks.harness import command_line


def _clear_caches() -> None:
    for cached in (unit_cost, block_unit, unit_output_size):
        cached.cache_clear()


def rate(archs: list, repeats: int = 3) -> float:
    """Best-of-``repeats`` archs/s of count() over ``archs``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for arch in archs:
            edgenas.count(arch)
        best = min(best, time.perf_counter() - start)
    return len(archs) / best


def torch_rate(archs: list) -> float:
    """archs/s when counting with PyTorch's FlopCounterMode on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    start = time.perf_counter()
    for arch in archs:
        with torch.device("meta"):
            model = edgenas.build_model(arch).eval()
            image = torch.empty(1, 3, arch.resolution, arch.resolution)
            with FlopCounterMode(display=False):
                model(image)
            sum(p.numel() for p in model.parameters())
    return len(archs) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--archs", type=int, default=5000)
    parser.add_argument("--torch-archs", type=int, default=50)
    parser.add_argument("--lut", default=None, help="latency table to time predictions with")
    parser.add_argument("--json", default=None, help="write results here")
    args = parser.parse_args(argv)

    space = edgenas.get_space(args.space)
    archs = [space.sample(seed) for seed in range(args.archs)]
    _clear_caches()
    start = time.perf_counter()
    for arch in archs:
        edgenas.count(arch)
    cold = len(archs) / (time.perf_counter() - start)
    warm = rate(archs)
    start = time.perf_counter()
    for seed in range(args.archs):
        space.sample(seed)
    sampling = args.archs / (time.perf_counter() - start)
    reference = torch_rate(archs[: args.torch_archs])

    results = {
        "space": args.space, "archs": args.archs, "python": platform.python_version(),
        "count_archs_per_s_first_pass": round(cold),
        "count_archs_per_s_repeat": round(warm),
        "count_us_per_arch_first_pass": round(1e6 / cold, 1),
        "sample_archs_per_s": round(sampling),
        "pytorch_flopcounter_archs_per_s": round(reference, 1),
        "speedup_over_pytorch_first_pass": round(cold / reference),
    }
    if args.lut:
        from edgenas.profile.latency import LatencyModel
        from edgenas.profile.lut import load_lut

        model = LatencyModel(load_lut(args.lut))
        start = time.perf_counter()
        for arch in archs:
            model.predict(arch)
        results["latency_predict_us_per_arch_first_pass"] = round(
            1e6 * (time.perf_counter() - start) / len(archs), 1)
        start = time.perf_counter()
        for arch in archs:
            model.predict(arch)
        results["latency_predict_us_per_arch_repeat"] = round(
            1e6 * (time.perf_counter() - start) / len(archs), 1)
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        write_json_atomic(results, args.json)
