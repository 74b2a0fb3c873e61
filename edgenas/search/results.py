"""What a search leaves in its run directory: the front as CSV/JSON, plots, hypervolume.

``front.json`` is what `edgenas pareto` and `edgenas export` read; the PNG is for a
report, the HTML (one self-contained file, hover for details) for looking around.
"""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from edgenas.errors import EdgenasError
from edgenas.jsonio import read_json, write_json_atomic
from edgenas.search.accuracy_source import FIDELITY, label as source_label
from edgenas.search.engine import front, hypervolume_history
from edgenas.search.objectives import (COST_METRICS, csv_column, objective_direction,
                                       objective_matrix, unit_of)
from edgenas.search.pareto import (BEST_RULE, FASTEST_RULE, KNEE_RULE, fastest_index,
                                   hypervolume, knee_index, margin_guard, to_minimization)

SCHEMA_VERSION = 1
#: What a surrogate-assisted search adds to a front point: where its trained weights are,
#: its training round, the accuracy the surrogate predicted before it was trained, and
#: (a search training at several fidelities) the epochs its accuracy was trained for.
TRAINED_ATTRS = ("run_dir", "round", "predicted_accuracy", FIDELITY)


def measured_keys(metric: str) -> dict[str, str]:
    """Front-row fields a measured front (`edgenas.search.measured_front`) adds for a latency
    metric (``latency`` or ``latency@<device>``): the latency the search predicted, the
    measured one, its rounds and spread, and which of the two the point's latency is."""
    _, at, device = metric.partition("@")
    suffix = f"@{device}" if at else ""
    return {"predicted": f"predicted_latency_ms{suffix}",
            "measured": f"measured_latency_ms{suffix}",
            "spread": f"measured_latency_spread{suffix}",
            "rounds": f"measured_latency_rounds_ms{suffix}",
            "basis": f"latency_basis{suffix}"}


#: The same fields' names for one device; a search over several suffixes each ``@device``.
MEASURED_PREFIXES = tuple(measured_keys("latency").values())
_LABELS = {"accuracy": "accuracy (val.)", "latency": "latency (ms)", "memory": "peak memory (MB)",
          "macs": "MACs (M)", "params": "params (M)"}


def label(name: str) -> str:
    """An axis label for an objective (``latency@jetson`` -> "latency on jetson (ms)")."""
    base, _, device = name.partition("@")
    return f"latency on {device} (ms)" if device else _LABELS.get(base, base)


def default_storage(out: Path) -> str:
    """The study database a search keeps in its output folder unless told otherwise."""
    return f"sqlite:///{(out / 'study.db').resolve()}"


def front_status(trials: list[FrozenTrial], objectives: tuple[str, ...]) -> tuple[int, float]:
    """(size, hypervolume) of the current front: what a progress line reports."""
    current = front(trials, objectives)
    if not trials or not current:
        return len(current), 0.0
    return len(current), hypervolume(objective_matrix(current, objectives),
                                      reference_point(objectives, trials))


def reference_point(objectives: tuple[str, ...], trials: list[FrozenTrial]) -> list[float]:
    """Hypervolume reference: error 1 for accuracy, 1.1 x the worst seen for costs."""
    ref = []
    for name in objectives:
        if name == "accuracy":
            ref.append(1.0)
        else:
            ref.append(1.1 * max(t.user_attrs["metrics"][name] for t in trials))
    return ref


def front_records(trials: list[FrozenTrial], objectives: tuple[str, ...]) -> list[dict[str, Any]]:
    """One record per front point: trial number, metrics, arch JSON."""
    records = [{"trial": t.number, **{k: float(v) for k, v in t.user_attrs["metrics"].items()},
                "feasible": bool(t.user_attrs["feasible"]), "arch": json.loads(t.user_attrs["arch"]),
                **{k: t.user_attrs[k] for k in TRAINED_ATTRS if k in t.user_attrs},
                **{k: v for k, v in t.user_attrs.items() if k.startswith(MEASURED_PREFIXES)}}
               for t in front(trials, objectives)]
    first = objectives[0]
    records.sort(key=lambda r: -r[first] if objective_direction(first) == "maximize" else r[first])
    return records


