"""Search strategies side by side at an equal number of evaluations (research harness for
hypotheses H1 and H2: used by tools/hypotheses.py and tools/bench_search.py).

Every strategy and seed is scored by one shared, caching `Evaluator`, so an arch's accuracy
is estimated once for all of them and the strategies differ only in which archs they ask
for. Hypervolumes share one reference point: error 1 for accuracy and 1.1 x the worst
value any run saw for the costs, so they can be compared across runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any, Callable, Sequence

from optuna.trial import FrozenTrial

from edgenas.search.engine import SearchConfig, completed, front, objective_matrix, run_search
from edgenas.search.objectives import Evaluator
from edgenas.search.pareto import hypervolume
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
    reference = [1.0 if name == "accuracy" else
                 1.1 * max(t.user_attrs["metrics"][name] for r in runs for t in r["trials"])
                 for name in objectives]
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


def searched_trials(summary: dict[str, Any], strategy: str) -> list[FrozenTrial]:
    """All completed trials of one strategy's runs (every seed)."""
    return [t for run in summary["runs"] if run["strategy"] == strategy for t in run["trials"]]


def jsonable(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without the Optuna trials (per-run numbers kept)."""
    out = {k: v for k, v in summary.items() if k != "runs"}
    out["runs"] = [{k: v for k, v in run.items() if k != "trials"} | {"trials": len(run["trials"])}
                   for run in summary["runs"]]
    return out
