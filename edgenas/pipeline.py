"""The main job: profile (if needed), train a supernet, search, train the picks and the
hand-designed baselines with one recipe, export, deploy, report.

Every stage writes into its own folder of the run directory and is skipped or resumed
when that folder already holds its result, so re-running the same command after a crash
or Ctrl-C continues where it stopped, and any stage can be re-run alone by deleting its
folder.
"""

from __future__ import annotations

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
    train_epochs: int = 4
    trials: int = 40
    population: int = 10
    val_limit: int = 200
    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    seed: int = 0
    check_table: bool = True  # re-time a few of the table's networks before trusting it


def _latency_table(config: RunConfig):  # noqa: ANN202
    """The device's table: measured if missing or stale, re-fitted if it no longer holds.

    Returns (table, drift check of the stored table or None when it was measured now).
    """
    from edgenas.device.descriptor import get_device
    from edgenas.profile.drift import MAX_VALIDATION_LOSS, check_drift
    from edgenas.profile.lut import load_lut, lut_path, open_lut, save_lut
    from edgenas.profile.profiler import profile
    from edgenas.space import get_space

    device, space = get_device(config.device), get_space(config.space)
    path = lut_path(config.profiles_dir, device.name, space.name)

    def save(table) -> None:  # noqa: ANN001
        save_lut(table, path)

    try:
        lut = open_lut(device, space, config.profiles_dir)
    except ProfileError as err:
        log.info("profiling %s for space %s (%s)", device.name, space.name, err)
        existing = load_lut(path) if path.exists() else None
        lut = profile(device, space, existing, checkpoint=save, validate=20)
        save(lut)
        return lut, None
    if not config.check_table:
        return lut, None
    drift = check_drift(device, lut)
    if drift["trusted"]:
        return lut, drift
    log.warning("%s: the table is off on this host (median measured/predicted %.2f, "
                "Kendall tau %.2f over %d re-timed networks); re-timing its calibration "
                "networks and refitting the correction", device.name,
                drift["median_ratio_measured_to_predicted"], drift["kendall_tau"], drift["n"])
    recorded = (lut.validation or {}).get("within_10pct", 1.0)
    held_out = len(lut.networks.get("validation", [])) or 20
    lut = profile(device, space, lut, checkpoint=save, validate=held_out, recalibrate=True)
    save(lut)
    if lut.validation["within_10pct"] < recorded - MAX_VALIDATION_LOSS:
        log.warning("%s: %.0f %% of held-out networks within +-10 %% after refitting (the table "
                    "had %.0f %% where it was measured); measuring the table anew",
                    device.name, 100 * lut.validation["within_10pct"], 100 * recorded)
        lut = profile(device, space, None, checkpoint=save, validate=held_out)
        save(lut)
    return lut, drift


def run_pipeline(config: RunConfig) -> dict[str, Any]:
    """Run (or continue) the main job; returns the summary written to ``summary.json``."""
    from edgenas.assess import assess
    from edgenas.profile.latency import LatencyModel
    from edgenas.deploy.deploy import deploy
    from edgenas.report import write_report
    from edgenas.device.descriptor import get_device
    from edgenas.export.export_arch import export_arch
    from edgenas.search.engine import SearchConfig, completed, run_search
    from edgenas.search.objectives import Budgets, Evaluator, check_budgets_reachable
    from edgenas.search.results import load_front, pick, write_results
    from edgenas.space import Arch, get_space
    from edgenas.space.baselines import baseline_archs
    from edgenas.train.loop import TrainConfig
    from edgenas.train.supernet_training import supernet_evaluator, train_supernet

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space(config.space)
    log.info("[1/6] latency table for %s", config.device)
    lut, drift = _latency_table(config)
    log.info("[2/6] supernet on %s", config.data)
    supernet = train_supernet(space, config.data, out / "supernet",
                              TrainConfig(epochs=config.supernet_epochs, seed=config.seed,
                                          val_fraction=0.3))
    log.info("[3/6] search")
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
    device = get_device(config.device)
    log.info("[4/6] the picks and the hand-designed baselines, trained with one recipe")
    picks = {name: Arch.from_dict(record["arch"]) for name, record in chosen.items()}
    recipe = TrainConfig(epochs=config.train_epochs, seed=config.seed, val_fraction=0.3)
    assessed = assess({**picks, **baseline_archs(space)}, device, lut, config.data,
                      out / "standalone", recipe)
    write_json_atomic({"recipe": recipe.to_dict(), "networks": assessed},
                      out / "standalone" / "assessment.json")
    by_name = {record["name"]: record for record in assessed}
    log.info("[5/6] export and [6/6] deploy")
    models = []
    for name, record in chosen.items():
        arch = picks[name]
        bundle = out / "bundles" / name
        exported, formats = None, ("onnx", "fp16", "int8")
        while exported is None:
            try:
                exported = export_arch(arch, bundle, formats, by_name[name]["run_dir"],
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
    baselines = [r for r in assessed if r["name"] not in picks]
    summary = {"config": asdict(config), "lut_validation": lut.validation, "lut_check": drift,
               "supernet": {k: supernet.get(k) for k in ("val_accuracy_largest",
                                                         "val_accuracy_smallest", "split")},
               "search": {k: front[k] for k in ("trials", "hypervolume")},
               "front_size": len(front["front"]), "models": models, "baselines": baselines,
               "recipe": recipe.to_dict()}
    write_json_atomic(summary, out / "summary.json")
    write_report(out, summary, lut, front["front"])
    return summary