def feasible_ranges(trials: list[FrozenTrial], objectives: tuple[str, ...]
                    ) -> dict[str, list[float]]:
    """[lowest, highest] of each objective over the distinct archs within budget: the scale
    on which the knee weighs one objective against another."""
    unique = {t.user_attrs["arch"]: t for t in trials if t.user_attrs["feasible"]}
    return {name: [min(t.user_attrs["metrics"][name] for t in unique.values()),
                   max(t.user_attrs["metrics"][name] for t in unique.values())]
            for name in objectives} if unique else {}


def evaluated_lowest(trials: list[FrozenTrial]) -> dict[str, float]:
    """The lowest value of each cost metric over every evaluated arch, budgets ignored: what
    a budget must at least allow to admit one."""
    lowest: dict[str, float] = {}
    for trial in trials:
        for name, value in trial.user_attrs["metrics"].items():
            if name != "accuracy":
                lowest[name] = min(float(value), lowest.get(name, float("inf")))
    return lowest


def write_results(run_dir: Path, trials: list[FrozenTrial], objectives: tuple[str, ...],
                  population: int, info: dict[str, Any]) -> dict[str, Any]:
    """Write front.json/.csv, hypervolume.json, pareto.png and pareto.html; returns the summary.

    ``info`` goes into front.json as it is; its ``accuracy_source`` (`edgenas.search.
    accuracy_source`) also labels every front.csv row, in a column of its own so that CSV
    readers keep working."""
    if not trials:
        raise EdgenasError("the search completed no trials; nothing to write")
    records = front_records(trials, objectives)
    ref = reference_point(objectives, trials)
    history = hypervolume_history(trials, objectives, ref, population)
    summary = {"schema_version": SCHEMA_VERSION, **info, "objectives": list(objectives),
               "trials": len(trials),
               "distinct_archs": len({t.user_attrs["arch"] for t in trials}),
               "feasible_trials": sum(bool(t.user_attrs["feasible"]) for t in trials),
               "hypervolume": history[-1] if history else 0.0, "hypervolume_reference": ref,
               "feasible_ranges": feasible_ranges(trials, objectives),
               "evaluated_lowest": evaluated_lowest(trials),
               "units": {name: unit_of(name)
                         for name in dict.fromkeys([*objectives, *COST_METRICS])},
               "front": records}
    write_json_atomic(summary, run_dir / "front.json")
    write_json_atomic({"every_trials": population, "reference": ref, "objectives": list(objectives),
                       "hypervolume": history}, run_dir / "hypervolume.json")
    columns = ["trial", *objectives, *[m for m in COST_METRICS
                                       if m not in objectives and records and m in records[0]]]
    # a measured front: each device's predicted and measured latency, spread and basis
    columns += sorted({k for r in records for k in r if k.startswith(MEASURED_PREFIXES)
                       and "rounds" not in k})
    fidelity = [FIDELITY] if any(FIDELITY in r for r in records) else []
    labelled = "accuracy" in objectives
    with open(run_dir / "front.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*map(csv_column, columns), *fidelity,
                         *(["accuracy_source"] if labelled else []), "arch"])
        for r in records:
            source = [source_label(info.get("accuracy_source"), r)] if labelled else []
            writer.writerow([*(r.get(c, "") for c in columns), *(r.get(c, "") for c in fidelity),
                             *source, json.dumps(r["arch"], sort_keys=True)])
    _plot_png(run_dir / "pareto.png", trials, records, objectives)
    _plot_html(run_dir / "pareto.html", trials, records, objectives)
    return summary


def _xy(objectives: tuple[str, ...]) -> tuple[str, str]:
    """Axes of the 2-D view: accuracy against the first cost objective."""
    costs = [o for o in objectives if o != "accuracy"]
    if "accuracy" in objectives and costs:
        return costs[0], "accuracy"
    return (objectives[0], objectives[1]) if len(objectives) > 1 else (objectives[0], objectives[0])


