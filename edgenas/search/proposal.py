"""What the trained search trains next: the first archs, spread over MACs, and each round's
candidates, the inner search's archs under the surrogate's predictions, of which the
strategy chooses (by default those that most enlarge the trained front's hypervolume,
`edgenas.search.hypervolume_gain`).

Plain algorithms over an `Evaluator` and a fitted surrogate; where the proposals are stored
and queued is `edgenas.search.work_queue`'s.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import optuna
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial

from edgenas.estimate.predictor import Predictor
from edgenas.estimate.prior import AccuracyPrior
from edgenas.search.engine import SearchConfig, arch_of, run_search
from edgenas.search.objectives import Evaluator, SearchError
from edgenas.search.surrogate import predict
from edgenas.search.work_queue import completed
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace


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
        if result.feasible:
            pool[key] = (result.metrics["macs"], arch)
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
            trained: list[FrozenTrial], k: int, inner_search: SearchConfig, exclude: set[str],
            prior: AccuracyPrior | None = None) -> list[tuple[Arch, float | None]]:
    """The next ``k`` archs to train, each with its predicted accuracy.

    The inner search (``inner_search``, seeded for the round) scores archs with the
    surrogate; from its feasible, untrained archs its strategy chooses (`Strategy.choose`:
    those adding the most hypervolume to the trained front, predicted accuracy and exact
    costs; the weighted sum's best by its scalar). A strategy that uses no surrogate
    (``random``, the baseline) proposes random archs.
    """
    strategy = inner_search.strategy
    if not strategy.uses_surrogate or surrogate is None:
        return [(a, None) for a in initial_archs(space, evaluator, k, inner_search.seed,
                                                 exclude)]
    model = surrogate

    def predicted(arch: Arch) -> float:
        return predict(model, arch, prior)

    inner = replace(evaluator, accuracy_fn=predicted, cache={}, accuracy_calls=0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = run_search(space, inner, inner_search,
                       storage=InMemoryStorage())  # type: ignore[arg-type]
    pool: dict[str, FrozenTrial] = {}
    for trial in completed(study):
        key = trial.user_attrs["arch"]
        if trial.user_attrs["feasible"] and key not in exclude:
            pool.setdefault(key, trial)
    candidates = list(pool.values())
    if not candidates:
        return []
    chosen = strategy.choose(candidates, trained, k, space, inner)
    return [(arch_of(t), float(t.user_attrs["metrics"]["accuracy"])) for t in chosen]
