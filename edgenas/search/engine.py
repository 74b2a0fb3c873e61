"""The search: an Optuna study over a space's fixed-length encoding.

The strategy (`edgenas.search.strategy`) gives the sampler and what a trial reports; every
strategy is scored by the same `Evaluator`. Any number of workers can share a study through
an RDB storage (SQLite by default, PostgreSQL to scale out), opened by
`edgenas.search.study_store`; who runs which trial, and waiting out a lost connection, is
`edgenas.search.work_queue`'s. A study never completes more trials than asked for, and an
arch is never evaluated twice: a repeat reuses the earlier result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import optuna
from optuna.storages import RDBStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from edgenas.search.objectives import (Evaluator, SearchError, TrialResult,
                                       objective_matrix)
from edgenas.search.pareto import hypervolume, non_dominated
from edgenas.search.strategy import Strategy, as_strategy
from edgenas.search.study_store import completed_count, identity, open_storage, open_study
from edgenas.search.work_queue import WorkQueue
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)


@dataclass
class SearchConfig:
    """What to run; everything that changes the result is here (and stored in the study)."""

    strategy: Strategy = as_strategy("nsga2")  # a name is looked up once, here
    trials: int = 100
    population: int = 20
    seed: int = 0
    weights: dict[str, float] = field(default_factory=dict)  # weighted-sum lambdas
    crossover_prob: float = 0.9
    macro_mutation_prob: float = 0.15
    stage_mutation_prob: float = 0.15
    block_mutation_prob: float = 0.05

    def __post_init__(self) -> None:
        self.strategy = as_strategy(self.strategy)  # refuses an unknown name, listing them
        if self.trials < 1 or self.population < 2:
            raise SearchError("need trials >= 1 and population >= 2")


def record_result(trial: optuna.Trial, result: TrialResult) -> None:
    """Store a scored arch's metrics, budget margins and feasibility on its trial."""
    for key, value in result.as_attrs().items():
        trial.set_user_attr(key, value)


