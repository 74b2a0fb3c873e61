"""The main job's report: one self-contained HTML file (PNGs inlined, also kept beside it).

What a deployer wants to see at a glance: where the searched models sit against networks
they would otherwise have used, whether the latency table can be trusted on this device,
and the numbers of what was exported.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Sequence

from edgenas.export.bundle import describe_check
from edgenas.profile.latency import LatencyModel
from edgenas.search.accuracy_source import describe as describe_accuracy
from edgenas.space import Arch

# Searched front (estimates), stand-alone trained picks, hand-designed baselines.
FRONT_COLOR, PICK_COLOR, BASELINE_COLOR = "#9db7c9", "#d1495b", "#222222"


def _pyplot():  # noqa: ANN202
    # local: importing this module must not switch every importer's matplotlib to Agg,
    # and only the figures need matplotlib (heavy)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def comparison_figure(path: Path, front: Sequence[dict[str, Any]],
                      models: Sequence[dict[str, Any]], baselines: Sequence[dict[str, Any]],
                      device: str, front_label: str) -> None:
    """Accuracy against latency, MACs and peak memory: front, picks and baselines.

    The front's latencies are the table's predictions and its accuracies what
    ``front_label`` says (trained, or supernet estimates); the picks and baselines are
    trained with one recipe and timed on the device (the markers say which is which). A
    baseline that did not converge has no accuracy to place, so it is left out.
    """
    baselines = [b for b in baselines if b.get("converged", True)]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), dpi=110, sharey=True)
    panels = (("latency on " + device + " (ms)", "latency", "measured_ms"),
              ("MACs (millions)", "macs", "macs"),
              ("peak memory, FP32 (MB)", "memory", "memory_bytes_fp32"))
    for ax, (label, front_key, key) in zip(axes, panels):
        scale = 1e6 if key in ("macs", "memory_bytes_fp32") else 1.0
        ax.scatter([r[front_key] for r in front], [100 * r["accuracy"] for r in front],
                   s=16, c=FRONT_COLOR, label=front_label)
        ax.scatter([m[key] / scale for m in models],
                   [100 * m["accuracy_exported"] for m in models], s=60, marker="*",
                   c=PICK_COLOR, label="exported picks (trained, measured)", zorder=3)
        for m in models:
            ax.annotate(m["name"], (m[key] / scale, 100 * m["accuracy_exported"]),
                        fontsize=7, xytext=(4, 3), textcoords="offset points", color=PICK_COLOR)
        ax.scatter([b[key] / scale for b in baselines],
                   [100 * b["val_accuracy"] for b in baselines], s=40, marker="s",
                   c=BASELINE_COLOR, label="hand-designed (trained, measured)", zorder=3)
        for b in baselines:
            ax.annotate(b["name"], (b[key] / scale, 100 * b["val_accuracy"]), fontsize=7,
                        xytext=(4, -9), textcoords="offset points")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path)
    plt.close(fig)


def latency_figure(path: Path, lut: Any, models: Sequence[dict[str, Any]],
                   baselines: Sequence[dict[str, Any]]) -> None:
    """Predicted against measured latency: the table's held-out archs and the models."""
    plt = _pyplot()
    model = LatencyModel(lut)
    items = lut.networks.get("validation", []) or lut.networks.get("fitting", [])
    measured = [i.measured_ms for i in items]
    predicted = [model.predict(Arch.from_json(i.arch)) for i in items]
    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=120)
    ax.scatter(measured, predicted, s=14, c=FRONT_COLOR, label="held-out archs")
    shown = [m for m in [*models, *baselines] if m.get("predicted_ms") is not None]
    ax.scatter([m["measured_ms"] for m in shown], [m["predicted_ms"] for m in shown], s=30,
               c=PICK_COLOR, label="exported models and in-space baselines")
    top = max([*measured, *(m["measured_ms"] for m in shown),
               *(m["predicted_ms"] for m in shown), 0.1])
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.plot([0, top], [0, 1.1 * top], ":", c="grey", lw=0.8)
    ax.plot([0, top], [0, 0.9 * top], ":", c="grey", lw=0.8)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{lut.device}: prediction vs measurement (dotted: ±10 %)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _schedule(recipe: dict[str, Any]) -> str:
    warmup = recipe.get("warmup_epochs", 0)
    return f"linear warm-up over {warmup:g} epochs, then cosine" if warmup else "cosine"


