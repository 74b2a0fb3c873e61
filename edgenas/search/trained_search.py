"""The trained search: the archs on the front are trained ones (NSGANetV2's loop).

Rounds of: fit an accuracy surrogate on every arch trained so far (`surrogate`); run the
inner search on the surrogate and the cheap objectives and pick the candidates that most
enlarge the trained front (`proposal`); train them and add them to the archive. With rungs
every arch is first trained part of the recipe, and the best share goes on (`rungs`).

The archive is an Optuna study with one trial per training: every process on the study
(the leader, which also proposes, and any number of ``--worker`` processes) pops candidates
from it and trains them, so a PostgreSQL study trains candidates in parallel. A killed
worker's trial is failed by its heartbeat and its arch enqueued again, and training resumes
from the arch's own epoch checkpoints; an arch completed once is never trained again. The
queue, its records and its processes are `work_queue`'s; this module is the loop over them
and the one assembly (`trained_search`) the command line and the main job share.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from edgenas.estimate.prior import AccuracyPrior, accuracy_prior
from edgenas.profile.ranking import kendall_tau
from edgenas.search import accuracy_source, rungs
from edgenas.search.accuracy_source import FIDELITY
from edgenas.search.batch import Batch, Candidate, Proposal
from edgenas.search.engine import SearchConfig, arch_of, record_result
from edgenas.search.objectives import (Budgets, Evaluator, SearchError, TrialResult,
                                       check_budgets_reachable)
from edgenas.search.proposal import initial_archs, propose
from edgenas.search.strategy import Strategy, as_strategy
from edgenas.search.study_store import identity, open_storage, open_study, wait_for_study
from edgenas.search.surrogate import FOLDS, describe, fit_surrogate
from edgenas.search.work_queue import Callback, WorkQueue, fidelity_of, trials_at
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace
from edgenas.train.loop import TrainConfig
from edgenas.train.standalone import recipe_trainer

log = logging.getLogger(__name__)

#: A trainer trains one arch with the run's recipe: (arch) -> {"accuracy", "run_dir"}; a
#: search with rungs also calls it as (arch, epochs=k): trained that far on the recipe's
#: schedule, resumable to the full recipe (`edgenas.train.standalone.recipe_trainer`).
Trainer = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class SurrogateConfig:
    """How many archs to train, in which rounds, and how hard to search the surrogate."""

    train_budget: int = 16        # archs trained in all
    initial: int = 10             # trained before the first surrogate (>= 2 * FOLDS)
    per_round: int = 3            # candidates trained per round
    # the inner search (`edgenas.search.strategy`); a name is looked up once, here
    strategy: Strategy = as_strategy("nsga2")
    inner_trials: int = 400       # surrogate evaluations per round
    population: int = 20
    seed: int = 0
    # successive halving: the epochs (below the recipe's) at which every arch is scored
    # first; () trains every arch to the full recipe
    rungs: tuple[int, ...] = ()
    halving: int = 3              # of the archs scored at a rung, 1 in this many go on
    # the committed predictor (the CIFAR-10 ground truth's recipe) as the surrogate's prior:
    # worth it when the search trains with that recipe (`edgenas.estimate.prior`)
    prior: bool = False
    # the search trains with the ground truth's own recipe and data: the prior's values are
    # used unscaled instead of rescaled on the trained archs (`predictor.PriorAsIs`)
    prior_as_is: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", as_strategy(self.strategy))
        object.__setattr__(self, "rungs", tuple(self.rungs))
        if any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in self.rungs) \
                or list(self.rungs) != sorted(set(self.rungs)):
            raise SearchError(f"--rungs {' '.join(map(str, self.rungs))}: give increasing "
                              "whole numbers of epochs, each at least 1 and below the recipe's")
        if isinstance(self.halving, bool) or not isinstance(self.halving, int) \
                or self.halving < 2:
            raise SearchError(f"--halving {self.halving!r}: at least 2 (1 in 2 archs of a "
                              "rung goes on to the next)")
        if self.initial < 2 * FOLDS and self.strategy.uses_surrogate:
            raise SearchError(f"--initial {self.initial}: the surrogate's {FOLDS}-fold "
                              f"cross-validation needs at least {2 * FOLDS} trained archs")
        if self.train_budget < self.initial:
            raise SearchError(f"--train-budget {self.train_budget} is below the "
                              f"{self.initial} archs trained before the first surrogate; "
                              f"raise it or lower --initial")
        if self.per_round < 1:
            raise SearchError(f"--per-round {self.per_round}: train at least 1 arch per round")
        if self.prior_as_is and not self.prior:
            raise SearchError("--prior-as-is says how to use the prior: give --prior too")
        self.inner_search(0)  # validates

    def inner_search(self, round_: int) -> SearchConfig:
        """The search on the surrogate in ``round_``, seeded for the round."""
        return SearchConfig(self.strategy, self.inner_trials, self.population,
                            self.seed * 1000 + round_)

    def schedule(self, recipe_epochs: int) -> tuple[int | None, ...]:
        """The fidelities an arch passes through (`rungs.schedule`)."""
        return rungs.schedule(self.rungs, recipe_epochs)


def search_prior(config: SurrogateConfig) -> AccuracyPrior | None:
    """The accuracy prior the search's surrogate uses, if it uses one."""
    return accuracy_prior(seed=config.seed, as_is=config.prior_as_is) if config.prior else None


