"""The main job as a list of named stages: latency table, supernet (only for the
``supernet`` estimator), search, training of the hand-designed baselines with the search's
recipe (the picks were trained by the search), export, deploy, report.

One loop drives them. A stage that finished wrote its result into the run directory
(``stages/<name>.json``, with the settings it ran under); a re-run of the same command
loads those results and goes on from the first stage that did not finish, which resumes
its own work (training from its checkpoint, the search from its study). Any stage, and
every stage after it, is re-run by deleting its result file; changed settings re-run
from the first stage.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

from edgenas.assess import assess, slug
from edgenas.deploy.deploy import deploy
from edgenas.device.descriptor import Device, get_device
from edgenas.errors import ConfigError
from edgenas.export.bundle import precision_checks
from edgenas.export_arch import export_arch
from edgenas.jsonio import write_json_atomic
from edgenas.locking import folder_lock
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import LUT, load_lut
from edgenas.profile.trust import CALIBRATE, VALIDATE, trusted_table
from edgenas.report import write_report
from edgenas.search import accuracy_source
from edgenas.search.engine import SearchConfig
from edgenas.search.job import SearchJob, TrainedSearch, estimated_search, trained_search
from edgenas.search.objectives import Budgets, SearchError
from edgenas.search.measured_front import latency_targets, write_measured_results
from edgenas.search.results import PICK_RULES, load_front, pick, write_exports
from edgenas.search.trained_search import SurrogateConfig
from edgenas.space import Arch, get_space
from edgenas.stage_results import (DeployedPick, ExportedPick, Pick, SearchResult,
                                   StageResultError, SupernetResult, TableResult, TrainResult,
                                   by_pick_from_dict, by_pick_to_dict)
from edgenas.space.baselines import baseline_archs
from edgenas.train.loop import TrainConfig
from edgenas.train.standalone import CONVERGENCE_RULE, convergence_floor, converged
from edgenas.train.supernet_training import supernet_evaluator, train_supernet

log = logging.getLogger(__name__)


#: Networks the main job times to fit and to judge a table it measures itself.
MAIN_CALIBRATE, MAIN_VALIDATE = CALIBRATE, VALIDATE


def _option(default: Any, help: str, **argparse: Any) -> Any:
    """A `RunConfig` field that is also an option of `edgenas run` (``argparse``: what
    ``add_argument`` takes besides the default and the help; ``flag`` overrides the name)."""
    return field(default=default, metadata={"help": help, "argparse": argparse})


@dataclass(frozen=True)
class RunConfig:
    """The main job's settings; the defaults are the embedded default (minutes on a CPU).

    Each field that the command line sets carries its option's help, so `add_arguments`
    and `from_arguments` are the whole of `edgenas run`'s option handling: a default is
    written once, here."""

    device: str = _option("host-cpu", "device to search for and deploy on: a name from "
                          "devices/ or a descriptor .toml (default %(default)s)")
    space: str = _option("cifar", "search space: cifar or imagenet (default %(default)s)")
    data: str = _option("digits", "images to train and validate on: digits (built in), "
                        "cifar10:DIR or an ImageFolder tree (default %(default)s)")
    out: str = _option("runs/main", "run directory; re-running the same command there "
                       "resumes it (default %(default)s)")
    profiles_dir: str = _option("profiles", "where latency tables are read and written "
                                "(default %(default)s)")
    estimator: str = _option("trained", "trained: a surrogate-assisted search whose front "
                             "holds trained archs; supernet: a weight-sharing supernet scores "
                             "every trial (worth it with a GPU) (default %(default)s)",
                             choices=("trained", "supernet"))
    supernet_epochs: int = _option(15, "with --estimator supernet: epochs of supernet "
                                   "training (default %(default)s)", type=int)
    train_epochs: int = _option(2, "epochs of the one recipe the searched archs and the "
                                "baselines are trained with (default %(default)s)", type=int)
    train_budget: int = _option(24, "archs the search trains in all (with --rungs: each at "
                                "least to the first rung; default %(default)s)", type=int)
    per_round: int = 3          # of which 10 first, then this many per round
    # successive halving: every arch is scored after these epochs of the recipe, and 1 in
    # ``halving`` of them goes on to the full recipe. Off by default: after 1 of the 2
    # epochs of the default recipe most archs still score at chance (docs/results.md)
    rungs: tuple[int, ...] = _option(
        (), "successive halving: every arch is first trained this many epochs of the recipe "
        "and scored, and 1 in --halving goes on to the next rung, the last to the full "
        "recipe (default: none, every arch trained in full; with the default 2-epoch recipe "
        "an arch scored after 1 epoch is mostly at chance)", type=int, nargs="*",
        metavar="EPOCHS")
    halving: int = _option(2, "with rungs: 1 in this many archs of a rung goes on to the "
                           "next (default %(default)s)", type=int)
    trials: int = _option(300, "inner-search trials per round (supernet: trials in all; "
                          "default %(default)s)", type=int)
    population: int = _option(20, "NSGA-II population of the search (default %(default)s)",
                              type=int)
    val_limit: int = _option(200, "with --estimator supernet: validation images each trial "
                             "is scored on (default %(default)s)", type=int)
    train_batch: int = 32       # the recipe's batch size and learning rate (digits: 2
    train_lr: float = 0.1       # epochs reach 80-90 %, ~15 s per arch on 2 cores)
    # the recipe's linear learning-rate warm-up, for every arch it trains: deep baselines
    # (ResNet-56) fed the full rate from the first step spend a short recipe recovering
    train_warmup_epochs: float = _option(
        0.5, "the recipe's linear learning-rate warm-up, in epochs (fractions allowed), "
        "before the cosine decay; 0 for none, below --train-epochs (default %(default)s)",
        type=float, metavar="EPOCHS")
    max_latency_ms: float | None = _option(
        None, "latency budget in ms on the device: the search keeps to it as the latency "
        "table predicts, and a front arch measured over it is left off the front and never "
        "picked (default: none)", type=float)
    max_memory_mb: float | None = _option(
        None, "budget on peak inference memory at FP32, in MB (1e6 bytes), as the latency "
        "budget (default: none)", type=float)
    seed: int = _option(0, "seed of the search, the split and the training "
                        "(default %(default)s)", type=int)
    check_table: bool = _option(
        True, "trust the stored latency table without re-timing 10 of its networks first (a "
        "table that no longer holds is otherwise refitted, or measured anew; default: the "
        "table is checked)", flag="--skip-table-check", action="store_false")
    table_minutes: float = _option(
        1.5, "minutes of unit timing when the device's table must be measured anew (a "
        "sample of units, the rest predicted; 'edgenas profile' times them all) "
        "(default %(default)s)", type=float)
    baselines: str = _option(
        "all", "hand-designed networks trained with the same recipe for comparison: all, "
        "none, or a comma list (resnet-20, resnet-56, mobilenetv2-in-space for the cifar "
        "space) (default %(default)s)")
    data_limit: int | None = _option(
        None, "train and validate on a class-balanced subset of N images (quick trial runs; "
        "the default uses them all)", type=int, metavar="N")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One option per field that has one (``--name-with-dashes``), with its default."""
        for item in fields(cls):
            if "help" not in item.metadata:
                continue
            options = dict(item.metadata["argparse"])
            flag = options.pop("flag", "--" + item.name.replace("_", "-"))
            default = list(item.default) if isinstance(item.default, tuple) else item.default
            parser.add_argument(flag, dest=item.name, default=default,
                                help=item.metadata["help"], **options)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> "RunConfig":
        """The settings `add_arguments`' options were given."""
        values = {item.name: getattr(args, item.name) for item in fields(cls)
                  if "help" in item.metadata}
        values["rungs"] = tuple(values["rungs"])
        return cls(**values)

    def check(self) -> None:
        """Refuse settings no stage could run with, naming the flag, before any work: a bad
        number found by the search stage would cost the user the table check first."""
        at_least = {"--supernet-epochs": (self.supernet_epochs, 1, ""),
                    "--train-epochs": (self.train_epochs, 1, ""),
                    "--trials": (self.trials, 1, ""), "--population": (self.population, 2, ""),
                    "--val-limit": (self.val_limit, 1, ""), "--seed": (self.seed, 0, "")}
        if self.estimator == "trained":
            at_least["--train-budget"] = (self.train_budget, SurrogateConfig.initial,
                                          " (the archs trained before the first surrogate)")
        if self.data_limit is not None:
            at_least["--data-limit"] = (self.data_limit, 20, " (both splits hold every class)")
        if self.estimator == "trained":
            at_least["--halving"] = (self.halving, 2, " (1 in this many archs goes on)")
        for flag, (value, low, why) in at_least.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{flag} {value!r}: must be a whole number >= {low}{why}")
        warmup = self.train_warmup_epochs
        if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) \
                or not 0 <= warmup < self.train_epochs:
            raise ConfigError(f"--train-warmup-epochs {warmup!r}: must be >= 0 and below "
                              f"--train-epochs ({self.train_epochs})")
        if not (isinstance(self.table_minutes, (int, float)) and 0 < self.table_minutes < 1e6):
            raise ConfigError(f"--table-minutes {self.table_minutes!r}: must be a positive "
                              "number of minutes")
        try:
            Budgets(self.max_latency_ms, self.max_memory_mb).limits()
        except SearchError as err:
            raise ConfigError(f"--{str(err).replace('_', '-')}") from None
        if self.estimator == "trained":
            try:
                self.surrogate_config().schedule(self.train_epochs)
            except SearchError as err:
                raise ConfigError(str(err)) from None

    def surrogate_config(self) -> SurrogateConfig:
        """The trained search's settings."""
        return SurrogateConfig(self.train_budget, per_round=self.per_round, seed=self.seed,
                               inner_trials=self.trials, population=self.population,
                               rungs=tuple(self.rungs), halving=self.halving)