def _ms(value: float | None) -> str:
    return "outside the table" if value is None else f"{value:.3f} ms"


def _row(cells: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def _table_check(check: dict[str, Any] | None, validation: dict[str, Any] | None) -> str:
    """The drift check before the search and the table's held-out accuracy, in words."""
    parts = []
    if check is not None:
        verdict = ("trusted as it was" if check["trusted"] else
                   "not trusted: its table-fitting networks were timed again and the "
                   "correction refitted (or the table measured anew)")
        parts.append(f"<p>Before the search, {check['n']} of the table's held-out networks "
                     f"were timed again: {100 * check['within_10pct']:.0f} % within ±10 % "
                     f"of the prediction, median measured/predicted "
                     f"{check['median_ratio_measured_to_predicted']:.2f} — "
                     f"{html.escape(verdict)}.</p>")
    if validation:
        rows = "".join(_row([label, fmt.format(validation[key])]) for label, key, fmt in (
            ("held-out networks", "n", "{}"), ("within ±10 %", "within_10pct", "{:.1%}"),
            ("within ±5 %", "within_5pct", "{:.1%}"),
            ("mean abs. error", "mean_abs_pct_error", "{:.1f} %"),
            ("max abs. error", "max_abs_pct_error", "{:.1f} %"),
            ("Kendall tau", "kendall_tau", "{:.3f}"),
            ("timed", "measured", "{}")) if key in validation)
        floor = validation.get("noise_floor")
        if floor:  # what two rounds of the same networks agree on: the best a table can do
            rows += _row(["noise floor (round vs round) within ±10 %",
                          f"{floor['within_10pct']:.1%}"])
            rows += _row(["noise floor within ±5 %", f"{floor['within_5pct']:.1%}"])
        parts.append(f"<table>{rows}</table>")
    return "".join(parts)


def _surrogate(surrogate: dict[str, Any] | None) -> str:
    """How far the search's accuracy predictions held, in words."""
    if not surrogate:
        return ""
    parts = [f"<p>Every arch on the front was trained: the search trained "
             f"{surrogate['trained_archs']} archs in {surrogate['rounds']} rounds, choosing "
             f"each round's candidates with an accuracy surrogate fitted on those already "
             f"trained."]
    rungs = surrogate.get("rungs")
    if rungs:
        parts.append(" " + html.escape(rung_words(rungs)))
    final = surrogate.get("final")
    if final:
        parts.append(f" The final surrogate ({html.escape(final['model'])}) ranks the trained "
                     f"archs with a cross-validated Kendall tau of "
                     f"{final['cv_kendall_tau']:.2f} (mean error "
                     f"{100 * final['cv_mean_abs_error']:.1f} points).")
    proposals = surrogate.get("proposals")
    if proposals:
        parts.append(f" Predicted before training, the {proposals['n']} proposed candidates "
                     f"reached a Kendall tau of {proposals['kendall_tau']:.2f} against their "
                     f"trained accuracies (mean error "
                     f"{100 * proposals['mean_abs_error']:.1f} points).")
    return "".join(parts) + "</p>"


def rung_words(rungs: dict[str, Any]) -> str:
    """Successive halving in one sentence: how many archs each fidelity had, and how well
    each lower one ranked the archs it promoted."""
    epochs, archs = rungs["epochs"], rungs["archs"]
    steps = "; ".join(f"{n} of them went on to {e} epochs" for e, n in zip(epochs[1:], archs[1:]))
    taus = [f"{p['kendall_tau']:.2f} ({p['from_epochs']} against {p['epochs']} epochs, "
            f"{p['archs']} archs)" for p in rungs["promotions"] if p.get("kendall_tau") is not None]
    agreement = (f" Over the promoted archs, the shorter training ranked them as the longer "
                 f"one did with a Kendall tau of {', '.join(taus)}." if taus else "")
    return (f"Successive halving: every arch was first scored after {epochs[0]} "
            f"epoch{'' if epochs[0] == 1 else 's'} ({archs[0]} archs); {steps}, chosen as "
            f"whole Pareto layers of their scores and costs. The front holds only archs "
            f"trained to the full {epochs[-1]} epochs.{agreement}")


def _baseline_accuracy(record: dict[str, Any]) -> str:
    return (f"{100 * record['val_accuracy']:.1f} %" if record.get("converged", True)
            else "did not converge")


def _not_converged(baselines: Sequence[dict[str, Any]], rule: str | None) -> str:
    """The baselines that did not converge, what they reached, and the rule, in words."""
    failed = [b for b in baselines if not b.get("converged", True)]
    if not failed:
        return ""
    names = "; ".join(f"{html.escape(b['name'])} "
                      f"({html.escape(b['verdict'].removeprefix('did not converge: '))})"
                      for b in failed)
    return (f"<p>Not compared, because they did not converge under this recipe: {names}. "
            f"The rule: {html.escape(rule or '')}.</p>")


def _pick_rules(rules: dict[str, str] | None, same: dict[str, str] | None = None) -> str:
    """How each pick was chosen from the front, in the code's own words, and which picks
    landed on an arch another pick already is (exported once, under the other's name)."""
    if not rules:
        return ""
    items = "".join(f"<li>{html.escape(rule)}</li>" for rule in rules.values())
    items += "".join(f"<li>{html.escape(name)}: same arch as {html.escape(other)} (exported "
                     f"once, as {html.escape(other)})</li>" for name, other in (same or {}).items())
    return f"<p>How the picks were chosen from the front:</p><ul>{items}</ul>"


def _accuracy_source(source: dict[str, Any] | None, front: Sequence[dict[str, Any]]) -> str:
    """What the front's accuracies are (trained how, or estimated by what), in words."""
    line = describe_accuracy(source, front).removeprefix("accuracy: ")
    return f"<p>The front's accuracies: {html.escape(line)}.</p>"


def _front_measurement(report: dict[str, Any] | None) -> str:
    """How the search's latency predictions held on its own front, and after the refit."""
    if not report:
        return ""
    if report.get("status") != "measured":
        return (f"<h2>The front on the device</h2><p>Not measured ({html.escape(str(report.get('reason')))}): "
                "the front's latencies are the table's predictions.</p>")
    rows = []
    for device, numbers in report["devices"].items():
        for label, key in (("the search's predictions, front archs", "search_prediction_on_front"),
                           ("the refitted table, front archs (fitted on them)", "refitted_table_on_front"),
                           ("the search's predictions, archs next to the front", "search_prediction_on_held_out"),
                           ("the refitted table, archs timed after the refit", "timed_after_a_refit")):
            m = numbers.get(key)
            if m:
                rows.append(_row([html.escape(device), label, str(m["n"]),
                                  f"{100 * m['within_10pct']:.0f} %",
                                  f"{m['median_bias_pct']:+.1f} %", f"{m['kendall_tau']:.2f}"]))
    over = len(report.get("over_budget") or [])
    return ("<h2>The front on the device</h2><p>Every front arch was timed on the device as a "
            f"whole network ({report.get('rounds')} interleaved rounds, the table's protocol); "
            "the table was refitted on them and the front ranked on measured latency"
            + (f"; {over} arch(s) measured over the latency budget were left off" if over else "")
            + ".</p><table><tr><th>device</th><th>predictions</th><th>archs</th>"
            "<th>within ±10 %</th><th>median bias</th><th>Kendall tau</th></tr>"
            + "".join(rows) + "</table>")


def _precision_checks(model: dict[str, Any]) -> str:
    """Under a pick's formats: each reduced precision's agreement and accuracy against FP32
    (`edgenas.export.bundle.precision_checks`), and why one was left out."""
    checks = model.get("precision_checks") or {}
    rejected = model.get("rejected_formats") or {}
    lines = [describe_check(fmt, check) for fmt, check in checks.items()]
    lines += [f"{fmt} left out: {why}" for fmt, why in rejected.items()]
    return "".join(f"<br><small>{html.escape(line)}</small>" for line in lines)


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def write_report(out: Path, summary: dict[str, Any], lut: Any,
                 front: Sequence[dict[str, Any]]) -> Path:
    """``out/report.html`` plus ``comparison.png`` and ``latency.png`` beside it."""
    config, models, baselines = summary["config"], summary["models"], summary["baselines"]
    surrogate = summary["search"].get("surrogate")
    trained = surrogate is not None
    measured = (summary.get("front_measurement") or {}).get("status") == "measured"
    latency_words = "latency measured" if measured else "latency predicted"
    front_label = (f"Pareto front (trained, {latency_words})" if trained
                   else f"Pareto front (supernet estimate, {latency_words})")
    comparison_figure(out / "comparison.png", front, models, baselines, config["device"],
                      front_label)
    latency_figure(out / "latency.png", lut, models, baselines)
    model_rows = "".join(_row([
        m["name"], f"{100 * m['accuracy_estimate']:.1f} %", f"{100 * m['accuracy_exported']:.1f} %",
        f"{m['macs'] / 1e6:.2f} M", f"{m['params'] / 1e6:.3f} M",
        f"{m['memory_bytes_fp32'] / 1e6:.2f} MB", _ms(m.get("predicted_by_search_ms")),
        _ms(m.get("measured_front_ms")), _ms(m["predicted_ms"]), _ms(m["measured_ms"]),
        ", ".join(m["formats"]) + _precision_checks(m)]) for m in models)
    baseline_rows = "".join(_row([
        b["name"], _baseline_accuracy(b), f"{b['macs'] / 1e6:.2f} M",
        f"{b['params'] / 1e6:.3f} M", f"{b['memory_bytes_fp32'] / 1e6:.2f} MB",
        _ms(b["predicted_ms"]), _ms(b["measured_ms"])]) for b in baselines)
    recipe = summary["recipe"]
    search = summary["search"]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgenas report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}}td:first-child,th:first-child{{text-align:left}}table{{border-collapse:collapse}}img{{max-width:100%}}</style></head><body>
