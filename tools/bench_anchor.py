"""A table used in another stretch than it was built in: does re-anchoring bring its
predictions to the device's present level?

    python -m tools.bench_anchor [--device host-cpu] [--space cifar] [--networks 30] \
        [--phases none compute] [--json runs/bench_anchor.json]

The table is the committed one (built on another day, so in another stretch, and possibly
on another host of the same kind: its fingerprint is not checked here). Its own held-out
networks are timed now in two rounds, in each phase: ``none`` (the host as it is) and a
controlled neighbour (`tools.neighbour`, ``compute``: a busy process on the other core). In
each phase the reference network is timed first (`edgenas.profile.anchor.measure_anchor`, as
`edgenas profile --reanchor` does) and the table's predictions are judged three ways against
the median of the two rounds:

- ``plain``: at the table's own yardstick (what a table without an anchor predicts);
- ``anchored``: scaled by the anchor measured in this phase (re-anchored at the time of use);
- ``stale anchor``: scaled by the first phase's anchor (re-anchored, then the phase moved);
- ``median anchor``: scaled by the median, not the fastest, of the same burst of reference
  timings over the table's yardstick (an alternative the product does not use).

Beside them, each phase's noise floor: how often the two rounds agree within 10 %. Timing is
host-dependent, so this is a benchmark, never a test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.device.descriptor import get_device
from edgenas.profile.anchor import BURST, measure_anchor
from edgenas.profile.latency import LatencyModel, accuracy_metrics
from edgenas.profile.level import pair_gaps
from edgenas.profile.lut import load_lut, lut_path
from edgenas.profile.measure import measure_latency
from edgenas.profile.timing import REFERENCE_SEED
from edgenas.space import get_space
from edgenas.space.arch import Arch
from tools.neighbour import Neighbour

ROUNDS = 2


def judge(predicted: dict[str, float], measured: dict[str, float]) -> dict[str, float]:
    keys = sorted(measured)
    return accuracy_metrics([predicted[k] for k in keys], [measured[k] for k in keys])


def run_phase(kind: str, device: Any, space: Any, lut: Any, archs: dict[str, Arch],
              plain: dict[str, float], first_ratio: float | None) -> dict[str, Any]:
    reference = space.sample(REFERENCE_SEED)
    with Neighbour(kind):
        anchor = measure_anchor(device, space, lut)
        burst = measure_latency(device, {f"ref{i}": reference for i in range(BURST)})
        rounds = [measure_latency(device, archs) for _ in range(ROUNDS)]
    measured = {k: float(np.median([r[k] for r in rounds])) for k in archs}
    ratio = anchor["ratio"]
    median_ratio = float(np.median(list(burst.values()))) / anchor["reference_ms"]
    anchor["median_ratio"] = median_ratio
    rows = {"plain": judge(plain, measured),
            "anchored": judge({k: v * ratio for k, v in plain.items()}, measured),
            "median anchor": judge({k: v * median_ratio for k, v in plain.items()}, measured)}
    if first_ratio is not None:
        rows["stale anchor"] = judge({k: v * first_ratio for k, v in plain.items()}, measured)
    floor = pair_gaps([[r[k] for r in rounds] for k in archs])
    return {"neighbour": kind, "anchor": anchor, "noise_floor": floor, "rows": rows,
            "measured_ms": measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="host-cpu")
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--profiles-dir", default="profiles")
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--phases", nargs="+", default=["none", "compute"],
                        help="neighbour kinds, one phase each (tools/neighbour.py)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device, space = get_device(args.device), get_space(args.space)
    path = lut_path(args.profiles_dir, device.name, space.name)
    lut = load_lut(path)
    items = (lut.networks.get("validation") or [])[:args.networks]
    archs = {str(i): Arch.from_json(item["arch"]) for i, item in enumerate(items)}
    model = LatencyModel(lut, anchored=False)
    plain = {k: model.predict(a) for k, a in archs.items()}
    phases: list[dict[str, Any]] = []
    for kind in args.phases:
        first = phases[0]["anchor"]["ratio"] if phases else None
        phases.append(run_phase(kind, device, space, lut, archs, plain, first))
    print(f"{path} (updated {lut.updated}), {len(archs)} of its held-out networks timed now in "
          f"{ROUNDS} rounds per phase")
    print(f"| neighbour | anchor ratio | noise floor (within 10 %) | predictions | within 10 % "
          f"| within 5 % | median bias | Kendall tau |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for phase in phases:
        floor = phase["noise_floor"] or {}
        for name, row in phase["rows"].items():
            print(f"| {phase['neighbour']} | {phase['anchor']['ratio']:.3f} | "
                  f"{100 * floor.get('within_10pct', float('nan')):.1f} % | {name} | "
                  f"{100 * row['within_10pct']:.1f} % | {100 * row['within_5pct']:.1f} % | "
                  f"{row['median_bias_pct']:+.1f} % | {row['kendall_tau']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"table": str(path), "table_updated": lut.updated,
                                         "networks": len(archs), "phases": phases},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