@dataclass
class RunState:
    """What the stages share: the settings, the run directory and each finished result
    (`edgenas.stage_results`), by stage name; a stage reads an earlier one's by its
    property (``state.search.chosen``)."""

    config: RunConfig
    out: Path
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> TableResult:
        return self.results["table"]

    @property
    def supernet(self) -> SupernetResult:
        return self.results["supernet"]

    @property
    def search(self) -> SearchResult:
        return self.results["search"]

    @property
    def train(self) -> TrainResult:
        return self.results["train"]

    @property
    def exported(self) -> dict[str, ExportedPick]:
        return self.results["export"]

    @property
    def deployed(self) -> dict[str, DeployedPick]:
        return self.results["deploy"]

    def lut(self) -> LUT:
        """The device's table as the stages left it on disk (the search's measured front
        refits and saves it, so a later stage must read it again)."""
        return load_lut(self.table.path)

    @cached_property
    def device(self) -> Device:
        """The run's device, its descriptor read and validated once per run."""
        return get_device(self.config.device)


def _as_stored(data: Any, where: str) -> Any:
    """A result that is its own JSON (the report's summary)."""
    return data


@dataclass(frozen=True)
class Stage:
    """One named step of the main job: ``run`` returns its result as a value, ``store``
    makes it the JSON its result file holds and ``load`` reads that back (raising
    `StageResultError` where the file is not what the stage writes)."""

    name: str
    title: str
    run: Callable[[RunState], Any]
    store: Callable[[Any], Any] = lambda result: result
    load: Callable[[Any, str], Any] = _as_stored


