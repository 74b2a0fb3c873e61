"""The estimators' command-line names, apart from their code: registering the CLI's
commands must not import torch and scipy (``edgenas --help`` would wait seconds for them).
"""

from __future__ import annotations

#: What ``edgenas estimate`` and ``edgenas search`` use when no estimator is named; chosen
#: from benchmarks/bench_estimators.py (docs/notebook/results-log.md).
DEFAULT_ESTIMATOR = "predictor"
ESTIMATOR_NAMES = ("params", "macs", "naswot", "synflow", "supernet:DIR", "predictor[:TABLE]")
#: Accuracy by training each candidate with one recipe: only a search can do it (a
#: surrogate fitted on the trained archs chooses the candidates), so ``edgenas estimate``
#: does not offer it.
TRAINED = "trained"
#: What ``edgenas search --estimator`` accepts.
SEARCH_ESTIMATOR_NAMES = (*ESTIMATOR_NAMES, TRAINED)
