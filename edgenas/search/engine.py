"""The search: an Optuna study over a space's fixed-length encoding.

Strategies, all scored by the same `Evaluator`:

* ``nsga2``: NSGA-II with edgenas's hierarchical crossover and mutation;
* ``nsga2-flat``: Optuna's NSGA-II as it comes (uniform crossover over all genes);
* ``weighted-sum``: one scalar, ``-accuracy + sum(lambda_i * cost_i / reference_i)`` (the
  paper's equation 2), optimised with TPE;
* ``random``: uniform samples of the encoding.

Any number of workers can share a study through an RDB storage (SQLite by default,
PostgreSQL to scale out); heartbeats fail the trials of a worker that died and
`RetryFailedTrialCallback` runs them again. A study never completes more trials than
asked for, and an arch is never evaluated twice: a repeat reuses the earlier result.
"""

from __future__ import annotations

import datetime
import inspect
import json
import logging
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import optuna
from optuna.samplers import NSGAIISampler, RandomSampler, TPESampler
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from edgenas.search.objectives import Evaluator, SearchError, objective_direction
from edgenas.search.pareto import hypervolume, non_dominated, to_minimization
from edgenas.search.variation import HierarchicalVariation
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)
STRATEGIES = ("nsga2", "nsga2-flat", "weighted-sum", "random")


@dataclass
class SearchConfig:
    """What to run; everything that changes the result is here (and stored in the study)."""

    strategy: str = "nsga2"
    trials: int = 100
    population: int = 20
    seed: int = 0
    weights: dict[str, float] = field(default_factory=dict)  # weighted-sum lambdas
    crossover_prob: float = 0.9
    macro_mutation_prob: float = 0.15
    stage_mutation_prob: float = 0.15
    block_mutation_prob: float = 0.05

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SearchError(f"strategy {self.strategy!r} not in {STRATEGIES}")
        if self.trials < 1 or self.population < 2:
            raise SearchError("need trials >= 1 and population >= 2")


