"""Surrogate-assisted search: the archs on the front are trained ones (NSGANetV2's loop).

Rounds of: fit an accuracy surrogate on every arch trained so far (the regressor chosen by
cross-validated Kendall tau, `estimate.predictor`); run the inner search (NSGA-II with the
hierarchical variation by default) on the surrogate and the cheap objectives; train the
few candidates that most enlarge the front's hypervolume under the surrogate's
predictions (which also keeps them spread out); add them to the archive.

With rungs (successive halving, `SurrogateConfig.rungs`) every arch is first trained only
part of the recipe, on the recipe's own schedule, and scored there; the surrogate learns
those scores. Once the budget of archs is scored, the most promising share of them
(`select_spread`: whole Pareto layers of the rung's scores, spread by crowding distance)
continues to the next rung, resuming its own checkpoint, until the last ones finish the
full recipe. The front holds only archs trained to the full recipe, so its accuracies are
equals and the picks need no further training.

The archive is an Optuna study with one trial per training: every process on the study
(the leader, which also proposes, and any number of ``--worker`` processes) pops
candidates from it and trains them, so a PostgreSQL study trains candidates in parallel.
Each round's proposal is stored in the study before any of it is enqueued, so a leader
killed at any moment proposes nothing twice; a killed worker's trial is failed by its
heartbeat and its arch enqueued again, and training resumes from the arch's own epoch
checkpoints. An arch completed once is never trained again. How the study is stored and
shared (its identity, heartbeats, orphans, reconnects) is `edgenas.search.study_store`'s.

`trained_search` assembles the whole search (evaluator, recipe, trainer) for the command
line and the main job alike.
"""

from __future__ import annotations

import math
import os
import socket
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optuna
from optuna.storages import InMemoryStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from edgenas.estimate.features import arch_features
from edgenas.estimate.predictor import Predictor, fit_predictor
from edgenas.estimate.prior import AccuracyPrior, accuracy_prior
from edgenas.estimate.rank import kendall
from edgenas.search import accuracy_source
from edgenas.search.accuracy_source import FIDELITY
from edgenas.search.engine import (SearchConfig, arch_of, completed, objective_matrix,
                                   record_result, run_search)
from edgenas.search.objectives import Budgets, Evaluator, SearchError, check_budgets_reachable
from edgenas.search.pareto import hypervolume, non_dominated, select_spread
from edgenas.search.strategy import get_strategy
from edgenas.search.study_store import (Reconnect, identity, mark_alive, open_storage,
                                        open_study, recover_dead_workers, wait_for_study)
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace
from edgenas.train.loop import TrainConfig
from edgenas.train.standalone import recipe_trainer

log = logging.getLogger(__name__)

#: A trainer trains one arch with the run's recipe: (arch) -> {"accuracy", "run_dir"}; a
#: search with rungs also calls it as (arch, epochs=k): trained that far on the recipe's
#: schedule, resumable to the full recipe (`edgenas.train.standalone.recipe_trainer`).
Trainer = Callable[..., Mapping[str, Any]]
#: Folds of the surrogate's cross-validation; it needs twice as many trained archs.
FOLDS = 5


@dataclass(frozen=True)
class SurrogateConfig:
    """How many archs to train, in which rounds, and how hard to search the surrogate."""

    train_budget: int = 16        # archs trained in all
    initial: int = 10             # trained before the first surrogate (>= 2 * FOLDS)
    per_round: int = 3            # candidates trained per round
    strategy: str = "nsga2"       # the inner search (`edgenas.search.strategy`)
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
        object.__setattr__(self, "rungs", tuple(self.rungs))
        if any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in self.rungs) \
                or list(self.rungs) != sorted(set(self.rungs)):
            raise SearchError(f"--rungs {' '.join(map(str, self.rungs))}: give increasing "
                              "whole numbers of epochs, each at least 1 and below the recipe's")
        if isinstance(self.halving, bool) or not isinstance(self.halving, int) \
                or self.halving < 2:
            raise SearchError(f"--halving {self.halving!r}: at least 2 (1 in 2 archs of a "
                              "rung goes on to the next)")
        if self.initial < 2 * FOLDS and get_strategy(self.strategy).uses_surrogate:
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
        SearchConfig(self.strategy, self.inner_trials, self.population, self.seed)  # validates

    def schedule(self, recipe_epochs: int) -> tuple[int | None, ...]:
        """The fidelities an arch passes through: the rungs, then the full recipe; a search
        without rungs has one, None (the recipe, unmarked as in studies before rungs)."""
        if not self.rungs:
            return (None,)
        if self.rungs[-1] >= recipe_epochs:
            raise SearchError(f"--rungs {' '.join(map(str, self.rungs))}: every rung must be "
                              f"below the recipe's {recipe_epochs} epochs (the last rung is "
                              "the full recipe itself)")
        return (*self.rungs, recipe_epochs)