def _plot_png(path: Path, trials: list[FrozenTrial], records: list[dict[str, Any]],
              objectives: tuple[str, ...]) -> None:
    # local: importing this module (`edgenas --help` does) must not load matplotlib (heavy)
    # nor switch every importer's backend to Agg
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = _xy(objectives)
    # several devices: one panel per device, the same front seen on each one's latency
    panels = [o for o in objectives if o.startswith("latency@")] or [x]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), dpi=120,
                             squeeze=False)
    feasible = [t for t in trials if t.user_attrs["feasible"]]
    other = [t for t in trials if not t.user_attrs["feasible"]]
    for ax, x in zip(axes[0], panels):
        for group, style in ((other, dict(c="#cccccc", label="over budget")),
                             (feasible, dict(c="#7aa6c2", label="evaluated"))):
            if group:
                ax.scatter([t.user_attrs["metrics"][x] for t in group],
                           [t.user_attrs["metrics"][y] for t in group], s=12, alpha=0.7,
                           **style)
        if records:
            pts = sorted((r[x], r[y]) for r in records)
            ax.scatter(*zip(*pts), s=28, c="#d1495b", label="Pareto front", zorder=3)
        ax.set_xlabel(label(x))
        ax.set_ylabel(label(y))
        ax.set_title(f"{len(records)} Pareto-optimal archs of {len(trials)} trials "
                     f"({', '.join(objectives)})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_html(path: Path, trials: list[FrozenTrial], records: list[dict[str, Any]],
               objectives: tuple[str, ...]) -> None:
    """A dependency-free interactive scatter: SVG with a tooltip per point."""
    x, y = _xy(objectives)
    width, height, pad = 720, 460, 60
    xs = [t.user_attrs["metrics"][x] for t in trials]
    ys = [t.user_attrs["metrics"][y] for t in trials]
    x0, x1 = min(xs), max(xs) or 1.0
    y0, y1 = min(ys), max(ys) or 1.0

    def sx(v: float) -> float:
        return pad + (v - x0) / ((x1 - x0) or 1) * (width - 2 * pad)

    def sy(v: float) -> float:
        return height - pad - (v - y0) / ((y1 - y0) or 1) * (height - 2 * pad)

    on_front = {r["trial"] for r in records}
    dots = []
    for t in trials:
        m = t.user_attrs["metrics"]
        tip = html.escape(f"trial {t.number}: " + ", ".join(f"{k}={m[k]:.4g}" for k in sorted(m))
                          + ("" if t.user_attrs["feasible"] else " (over budget)"))
        color = "#d1495b" if t.number in on_front else ("#7aa6c2" if t.user_attrs["feasible"] else "#ccc")
        r = 5 if t.number in on_front else 3
        dots.append(f'<circle cx="{sx(m[x]):.1f}" cy="{sy(m[y]):.1f}" r="{r}" fill="{color}">'
                    f"<title>{tip}</title></circle>")
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(f'{r[k]:.4g}' if isinstance(r[k], float) else str(r[k]))}</td>"
                         for k in ("trial", *objectives)) + "</tr>" for r in records)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgenas Pareto front</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}</style>
