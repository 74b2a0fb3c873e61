"""A main job's latency promise, pick by pick: each shipped pick's latency as the search
predicted it (before anything was measured), as the measured front timed it, as the table
predicted it at deploy, and as deploy measured it; the front's share within +-10 % before
and after the refit; the table's check and its search-biased share against the noise floor.

    python -m benchmarks main_job_picks runs/main [--note "host, load"] [--json FILE]

It reads what `edgenas run` wrote (``summary.json``): no timing, so it can be run on any
machine after the job. Issue 33's goal is that every pick's predicted latency is within
+-10 % of its measurement, or within that arch's own round-to-round spread; the table shows
both for each pick.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgenas.jsonio import write_json_atomic
from edgenas.search.measured_front import spread as round_spread
from benchmarks.harness import command_line

WITHIN = 0.10


def _error(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or not measured:
        return None
    return (predicted - measured) / measured


def pick_rows(summary: dict[str, Any], deploy_rounds: dict[str, list[float]]) -> list[dict[str, Any]]:
    """One row per shipped pick: its latencies and errors, and whether the promise held."""
    rows = []
    for model in summary["models"]:
        searched, measured = model.get("predicted_by_search_ms"), model["measured_ms"]
        rounds = deploy_rounds.get(model["name"]) or []
        spread = round_spread(rounds) if rounds else None
        error = _error(searched, measured)
        held = error is not None and (abs(error) <= WITHIN
                                      or (spread is not None and abs(error) <= spread))
        rows.append({"name": model["name"], "trial": model.get("trial"), "macs": model.get("macs"),
                     "accuracy_exported": model.get("accuracy_exported"),
                     "predicted_by_search_ms": searched,
                     "measured_front_ms": model.get("measured_front_ms"),
                     "predicted_ms": model.get("predicted_ms"), "measured_ms": measured,
                     "deploy_rounds_ms": rounds, "deploy_spread": spread,
                     "search_error": error,
                     "deploy_error": _error(model.get("predicted_ms"), measured),
                     "promise_held": held,
                     "formats": model.get("formats"),
                     "rejected_formats": model.get("rejected_formats") or {}})
    return rows


def _deploy_rounds(run: Path) -> dict[str, list[float]]:
    path = run / "stages" / "deploy.json"
    if not path.exists():
        return {}
    stored = json.loads(path.read_text())
    result = stored.get("result", stored)
    return {name: list(pick.get("rounds_ms") or []) for name, pick in result.items()
            if isinstance(pick, dict)}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f} %"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = command_line(__doc__, __file__)
    parser.add_argument("run", type=Path, help="the main job's folder (runs/main)")
    parser.add_argument("--note", default="", help="where and how it ran (host, load)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    summary = json.loads((args.run / "summary.json").read_text())
    rows = pick_rows(summary, _deploy_rounds(args.run))
    print(f"{'pick':<8} {'search ms':>10} {'front ms':>9} {'deploy pred':>11} "
          f"{'deploy ms':>10} {'search err':>10} {'deploy err':>10} {'spread':>8}  held  int8")
    for r in rows:
        int8 = "kept" if "int8" in (r["formats"] or []) else "dropped"
        print(f"{r['name']:<8} {_ms(r['predicted_by_search_ms']):>10} "
              f"{_ms(r['measured_front_ms']):>9} {_ms(r['predicted_ms']):>11} "
              f"{_ms(r['measured_ms']):>10} {_pct(r['search_error']):>10} "
              f"{_pct(r['deploy_error']):>10} {_pct(r['deploy_spread']):>8}  "
              f"{'yes' if r['promise_held'] else 'NO':<4}  {int8}")
    measurement = summary.get("front_measurement") or {}
    devices = measurement.get("devices") or {}
    for device, report in devices.items():
        for key in ("search_prediction_on_front", "refitted_table_on_front",
                    "timed_after_a_refit", "search_prediction_on_held_out",
                    "refitted_table_on_held_out"):
            part = report.get(key)
            if part:
                print(f"{device} {key}: n {part['n']}, within 10 % {100 * part['within_10pct']:.0f} %, "
                      f"median bias {part['median_bias_pct']:+.1f} %")
    validation = summary.get("lut_validation") or {}
    for name, part in (("random held-out", validation),
                       ("search-biased", validation.get("search_biased") or {})):
        if part.get("n"):
            floor = (part.get("noise_floor") or {}).get("within_10pct")
            print(f"table, {name}: n {part['n']}, within 10 % {100 * part['within_10pct']:.0f} %"
                  + ("" if floor is None else f" (noise floor {100 * floor:.0f} %)"))
    check = summary.get("lut_check") or {}
    if check:
        print(f"table check: median measured/predicted "
              f"{check.get('median_ratio_measured_to_predicted', float('nan')):.2f}, "
              f"tau {check.get('kendall_tau', float('nan')):.2f}, "
              f"trusted {check.get('trusted')}")
    print(f"front: {summary.get('front_size')} trained archs; every pick's promise held: "
          f"{all(r['promise_held'] for r in rows)}")
    if args.json:
        write_json_atomic({"command": f"python -m benchmarks main_job_picks {args.run}",
                           "note": args.note, "front_size": summary.get("front_size"),
                           "picks": rows, "front_measurement": measurement,
                           "lut_check": check, "lut_validation": validation}, args.json)
    return 0
