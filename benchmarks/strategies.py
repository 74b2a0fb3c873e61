"""Search strategies side by side at an equal number of evaluations, or of trainings
(research harness for hypotheses H1 and H2: used by benchmarks/hypotheses.py and
benchmarks/bench_search.py).

Every strategy and seed is scored by one shared, caching `Evaluator`, so an arch's accuracy
is estimated once for all of them and the strategies differ only in which archs they ask
for. Hypervolumes share one reference point: error 1 for accuracy and 1.1 x the worst
value any run saw for the costs, so they can be compared across runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from optuna.trial import FrozenTrial

from edgenas.search.engine import SearchConfig, front, run_search
from edgenas.search.objectives import objective_matrix
from edgenas.search.objectives import Evaluator
from edgenas.search.pareto import hypervolume
from edgenas.search.trained_search import (SurrogateConfig, Trainer, run_surrogate_search,
                                           search_prior, surrogate_summary)
from edgenas.search.work_queue import completed, trained_trials
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace


def compare_strategies(space: SearchSpace, evaluator: Evaluator, strategies: Sequence[str],
                       trials: int, population: int, seeds: Sequence[int], *,
                       on_run: Callable[[dict[str, Any]], None] | None = None
                       ) -> dict[str, Any]:
    """Run every strategy with every seed; hypervolume per run and per strategy.

    The result holds, per strategy, the hypervolumes (one per seed), their mean and
    standard deviation, and the runs' trials under ``"runs"`` (not JSON: drop before
    writing) for callers that need the archs.
    """
    objectives = evaluator.objectives
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgenas-compare-") as folder:
        for strategy in strategies:
            for seed in seeds:
                start, calls = time.perf_counter(), evaluator.accuracy_calls
                study = run_search(space, evaluator,
                                   SearchConfig(strategy, trials, population, seed),
                                   storage=f"sqlite:///{folder}/{strategy}-{seed}.db",
                                   study_name="compare")
                run = {"strategy": strategy, "seed": seed, "trials": completed(study),
                       "seconds": time.perf_counter() - start,
                       "new_accuracy_calls": evaluator.accuracy_calls - calls}
                runs.append(run)
                if on_run is not None:
                    on_run(run)
    reference = shared_reference(runs, objectives)
    table: dict[str, Any] = {}
    for run in runs:
        points = front(run["trials"], objectives)
        run["hypervolume"] = (hypervolume(objective_matrix(points, objectives), reference)
                              if points else 0.0)
        run["front_size"] = len(points)
        table.setdefault(run["strategy"], []).append(run)
    summary: dict[str, Any] = {"objectives": list(objectives), "reference": reference,
                               "trials": trials, "population": population,
                               "seeds": list(seeds), "space": space.name, "strategies": {},
                               "runs": runs}
    for strategy, items in table.items():
        values = [r["hypervolume"] for r in items]
        summary["strategies"][strategy] = {
            "hypervolume": values, "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "mean_front_size": statistics.mean(r["front_size"] for r in items),
            "mean_seconds": statistics.mean(r["seconds"] for r in items)}
    summary["accuracy_estimates"] = evaluator.accuracy_calls
    return summary


def shared_reference(runs: list[dict[str, Any]], objectives: Sequence[str]) -> list[float]:
    """One hypervolume reference for every run: error 1 for accuracy, 1.1 x the worst cost
    any run saw, so hypervolumes compare across runs."""
    return [1.0 if name == "accuracy" else
            1.1 * max(t.user_attrs["metrics"][name] for r in runs for t in r["trials"])
            for name in objectives]


def searched_trials(summary: dict[str, Any], strategy: str) -> list[FrozenTrial]:
    """All completed trials of one strategy's runs (every seed)."""
    return [t for run in summary["runs"] if run["strategy"] == strategy for t in run["trials"]]


def jsonable(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without the Optuna trials (per-run numbers kept)."""
    out = {k: v for k, v in summary.items() if k != "runs"}
    out["runs"] = [{k: v for k, v in run.items() if k != "trials"} | {"trials": len(run["trials"])}
                   for run in summary["runs"]]
    return out


def compare_trained(space: SearchSpace, evaluator: Evaluator, strategies: Sequence[str],
                    seeds: Sequence[int], config: SurrogateConfig, trainer: Trainer,
                    recipe: dict[str, Any], folder: Path,
                    warm_start: Callable[[int], Sequence[Arch]] = lambda seed: (),
                    on_run: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Surrogate-assisted searches side by side at an equal training budget.

    Each (seed, strategy) run keeps its study in ``folder`` (a killed comparison resumes
    run by run, training by epoch); ``trainer`` should cache by arch, so an arch two
    strategies propose is trained once. A seed's runs start from the same warm start, so
    the strategies differ only in the candidates they choose to train. Hypervolumes use
    trained accuracies and one reference point for all runs; the warm start's own
    hypervolume is the line every strategy starts from.
    """
    objectives = evaluator.objectives
    runs: list[dict[str, Any]] = []
    for seed in seeds:  # seeds outside: a partial comparison covers every strategy
        for strategy in strategies:
            start = time.perf_counter()
            # "nsga2+prior": the strategy with the committed predictor as the surrogate's
            # prior (+prior-as-is: unscaled); an "@tag" only names the run (its objectives
            # are the evaluator's)
            name, _, variant = strategy.split("@")[0].partition("+")
            if variant not in ("", "prior", "prior-as-is"):
                raise ValueError(f"{strategy!r}: the variants are +prior (rescaled on the "
                                 "trained archs) and +prior-as-is (its values unscaled: for "
                                 "runs with the prior's own recipe and data)")
            settings = replace(config, strategy=name, seed=seed,
                               prior=variant in ("prior", "prior-as-is"),
                               prior_as_is=variant == "prior-as-is")
            study = run_surrogate_search(
                space, evaluator, trainer, settings,
                recipe, storage=f"sqlite:///{(folder / f'{strategy}-{seed}.db').resolve()}",
                warm_start=warm_start(seed))
            run = {"strategy": strategy, "seed": seed, "trials": trained_trials(study),
                   "seconds": time.perf_counter() - start,
                   "surrogate": surrogate_summary(study, seed, search_prior(settings))}
            runs.append(run)
            if on_run is not None:
                on_run(run)
    reference = shared_reference(runs, objectives)

    def volume(trials: list[FrozenTrial]) -> float:
        points = front(trials, objectives)
        return hypervolume(objective_matrix(points, objectives), reference) if points else 0.0

    table: dict[str, Any] = {}
    for run in runs:
        first = [t for t in run["trials"] if t.user_attrs.get("round") == 0]
        run["hypervolume"], run["warm_start_hypervolume"] = volume(run["trials"]), volume(first)
        run["front_size"] = len(front(run["trials"], objectives))
        table.setdefault(run["strategy"], []).append(run)
    summary: dict[str, Any] = {"objectives": list(objectives), "reference": reference,
                               "train_budget": config.train_budget,
                               "initial": config.initial, "per_round": config.per_round,
                               "inner_trials": config.inner_trials, "seeds": list(seeds),
                               "space": space.name, "strategies": {}, "runs": runs}
    for strategy, items in table.items():
        values = [r["hypervolume"] for r in items]
        gains = [r["hypervolume"] - r["warm_start_hypervolume"] for r in items]
        summary["strategies"][strategy] = {
            "hypervolume": values, "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "gain_over_warm_start": gains,
            "mean_front_size": statistics.mean(r["front_size"] for r in items),
            "mean_seconds": statistics.mean(r["seconds"] for r in items)}
    return summary
