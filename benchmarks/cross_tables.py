"""Several latency tables of one device, each judged on every table's held-out networks:
the random held-out set and the search-biased one, as each table's own profile timed them.

    python -m benchmarks cross_tables A-1=/tmp/ab/A-1/host-cpu/cifar.json \\
        B-1=/tmp/ab/B-1/host-cpu/cifar.json ... --json FILE

Two ways of measuring a table (say, two table-fitting streams) differ in their held-out
sets as well as in their fit; comparing each table's own validation report mixes the two.
Here every table predicts every held-out set, so the fits are compared on the same
timings. Profiles run back to back on the same host sit at levels a few per cent apart, so
read a table against its rivals column by column. No timing: it reads the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgenas.cost.count import count
from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import LatencyModel, accuracy_metrics
from edgenas.profile.lut import LUT, SEARCH_BIASED, VALIDATION, load_lut
from edgenas.profile.timing import noise_floor
from edgenas.space.arch import Arch
from benchmarks.harness import command_line

#: The held-out sets each table brings, by their key in its networks.
SETS = {"random": VALIDATION, "search-biased": SEARCH_BIASED}


def held_out_sets(tables: dict[str, LUT]) -> dict[str, list[Any]]:
    """Every table's timed held-out sets, named ``kind(table)``."""
    return {f"{kind}({name})": table.networks.get(label, [])
            for name, table in tables.items() for kind, label in SETS.items()
            if table.networks.get(label)}


def judge(tables: dict[str, LUT]) -> dict[str, Any]:
    """Each table's accuracy on each held-out set, and each set's MACs and noise floor."""
    sets = held_out_sets(tables)
    archs = {key: [Arch.from_json(item.arch) for item in items] for key, items in sets.items()}
    result: dict[str, Any] = {"sets": {}, "tables": {}}
    for key, items in sets.items():
        mmacs = [count(arch).macs / 1e6 for arch in archs[key]]
        result["sets"][key] = {"n": len(items), "mmacs": [min(mmacs), max(mmacs)],
                               "noise_floor": noise_floor(items)}
    for name, table in tables.items():
        model = LatencyModel(table, anchored=False)  # held-out times are at the yardstick
        result["tables"][name] = {
            "correction": (table.correction or {}).get("form"),
            "on": {key: accuracy_metrics([model.predict(arch) for arch in archs[key]],
                                         [item.measured_ms for item in items])
                   for key, items in sets.items()}}
    return result


def print_table(result: dict[str, Any]) -> None:
    keys = list(result["sets"])
    print("within +-10 % (median bias) of each table on each held-out set")
    print("| table | correction | " + " | ".join(keys) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in keys) + " |")
    for name, row in result["tables"].items():
        cells = [f"{100 * row['on'][k]['within_10pct']:.0f} % ({row['on'][k]['median_bias_pct']:+.0f} %)"
                 for k in keys]
        print(f"| {name} | {row['correction']} | " + " | ".join(cells) + " |")
    for key, info in result["sets"].items():
        floor = info["noise_floor"]
        print(f"{key}: {info['n']} archs, {info['mmacs'][0]:.2f}-{info['mmacs'][1]:.2f} M MACs"
              + (f", noise floor {100 * floor['within_10pct']:.0f} %" if floor else ""))
    for name in result["tables"]:
        own = [k for k in keys if k.endswith(f"({name})")]
        others = {k: result["tables"][name]["on"][k]["within_10pct"] for k in keys if k not in own}
        if others:
            print(f"{name}: mean within +-10 % on the other tables' sets "
                  f"{100 * np.mean(list(others.values())):.0f} %")


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("tables", nargs="+", metavar="NAME=PATH",
                        help="a table file and the name it goes by in the result")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    tables = {}
    for given in args.tables:
        name, sep, path = given.partition("=")
        if not sep or not name or not path:
            parser.error(f"{given!r}: give each table as NAME=PATH")
        if name in tables:
            parser.error(f"{given!r}: the name {name!r} is given twice; name each table once")
        tables[name] = load_lut(Path(path))
        first = next(iter(tables.values()))
        if (tables[name].space, tables[name].space_hash) != (first.space, first.space_hash):
            parser.error(f"{path}: a table of space {tables[name].space!r} "
                         f"({tables[name].space_hash}); the first is of {first.space!r} "
                         f"({first.space_hash}): compare tables of one space")
    result = judge(tables)
    print_table(result)
    if args.json:
        write_json_atomic({"command": "python -m benchmarks cross_tables " + " ".join(args.tables),
                           **result}, Path(args.json))


if __name__ == "__main__":
    main()
