"""Search strategies: small objects, chosen by name, in the way Optuna's samplers are.

A strategy says which sampler proposes archs, what the study optimises (its directions and
the names of its values) and what one trial reports. Every strategy is scored by the same
`Evaluator`, so strategies differ only in the archs they ask for:

* ``nsga2``: NSGA-II with edgenas's hierarchical crossover and mutation;
* ``nsga2-flat``: Optuna's NSGA-II as it comes (uniform crossover over all genes);
* ``weighted-sum``: one scalar, ``-accuracy + sum(lambda_i * cost_i / reference_i)`` (the
  paper's equation 2), optimised with TPE;
* ``random``: uniform samples of the encoding.

The names are what the command line takes and what a study records; `as_strategy` turns
one into its object once, where a setting enters (`SearchConfig`, `SurrogateConfig`), and
the object travels from there.
"""

from __future__ import annotations

import statistics
import warnings
from typing import TYPE_CHECKING, ClassVar

import optuna
from optuna.samplers import BaseSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial

from edgenas.search.hypervolume_gain import greedy_hypervolume
from edgenas.search.objectives import Evaluator, SearchError, TrialResult
from edgenas.search.variation import HierarchicalVariation
from edgenas.space.search_space import SearchSpace

if TYPE_CHECKING:  # the configuration names its strategy, so engine imports this module
    from edgenas.search.engine import SearchConfig


class Strategy:
    """The multi-objective default: the study optimises the evaluator's objectives, and a
    trial reports their values; subclasses give the sampler."""

    name: ClassVar[str]
    #: Whether the trained search's proposals come from a fitted accuracy surrogate.
    uses_surrogate: ClassVar[bool] = True

    def __repr__(self) -> str:  # what a configuration shows: the name it was given by
        return repr(self.name)

    def sampler(self, config: SearchConfig) -> BaseSampler:
        """The Optuna sampler (budgets reach NSGA-II as trial constraints)."""
        raise NotImplementedError

    def directions(self, evaluator: Evaluator) -> list[str]:
        """The study's directions, one per value a trial reports."""
        return evaluator.directions

    def metric_names(self, evaluator: Evaluator) -> list[str]:
        """The names of the values a trial reports."""
        return list(evaluator.objectives)

    def references(self, space: SearchSpace, evaluator: Evaluator) -> dict[str, float] | None:
        """The scales the strategy needs before its first trial (None: none)."""
        return None

    def value(self, result: TrialResult, evaluator: Evaluator, weights: dict[str, float],
              references: dict[str, float] | None) -> float | list[float]:
        """What a trial scored as ``result`` (`Evaluator.evaluate`) reports to Optuna."""
        return evaluator.values(result.metrics)

    def choose(self, candidates: list[FrozenTrial], trained: list[FrozenTrial], k: int,
               space: SearchSpace, evaluator: Evaluator) -> list[FrozenTrial]:
        """The ``k`` of ``candidates`` (scored by ``evaluator``, the surrogate's) to train
        next, beside the ``trained`` archs: those adding the most hypervolume to their front."""
        return greedy_hypervolume(candidates, trained, evaluator.objectives, k)


class NSGA2(Strategy):
    name = "nsga2"

    def sampler(self, config: SearchConfig) -> BaseSampler:
        variation = HierarchicalVariation(config.crossover_prob, config.macro_mutation_prob,
                                          config.stage_mutation_prob, config.block_mutation_prob,
                                          seed=config.seed)
        with warnings.catch_warnings():  # Optuna calls the argument experimental: users
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # need not
            return NSGAIISampler(population_size=config.population, seed=config.seed,
                                 child_generation_strategy=variation)


class FlatNSGA2(Strategy):
    name = "nsga2-flat"

    def sampler(self, config: SearchConfig) -> BaseSampler:
        return NSGAIISampler(population_size=config.population, seed=config.seed)


class WeightedSum(Strategy):
    """The single-objective baseline a multi-objective search is compared with: budgets
    enter the scalar as a penalty, as TPE knows no constraints."""

    name = "weighted-sum"

    def sampler(self, config: SearchConfig) -> BaseSampler:
        return TPESampler(seed=config.seed, n_startup_trials=config.population)

    def directions(self, evaluator: Evaluator) -> list[str]:
        return ["minimize"]

    def metric_names(self, evaluator: Evaluator) -> list[str]:
        return ["weighted_sum"]

    def references(self, space: SearchSpace, evaluator: Evaluator) -> dict[str, float]:
        return reference_costs(space, evaluator)

    def value(self, result: TrialResult, evaluator: Evaluator, weights: dict[str, float],
              references: dict[str, float] | None) -> float:
        penalty = 10.0 * sum(max(0.0, c) for c in result.constraints)
        return self.scalar(result.metrics, evaluator.objectives, weights,
                           references or {}) + penalty

    def scalar(self, metrics: dict[str, float], objectives: tuple[str, ...],
               weights: dict[str, float], references: dict[str, float]) -> float:
        return weighted_sum(metrics, objectives, weights, references)

    def choose(self, candidates: list[FrozenTrial], trained: list[FrozenTrial], k: int,
               space: SearchSpace, evaluator: Evaluator) -> list[FrozenTrial]:
        """The best ``k`` by the scalar: what this baseline optimises."""
        references = self.references(space, evaluator)
        return sorted(candidates, key=lambda t: self.scalar(t.user_attrs["metrics"],
                                                            evaluator.objectives, {},
                                                            references))[:k]


class RandomSearch(Strategy):
    """Uniform samples: the baseline every strategy must beat; in the trained search, its
    candidates are random archs too, chosen without a surrogate."""

    name = "random"
    uses_surrogate = False

    def sampler(self, config: SearchConfig) -> BaseSampler:
        return RandomSampler(seed=config.seed)


_REGISTRY: dict[str, Strategy] = {s.name: s for s in (NSGA2(), FlatNSGA2(), WeightedSum(),
                                                      RandomSearch())}
#: The strategies' names, as the command line takes them and a study records them.
STRATEGIES = tuple(_REGISTRY)


def get_strategy(name: str) -> Strategy:
    """The strategy a name stands for."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SearchError(f"strategy {name!r} not in {STRATEGIES}") from None


def as_strategy(strategy: Strategy | str) -> Strategy:
    """The strategy itself, or the one a name stands for: settings take either, so that a
    name from the command line or a study is looked up once, where it enters."""
    return strategy if isinstance(strategy, Strategy) else get_strategy(strategy)


def weighted_sum(metrics: dict[str, float], objectives: tuple[str, ...],
                 weights: dict[str, float], references: dict[str, float]) -> float:
    """A weighted sum of the normalised objectives (lower is better)."""
    total = 0.0
    for name in objectives:
        if name == "accuracy":
            total -= metrics["accuracy"]
        else:
            total += weights.get(name, 0.25) * metrics[name] / references[name]
    return total


def reference_costs(space: SearchSpace, evaluator: Evaluator, samples: int = 200) -> dict[str, float]:
    """Median cost of random archs: the scale that makes weighted-sum lambdas unit-free."""
    metrics = [evaluator.cheap_metrics(space.sample(10_000_000 + i)) for i in range(samples)]
    return {name: statistics.median(m[name] for m in metrics) for name in metrics[0]}