</head><body><h2>Pareto front: {len(records)} of {len(trials)} trials</h2>
<p>Hover a point for its metrics. Red: Pareto-optimal and within budget; blue: evaluated; grey: over budget.</p>
<svg width="{width}" height="{height}" style="border:1px solid #eee">
<text x="{width / 2}" y="{height - 15}" text-anchor="middle">{html.escape(label(x))} ({x0:.4g} – {x1:.4g})</text>
<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">{html.escape(label(y))} ({y0:.4g} – {y1:.4g})</text>
{''.join(dots)}</svg>
<h3>Front</h3><table><tr>{''.join(f'<th>{html.escape(k)}</th>' for k in ('trial', *objectives))}</tr>{rows}</table>
</body></html>"""
    path.write_text(page, encoding="utf-8")


def load_front(run_dir: Path) -> dict[str, Any]:
    """The summary a search wrote; errors name the file."""
    path = Path(run_dir) / "front.json"
    data = read_json(path, f"is {run_dir} a search run directory (made by 'edgenas search --out DIR')?")
    if data.get("schema_version") != SCHEMA_VERSION or not isinstance(data.get("front"), list):
        raise EdgenasError(f"{path}: not a front file of this edgenas (schema_version "
                           f"{data.get('schema_version')!r})")
    return data


#: Beside a search's front.json once its picks are exported (by the main job): each pick's
#: bundle, formats and how its reduced precisions held against FP32.
EXPORTS = "exports.json"


def write_exports(run_dir: Path, picks: dict[str, dict[str, Any]]) -> None:
    """Record the bundles made of a search's picks beside its front (`EXPORTS`)."""
    write_json_atomic({"schema_version": SCHEMA_VERSION, "picks": picks},
                      Path(run_dir) / EXPORTS)


