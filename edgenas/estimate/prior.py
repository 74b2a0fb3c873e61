"""The committed predictor as a prior for a search's own accuracy surrogate.

A surrogate-assisted search fits its surrogate on the archs it has trained: 10 to 20 in
its first rounds, too few for any regressor to learn what makes an arch accurate (its
proposals ranked at Kendall tau -0.1..0.5 in the recorded searches). The ground truth's
predictor was fitted on 63 archs trained with the same recipe and ranks archs it has not
seen at about 0.55; as a prior it carries what those 63 trainings taught, which the few
archs of a new search cannot, and the search's own archs only correct it
(`predictor.fit_predictor(..., prior=)`).

The search asks for the prior of every arch its inner search scores (hundreds per round),
so by default the prior is the predictor on the arch's own features (about a millisecond
an arch, and it ranks held-out archs as well as the one with zero-cost scores: tau 0.548
against 0.549, docs/notebook/results-log.md §4); ``proxies=True`` adds the zero-cost scores, a
forward and a backward pass of each new arch (seconds on a CPU).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgenas.estimate.estimators import DEFAULT_TABLE, EstimatorError, PredictorEstimator
from edgenas.space.arch import Arch


class AccuracyPrior:
    """A ground truth's predictor as a function of an arch, remembered by the arch's JSON."""

    def __init__(self, estimator: PredictorEstimator, as_is: bool = False) -> None:
        self.estimator = estimator
        # the search trains with the prior's own recipe and data: its values are used
        # unscaled (`predictor.PriorAsIs`), not rescaled on the search's few trained archs
        self.as_is = as_is
        self.cache: dict[str, float] = {}

    def __call__(self, arch: Arch) -> float:
        """The predicted accuracy of ``arch`` (0..1, the ground truth's recipe)."""
        key = arch.to_json()
        if key not in self.cache:
            self.cache[key] = self.estimator.score(arch)
        return self.cache[key]

    def values(self, archs: Sequence[Arch]) -> np.ndarray:
        """The prior of each arch, in order (what `fit_predictor`'s ``prior`` takes)."""
        return np.array([self(arch) for arch in archs], float)

    def describe(self) -> dict[str, Any]:
        """What a result should record about the prior (table, model, how well it ranks)."""
        return {"prior": self.estimator.name, "zero_cost": self.estimator.use_proxies,
                "as_is": self.as_is,
                "model": self.estimator.predictor.name,
                "cv_kendall_tau": self.estimator.predictor.cv_tau,
                "trained_archs": self.estimator.predictor.n}


def accuracy_prior(data_spec: str | None = None,
                   table: str | os.PathLike[str] = DEFAULT_TABLE, proxies: bool = False,
                   seed: int = 0, as_is: bool = False) -> AccuracyPrior:
    """The predictor fitted on ``table`` (by default the committed CIFAR-10 ground truth),
    as a prior; ``data_spec``: the zero-cost batch's dataset when ``proxies`` is on and the
    table stores no batch of its own; ``as_is``: the search trains with the table's own
    recipe and data, so the prior's values are used unscaled."""
    if not Path(table).is_file():
        raise EstimatorError(f"{table}: no ground-truth table there for the accuracy prior; "
                             "build one with 'edgenas groundtruth build --out TABLE' and pass "
                             f"it, or leave --table out for the shipped one ({DEFAULT_TABLE})")
    return AccuracyPrior(PredictorEstimator(table, data_spec, seed=seed, use_proxies=proxies),
                         as_is)
