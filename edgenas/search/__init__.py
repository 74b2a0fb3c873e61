"""Multi-objective search: objectives and budgets, NSGA-II with hierarchical variation,
baselines, storage and results."""

from edgenas.search.engine import SearchConfig, run_search
from edgenas.search.objectives import DEFAULT_OBJECTIVES, OBJECTIVES, Budgets, Evaluator, SearchError
from edgenas.search.strategy import STRATEGIES

__all__ = ["Budgets", "DEFAULT_OBJECTIVES", "Evaluator", "OBJECTIVES", "STRATEGIES",
           "SearchConfig", "SearchError", "run_search"]
