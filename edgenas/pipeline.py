"""The main job: profile (if needed), train a supernet, search, export, deploy, report.

Every stage writes into its own folder of the run directory and is skipped or resumed
when that folder already holds its result, so re-running the same command after a crash
or Ctrl-C continues where it stopped, and any stage can be re-run alone by deleting its
folder.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgenas.errors import EdgenasError, ProfileError
from edgenas.jsonio import write_json_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """The main job's settings; the defaults are the embedded default (minutes on a CPU)."""

    device: str = "host-cpu"
    space: str = "cifar"
    data: str = "digits"
    out: str = "runs/main"
    profiles_dir: str = "profiles"
    supernet_epochs: int = 15
    trials: int = 40
    population: int = 10
    val_limit: int = 200
    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    seed: int = 0


def _latency_table(config: RunConfig):  # noqa: ANN202
    from edgenas.device.descriptor import get_device
    from edgenas.profile.lut import load_lut, lut_path, open_lut, save_lut
    from edgenas.profile.profiler import profile
    from edgenas.space import get_space

    device, space = get_device(config.device), get_space(config.space)
    path = lut_path(config.profiles_dir, device.name, space.name)
    try:
        return open_lut(device, space, config.profiles_dir)
    except ProfileError as err:
        log.info("profiling %s for space %s (%s)", device.name, space.name, err)
    existing = load_lut(path) if path.exists() else None
    lut = profile(device, space, existing, checkpoint=lambda table: save_lut(table, path),
                  validate=20)
    save_lut(lut, path)
    return lut


def run_pipeline(config: RunConfig) -> dict[str, Any]:
    """Run (or continue) the main job; returns the summary written to ``summary.json``."""
    from edgenas.cost.latency import LatencyModel
    from edgenas.deploy.deploy import deploy
    from edgenas.device.descriptor import get_device
    from edgenas.export.export_arch import export_arch
    from edgenas.search.engine import SearchConfig, completed, run_search
    from edgenas.search.objectives import Budgets, Evaluator, check_budgets_reachable
    from edgenas.search.results import load_front, pick, write_results
    from edgenas.space import Arch, get_space
    from edgenas.train.loop import TrainConfig
    from edgenas.train.supernet_training import supernet_evaluator, train_supernet

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space(config.space)
    log.info("[1/5] latency table for %s", config.device)
    lut = _latency_table(config)
    log.info("[2/5] supernet on %s", config.data)
    supernet = train_supernet(space, config.data, out / "supernet",
                              TrainConfig(epochs=config.supernet_epochs, seed=config.seed,
                                          val_fraction=0.3))
    log.info("[3/5] search")
    evaluator = Evaluator(("accuracy", "latency", "memory"),
                          Budgets(config.max_latency_ms, config.max_memory_mb),
                          LatencyModel(lut),
                          supernet_evaluator(out / "supernet", val_limit=config.val_limit).evaluate)
    check_budgets_reachable(space, evaluator)
    search_dir = out / "search"
    search_dir.mkdir(exist_ok=True)
    study = run_search(space, evaluator,
                       SearchConfig("nsga2", config.trials, config.population, config.seed),
                       storage=f"sqlite:///{(search_dir / 'study.db').resolve()}")
    write_results(search_dir, completed(study), evaluator.objectives, config.population,
                  {"space": space.name, "device": config.device, "strategy": "nsga2",
                   "seed": config.seed, "supernet": str(out / "supernet")})
    front = load_front(search_dir)
    chosen = {"knee": pick(front, "knee"),
              "fastest": min(front["front"], key=lambda r: r["latency"])}
    log.info("[4/5] export and [5/5] deploy")
    models = []
    device = get_device(config.device)
    for name, record in chosen.items():
        arch = Arch.from_dict(record["arch"])
        bundle = out / "bundles" / name
        exported, formats = None, ("onnx", "fp16", "int8")
        while exported is None:
            try:
                exported = export_arch(arch, bundle, formats, str(out / "supernet"),
                                       profiles_dir=config.profiles_dir)
            except EdgenasError as err:
                if len(formats) == 1:
                    raise
                log.warning("%s: %s; exporting without %s", name, err, formats[-1])
                formats = formats[:-1]
        report = deploy(bundle, device)
        models.append({"name": name, "formats": list(formats), "trial": record["trial"],
                       "accuracy_estimate": record["accuracy"],
                       "accuracy_exported": exported["accuracy"]["top1"],
                       "macs": exported["macs"], "params": exported["params"],
                       "memory_bytes_fp32": exported["memory_bytes"]["fp32"],
                       "predicted_ms": report.get("predicted_ms"),
                       "measured_ms": report["latency_ms"]["median_ms"],
                       "bundle": str(bundle)})
    summary = {"config": asdict(config), "lut_validation": lut.validation,
               "supernet": {k: supernet.get(k) for k in ("val_accuracy_largest",
                                                         "val_accuracy_smallest", "split")},
               "search": {k: front[k] for k in ("trials", "hypervolume")},
               "front_size": len(front["front"]), "models": models}
    write_json_atomic(summary, out / "summary.json")
    write_report(out, summary, lut)
    return summary