# -- the surrogate and the proposals ----------------------------------------------------------

def fit_surrogate(archs: list[Arch], accuracies: list[float], seed: int,
                  prior: AccuracyPrior | None = None) -> Predictor:
    """The regressor with the best cross-validated Kendall tau on the trained archs; with a
    ``prior``, the prior rescaled unless a regressor beats it clearly (`fit_predictor`)."""
    x = np.vstack([arch_features(a) for a in archs])
    return fit_predictor(x, np.asarray(accuracies, float), k=FOLDS, seed=seed,
                         prior=None if prior is None else prior.values(archs),
                         prior_as_is=prior is not None and prior.as_is)


def predict(surrogate: Predictor, arch: Arch, prior: AccuracyPrior | None = None) -> float:
    """The surrogate's predicted accuracy of one arch."""
    value = prior(arch) if prior is not None and surrogate.uses_prior else None
    return float(surrogate.predict(arch_features(arch), prior=value)[0])


def describe(surrogate: Predictor, prior: AccuracyPrior | None = None) -> dict[str, Any]:
    """What a result records about a surrogate: how far its predictions can be trusted."""
    out = {"model": surrogate.name, "cv_kendall_tau": surrogate.cv_tau,
           "cv_mean_abs_error": surrogate.cv_mae, "trained_archs": surrogate.n,
           "candidates": surrogate.candidates}
    if prior is not None:
        out["prior"] = prior.describe()
    return out


def search_prior(config: SurrogateConfig) -> AccuracyPrior | None:
    """The accuracy prior the search's surrogate uses, if it uses one."""
    return accuracy_prior(seed=config.seed, as_is=config.prior_as_is) if config.prior else None


def initial_archs(space: SearchSpace, evaluator: Evaluator, n: int, seed: int,
                  exclude: set[str]) -> list[Arch]:
    """``n`` feasible random archs spread evenly over MACs (one per quantile bin), so the
    first surrogate sees small and large networks alike."""
    pool: dict[str, tuple[float, Arch]] = {}
    for i in range(40 * n):
        arch = space.sample(seed * 1_000_003 + i)
        key = arch.to_json()
        if key in exclude or key in pool:
            continue
        result = evaluator.cheap_result(arch)
        if result["feasible"]:
            pool[key] = (result["metrics"]["macs"], arch)
        if len(pool) >= 20 * n:
            break
    ranked = [arch for _, arch in sorted(pool.values(), key=lambda item: item[0])]
    if len(ranked) < n:
        raise SearchError(f"only {len(ranked)} distinct archs within the budgets in "
                          f"{40 * n} samples; relax the budgets")
    # the middle of n equal quantile bins: the extremes of a random pool are rarely worth a
    # training (the largest costs several times the median)
    picks = ((np.arange(n) + 0.5) / n * len(ranked)).astype(int)
    return [ranked[i] for i in dict.fromkeys(picks.tolist())]