# -- the archive: an Optuna study of trainings --------------------------------------------------

def _identity(space: SearchSpace, evaluator: Evaluator, config: SurrogateConfig,
              recipe: Mapping[str, Any]) -> dict[str, Any]:
    settings = {k: v for k, v in asdict(config).items()
                if k != "train_budget" and _recorded(config, k)}
    settings["strategy"] = config.strategy.name  # a study records the name
    return identity({"space": space.name, "space_hash": space.space_hash(),
                     "objectives": list(evaluator.objectives), "budgets": evaluator.limits(),
                     "surrogate_search": settings, "recipe": dict(recipe)})


def _recorded(config: SurrogateConfig, name: str) -> bool:
    """Whether a setting is part of a study's identity: settings added later only when
    they are in use, so that studies started before them still open."""
    if name in ("rungs", "halving"):
        return bool(config.rungs)
    if name == "prior":
        return config.prior
    if name == "prior_as_is":
        return config.prior_as_is
    return True


def open_archive(space: SearchSpace, evaluator: Evaluator, config: SurrogateConfig,
                 recipe: Mapping[str, Any], storage: str | RDBStorage,
                 study_name: str) -> optuna.Study:
    """Create or load the study of trainings; refuses one started with other settings
    (the training recipe included: accuracies under two recipes are not comparable)."""
    if isinstance(storage, str):
        storage = open_storage(storage)
    sampler = optuna.samplers.RandomSampler(seed=config.seed)  # only queued trials are used
    return open_study(study_name, storage, sampler, evaluator.directions,
                      _identity(space, evaluator, config, recipe), evaluator.objectives)


def training_line(study: optuna.Study, trial_number: int, key: str, round_: int | None,
                  train_budget: int | None = None, promotion: int | None = None,
                  epochs: int | None = None) -> str:
    """The progress line for an arch about to be trained: its round (or promotion), its
    place in the round's proposal (k of n), its trial, the epochs of a rung and, given the
    budget, the count in all."""
    queue = WorkQueue(study)
    batch = queue.batch(round_, promotion)
    name = f"promotion {promotion + 1}" if promotion is not None else f"round {round_}"
    keys = batch.keys() if batch else []
    where = (f"{name}: training arch {keys.index(key) + 1} of {len(keys)}"
             if key in keys else "training an arch")
    line = f"{where} (trial {trial_number})"
    if epochs is not None:
        line += f", to epoch {epochs}"
    if train_budget is not None and promotion is None:
        line += f", {len(queue.trained_trials()) + 1} of {train_budget} in all"
    return line