def open_storage(url: str, heartbeat_s: int = 10) -> RDBStorage:
    """An RDB storage with heartbeats, so a dead worker's trial is failed and retried."""
    parameters = inspect.signature(RDBStorage.__init__).parameters
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if "heartbeat_stale_trial_callback" in parameters:  # Optuna >= 4.9
                    from optuna.storages import RetryHeartbeatStaleTrialCallback

                    retry = {"heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(3)}
                else:
                    retry = {"failed_trial_callback": RetryFailedTrialCallback(max_retry=3)}
                # a pooled connection to a restarted server is dead: test it on checkout
                engine = {} if url.startswith("sqlite") else {"engine_kwargs": {"pool_pre_ping": True}}
                return RDBStorage(url, heartbeat_interval=heartbeat_s,
                                  grace_period=3 * heartbeat_s, **retry, **engine)
        except Exception as err:  # sqlalchemy raises many kinds; the URL is what the user can fix
            # workers started together race to create the schema on an empty database;
            # the loser finds it created a moment later
            if attempt == 4 or "already exists" not in str(err):
                raise SearchError(f"cannot open study storage {url!r}: {err}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def make_sampler(config: SearchConfig) -> optuna.samplers.BaseSampler:
    """The sampler for a strategy (budgets reach NSGA-II as trial constraints)."""
    if config.strategy == "nsga2":
        variation = HierarchicalVariation(config.crossover_prob, config.macro_mutation_prob,
                                          config.stage_mutation_prob, config.block_mutation_prob,
                                          seed=config.seed)
        return NSGAIISampler(population_size=config.population, seed=config.seed,
                             child_generation_strategy=variation)
    if config.strategy == "nsga2-flat":
        return NSGAIISampler(population_size=config.population, seed=config.seed)
    if config.strategy == "weighted-sum":  # budgets enter the scalar as a penalty
        return TPESampler(seed=config.seed, n_startup_trials=config.population)
    return RandomSampler(seed=config.seed)


def reference_costs(space: SearchSpace, evaluator: Evaluator, samples: int = 200) -> dict[str, float]:
    """Median cost of random archs: the scale that makes weighted-sum lambdas unit-free."""
    metrics = [evaluator.cheap_metrics(space.sample(10_000_000 + i)) for i in range(samples)]
    return {name: statistics.median(m[name] for m in metrics) for name in metrics[0]}


def _completed_ahead(study: optuna.Study, number: int) -> int:
    """Trials numbered below ``number`` that have completed or may still complete."""
    alive = (TrialState.COMPLETE, TrialState.RUNNING)
    now = datetime.datetime.now()
    return sum(1 for t in study.get_trials(deepcopy=False, states=alive)
               if t.number < number and not orphaned(t, now))


#: A live trial's objective marks it within moments of the trial being started; one still
#: unmarked after this long belongs to a worker killed in between.
ORPHAN_S = 30.0

#: The user attribute a trial's own process sets as its objective starts. Its value is the
#: trial's number: Optuna's retry callback copies a failed trial's user attributes into the
#: retry, and a mark that could be inherited would vouch for a retry nobody runs.
ALIVE = "alive"


def mark_alive(trial: optuna.Trial) -> None:
    """Beat once, then mark the trial as run by a live process.

    The beat comes first so that a marked trial always has one: Optuna then fails it as
    stale if its process dies, and `orphaned` covers the unmarked rest. Optuna's own first
    beat comes from a thread that races the objective, so a worker killed early could leave
    a marked trial with no beat, which nothing would ever fail."""
    storage = trial.storage
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is not None:
        storage.record_heartbeat(trial._trial_id)  # noqa: SLF001 - Optuna's own key for it
    trial.set_user_attr(ALIVE, trial.number)


def orphaned(trial: FrozenTrial, now: datetime.datetime) -> bool:
    """A running trial whose process died before `mark_alive`. Optuna's heartbeat fails only
    trials that beat once, and a worker killed between starting a trial and its first beat
    leaves it running for ever. Counted as alive, such a trial held a four-worker search one
    trial short of its budget, every worker pruning, until the test timed out: first a fresh
    trial, then (the mark once being the "arch" attribute) a retried one, which inherits
    its failed original's attributes."""
    return (trial.state == TrialState.RUNNING and trial.user_attrs.get(ALIVE) != trial.number
            and trial.datetime_start is not None
            and (now - trial.datetime_start).total_seconds() > ORPHAN_S)


#: What a scored trial records, in the order written: "metrics" last, so that a trial with
#: metrics (what readers look for) has the rest, even from a worker killed mid-write.
RESULT = ("constraints", "feasible", "metrics")


def record_result(trial: optuna.Trial, result: dict[str, Any]) -> None:
    """Store a scored arch's metrics, budget margins and feasibility on its trial."""
    for key in RESULT:
        trial.set_user_attr(key, result[key])


def _previous_result(study: optuna.Study, key: str) -> FrozenTrial | None:
    """An earlier trial that evaluated this arch: completed, or failed after evaluating
    (a worker killed between scoring an arch and reporting it). A result only partly
    written is none: a study from before `record_result` can hold one, and reusing it
    crashed a worker of a four-worker search."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        if trial.user_attrs.get("arch") == key and all(k in trial.user_attrs for k in RESULT):
            return trial
    return None


class BudgetWait:
    """Optuna callback: after a trial pruned because the budget is taken, wait a little
    for stragglers instead of spinning. The wait comes after the trial is finished: waited
    inside the objective, a pruned trial still counted as running for its peers, and three
    workers so held each other off the last trial of a four-worker search for minutes (in
    CI, 211 s; in one of three local runs, past the test's 300 s)."""

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
    genes = space.genes()

    def objective(trial: optuna.Trial) -> Any:
        mark_alive(trial)
        if _completed_ahead(trial.study, trial.number) >= config.trials:
            if wait is not None:
                wait.numbers.add(trial.number)
            raise optuna.TrialPruned("enough trials are complete or running")
        params = {name: trial.suggest_categorical(name, choices) for name, choices in genes.items()}
        arch = space.decode(params)
        key = arch.to_json()
        trial.set_user_attr("arch", key)
        earlier = _previous_result(trial.study, key)
        if earlier is not None:  # evaluated by this or another worker: reuse, don't re-run
            result = {k: earlier.user_attrs[k] for k in RESULT}
            trial.set_user_attr("repeat_of", earlier.number)
        else:
            result = evaluator.evaluate(arch)
        record_result(trial, result)
        for name, value in zip(evaluator.limits(), result["constraints"]):
            trial.set_constraint(name, value)  # <= 0: within budget
        if config.strategy == "weighted-sum":
            penalty = 10.0 * sum(max(0.0, c) for c in result["constraints"])
            return weighted_sum(result["metrics"], evaluator.objectives, config.weights,
                                references or {}) + penalty
        return evaluator.values(result)

    return objective


def weighted_sum(metrics: dict[str, float], objectives: tuple[str, ...],
                 weights: dict[str, float], references: dict[str, float]) -> float:
    """A weighted sum of the normalised objectives (lower is better): the single-objective
    baseline a multi-objective search is compared with."""
    total = 0.0
    for name in objectives:
        if name == "accuracy":
            total -= metrics["accuracy"]
        else:
            total += weights.get(name, 0.25) * metrics[name] / references[name]
    return total


def create_study(space: SearchSpace, evaluator: Evaluator, config: SearchConfig,
                 storage: str | RDBStorage, study_name: str, resume: bool) -> optuna.Study:
    """Create a study, or load it to resume or to add a worker; refuses a mismatch."""
    directions = (["minimize"] if config.strategy == "weighted-sum" else evaluator.directions)
    sampler = make_sampler(config)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
        exists = True
    except KeyError:
        exists = False
    mine = _identity(space, evaluator, config)
    metrics = ["weighted_sum"] if config.strategy == "weighted-sum" else evaluator.objectives
    if exists:
        recorded = identity_on_record(study, mine)
        if recorded is not None and recorded != mine:
            raise SearchError(f"study {study_name!r} was started with other settings "
                              f"({_diff(recorded, mine)}); use another --study-name or run directory")
        if not resume and study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.info("joining study %r with %d completed trials", study_name,
                     len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))))
        name_metrics(study, metrics)  # a study from before the names were recorded
        return study
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                directions=directions, load_if_exists=True)
    study.set_user_attr("edgenas", mine)
    name_metrics(study, metrics)
    return study


