"""A table used in another stretch than it was built in: does re-anchoring bring its
predictions to the device's present level?

    python -m benchmarks bench_anchor [--device host-cpu] [--space cifar] [--networks 30] \
        [--phases none compute] [--json runs/bench_anchor.json]

The table is the committed one (built on another day, so in another stretch, and possibly
on another host of the same kind: its fingerprint is not checked here). Its own held-out
networks are timed now in two rounds, in each phase: ``none`` (the host as it is) and a
controlled neighbour (`benchmarks.neighbour`, ``compute``: a busy process on the other core). In
each phase the reference network is timed first (`edgenas.profile.anchor.measure_anchor`, as
`edgenas profile --reanchor` does) and the table's predictions are judged three ways against
the median of the two rounds:

- ``plain``: at the table's own yardstick (what a table without an anchor predicts);
- ``anchored``: scaled by the anchor measured in this phase (re-anchored at the time of use);
- ``stale anchor``: scaled by the first phase's anchor (re-anchored, then the phase moved);
- ``median anchor``: scaled by the median, not the fastest, of the same burst of reference
  timings over the table's yardstick (an alternative the product does not use).

Two more rows say what is left once the level is right:

- ``oracle level``: scaled by the phase's own median measured/predicted ratio, the best any
  single level could do (no anchor can beat it);
- ``build-time timings``: not predictions but the table's own held-out timings, taken when
  it was built, scaled the same way: how far the host's phase changed the networks' times
  relative to each other.

Beside them, each phase's noise floor: how often the two rounds agree within 10 %. Timing is
host-dependent, so this is a benchmark, never a test. ``--rejudge JSON`` recomputes the
rows of a saved run from its timings and its table, timing nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.device.descriptor import get_device
from edgenas.jsonio import write_json_atomic
from edgenas.profile.anchor import BURST, measure_anchor
from edgenas.profile.latency import LatencyModel, accuracy_metrics
from edgenas.profile.level import pair_gaps
from edgenas.profile.lut import load_lut, lut_path
from edgenas.profile.measure import measure_latency
from edgenas.profile.timing import REFERENCE_SEED
from edgenas.space import get_space
from edgenas.space.arch import Arch
from benchmarks.harness import command_line, table_arguments
from benchmarks.neighbour import Neighbour

ROUNDS = 2


def judge(predicted: dict[str, float], measured: dict[str, float]) -> dict[str, float]:
    keys = sorted(measured)
    return accuracy_metrics([predicted[k] for k in keys], [measured[k] for k in keys])


def level_rows(plain: dict[str, float], build: dict[str, float],
               measured: dict[str, float]) -> dict[str, dict[str, float]]:
    """The ``oracle level`` and ``build-time timings`` rows (see the module docstring)."""
    def at_best_level(values: dict[str, float]) -> dict[str, float]:
        scale = float(np.median([measured[k] / values[k] for k in measured]))
        return {k: v * scale for k, v in values.items()}

    return {"oracle level": judge(at_best_level(plain), measured),
            "build-time timings": judge(at_best_level(build), measured)}


def run_phase(kind: str, device: Any, space: Any, lut: Any, archs: dict[str, Arch],
              plain: dict[str, float], build: dict[str, float],
              first_ratio: float | None) -> dict[str, Any]:
    reference = space.sample(REFERENCE_SEED)
    with Neighbour(kind):
        anchor = measure_anchor(device, space, lut)
        burst = measure_latency(device, {f"ref{i}": reference for i in range(BURST)})
        rounds = [measure_latency(device, archs) for _ in range(ROUNDS)]
    measured = {k: float(np.median([r[k] for r in rounds])) for k in archs}
    ratio = anchor["ratio"]
    median_ratio = float(np.median(list(burst.values()))) / anchor["yardstick_ms"]
    anchor["median_ratio"] = median_ratio
    rows = {"plain": judge(plain, measured),
            "anchored": judge({k: v * ratio for k, v in plain.items()}, measured),
            "median anchor": judge({k: v * median_ratio for k, v in plain.items()}, measured)}
    if first_ratio is not None:
        rows["stale anchor"] = judge({k: v * first_ratio for k, v in plain.items()}, measured)
    rows.update(level_rows(plain, build, measured))
    floor = pair_gaps([[r[k] for r in rounds] for k in archs])
    return {"neighbour": kind, "anchor": anchor, "noise_floor": floor, "rows": rows,
            "measured_ms": measured}


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    table_arguments(parser)
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--phases", nargs="+", default=["none", "compute"],
                        help="neighbour kinds, one phase each (benchmarks/neighbour.py)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rejudge", type=Path,
                        help="a saved run's JSON: recompute its rows from its timings and "
                             "its table (which must still be where it was), timing nothing")
    args = parser.parse_args(argv)
    saved = json.loads(args.rejudge.read_text()) if args.rejudge else None
    if saved is not None:
        path = Path(saved["table"])
        if not path.exists():
            parser.error(f"--rejudge {args.rejudge}: its table {path} is gone")
    else:
        path = lut_path(args.profiles_dir, args.device, args.space)
    lut = load_lut(path)
    items = (lut.networks.get("validation") or [])[:saved["networks"] if saved else args.networks]
    archs = {str(i): Arch.from_json(item.arch) for i, item in enumerate(items)}
    build = {str(i): item.measured_ms for i, item in enumerate(items)}
    model = LatencyModel(lut, anchored=False)
    plain = {k: model.predict(a) for k, a in archs.items()}
    phases: list[dict[str, Any]] = []
    if saved is not None:
        for phase in saved["phases"]:
            phase["rows"].update(level_rows(plain, build, phase["measured_ms"]))
            phases.append(phase)
    else:
        device, space = get_device(args.device), get_space(args.space)
        for kind in args.phases:
            first = phases[0]["anchor"]["ratio"] if phases else None
            phases.append(run_phase(kind, device, space, lut, archs, plain, build, first))
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
        write_json_atomic({"table": str(path), "table_updated": lut.updated,
                           "networks": len(archs), "phases": phases}, args.json)