<h1>edgenas: {html.escape(config['space'])} on {html.escape(config['device'])}</h1>
<p>Data: {html.escape(config['data'])}; every accuracy is on a seeded validation split carved
from the training images (there is no separate test set; the search chose on the same
split, so the front's accuracies are slightly optimistic). Search: {search['trials']}
{'archs trained' if trained else 'trials'}, {summary['front_size']} Pareto-optimal archs,
hypervolume {search['hypervolume']:.4g}. The picks and the hand-designed baselines were all
trained from scratch with one recipe ({recipe['epochs']} epochs, batch
{recipe['batch_size']}, lr {recipe['lr']}, {_schedule(recipe)}) and timed on the device as
whole networks.</p>
{_accuracy_source(summary.get('accuracy_source'), front)}
{_surrogate(surrogate)}
<h2>Searched models against hand-designed ones</h2>
<img src="{_image(out / 'comparison.png')}" alt="accuracy against latency, MACs and memory">
<h2>Exported models</h2>
{_pick_rules(summary.get('pick_rules'), summary.get('same_picks'))}
<table><tr><th>model</th><th>{'in the search' if trained else 'supernet estimate'}</th><th>trained (val.)</th><th>MACs</th><th>params</th><th>peak memory</th><th>predicted in the search</th><th>measured after it</th><th>predicted at export (refitted table)</th><th>measured at deploy</th><th>formats</th></tr>{model_rows}</table>
<h2>Hand-designed baselines (same recipe)</h2>
<table><tr><th>network</th><th>trained (val.)</th><th>MACs</th><th>params</th><th>peak memory</th><th>predicted</th><th>measured</th></tr>{baseline_rows}</table>
{_not_converged(baselines, summary.get('convergence_rule'))}
{_front_measurement(summary.get("front_measurement"))}
<h2>Latency: predicted vs measured</h2>
<img src="{_image(out / 'latency.png')}" alt="latency">
<h2>Pareto front (all objectives)</h2>
<img src="{_image(out / 'search' / 'pareto.png')}" alt="Pareto front">
<h2>Latency table: can it be trusted here?</h2>
{_table_check(summary.get('lut_check'), summary['lut_validation'])}
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