def name_metrics(study: optuna.Study, names: Sequence[str]) -> None:
    """Name the study's objective values (``accuracy``, ``latency``, ...), so that
    optuna-dashboard and Optuna's plots label them by name instead of 0, 1, 2."""
    if study.metric_names == list(names) or len(study.directions) != len(names):
        return  # named already, or a study of other objectives (refused elsewhere)
    with warnings.catch_warnings():  # experimental since Optuna 3.2, still so in 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(names))


def identity_on_record(study: optuna.Study, mine: dict[str, Any]) -> dict[str, Any] | None:
    """The settings a study was started with. Creating a study and recording its settings
    are two writes: a worker that joins between them (seen in CI), or a study whose creator
    was killed between them, has none yet; while it has no trial either, ours are recorded,
    the same as its creator's would have been had they agreed."""
    recorded = study.user_attrs.get("edgenas")
    if recorded is None and not study.get_trials(deepcopy=False):
        study.set_user_attr("edgenas", mine)
        recorded = study.user_attrs.get("edgenas")  # read back: another may have won
    return recorded


def _identity(space: SearchSpace, evaluator: Evaluator, config: SearchConfig) -> dict[str, Any]:
    """What must agree between the workers of one study (seeds and trial counts may differ:
    workers with distinct seeds explore different archs; a resumed run may ask for more)."""
    identity = {"space": space.name, "space_hash": space.space_hash(),
                "objectives": list(evaluator.objectives), "budgets": evaluator.limits(),
                "strategy": config.strategy, "population": config.population}
    return json.loads(json.dumps(identity))  # as the storage returns it: lists, not tuples


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys)