def training_objective(space: SearchSpace, evaluator: Evaluator, trainer: Trainer,
                       train_budget: int | None = None
                       ) -> Callable[[optuna.Trial], list[float]]:
    """What a process runs per popped trial: train the queued arch (or reuse its result);
    each training starts with a `training_line` in the log (``train_budget``: the
    search's, for the count in all)."""
    genes = space.genes()

    def objective(trial: optuna.Trial) -> list[float]:
        WorkQueue(trial.study).claim(trial)
        if "arch" not in trial.user_attrs:  # nothing was queued: not ours to sample
            raise optuna.TrialPruned("no queued arch")
        params = {name: trial.suggest_categorical(name, choices) for name, choices in genes.items()}
        arch = space.decode(params)
        key = arch.to_json()
        trial.set_user_attr("arch", key)
        epochs = trial.user_attrs.get(FIDELITY)
        other = WorkQueue(trial.study).same_training(trial.number, key, epochs)
        if other is not None and other.state == TrialState.COMPLETE:
            earlier = TrialResult.from_attrs(other.user_attrs)  # trained already: reuse it
            _record(trial, earlier, other.user_attrs.get("run_dir"))
            trial.set_user_attr("repeat_of", other.number)
            return evaluator.values(earlier.metrics)
        if other is not None:  # another process trains it now (into the same folder)
            raise optuna.TrialPruned(f"arch is being trained by trial {other.number}")
        result = evaluator.cheap_result(arch)
        log.info("%s", training_line(trial.study, trial.number, key,
                                     trial.user_attrs.get("round"), train_budget,
                                     trial.user_attrs.get("promotion"), epochs))
        trained = trainer(arch) if epochs is None else trainer(arch, epochs=epochs)
        result = replace(result, metrics={**result.metrics,
                                          "accuracy": float(trained["accuracy"])})
        _record(trial, result, str(trained.get("run_dir")))
        for name, value in zip(evaluator.limits(), result.constraints):
            trial.set_constraint(name, value)
        return evaluator.values(result.metrics)

    return objective


def _record(trial: optuna.Trial, result: TrialResult, run_dir: str | None) -> None:
    """Store a training's result; its run folder first, so a recorded result has it."""
    if run_dir is not None:
        trial.set_user_attr("run_dir", run_dir)
    record_result(trial, result)


# -- the two roles ------------------------------------------------------------------------------