def load_exports(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The picks exported from a search run, by name ({} when none were, or the file is of
    another edgenas)."""
    path = Path(run_dir) / EXPORTS
    if not path.exists():
        return {}
    data = read_json(path, "written by 'edgenas run' after its export stage")
    return data.get("picks") or {} if data.get("schema_version") == SCHEMA_VERSION else {}


def latency_key(summary: dict[str, Any], device: str | None) -> str:
    """The front's latency metric for ``device``: ``latency`` for a one-device search,
    ``latency@<device>`` when it searched several (then the device must be named)."""
    objectives = summary["objectives"]
    devices = [o.split("@", 1)[1] for o in objectives if o.startswith("latency@")]
    if not devices:
        if device is not None and device != summary.get("device"):
            raise EdgenasError(f"--device {device}: this search had one device "
                               f"({summary.get('device')})")
        return "latency"
    if device is None or device not in devices:
        raise EdgenasError(f"{'--device ' + device + ': not' if device else 'name'} one of "
                           f"the searched devices ({', '.join(devices)}) with --device")
    return f"latency@{device}"


#: What each named pick is; the report quotes these, so it cannot drift from the code.
PICK_RULES = {"knee": KNEE_RULE, "fastest": FASTEST_RULE, "best": BEST_RULE}
#: A budget a search records (``summary["budgets"]``): its metric, its flag, and the factor
#: from the metric's unit to the flag's (params are recorded in millions, asked as a count).
_BUDGET_FLAGS = {"max_latency_ms": ("latency", "--max-latency-ms", 1.0),
                 "max_memory_mb": ("memory", "--max-memory-mb", 1.0),
                 "max_mmacs": ("macs", "--max-mmacs", 1.0),
                 "max_params": ("params", "--max-params", 1e6)}


def pick(summary: dict[str, Any], how: str, max_latency_ms: float | None = None,
         device: str | None = None) -> dict[str, Any]:
    """One front point: ``knee``, ``best`` (most accurate), ``fastest``, or an index.

    The rules are `PICK_RULES`. ``max_latency_ms`` (on ``device`` after a search over
    several) leaves out the archs over it before a named pick chooses.
    """
    records = summary["front"]
    if not records:
        raise EdgenasError(_empty_front(summary))
    if how not in PICK_RULES:
        try:
            return records[int(how)]
        except (ValueError, IndexError):
            raise EdgenasError(f"--pick {how!r}: use knee, best, fastest, or an index "
                               f"0..{len(records) - 1}") from None
    objectives = tuple(summary["objectives"])
    has_accuracy = "accuracy" in records[0]
    if max_latency_ms is not None or how == "fastest":
        key = latency_key(summary, device)
        if key not in records[0]:
            raise EdgenasError(f"--pick {how}: this front records no {key}")
        records = _within(records, key, max_latency_ms, device)
    if how == "fastest":
        return records[fastest_index([r[key] for r in records],
                                     [r["accuracy"] for r in records] if has_accuracy else None)]
    if how == "best":
        if has_accuracy:
            return max(records, key=lambda r: r["accuracy"])
        first = objectives[0]
        return (max if objective_direction(first) == "maximize" else min)(
            records, key=lambda r: r[first])
    values = to_minimization(np.asarray([[r[o] for o in objectives] for r in records]),
                             [objective_direction(o) for o in objectives])
    ranges = summary.get("feasible_ranges") or {}
    # front files written before the ranges were recorded: the front's own range
    spread = [ranges[o][1] - ranges[o][0] for o in objectives] if all(
        o in ranges for o in objectives) else None
    chosen = knee_index(values, spread)
    # the guard's latency: the named device's, else every searched device's
    latencies = [latency_key(summary, device)] if device else \
        [o for o in objectives if o.split("@", 1)[0] == "latency"]
    if has_accuracy and latencies and all(k in records[0] for k in latencies):
        chosen = margin_guard([r["accuracy"] for r in records],
                              np.asarray([[r[k] for k in latencies] for r in records]), chosen)
    return records[chosen]


def _within(records: list[dict[str, Any]], key: str, max_latency_ms: float | None,
            device: str | None) -> list[dict[str, Any]]:
    """The records within the latency budget; none: an error naming a budget that admits one."""
    if max_latency_ms is None:
        return records
    pool = [r for r in records if r[key] <= max_latency_ms]
    if not pool:
        fastest = min(r[key] for r in records)
        where = f" on {device}" if device else ""
        raise EdgenasError(f"no front point is within {max_latency_ms:g} ms{where}; the fastest "
                           f"takes {fastest:.4g} ms: use --max-latency-ms "
                           f"{admitting(fastest)} or more")
    return pool


def _empty_front(summary: dict[str, Any]) -> str:
    """Why a front is empty, and what budget would let an evaluated arch onto it."""
    message = (f"the front is empty: none of the {summary.get('trials', 0)} evaluated archs "
               "met the budgets")
    budgets, lowest = summary.get("budgets") or {}, summary.get("evaluated_lowest") or {}
    hints = []
    for name, limit in budgets.items():
        metric, flag, unit = _BUDGET_FLAGS.get(name, (None, None, 1.0))
        # several devices: a latency budget holds on each, so the slowest device's best counts
        values = [v for k, v in lowest.items() if metric and k.split("@", 1)[0] == metric]
        if values and max(values) * unit > limit:
            hints.append(f"{flag} {admitting(max(values) * unit)} or more (now {limit:g})")
    if hints:
        return f"{message}; at the least use {', '.join(hints)}"
    return f"{message}; raise a budget (--max-latency-ms, --max-memory-mb, ...)"


def admitting(value: float, digits: int = 2) -> str:
    """``value`` rounded up to ``digits`` significant digits: a limit that admits it
    (0.222 -> "0.23")."""
    if not math.isfinite(value) or value <= 0:
        return f"{value:g}"
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    limit = math.ceil(round(value / step, 9)) * step
    return f"{limit:.{max(0, -math.floor(math.log10(step)))}f}"


def latency_basis(summary: dict[str, Any]) -> str:
    """In words: whether the front's latencies (and so the picks and a latency budget) are
    measured on the device or predicted by its table."""
    report = summary.get("front_measurement") or {}
    if report.get("status") != "measured":
        why = f" ({report['reason']})" if report.get("reason") else ""
        return f"latency: predicted by the device's table, not measured{why}"
    front = summary.get("front") or []
    parts = []
    for device in report.get("devices") or {}:
        metric = "latency" if summary.get("device") == device else f"latency@{device}"
        timed = sum(1 for r in front if measured_keys(metric)["measured"] in r)
        parts.append(f"{timed} of {len(front)} measured on {device}")
    return (f"latency: {', '.join(parts)} (median of interleaved rounds), the rest predicted "
            "by the refitted table; predicted_latency_ms is what the search used")