def write_report(out: Path, summary: dict[str, Any], lut) -> None:  # noqa: ANN001
    """report.html (self-contained) plus latency.png: predicted vs measured on the device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgenas.cost.latency import LatencyModel
    from edgenas.space import Arch

    model = LatencyModel(lut)
    items = lut.networks.get("validation", []) or lut.networks.get("calibration", [])
    measured = [i["measured_ms"] for i in items]
    predicted = [model.predict(Arch.from_json(i["arch"])) for i in items]
    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=120)
    ax.scatter(measured, predicted, s=14, c="#7aa6c2", label="held-out archs")
    ms = [m["measured_ms"] for m in summary["models"]]
    ps = [m["predicted_ms"] for m in summary["models"]]
    ax.scatter(ms, ps, s=30, c="#d1495b", label="exported models")
    top = max(measured + ms + [p for p in ps if p is not None] + [0.1])
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.plot([0, top], [0, 1.1 * top], ":", c="grey", lw=0.8)
    ax.plot([0, top], [0, 0.9 * top], ":", c="grey", lw=0.8)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{lut.device}: prediction vs measurement (dotted: ±10 %)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency.png")
    plt.close(fig)
    rows = "".join(
        f"<tr><td>{html.escape(m['name'])}</td><td>{100 * m['accuracy_estimate']:.1f} %</td>"
        f"<td>{100 * m['accuracy_exported']:.1f} %</td><td>{m['macs'] / 1e6:.2f} M</td>"
        f"<td>{m['params'] / 1e6:.3f} M</td><td>{m['memory_bytes_fp32'] / 1e6:.2f} MB</td>"
        f"<td>{m['predicted_ms']:.3f} ms</td><td>{m['measured_ms']:.3f} ms</td>"
        f"<td>{html.escape(', '.join(m['formats']))}</td></tr>" for m in summary["models"])
    import base64

    def image(path: Path) -> str:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()

    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgenas report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}}table{{border-collapse:collapse}}</style></head><body>
<h1>edgenas: {html.escape(summary['config']['space'])} on {html.escape(summary['config']['device'])}</h1>
<p>Data: {html.escape(summary['config']['data'])} (accuracy on a seeded validation split carved from the training images).
Search: {summary['search']['trials']} trials, {summary['front_size']} Pareto-optimal archs, hypervolume {summary['search']['hypervolume']:.4g}.</p>
<h2>Exported models</h2><table><tr><th>model</th><th>supernet estimate</th><th>exported (val.)</th><th>MACs</th><th>params</th><th>peak memory</th><th>predicted</th><th>measured</th><th>formats</th></tr>{rows}</table>
<h2>Pareto front</h2><img src="{image(out / 'search' / 'pareto.png')}" alt="Pareto front">
<h2>Latency: predicted vs measured</h2><img src="{image(out / 'latency.png')}" alt="latency">
<pre>{html.escape(json.dumps(summary['lut_validation'], indent=1)[:2000])}</pre>
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