def run_surrogate_search(space: SearchSpace, evaluator: Evaluator, trainer: Trainer,
                         config: SurrogateConfig, recipe: Mapping[str, Any], *,
                         storage: str | RDBStorage, study_name: str = "edgenas-trained",
                         on_trained: Callback | None = None,
                         poll_s: float = 2.0, warm_start: Sequence[Arch] = ()) -> optuna.Study:
    """Lead the search (proposing each round and training, like every worker) until
    ``config.train_budget`` archs are trained; re-running it resumes where it stopped.

    ``warm_start``: the first round's archs instead of a random sample (archs trained
    before with the same recipe, e.g. a ground truth's, which a caching trainer returns
    without training)."""
    fidelities = config.schedule(_recipe_epochs(recipe, config))
    prior = search_prior(config)
    study = open_archive(space, evaluator, config, recipe, storage, study_name)
    queue = WorkQueue(study)
    queue.set_finished(False)
    objective = training_objective(space, evaluator, trainer, config.train_budget)
    callbacks = [on_trained] if on_trained is not None else []

    def train(batch: Batch, epochs: int | None) -> None:
        """Train (with any workers) until every arch of ``batch`` is trained to ``epochs``."""
        keys = set(batch.keys())
        queue.work(objective, lambda: keys <= queue.done(epochs), callbacks, poll_s)

    while True:
        proposals = queue.proposals()
        trained = queue.done(fidelities[0])
        if proposals and queue.enqueue_missing(space, proposals[-1], fidelities[0]):
            train(proposals[-1], fidelities[0])
            continue
        if len(trained) >= config.train_budget:
            break
        round_ = len(proposals)
        archs = queue.trained_trials()
        want = min(config.initial if round_ == 0 else config.per_round,
                   config.train_budget - len(trained))
        exclude = trained | queue.pending_archs()
        surrogate = None
        if round_ > 0 and config.strategy.uses_surrogate:
            surrogate = fit_surrogate([arch_of(t) for t in archs],
                                      [t.user_attrs["metrics"]["accuracy"] for t in archs],
                                      config.seed, prior)
            log.info("round %d: surrogate %s, cross-validated Kendall tau %.3f on %d trained "
                     "archs", round_, surrogate.name, surrogate.cv_tau, surrogate.n)
        if round_ == 0:
            first = list(warm_start) or initial_archs(space, evaluator, want, config.seed,
                                                      exclude)
            picks: list[tuple[Arch, float | None]] = [(a, None) for a in first]
        else:
            picks = propose(space, evaluator, surrogate, archs, want,
                            config.inner_search(round_), exclude, prior)
        if not picks:
            log.warning("round %d: the inner search found no untrained arch within the "
                        "budgets; stopping with %d trained", round_, len(trained))
            break
        queue.record_proposal(Proposal(round_, describe(surrogate, prior) if surrogate else None,
                                       tuple(Candidate(a.to_json(), p) for a, p in picks)))
    for rung in range(len(fidelities) - 1):
        batch = rungs.promotion(queue, evaluator.objectives, config.halving, fidelities, rung)
        if queue.enqueue_missing(space, batch, fidelities[rung + 1]):
            train(batch, fidelities[rung + 1])
    queue.set_finished(True)
    return study


def _recipe_epochs(recipe: Mapping[str, Any], config: SurrogateConfig) -> int:
    epochs = recipe.get("epochs")
    if config.rungs and not isinstance(epochs, int):
        raise SearchError("--rungs: the training recipe names no whole number of epochs to "
                          "halve")
    return epochs if isinstance(epochs, int) else 0


def join_surrogate_search(space: SearchSpace, evaluator: Evaluator, trainer: Trainer,
                          config: SurrogateConfig, recipe: Mapping[str, Any], *,
                          storage: str | RDBStorage, study_name: str = "edgenas-trained",
                          on_trained: Callback | None = None,
                          poll_s: float = 2.0, wait_for_leader_s: float = 600.0) -> optuna.Study:
    """Work for a leader: train queued candidates until the leader says the search is done."""
    if isinstance(storage, str):
        storage = open_storage(storage)
    wait_for_study(study_name, storage, wait_for_leader_s, poll_s)  # the leader creates it
    study = open_archive(space, evaluator, config, recipe, storage, study_name)
    queue = WorkQueue(study)
    objective = training_objective(space, evaluator, trainer, config.train_budget)
    queue.work(objective, lambda: queue.finished,
               [on_trained] if on_trained is not None else [], poll_s)
    return study


def surrogate_summary(study: optuna.Study, seed: int = 0,
                      prior: AccuracyPrior | None = None) -> dict[str, Any]:
    """How far the search's accuracy predictions held: the final surrogate's cross-validated
    tau on every trained arch, and the tau of each proposal's predictions against the
    accuracies its archs then reached (out of sample: predicted before training)."""
    queue = WorkQueue(study)
    trials = queue.trained_trials()
    archs = [arch_of(t) for t in trials]
    accuracies = [t.user_attrs["metrics"]["accuracy"] for t in trials]
    summary: dict[str, Any] = {"trained_archs": len(trials),
                               "rounds": len(queue.proposals())}
    if len(trials) >= 2 * FOLDS:
        summary["final"] = describe(fit_surrogate(archs, accuracies, seed, prior), prior)
    pairs = [(t.user_attrs["predicted_accuracy"], t.user_attrs["metrics"]["accuracy"])
             for t in trials if t.user_attrs.get("predicted_accuracy") is not None]
    if len(pairs) >= 3:
        predicted, measured = map(np.asarray, zip(*pairs))
        summary["proposals"] = {"n": len(pairs),
                                "kendall_tau": kendall_tau(measured, predicted, undefined=0.0),
                                "mean_abs_error": float(np.mean(np.abs(predicted - measured)))}
    if trials and fidelity_of(trials[0]) is not None:
        summary["rungs"] = rungs.rung_summary(queue)
    return summary


