"""A search ready to run: the one assembly `edgenas search` and the main job share, so
that both score, run and record a search the same way.

A job is one of two kinds, alike to its caller:

* `EstimatedSearch`: the Optuna search (`engine`), each arch's accuracy from an estimator
  (or no accuracy objective at all);
* `TrainedSearch` (`trained_search`): the surrogate-assisted search, whose front holds
  trained archs.

Each runs on a storage (`run`), says how far it has got (`scored`, out of `total`) and
gives the trials its front is drawn from with what a result records about them
(`outcome`). The caller keeps the rest: where the study lives, the progress bar, the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial

from edgenas.search import accuracy_source
from edgenas.search.engine import SearchConfig, run_search
from edgenas.search.objectives import Budgets, Evaluator, check_budgets_reachable
from edgenas.search.trained_search import TrainedSearch, trained_search
from edgenas.search.work_queue import Callback, completed
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace

__all__ = ["EstimatedSearch", "SearchJob", "TrainedSearch", "estimated_search",
           "trained_search"]


@dataclass(frozen=True)
class EstimatedSearch:
    """The Optuna search over an evaluator whose accuracy (if any) is estimated.

    ``estimator`` (an `edgenas.estimate.estimators.Estimator`, or None) is what a result
    records about the accuracies, read after the search; ``source`` records them instead
    where the scores come from elsewhere (the main job's supernet)."""

    space: SearchSpace
    evaluator: Evaluator
    config: SearchConfig
    estimator: Any = None
    source: accuracy_source.AccuracySource | None = None

    @property
    def total(self) -> int:
        """The trials the search runs."""
        return self.config.trials

    def scored(self, study: optuna.Study) -> list[FrozenTrial]:
        """The trials scored so far (repeats included)."""
        return completed(study)

    def run(self, *, storage: str | RDBStorage, study_name: str = "edgenas",
            resume: bool = False, on_trial: Callback | None = None) -> optuna.Study:
        """Run, continue or join the search until its trials are complete (`run_search`)."""
        return run_search(self.space, self.evaluator, self.config, storage=storage,
                          study_name=study_name, resume=resume,
                          callbacks=[on_trial] if on_trial is not None else None)

    def outcome(self, study: optuna.Study) -> tuple[list[FrozenTrial], dict[str, Any]]:
        """The scored trials, and what a result records about them: the strategy, the
        estimator and where the accuracies come from."""
        source = self.source
        if source is None and self.estimator is not None:
            source = accuracy_source.of_estimator(self.estimator)
        return completed(study), {
            "strategy": self.config.strategy.name,
            "estimator": self.estimator.describe() if self.estimator is not None else None,
            "accuracy_source": source.to_dict() if source is not None else None}


def estimated_search(space: SearchSpace, objectives: tuple[str, ...], budgets: Budgets,
                     config: SearchConfig, accuracy_fn: Callable[[Arch], float] | None = None,
                     *, estimator: Any = None,
                     source: accuracy_source.AccuracySource | None = None,
                     **latency: Any) -> EstimatedSearch:
    """The Optuna search scoring accuracy with ``accuracy_fn`` (by default the
    ``estimator``'s score; ``latency``: `Evaluator`'s latency arguments); refuses budgets no
    arch of the space meets."""
    if accuracy_fn is None and estimator is not None:
        accuracy_fn = estimator.score
    evaluator = Evaluator(objectives, budgets, accuracy_fn=accuracy_fn, **latency)
    check_budgets_reachable(space, evaluator)
    return EstimatedSearch(space, evaluator, config, estimator, source)


#: A search ready to run, of either kind.
SearchJob = Union[EstimatedSearch, TrainedSearch]