def propose(space: SearchSpace, evaluator: Evaluator, surrogate: Predictor | None,
            trained: list[FrozenTrial], k: int, config: SurrogateConfig, round_: int,
            exclude: set[str], prior: AccuracyPrior | None = None
            ) -> list[tuple[Arch, float | None]]:
    """The next ``k`` archs to train, each with its predicted accuracy.

    The inner search scores archs with the surrogate; from its feasible, untrained archs
    the ones chosen greedily add the most hypervolume to the trained front (predicted
    accuracy, exact costs), or, for a single-objective strategy, the best by its scalar.
    A strategy that uses no surrogate (``random``, the baseline) proposes random archs.
    """
    seed, strategy = config.seed * 1000 + round_, get_strategy(config.strategy)
    if not strategy.uses_surrogate or surrogate is None:
        return [(a, None) for a in initial_archs(space, evaluator, k, seed, exclude)]
    model = surrogate

    def predicted(arch: Arch) -> float:
        return predict(model, arch, prior)

    inner = replace(evaluator, accuracy_fn=predicted, cache={}, accuracy_calls=0)
    search = SearchConfig(config.strategy, config.inner_trials, config.population, seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = run_search(space, inner, search, storage=InMemoryStorage())  # type: ignore[arg-type]
    pool: dict[str, FrozenTrial] = {}
    for trial in completed(study):
        key = trial.user_attrs["arch"]
        if trial.user_attrs["feasible"] and key not in exclude:
            pool.setdefault(key, trial)
    candidates = list(pool.values())
    if not candidates:
        return []
    if strategy.single_objective:  # the scalar is what this baseline optimises
        references = strategy.references(space, inner) or {}
        candidates.sort(key=lambda t: strategy.scalar(t.user_attrs["metrics"], inner.objectives,
                                                      {}, references))
        chosen = candidates[:k]
    else:
        chosen = _greedy_hypervolume(candidates, trained, evaluator.objectives, k)
    return [(arch_of(t), float(t.user_attrs["metrics"]["accuracy"])) for t in chosen]


def _ratio_scale(points: np.ndarray, objectives: tuple[str, ...]) -> np.ndarray:
    """Costs on a log scale: 0.2 against 0.6 ms is as large a step as 1 against 3 ms, as a
    user reads a latency. On a linear scale the largest trained arch sets the unit, and the
    steps between small archs, where most of a front lies, count for little; on a log scale
    the choice no longer depends on how the costs are spread (any power of them gives the
    same picks)."""
    out = np.array(points, dtype=float)
    for j, name in enumerate(objectives):
        if name != "accuracy" and len(out) and np.all(out[:, j] > 0):
            out[:, j] = np.log(out[:, j])
    return out


def _greedy_hypervolume(candidates: list[FrozenTrial], trained: list[FrozenTrial],
                        objectives: tuple[str, ...], k: int) -> list[FrozenTrial]:
    """Pick ``k`` candidates one at a time, each adding the most hypervolume to the trained
    front plus those already picked; ties (no gain) go to the candidate farthest from
    everything picked, so the proposal stays spread out."""
    cand = _ratio_scale(objective_matrix(candidates, objectives), objectives)
    base = (_ratio_scale(objective_matrix(trained, objectives), objectives) if trained
            else np.empty((0, len(objectives))))
    everything = np.vstack([cand, base])
    low, high = everything.min(axis=0), everything.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    cand, base = (cand - low) / span, (base - low) / span
    reference = np.full(len(objectives), 1.1)
    keep = non_dominated(cand)  # dominated candidates cannot add hypervolume first
    order = list(np.flatnonzero(keep)) + list(np.flatnonzero(~keep))
    chosen: list[int] = []
    current = base
    for _ in range(min(k, len(candidates))):
        level = hypervolume(current, reference) if len(current) else 0.0
        best, best_gain, best_spread = -1, -1.0, -1.0
        for i in order:
            if i in chosen:
                continue
            gain = hypervolume(np.vstack([current, cand[i]]), reference) - level
            spread = (np.min(np.linalg.norm(current - cand[i], axis=1)) if len(current)
                      else 0.0)
            if gain > best_gain + 1e-12 or (abs(gain - best_gain) <= 1e-12
                                             and spread > best_spread):
                best, best_gain, best_spread = i, gain, spread
        chosen.append(best)
        current = np.vstack([current, cand[best]])
    return [candidates[i] for i in chosen]


# -- the archive: an Optuna study of trainings --------------------------------------------------

def fidelity_of(trial: FrozenTrial) -> int | None:
    """The epochs a trial's arch was trained for, when the search has rungs; else None."""
    return trial.user_attrs.get(FIDELITY)


def trained_trials(study: optuna.Study) -> list[FrozenTrial]:
    """One completed trial per trained arch, at the first fidelity it was scored at (the
    first such trial), in the order the archs were proposed: a candidate retried after a
    crash gets a later trial number, and the surrogate fitted on this archive must not
    depend on that (a killed and resumed search ends with the archs an uninterrupted one
    trains). With rungs these are the scores every arch has, all at one fidelity."""
    done = completed(study)
    # every arch is scored at the first rung before any goes on, so the lowest fidelity
    # on record is every arch's first
    first = min((f for f in map(fidelity_of, done) if f is not None), default=None)
    return _per_arch(study, done, first)


def trials_at(study: optuna.Study, epochs: int | None) -> list[FrozenTrial]:
    """One completed trial per arch trained to ``epochs`` (None: a search without rungs,
    where that is every arch), in proposal order."""
    return _per_arch(study, completed(study), epochs)


def _per_arch(study: optuna.Study, done: list[FrozenTrial], epochs: int | None
              ) -> list[FrozenTrial]:
    """Of the completed trials ``done``, the first per arch trained to ``epochs``, in the
    order the archs were proposed."""
    unique: dict[str, FrozenTrial] = {}
    for trial in done:
        if fidelity_of(trial) == epochs:
            unique.setdefault(trial.user_attrs["arch"], trial)
    order = {item["arch"]: (r, i) for r, proposal in enumerate(_proposals(study))
             for i, item in enumerate(proposal["archs"])}
    unproposed = (len(order) + 1, 0)  # archs of older studies: after, by trial number
    return sorted(unique.values(), key=lambda t: (order.get(t.user_attrs["arch"], unproposed),
                                                  t.number))


def _proposals(study: optuna.Study) -> list[dict[str, Any]]:
    attrs = study.user_attrs
    out = []
    while f"proposal_{len(out)}" in attrs:
        out.append(attrs[f"proposal_{len(out)}"])
    return out


def _pending(study: optuna.Study) -> set[tuple[str, int | None]]:
    """(arch, fidelity) of the trainings waiting in the queue or running now."""
    keys = set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        if "arch" in trial.user_attrs:
            keys.add((trial.user_attrs["arch"], fidelity_of(trial)))
    return keys


def _pending_keys(study: optuna.Study) -> set[str]:
    """Archs waiting in the queue or being trained now, at any fidelity."""
    return {key for key, _ in _pending(study)}


def _done(study: optuna.Study, epochs: int | None) -> set[str]:
    return {t.user_attrs["arch"] for t in trials_at(study, epochs)}


def _enqueue_missing(study: optuna.Study, space: SearchSpace, batch: dict[str, Any],
                     epochs: int | None) -> list[str]:
    """Enqueue the archs of ``batch`` (a round's proposal, or a promotion) not yet trained
    to ``epochs`` nor queued for it; returns those not trained yet. A trial carries the
    arch, where it comes from (its round or promotion) and, with rungs, its fidelity."""
    pending, trained = _pending(study), _done(study, epochs)
    missing = []
    for entry in batch["archs"]:
        key = entry["arch"]
        if key in trained:
            continue
        missing.append(key)
        if (key, epochs) not in pending:
            attrs: dict[str, Any] = {"arch": key}
            if "promotion" in batch:  # the arch keeps its round and prediction on the front
                attrs["promotion"] = batch["promotion"]
                attrs.update(round=entry.get("round"), predicted_accuracy=entry.get("predicted"))
            else:
                attrs.update(round=batch["round"], predicted_accuracy=entry.get("predicted"))
            if epochs is not None:
                attrs[FIDELITY] = epochs
            study.enqueue_trial(space.encode(Arch.from_json(key)), user_attrs=attrs)
    return missing


def training_line(study: optuna.Study, trial_number: int, key: str, round_: int | None,
                  train_budget: int | None = None, promotion: int | None = None,
                  epochs: int | None = None) -> str:
    """The progress line for an arch about to be trained: its round (or promotion), its
    place in the round's proposal (k of n), its trial, the epochs of a rung and, given the
    budget, the count in all."""
    if promotion is not None:
        batch = study.user_attrs.get(f"promotion_{promotion}")
        name = f"promotion {promotion + 1}"
    else:
        batch = study.user_attrs.get(f"proposal_{round_}") if round_ is not None else None
        name = f"round {round_}"
    keys = [entry["arch"] for entry in batch["archs"]] if batch else []
    where = (f"{name}: training arch {keys.index(key) + 1} of {len(keys)}"
             if key in keys else "training an arch")
    line = f"{where} (trial {trial_number})"
    if epochs is not None:
        line += f", to epoch {epochs}"
    if train_budget is not None and promotion is None:
        line += f", {len(trained_trials(study)) + 1} of {train_budget} in all"
    return line


def training_objective(space: SearchSpace, evaluator: Evaluator, trainer: Trainer,
                       train_budget: int | None = None
                       ) -> Callable[[optuna.Trial], list[float]]:
    """What a process runs per popped trial: train the queued arch (or reuse its result);
    each training starts with a `training_line` in the log (``train_budget``: the
    search's, for the count in all)."""
    genes = space.genes()

    def objective(trial: optuna.Trial) -> list[float]:
        mark_alive(trial)
        trial.set_user_attr(TAKEN, f"{socket.gethostname()}:{os.getpid()}")  # who, for people
        if "arch" not in trial.user_attrs:  # nothing was queued: not ours to sample
            raise optuna.TrialPruned("no queued arch")
        params = {name: trial.suggest_categorical(name, choices) for name, choices in genes.items()}
        arch = space.decode(params)
        key = arch.to_json()
        trial.set_user_attr("arch", key)
        epochs = trial.user_attrs.get(FIDELITY)
        for other in trial.study.get_trials(deepcopy=False):
            if other.number == trial.number or other.user_attrs.get("arch") != key \
                    or fidelity_of(other) != epochs:
                continue
            if other.state == TrialState.COMPLETE:  # trained already: reuse, never retrain
                _record(trial, other.user_attrs["metrics"], other.user_attrs["constraints"],
                        other.user_attrs["feasible"], other.user_attrs.get("run_dir"))
                trial.set_user_attr("repeat_of", other.number)
                return evaluator.values({"metrics": other.user_attrs["metrics"]})
            if other.state == TrialState.RUNNING and other.number < trial.number:
                # another process trains this arch (into the same folder): leave it to it
                raise optuna.TrialPruned(f"arch is being trained by trial {other.number}")
        result = evaluator.cheap_result(arch)
        log.info("%s", training_line(trial.study, trial.number, key,
                                     trial.user_attrs.get("round"), train_budget,
                                     trial.user_attrs.get("promotion"), epochs))
        trained = trainer(arch) if epochs is None else trainer(arch, epochs=epochs)
        metrics = {**result["metrics"], "accuracy": float(trained["accuracy"])}
        _record(trial, metrics, result["constraints"], result["feasible"],
                str(trained.get("run_dir")))
        for name, value in zip(evaluator.limits(), result["constraints"]):
            trial.set_constraint(name, value)
        return evaluator.values({"metrics": metrics})

    return objective


def _record(trial: optuna.Trial, metrics: Mapping[str, float], constraints: list[float],
            feasible: bool, run_dir: str | None) -> None:
    if run_dir is not None:
        trial.set_user_attr("run_dir", run_dir)
    record_result(trial, {"metrics": dict(metrics), "constraints": list(constraints),
                          "feasible": bool(feasible)})


def _train_queued(study: optuna.Study, objective: Callable[[optuna.Trial], list[float]],
                  done: Callable[[], bool], callbacks: list[Callable[..., None]],
                  poll_s: float) -> None:
    """Train queued archs until ``done()``; while others train the rest, wait for them
    (and fail the trials of workers that stopped beating, which queues them again)."""
    watch = Reconnect()  # a database restart is waited out
    while True:
        try:
            if done():
                return
            _train_one_queued(study, objective, callbacks, poll_s)
            watch.ok()
        except Exception as err:  # noqa: BLE001 - only a lost connection is retried
            watch.lost(err)


def _train_one_queued(study: optuna.Study, objective: Callable[[optuna.Trial], list[float]],
                      callbacks: list[Callable[..., None]], poll_s: float) -> None:
    recover_dead_workers(study)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if not waiting:
        time.sleep(poll_s)
        return
    try:
        study.optimize(objective, n_trials=1, gc_after_trial=False, callbacks=callbacks)
    except ValueError as err:  # another process finished this trial first
        if "Cannot tell" not in str(err):
            raise
        log.warning("%s; another process reported it first (use PostgreSQL, not "
                    "SQLite, for several processes)", err)


#: The user attribute a process sets on a queued trial as it starts training it.
TAKEN = "taken_by"


def _identity(space: SearchSpace, evaluator: Evaluator, config: SurrogateConfig,
              recipe: Mapping[str, Any]) -> dict[str, Any]:
    return identity({"space": space.name, "space_hash": space.space_hash(),
                     "objectives": list(evaluator.objectives), "budgets": evaluator.limits(),
                     "surrogate_search": {k: v for k, v in asdict(config).items()
                                          if k != "train_budget" and _recorded(config, k)},
                     "recipe": dict(recipe)})


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


# -- the two roles ------------------------------------------------------------------------------

def run_surrogate_search(space: SearchSpace, evaluator: Evaluator, trainer: Trainer,
                         config: SurrogateConfig, recipe: Mapping[str, Any], *,
                         storage: str | RDBStorage, study_name: str = "edgenas-trained",
                         on_trained: Callable[[optuna.Study, FrozenTrial], None] | None = None,
                         poll_s: float = 2.0, warm_start: Sequence[Arch] = ()) -> optuna.Study:
    """Lead the search (proposing each round and training, like every worker) until
    ``config.train_budget`` archs are trained; re-running it resumes where it stopped.

    ``warm_start``: the first round's archs instead of a random sample (archs trained
    before with the same recipe, e.g. a ground truth's, which a caching trainer returns
    without training)."""
    fidelities = config.schedule(_recipe_epochs(recipe, config))
    prior = search_prior(config)
    study = open_archive(space, evaluator, config, recipe, storage, study_name)
    study.set_user_attr("finished", False)
    objective = training_objective(space, evaluator, trainer, config.train_budget)
    callbacks = [on_trained] if on_trained is not None else []
    while True:
        proposals = _proposals(study)
        trained = _done(study, fidelities[0])
        if proposals and _enqueue_missing(study, space, proposals[-1], fidelities[0]):
            _train_batch(study, proposals[-1], fidelities[0], objective, callbacks, poll_s)
            continue
        if len(trained) >= config.train_budget:
            break
        round_ = len(proposals)
        archs = trained_trials(study)
        want = min(config.initial if round_ == 0 else config.per_round,
                   config.train_budget - len(trained))
        exclude = trained | _pending_keys(study)
        surrogate = None
        if round_ > 0 and get_strategy(config.strategy).uses_surrogate:
            surrogate = fit_surrogate([arch_of(t) for t in archs],
                                      [t.user_attrs["metrics"]["accuracy"] for t in archs],
                                      config.seed, prior)
            log.info("round %d: surrogate %s, cross-validated Kendall tau %.3f on %d trained "
                     "archs", round_, surrogate.name, surrogate.cv_tau, surrogate.n)
        if round_ == 0:
            first = list(warm_start) or initial_archs(space, evaluator, want, config.seed,
                                                      exclude)
            picks = [(a, None) for a in first]
        else:
            picks = propose(space, evaluator, surrogate, archs, want, config, round_, exclude,
                            prior)
        if not picks:
            log.warning("round %d: the inner search found no untrained arch within the "
                        "budgets; stopping with %d trained", round_, len(trained))
            break
        study.set_user_attr(f"proposal_{round_}", {
            "round": round_, "surrogate": describe(surrogate, prior) if surrogate else None,
            "archs": [{"arch": a.to_json(), "predicted": p} for a, p in picks]})
    for rung in range(len(fidelities) - 1):
        batch = _promotion(study, evaluator, config, fidelities, rung)
        if _enqueue_missing(study, space, batch, fidelities[rung + 1]):
            _train_batch(study, batch, fidelities[rung + 1], objective, callbacks, poll_s)
    study.set_user_attr("finished", True)
    return study


def _recipe_epochs(recipe: Mapping[str, Any], config: SurrogateConfig) -> int:
    epochs = recipe.get("epochs")
    if config.rungs and not isinstance(epochs, int):
        raise SearchError("--rungs: the training recipe names no whole number of epochs to "
                          "halve")
    return epochs if isinstance(epochs, int) else 0


def _train_batch(study: optuna.Study, batch: dict[str, Any], epochs: int | None,
                 objective: Callable[[optuna.Trial], list[float]],
                 callbacks: list[Callable[..., None]], poll_s: float) -> None:
    """Train (with any workers) until every arch of ``batch`` is trained to ``epochs``."""
    keys = {entry["arch"] for entry in batch["archs"]}
    _train_queued(study, objective, lambda: keys <= _done(study, epochs), callbacks, poll_s)


def _promotion(study: optuna.Study, evaluator: Evaluator, config: SurrogateConfig,
               fidelities: tuple[int | None, ...], rung: int) -> dict[str, Any]:
    """The archs that go on from ``fidelities[rung]`` to the next: 1 in ``config.halving``
    of those scored there (at least one), chosen by `select_spread` on their scores and
    exact costs. Stored in the study before any is queued, so that a leader killed mid-way
    goes on with the same choice."""
    name = f"promotion_{rung}"
    if name in study.user_attrs:
        return study.user_attrs[name]
    pool = [t for t in trials_at(study, fidelities[rung]) if t.user_attrs["feasible"]]
    want = math.ceil(len(pool) / config.halving)
    chosen = sorted(select_spread(objective_matrix(pool, evaluator.objectives), want)) \
        if pool else []
    batch = {"promotion": rung, "from_epochs": fidelities[rung],
             "epochs": fidelities[rung + 1],
             "archs": [{"arch": pool[i].user_attrs["arch"],
                        "round": pool[i].user_attrs.get("round"),
                        "predicted": pool[i].user_attrs.get("predicted_accuracy"),
                        "score": pool[i].user_attrs["metrics"]["accuracy"]} for i in chosen]}
    study.set_user_attr(name, batch)
    log.info("promotion %d: %d of the %d archs scored after epoch %s go on to epoch %s "
             "(whole Pareto layers of their scores and costs, spread by crowding distance)",
             rung + 1, len(chosen), len(pool), fidelities[rung], fidelities[rung + 1])
    return batch


def join_surrogate_search(space: SearchSpace, evaluator: Evaluator, trainer: Trainer,
                          config: SurrogateConfig, recipe: Mapping[str, Any], *,
                          storage: str | RDBStorage, study_name: str = "edgenas-trained",
                          on_trained: Callable[[optuna.Study, FrozenTrial], None] | None = None,
                          poll_s: float = 2.0, wait_for_leader_s: float = 600.0) -> optuna.Study:
    """Work for a leader: train queued candidates until the leader says the search is done."""
    if isinstance(storage, str):
        storage = open_storage(storage)
    wait_for_study(study_name, storage, wait_for_leader_s, poll_s)  # the leader creates it
    study = open_archive(space, evaluator, config, recipe, storage, study_name)
    objective = training_objective(space, evaluator, trainer, config.train_budget)
    _train_queued(study, objective, lambda: bool(study.user_attrs.get("finished")),
                  [on_trained] if on_trained is not None else [], poll_s)
    return study


def surrogate_summary(study: optuna.Study, seed: int = 0,
                      prior: AccuracyPrior | None = None) -> dict[str, Any]:
    """How far the search's accuracy predictions held: the final surrogate's cross-validated
    tau on every trained arch, and the tau of each proposal's predictions against the
    accuracies its archs then reached (out of sample: predicted before training)."""
    trials = trained_trials(study)
    archs = [arch_of(t) for t in trials]
    accuracies = [t.user_attrs["metrics"]["accuracy"] for t in trials]
    summary: dict[str, Any] = {"trained_archs": len(trials),
                               "rounds": len(_proposals(study))}
    if len(trials) >= 2 * FOLDS:
        summary["final"] = describe(fit_surrogate(archs, accuracies, seed, prior), prior)
    pairs = [(t.user_attrs["predicted_accuracy"], t.user_attrs["metrics"]["accuracy"])
             for t in trials if t.user_attrs.get("predicted_accuracy") is not None]
    if len(pairs) >= 3:
        predicted, measured = map(np.asarray, zip(*pairs))
        summary["proposals"] = {"n": len(pairs), "kendall_tau": kendall(measured, predicted),
                                "mean_abs_error": float(np.mean(np.abs(predicted - measured)))}
    if trials and fidelity_of(trials[0]) is not None:
        summary["rungs"] = rung_summary(study)
    return summary


def rung_summary(study: optuna.Study) -> dict[str, Any]:
    """What successive halving did: the archs trained to each fidelity, and per promotion
    how well the lower fidelity ranked the promoted archs as the higher one then did
    (Kendall tau over those archs only: a selected sample, the best of their rung, so
    narrower and usually lower than over all archs), the fidelity's own trust number."""
    done = completed(study)
    epochs = sorted({fidelity_of(t) for t in done} - {None})
    at = {e: {t.user_attrs["arch"]: t.user_attrs["metrics"]["accuracy"]
              for t in _per_arch(study, done, e)} for e in epochs}
    out: dict[str, Any] = {"epochs": epochs, "archs": [len(at[e]) for e in epochs],
                           "promotions": []}
    for low, high in zip(epochs, epochs[1:]):
        both = sorted(set(at[low]) & set(at[high]))
        tau = (kendall(np.array([at[high][k] for k in both]), np.array([at[low][k] for k in both]))
               if len(both) >= 3 else None)
        out["promotions"].append({"from_epochs": low, "epochs": high, "archs": len(both),
                                  "kendall_tau": tau})
    return out


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
    """A surrogate-assisted search ready to run: the one assembly the command line and the
    main job share, so both train and record their accuracies the same way."""

    space: SearchSpace
    evaluator: Evaluator
    config: SurrogateConfig
    recipe: TrainConfig
    data: str
    trainer: Trainer

    def run(self, *, storage: str | RDBStorage, study_name: str = "edgenas-trained",
            on_trained: Callable[[optuna.Study, FrozenTrial], None] | None = None,
            worker: bool = False) -> optuna.Study:
        """Lead the search (`run_surrogate_search`), or with ``worker`` only train for a
        leader (`join_surrogate_search`)."""
        role = join_surrogate_search if worker else run_surrogate_search
        return role(self.space, self.evaluator, self.trainer, self.config, self.recipe.to_dict(),
                    storage=storage, study_name=study_name, on_trained=on_trained)

    def outcome(self, study: optuna.Study) -> tuple[list[FrozenTrial], dict[str, Any]]:
        """The trained archs' trials, and what a result records about them: the strategy,
        the recipe, how far the surrogate held and where the accuracies come from."""
        recipe = self.recipe.to_dict()
        trials = trials_at(study, self.config.schedule(self.recipe.epochs)[-1])
        split = accuracy_source.recorded_split(t.user_attrs.get("run_dir") for t in trials)
        return trials, {"strategy": f"surrogate-{self.config.strategy}", "recipe": recipe,
                        "surrogate": surrogate_summary(study, self.config.seed,
                                                       search_prior(self.config)),
                        "accuracy_source": accuracy_source.trained(recipe, self.data, split)}


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