def _table(state: RunState) -> TableResult:
    config = state.config
    table = trusted_table(state.device, get_space(config.space),
                          config.profiles_dir, config.table_minutes, config.check_table)
    return TableResult(table.path, table.lut.validation, table.check)


def _supernet(state: RunState) -> SupernetResult:
    config = state.config
    if config.estimator != "supernet":
        return SupernetResult(skipped=f"the {config.estimator!r} estimator needs no supernet")
    record = train_supernet(get_space(config.space), config.data, state.out / "supernet",
                            TrainConfig(epochs=config.supernet_epochs, seed=config.seed,
                                        val_fraction=0.3, limit=config.data_limit))
    return SupernetResult(None, record.get("val_accuracy_largest"),
                          record.get("val_accuracy_smallest"), record.get("split"))


def _search(state: RunState) -> SearchResult:
    config, space = state.config, get_space(state.config.space)
    search_dir = state.out / "search"
    search_dir.mkdir(exist_ok=True)
    storage = f"sqlite:///{(search_dir / 'study.db').resolve()}"
    budgets = Budgets(config.max_latency_ms, config.max_memory_mb)
    latency = LatencyModel(state.lut())
    info: dict[str, Any] = {"space": space.name, "device": config.device, "seed": config.seed,
                            "budgets": {k: v for k, v in vars(budgets).items() if v is not None}}
    if config.estimator == "supernet":
        supernet = state.out / "supernet"
        job: SearchJob = estimated_search(
            space, ("accuracy", "latency", "memory"), budgets,
            SearchConfig("nsga2", config.trials, config.population, config.seed),
            supernet_evaluator(supernet, val_limit=config.val_limit).evaluate,
            source=accuracy_source.estimated(f"supernet:{supernet}", accuracy=True,
                                             what=accuracy_source.SUPERNET),
            latency_model=latency)
    else:
        job = trained_search(space, ("accuracy", "latency", "memory"), budgets,
                             config.surrogate_config(), _recipe(state), config.data,
                             search_dir, latency_model=latency)
    trials, outcome = job.outcome(job.run(storage=storage))
    if isinstance(job, TrainedSearch):
        surrogate = outcome["surrogate"]
        info.update(outcome)
    else:
        surrogate = None
        info.update(strategy=outcome["strategy"], supernet=str(state.out / "supernet"),
                    accuracy_source=outcome["accuracy_source"])
    # every front arch timed on the device, the table refitted on them (and saved)
    write_measured_results(search_dir, trials, job.evaluator.objectives, config.population, info,
                           latency_targets({"latency": latency},
                                           {"latency": state.device},
                                           config.profiles_dir), measure=True)
    front = load_front(search_dir)
    chosen, same = choose_picks(front, PICKS)
    return SearchResult(front["trials"], front["hypervolume"], front["front"],
                        {name: Pick(record) for name, record in chosen.items()}, same,
                        front.get("front_measurement"), surrogate,
                        front.get("accuracy_source"))