def _previous_result(study: optuna.Study, key: str) -> FrozenTrial | None:
    """An earlier trial that evaluated this arch: completed, or failed after evaluating
    (a worker killed between scoring an arch and reporting it). A result only partly
    written is none: a study from before `record_result` can hold one, and a worker reusing
    it would crash on the missing keys."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        if trial.user_attrs.get("arch") == key and TrialResult.stored_in(trial.user_attrs):
            return trial
    return None


class BudgetWait:
    """Optuna callback: after a trial pruned because the budget is taken, wait a little
    for stragglers instead of spinning. The wait comes after the trial is finished: waited
    inside the objective, a pruned trial would still count as running for its peers, and
    the workers of a search would hold each other off its last trial."""

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds
        self.numbers: set[int] = set()  # trials this worker pruned for the budget

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.number in self.numbers:
            self.numbers.discard(trial.number)
            time.sleep(self.seconds)


def make_objective(space: SearchSpace, evaluator: Evaluator, config: SearchConfig,
                   references: dict[str, float] | None = None,
                   wait: BudgetWait | None = None) -> Callable[[optuna.Trial], Any]:
    """The function Optuna calls per trial (``wait``: the callback that is told which
    trials were pruned for the budget)."""
    genes, strategy = space.genes(), config.strategy

    def objective(trial: optuna.Trial) -> Any:
        queue = WorkQueue(trial.study)
        queue.begin(trial)
        if not queue.within_budget(trial, config.trials):
            if wait is not None:
                wait.numbers.add(trial.number)
            raise optuna.TrialPruned("enough trials are complete or running")
        params = {name: trial.suggest_categorical(name, choices) for name, choices in genes.items()}
        arch = space.decode(params)
        key = arch.to_json()
        trial.set_user_attr("arch", key)
        earlier = _previous_result(trial.study, key)
        if earlier is not None:  # evaluated by this or another worker: reuse, don't re-run
            result = TrialResult.from_attrs(earlier.user_attrs)
            trial.set_user_attr("repeat_of", earlier.number)
        else:
            result = evaluator.evaluate(arch)
        record_result(trial, result)
        for name, value in zip(evaluator.limits(), result.constraints):
            trial.set_constraint(name, value)  # <= 0: within budget
        return strategy.value(result, evaluator, config.weights, references)

    return objective


def create_study(space: SearchSpace, evaluator: Evaluator, config: SearchConfig,
                 storage: str | RDBStorage, study_name: str, resume: bool) -> optuna.Study:
    """Create a study, or load it to resume or to add a worker; refuses a mismatch."""
    strategy = config.strategy
    study = open_study(study_name, storage, strategy.sampler(config),
                       strategy.directions(evaluator), _identity(space, evaluator, config),
                       strategy.metric_names(evaluator), join_unrecorded=True)
    joined = 0 if resume else completed_count(study)
    if joined:
        log.info("joining study %r with %d completed trials", study_name, joined)
    return study


def _identity(space: SearchSpace, evaluator: Evaluator, config: SearchConfig) -> dict[str, Any]:
    """What must agree between the workers of one study (seeds and trial counts may differ:
    workers with distinct seeds explore different archs; a resumed run may ask for more)."""
    return identity({"space": space.name, "space_hash": space.space_hash(),
                     "objectives": list(evaluator.objectives), "budgets": evaluator.limits(),
                     "strategy": config.strategy.name, "population": config.population})


def run_search(space: SearchSpace, evaluator: Evaluator, config: SearchConfig, *,
               storage: str | RDBStorage, study_name: str = "edgenas", resume: bool = False,
               callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
               timeout_s: float | None = None) -> optuna.Study:
    """Run (or continue, or join as another worker) a search until ``config.trials`` complete."""
    if isinstance(storage, str):
        storage = open_storage(storage)
    study = create_study(space, evaluator, config, storage, study_name, resume)
    references = config.strategy.references(space, evaluator)
    wait = BudgetWait()
    objective = make_objective(space, evaluator, config, references, wait)
    started = time.monotonic()

    def step() -> bool:
        if completed_count(study) < config.trials:
            left = None if timeout_s is None else timeout_s - (time.monotonic() - started)
            if left is not None and left <= 0:
                return True
            study.optimize(objective, n_trials=None, timeout=left, gc_after_trial=False,
                           callbacks=[MaxTrialsCallback(config.trials,
                                                        states=(TrialState.COMPLETE,)),
                                      wait, *(callbacks or [])])
        return True

    # completed trials are the progress: a loss after some waits anew
    WorkQueue(study).keep_trying(step, lambda fallback: completed_count(study, fallback))
    return study


# -- results --------------------------------------------------------------------------------

def front(trials: list[FrozenTrial], objectives: tuple[str, ...]) -> list[FrozenTrial]:
    """Feasible, non-dominated trials (one per distinct arch)."""
    unique: dict[str, FrozenTrial] = {}
    for trial in trials:
        if trial.user_attrs["feasible"]:
            unique.setdefault(trial.user_attrs["arch"], trial)
    feasible = list(unique.values())
    if not feasible:
        return []
    points = objective_matrix(feasible, objectives)
    return [t for t, keep in zip(feasible, non_dominated(points)) if keep]


def hypervolume_history(trials: list[FrozenTrial], objectives: tuple[str, ...],
                        reference: list[float], every: int) -> list[float]:
    """Hypervolume of the feasible front after every ``every`` completed trials."""
    history = []
    for end in range(every, len(trials) + every, every):
        current = front(trials[:end], objectives)
        points = objective_matrix(current, objectives) if current else np.empty((0, len(objectives)))
        history.append(hypervolume(points, reference))
    return history


def arch_of(trial: FrozenTrial) -> Arch:
    return Arch.from_json(trial.user_attrs["arch"])
