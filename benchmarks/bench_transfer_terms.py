"""Would richer work terms make a transferred table more accurate? An offline test on
networks a board run timed.

    python -m benchmarks bench_transfer_terms --networks benchmarks/results/bench_transfer-{quiet,\
        earlier,loaded}-networks.json [--json benchmarks/results/bench_transfer_terms.json]

`edgenas.profile.transfer` models a unit's time on a new device as a non-negative mix of its
source time and its work (dense and depth-wise MACs, elements written, one call), fitted on
whole networks. On the emulated board that table departs from a plain MACs line by about 2 %
and both leave about 15 % error. If the board's costs followed something the counts miss
(a kind of op, the kernel size, the number of ops, GEMM tiles), a mix over those terms would
predict better. Each set of terms below is fitted the same way (non-negative least squares
on relative error, on the run's table-fitting networks) and judged on its held-out networks:

* as fitted;
* at the oracle level: the held-out predictions rescaled by their own median ratio to the
  measured times, which no table can know in advance, so what is left is the error of the
  terms themselves, not of the level the table was fitted at;
* leave-one-out over all the run's networks (table-fitting and held-out together).

The table's cross-validated correction is not applied: these are the mixes alone, so a
run's "shipped" row need not equal the table it reported. The noise floor (two rounds of
the held-out networks within 10 % of each other) is beside them. Nothing is timed: seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import accuracy_metrics
from edgenas.profile.lut import LUT, load_lut, networks_from_dict
from edgenas.profile.records import TimedNetwork
from edgenas.profile.timing import noise_floor
from edgenas.profile.transfer import WORK, fit_work, unit_work
from edgenas.profile.keys import unit_key
from edgenas.space.arch import Arch
from edgenas.space.plan import Conv, Pool, SqueezeExcite, layer_output_size, sites
from benchmarks.harness import command_line

QUIET = Path(__file__).resolve().parent / "results" / "bench_transfer-quiet-networks.json"
SOURCE = Path(__file__).resolve().parent.parent / "profiles" / "host-cpu" / "cifar.json"
#: GEMM tile of the packed kernels ONNX Runtime's MLAS uses on arm64 (16 columns of output
#: channels); a dense conv's padded work is counted on whole tiles.
TILE = 16

#: Term sets compared; each a list of `terms` keys. The shipped terms are transfer.WORK,
#: computed by `transfer.unit_work` itself; the others add to them.
SETS: dict[str, list[str]] = {
    "MACs only": ["macs"],
    "shipped (source time + work)": list(WORK),
    "work without the source": [w for w in WORK if w != "source_ms"],
    "by kernel size": ["pointwise", "dense_kxk", "dw_k3", "dw_k5", "dw_k7",
                       "written_melements", "ops"],
    "by kind of op": ["dense_mmacs", "depthwise_mmacs", "written_melements", "ops", "hswish",
                      "se_gated", "added", "pooled"],
    "GEMM tiles + im2col": ["padded_gemm", "im2col", "depthwise_mmacs", "written_melements",
                            "ops"],
}


def terms(arch: Arch, source: LUT | None) -> dict[str, float]:
    """Every candidate term of a network, summed over its units: the transfer's own `WORK`
    (``source_ms`` is NaN without a ``source`` table, so a fit on it fails) and the finer
    terms below (MACs and elements in millions; ``ops``: the nodes of its ONNX graph,
    roughly)."""
    t = dict.fromkeys(["pointwise", "dense_kxk", "dw_k3", "dw_k5", "dw_k7", "ops", "hswish",
                       "se_gated", "added", "pooled", "padded_gemm", "im2col"], 0.0)
    work = np.zeros(len(WORK))
    for site in sites(arch):
        unit = site.unit
        if unit.is_identity:
            continue
        key = unit_key(unit, site.height)
        work += unit_work(unit, site.height,
                          source.entries[key].median_ms if source else float("nan"))
        size, convs = site.height, []
        for layer in unit.layers:
            out = layer_output_size(layer, size)
            if isinstance(layer, Conv):
                convs.append((layer, out))
            elif isinstance(layer, SqueezeExcite):
                t["se_gated"] += layer.channels * size * size / 1e6
                t["pointwise"] += 2 * layer.channels * layer.squeeze_channels / 1e6  # 2 1x1s
                t["ops"] += 6  # pool, reduce, relu, expand, sigmoid, multiply
            elif isinstance(layer, Pool):
                t["pooled"] += unit.in_channels * out * out / 1e6
                t["ops"] += 1
            size = out
        if isinstance(unit.shortcut, Conv):
            convs.append((unit.shortcut, layer_output_size(unit.shortcut, site.height)))
        if unit.shortcut is not None:
            t["added"] += unit.out_channels * size * size / 1e6
            t["ops"] += 1
        for conv, out in convs:
            macs = (conv.out_channels * (conv.in_channels // conv.groups) * conv.kernel ** 2
                    * out * out / 1e6)
            t["ops"] += 1 + (conv.activation is not None)
            t["hswish"] += conv.out_channels * out * out / 1e6 if conv.activation == "hswish" else 0
            if conv.depthwise:
                t[f"dw_k{conv.kernel}"] += macs
                continue
            t["pointwise" if conv.kernel == 1 else "dense_kxk"] += macs
            depth = conv.in_channels // conv.groups * conv.kernel ** 2
            t["padded_gemm"] += math.ceil(conv.out_channels / TILE) * TILE * out * out * depth / 1e6
            if conv.kernel > 1:
                t["im2col"] += depth * out * out / 1e6
    t.update(zip(WORK, map(float, work)))
    t["macs"] = t["dense_mmacs"] + t["depthwise_mmacs"]
    return t


def matrix(items: list[TimedNetwork], names: list[str], source: LUT | None) -> np.ndarray:
    rows = [terms(Arch.from_json(item.arch), source) for item in items]
    return np.array([[row[name] for name in names] for row in rows], dtype=np.float64)


def judge(names: list[str], fitting: list[TimedNetwork], held_out: list[TimedNetwork],
          source: LUT | None) -> dict[str, Any]:
    x, y = matrix(fitting, names, source), np.array([i.measured_ms for i in fitting])
    xv, yv = matrix(held_out, names, source), np.array([i.measured_ms for i in held_out])
    call, weights = fit_work(x, y)
    predicted = call + xv @ weights
    oracle = predicted / np.median(predicted / yv)
    xa, ya = np.vstack([x, xv]), np.concatenate([y, yv])
    loo = []
    for i in range(len(ya)):
        keep = np.arange(len(ya)) != i
        c, w = fit_work(xa[keep], ya[keep])
        loo.append(c + xa[i] @ w)
    return {"terms": names, "weights": {"network_call_ms": call,
                                        **dict(zip(names, map(float, weights)))},
            "held_out": accuracy_metrics(predicted, yv),
            "oracle_level": accuracy_metrics(oracle, yv),
            "leave_one_out": accuracy_metrics(loo, ya)}


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--networks", type=Path, nargs="+", default=[QUIET],
                        help="board runs' timed networks (bench_transfer's -networks.json, or "
                             "a transferred table's JSON)")
    parser.add_argument("--fitting", type=int, default=50,
                        help="table-fitting networks used from each run (the first N)")
    parser.add_argument("--source", type=Path, default=SOURCE,
                        help="the source table the shipped terms take unit times from")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    source = load_lut(args.source)
    out: dict[str, Any] = {"runs": []}
    for path in args.networks:
        networks = networks_from_dict(json.loads(path.read_text(encoding="utf-8"))["networks"],
                                      str(path))
        fitting, held_out = networks["fitting"][:args.fitting], networks["validation"]
        floor = noise_floor(held_out)
        print(f"\n{path} ({len(fitting)} table-fitting, {len(held_out)} held-out networks; "
              f"noise floor {100 * floor['within_10pct']:.1f} % within 10 %, median gap "
              f"{floor['median_gap_pct']:.1f} %)" if floor else f"\n{path}")
        print("| terms | held out ±10 % | tau | bias | oracle level ±10 % | its mean abs err "
              "| leave-one-out ±10 % |\n| --- | --- | --- | --- | --- | --- | --- |")
        rows = {}
        for name, names in SETS.items():
            r = rows[name] = judge(names, fitting, held_out, source)
            h, o, l = r["held_out"], r["oracle_level"], r["leave_one_out"]
            print(f"| {name} | {100 * h['within_10pct']:.1f} % | {h['kendall_tau']:.3f} | "
                  f"{h['median_bias_pct']:+.1f} % | {100 * o['within_10pct']:.1f} % | "
                  f"{o['mean_abs_pct_error']:.1f} % | {100 * l['within_10pct']:.1f} % |")
        out["runs"].append({"networks": str(path), "fitting": len(fitting),
                            "held_out": len(held_out), "noise_floor": floor, "sets": rows})
    if args.json:
        write_json_atomic(out, args.json)
        print(f"wrote {args.json}")