#: The picks the main job exports, in order: a later one that is the same arch as an
#: earlier one is exported once, under the earlier name.
PICKS = ("knee", "fastest")


def choose_picks(front: dict[str, Any], names: Sequence[str] = PICKS
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(the distinct picks by name, {pick: the earlier pick that is the same arch}).

    On a small front two rules often land on one arch; exporting, deploying and reporting
    it twice under two names would suggest a choice that is not there."""
    chosen: dict[str, dict[str, Any]] = {}
    same: dict[str, str] = {}
    for name in names:
        record = pick(front, name)
        earlier = next((other for other, kept in chosen.items()
                        if kept["arch"] == record["arch"]), None)
        if earlier is None:
            chosen[name] = record
        else:
            same[name] = earlier
    return chosen, same


def _picks(state: RunState) -> dict[str, Arch]:
    return {name: picked.arch for name, picked in state.search.chosen.items()}


def _recipe(state: RunState) -> TrainConfig:
    config = state.config
    return TrainConfig(epochs=config.train_epochs, batch_size=config.train_batch,
                       lr=config.train_lr, seed=config.seed, val_fraction=0.3,
                       limit=config.data_limit, warmup_epochs=config.train_warmup_epochs)


def _train(state: RunState) -> TrainResult:
    recipe = _recipe(state)
    trained = {name: picked.run_dir  # the search trained these with this recipe
               for name, picked in state.search.chosen.items() if picked.run_dir is not None}
    assessed = assess({**_picks(state), **chosen_baselines(state.config)},
                      state.device, state.lut(), state.config.data,
                      state.out / "standalone", recipe, run_dirs=trained)
    result = TrainResult(recipe.to_dict(), assessed)
    write_json_atomic(result.to_dict(), state.out / "standalone" / "assessment.json")
    return result


def assess_convergence(record: dict[str, Any], best_accuracy: float) -> dict[str, Any]:
    """A trained network's record with ``converged`` and its ``verdict`` in words
    (`CONVERGENCE_RULE`; ``best_accuracy``: the best network trained with the same recipe).
    One that did not converge has no accuracy to compare, only the one it reached."""
    num_classes = Arch.from_dict(record["arch"]).num_classes
    ok = converged(record["val_accuracy"], num_classes, best_accuracy)
    floor = convergence_floor(num_classes, best_accuracy)
    verdict = "converged" if ok else (f"did not converge: {100 * record['val_accuracy']:.1f} % "
                                      f"is below {100 * floor:.1f} % (chance "
                                      f"{100 / num_classes:.1f} %, best with this recipe "
                                      f"{100 * best_accuracy:.1f} %)")
    return {**record, "converged": ok, "verdict": verdict}


def chosen_baselines(config: RunConfig) -> dict[str, Arch]:
    """The hand-designed networks ``config.baselines`` names (display names or their folder
    names, e.g. resnet-20), checked before any work starts."""
    available = baseline_archs(get_space(config.space))
    if config.baselines == "all":
        return available
    if config.baselines == "none":
        return {}
    by_key = {key: name for name in available for key in (name.lower(), slug(name))}
    wanted = [item.strip() for item in config.baselines.split(",") if item.strip()]
    unknown = [item for item in wanted if item.lower() not in by_key]
    if unknown or not wanted:
        raise ConfigError(f"--baselines {config.baselines!r}: {', '.join(unknown) or 'empty'} "
                          f"unknown; choose all, none, or from "
                          f"{', '.join(slug(n) for n in available)}")
    return {by_key[item.lower()]: available[by_key[item.lower()]] for item in wanted}


def _export(state: RunState) -> dict[str, ExportedPick]:
    """Every pick in FP32, FP16 and INT8; a format that fails its agreement check is left
    out, unless the device runs it (its latency is what the search optimised): that one
    ships, its agreement and accuracy shown beside FP32's in the report."""
    run_dirs = state.train.run_dirs()
    runs = state.device.runtime.model_format
    exported = {}
    for name, arch in _picks(state).items():
        bundle = state.out / "bundles" / name
        metrics = export_arch(arch, bundle, ("onnx", "fp16", "int8"), run_dirs[name],
                              profiles_dir=state.config.profiles_dir, drop_rejected=True,
                              keep=(runs,) if runs != "onnx" else ())
        formats = metrics["formats"]
        exported[name] = ExportedPick(
            bundle, list(formats),
            # why a variant was left out (its agreement with FP32), per format
            {fmt: check["rejected"] for fmt, check in metrics.get("verification", {}).items()
             if isinstance(check, dict) and "rejected" in check},
            precision_checks(metrics), metrics["accuracy"]["top1"], metrics["macs"],
            metrics["params"], metrics["memory_bytes"]["fp32"])
    # beside the front, for 'edgenas pareto': how each pick's reduced precisions held
    write_exports(state.out / "search", {
        name: {"bundle": str(picked.bundle), "formats": picked.formats,
               "precision_checks": picked.precision_checks}
        for name, picked in exported.items()})
    return exported


def _deploy(state: RunState) -> dict[str, DeployedPick]:
    device = state.device
    reports = {}
    for name, exported in state.exported.items():
        report = deploy(exported.bundle, device)
        load = report.get("load") or {}
        reports[name] = DeployedPick(report.get("predicted_ms"),
                                     report["latency_ms"]["median_ms"],
                                     report["latency_ms"]["rounds_ms"],
                                     report.get("lut_drifting"),
                                     # how busy the device was, and the time at the
                                     load.get("ratio"),  # table's level of load
                                     load.get("median_at_table_level_ms"))
    return reports


def _report(state: RunState) -> dict[str, Any]:
    search, picks = state.search, state.search.chosen
    models = []
    for name, picked in picks.items():
        exported, deployed = state.exported[name], state.deployed[name]
        models.append({"name": name, "formats": exported.formats, "trial": picked.trial,
                       "rejected_formats": exported.rejected,
                       # FP16 / INT8 against FP32: top-1 agreement, validation accuracy
                       "precision_checks": exported.precision_checks,
                       "accuracy_estimate": picked.accuracy,
                       "accuracy_exported": exported.accuracy,
                       "macs": exported.macs, "params": exported.params,
                       "memory_bytes_fp32": exported.memory_bytes_fp32,
                       "predicted_ms": deployed.predicted_ms, "rule": PICK_RULES[name],
                       # the search's prediction, and the front's measurement before export
                       "predicted_by_search_ms": picked.predicted_by_search_ms,
                       "measured_front_ms": picked.measured_front_ms,
                       "measured_ms": deployed.measured_ms, "bundle": str(exported.bundle),
                       "load_ratio": deployed.load_ratio,
                       "measured_at_table_level_ms": deployed.measured_at_table_level_ms})
    networks = state.train.networks
    best = max(r["val_accuracy"] for r in networks)
    baselines = [assess_convergence(r, best) for r in networks if r["name"] not in picks]
    summary = {"config": asdict(state.config), "lut_validation": state.table.validation,
               "lut_check": state.table.check,
               "supernet": state.supernet.to_dict(),
               "search": {"trials": search.trials, "hypervolume": search.hypervolume,
                          "surrogate": search.surrogate},
               "front_size": len(search.front), "models": models,
               "front_measurement": search.front_measurement,
               "same_picks": search.same_picks,
               "pick_rules": {name: PICK_RULES[name] for name in (*picks, *search.same_picks)},
               "accuracy_source": search.accuracy_source,
               "baselines": baselines, "convergence_rule": CONVERGENCE_RULE,
               "recipe": state.train.recipe}
    write_json_atomic(summary, state.out / "summary.json")
    write_report(state.out, summary, state.lut(), search.front)
    return summary


def _to_dict(result: Any) -> Any:
    return result.to_dict()


STAGES: tuple[Stage, ...] = (
    Stage("table", "latency table for the device", _table, _to_dict, TableResult.from_dict),
    Stage("supernet", "supernet on the data", _supernet, _to_dict, SupernetResult.from_dict),
    Stage("search", "search", _search, _to_dict, SearchResult.from_dict),
    Stage("train", "the picks and the hand-designed baselines, trained with one recipe", _train,
          _to_dict, TrainResult.from_dict),
    Stage("export", "export (FP32, FP16, INT8), verified against PyTorch", _export,
          by_pick_to_dict, by_pick_from_dict(ExportedPick.from_dict)),
    Stage("deploy", "deploy and benchmark on the device", _deploy, by_pick_to_dict,
          by_pick_from_dict(DeployedPick.from_dict)),
    Stage("report", "summary and report", _report),
)


def run_pipeline(config: RunConfig) -> dict[str, Any]:
    """Run (or continue) the main job; returns the summary written to ``summary.json``."""
    config.check()
    chosen_baselines(config)  # a misspelt name fails now, not after the search
    with folder_lock(config.out, "edgenas run"):
        return _run_stages(config)


def _run_stages(config: RunConfig) -> dict[str, Any]:
    state = RunState(config, Path(config.out))
    state.out.mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps(asdict(config)))  # as stored: lists, not tuples
    fresh = False  # once a stage runs, every stage after it runs too
    for number, stage in enumerate(STAGES, 1):
        path = state.out / "stages" / f"{stage.name}.json"
        stored = _stored_result(path)
        if not fresh and stored is not None and stored.get("config") == settings:
            try:
                state.results[stage.name] = stage.load(stored["result"], str(path))
            except StageResultError as err:
                log.warning("%s; running the stage again", err)
            else:
                log.info("[%d/%d] %s: done (%s)", number, len(STAGES), stage.title, path)
                continue
        fresh = True
        log.info("[%d/%d] %s", number, len(STAGES), stage.title)
        state.results[stage.name] = stage.run(state)
        write_json_atomic({"config": settings, "result": stage.store(state.results[stage.name])},
                          path)
    return state.results["report"]


def _stored_result(path: Path) -> dict[str, Any] | None:
    """A finished stage's stored result, or None (missing or unreadable: run it again)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) and "result" in stored else None