# -- the search assembled -----------------------------------------------------------------------

def trained_evaluator(objectives: tuple[str, ...], budgets: Budgets = Budgets(),
                      **latency: Any) -> Evaluator:
    """The evaluator of a trained search (``latency``: `Evaluator`'s latency arguments): it
    gives the costs and budgets; an arch's accuracy never comes from it, as a candidate's is
    trained and the inner search's is the surrogate's prediction."""
    return Evaluator(objectives, budgets, accuracy_fn=_not_estimated, **latency)


def _not_estimated(arch: Arch) -> float:
    raise SearchError("a trained search's accuracies come from training, not from an estimate")


@dataclass(frozen=True)
class TrainedSearch:
    """A surrogate-assisted search ready to run (a `edgenas.search.job.SearchJob`): what
    the command line and the main job both run, so both train and record their accuracies
    the same way."""

    space: SearchSpace
    evaluator: Evaluator
    config: SurrogateConfig
    recipe: TrainConfig
    data: str
    trainer: Trainer

    @property
    def total(self) -> int:
        """The archs the search trains."""
        return self.config.train_budget

    def scored(self, study: optuna.Study) -> list[FrozenTrial]:
        """The archs trained so far, at their first fidelity (`WorkQueue.trained_trials`)."""
        return WorkQueue(study).trained_trials()

    def run(self, *, storage: str | RDBStorage, study_name: str = "edgenas-trained",
            on_trial: Callback | None = None, worker: bool = False) -> optuna.Study:
        """Lead the search (`run_surrogate_search`), or with ``worker`` only train for a
        leader (`join_surrogate_search`)."""
        role = join_surrogate_search if worker else run_surrogate_search
        return role(self.space, self.evaluator, self.trainer, self.config, self.recipe.to_dict(),
                    storage=storage, study_name=study_name, on_trained=on_trial)

    def outcome(self, study: optuna.Study) -> tuple[list[FrozenTrial], dict[str, Any]]:
        """The trained archs' trials, and what a result records about them: the strategy,
        the recipe, how far the surrogate held and where the accuracies come from."""
        recipe = self.recipe.to_dict()
        trials = trials_at(study, self.config.schedule(self.recipe.epochs)[-1])
        split = accuracy_source.recorded_split(t.user_attrs.get("run_dir") for t in trials)
        return trials, {"strategy": f"surrogate-{self.config.strategy.name}", "recipe": recipe,
                        "surrogate": surrogate_summary(study, self.config.seed,
                                                       search_prior(self.config)),
                        "accuracy_source":
                            accuracy_source.trained(recipe, self.data, split).to_dict()}


def trained_search(space: SearchSpace, objectives: tuple[str, ...], budgets: Budgets,
                   config: SurrogateConfig, recipe: TrainConfig, data: str, folder: Path,
                   **latency: Any) -> TrainedSearch:
    """The surrogate-assisted search that trains candidates on ``data`` with ``recipe`` into
    ``folder / "trained"``; refuses budgets no arch of the space meets."""
    evaluator = trained_evaluator(objectives, budgets, **latency)
    config.schedule(recipe.epochs)  # rungs beyond the recipe are refused before any work
    check_budgets_reachable(space, evaluator)
    return TrainedSearch(space, evaluator, config, recipe, data,
                         recipe_trainer(data, folder / "trained", recipe))
