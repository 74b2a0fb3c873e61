"""FP32 against INT8 (or FP16) latency of the same random archs on one device: the median
ratio, its range and how far the two orders agree (Kendall tau); with an INT8 table, how
well it predicts the INT8 times.

Each arch is built once and timed in interleaved rounds, FP32 then the other precision, by
`edgenas.profile.measure.measure_latency` (the models a device of that precision runs:
`edgenas.profile.precision`), so a slow stretch of a shared host hits both alike. The
per-arch time is the median of its rounds. Quantising happens on the host, and its time is
reported beside.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.device.descriptor import get_device
from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import LatencyModel, accuracy_metrics
from edgenas.profile.lut import load_lut, lut_path
from edgenas.profile.measure import measure_latency
from edgenas.profile.ranking import kendall_tau
from edgenas.space import get_space
from benchmarks.harness import command_line, table_arguments

#: This benchmark's archs: their own seed stream, apart from every table's.
SEED = 7_000_000


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    table_arguments(parser)
    parser.add_argument("--precision", default="int8", choices=("int8", "fp16"),
                        help="compared with --device's own runtime at fp32 (default int8)")
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--table", metavar="DEVICE",
                        help="a device of --precision whose table for --space predicts the "
                             "--precision times (e.g. host-int8)")
    parser.add_argument("--fp32-table", metavar="DEVICE",
                        help="an FP32 device whose table for --space predicts the FP32 times, "
                             "for comparison (e.g. a table profiled with the same budget)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    base = get_device(args.device)
    fp32 = replace(base, runtime=replace(base.runtime, precision="fp32"))
    other = replace(base, name=f"{base.name}-{args.precision}",
                    runtime=replace(base.runtime, precision=args.precision))
    space = get_space(args.space)
    archs = {f"a{i:03d}": space.sample(SEED + i) for i in range(args.archs)}
    rounds: dict[str, list[dict[str, float]]] = {"fp32": [], args.precision: []}
    seconds = {"fp32": 0.0, args.precision: 0.0}
    for _ in range(args.rounds):
        for name, device in (("fp32", fp32), (args.precision, other)):
            started = time.perf_counter()
            rounds[name].append(measure_latency(device, archs))
            seconds[name] += time.perf_counter() - started
    ms = {name: {key: float(np.median([r[key] for r in timed])) for key in archs}
          for name, timed in rounds.items()}
    keys = sorted(archs)
    ratio = np.array([ms[args.precision][k] / ms["fp32"][k] for k in keys])
    record: dict[str, Any] = {
        "device": base.name, "space": space.name, "precision": args.precision,
        "archs": len(keys), "rounds": args.rounds,
        "median_ratio": float(np.median(ratio)), "min_ratio": float(ratio.min()),
        "max_ratio": float(ratio.max()),
        "kendall_tau": kendall_tau([ms["fp32"][k] for k in keys],
                                   [ms[args.precision][k] for k in keys]),
        "seconds": seconds, "ms": ms, "rounds_ms": rounds}
    for key, table, name in (("table", args.table, args.precision),
                             ("fp32_table", args.fp32_table, "fp32")):
        if table:
            lut = load_lut(lut_path(args.profiles_dir, table, space.name))
            model = LatencyModel(lut, anchored=False)
            record[key] = {"device": table, "precision": lut.runtime.get("precision"),
                           "units_timed": sum(1 for e in lut.entries.values()
                                              if not e.predicted),
                           **accuracy_metrics([model.predict(archs[k]) for k in keys],
                                              [ms[name][k] for k in keys])}
    print(f"{base.name}, {space.name}: {len(keys)} archs, {args.rounds} interleaved rounds "
          f"each ({seconds['fp32']:.0f} s FP32, {seconds[args.precision]:.0f} s "
          f"{args.precision.upper()} with its conversion)")
    print(f"| measure | {args.precision.upper()} / FP32 |")
    print("| --- | --- |")
    print(f"| median ratio | {record['median_ratio']:.2f}x |")
    print(f"| range | {record['min_ratio']:.2f}x-{record['max_ratio']:.2f}x |")
    print(f"| Kendall tau (FP32 order vs {args.precision.upper()} order) | "
          f"{record['kendall_tau']:.3f} |")
    for key, name in (("table", args.precision), ("fp32_table", "fp32")):
        if key in record:
            table = record[key]
            print(f"| {table['device']}'s table ({table['units_timed']} units timed), "
                  f"{name.upper()} times within +-10 % | {100 * table['within_10pct']:.0f} % "
                  f"(tau {table['kendall_tau']:.3f}, median bias "
                  f"{table['median_bias_pct']:+.0f} %) |")
    if args.json:
        write_json_atomic(record, args.json)


if __name__ == "__main__":
    main()