def run_search(space: SearchSpace, evaluator: Evaluator, config: SearchConfig, *,
               storage: str | RDBStorage, study_name: str = "edgenas", resume: bool = False,
               callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
               timeout_s: float | None = None) -> optuna.Study:
    """Run (or continue, or join as another worker) a search until ``config.trials`` complete."""
    if isinstance(storage, str):
        storage = open_storage(storage)
    study = create_study(space, evaluator, config, storage, study_name, resume)
    references = (reference_costs(space, evaluator) if config.strategy == "weighted-sum" else None)
    wait = BudgetWait()
    objective = make_objective(space, evaluator, config, references, wait)
    started, watch, done_when_lost = time.monotonic(), Reconnect(), -1
    while True:
        try:
            done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if done > done_when_lost:  # progress since the last loss: a new loss waits anew
                watch.ok()
            if done < config.trials:
                left = None if timeout_s is None else timeout_s - (time.monotonic() - started)
                if left is not None and left <= 0:
                    return study
                study.optimize(objective, n_trials=None, timeout=left, gc_after_trial=False,
                               callbacks=[MaxTrialsCallback(config.trials,
                                                            states=(TrialState.COMPLETE,)),
                                          wait, *(callbacks or [])])
            return study
        except Exception as err:  # noqa: BLE001 - only a lost connection is retried
            if watch.since is None:
                done_when_lost = _count_or(study, done_when_lost)
            watch.lost(err)


def _count_or(study: optuna.Study, fallback: int) -> int:
    """Completed trials, or ``fallback`` while the storage cannot say."""
    try:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    except Exception:  # noqa: BLE001 - the storage is down; the caller retries later
        return fallback


class Reconnect:
    """Waits out a lost database connection (a restart, a failover) for up to
    `RECONNECT_S` without progress, then gives up with a clear error; any other error is
    raised as it is."""

    def __init__(self) -> None:
        self.since: float | None = None

    def ok(self) -> None:
        """Work went through: a later loss waits anew."""
        self.since = None

    def lost(self, err: Exception) -> None:
        """Sleep a little and return (the caller retries), or raise."""
        if _taken_over(err) and not _connection_lost(err):
            log.warning("this worker's trial was failed as stale by another while it was cut "
                        "off; going on with a new trial")
        elif not _connection_lost(err):
            raise err
        if self.since is None:
            self.since = time.monotonic()
        waited = time.monotonic() - self.since
        if waited > RECONNECT_S:
            raise SearchError(f"the study storage has been unreachable for {waited:.0f} s "
                              f"({_root(err)}); every finished trial is stored: re-run the "
                              "same command once the database is back") from None
        log.warning("lost the study storage (%s); retrying (%.0f s of %d)", _root(err),
                    waited, RECONNECT_S)
        time.sleep(min(5.0, 0.5 + waited / 4))


#: How long a worker waits for its database to come back (a restart, a failover).
RECONNECT_S = 120


def _root(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _taken_over(err: BaseException) -> bool:
    """Our running trial was finished by another process: while this worker was cut off
    from the database (a restart), its heartbeats stopped and a peer failed the trial as
    stale, so writing to it or telling it now fails. The trial is retried by the peer's
    stale-trial callback; this worker goes on with a new one. Seen in CI: one of two
    workers exited after a PostgreSQL restart with Optuna's "Should not reach" assertion
    over "Cannot tell a FAIL trial"."""
    chain: BaseException | None = err
    while chain is not None:
        if isinstance(chain, optuna.exceptions.UpdateFinishedTrialError):
            return True
        if isinstance(chain, ValueError) and str(chain).startswith("Cannot tell a "):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def _connection_lost(err: BaseException) -> bool:
    """A dropped or refused database connection, as opposed to a bad query or bad data."""
    import sqlalchemy.exc

    chain: BaseException | None = err
    while chain is not None:
        if isinstance(chain, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(chain, sqlalchemy.exc.DBAPIError) and chain.connection_invalidated:
            return True
        chain = chain.__cause__ or chain.__context__
    return False


# -- results --------------------------------------------------------------------------------

def completed(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials that evaluated an arch (repeats included), by trial number."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted((t for t in trials if "metrics" in t.user_attrs), key=lambda t: t.number)


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


def objective_matrix(trials: list[FrozenTrial], objectives: tuple[str, ...]) -> np.ndarray:
    """Objectives of trials in minimisation form."""
    values = [[t.user_attrs["metrics"][name] for name in objectives] for t in trials]
    return to_minimization(np.asarray(values).reshape(-1, len(objectives)),
                           [objective_direction(name) for name in objectives])


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
