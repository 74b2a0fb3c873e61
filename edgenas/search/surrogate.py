"""The accuracy surrogate of the trained search: a regressor fitted on the archs trained so
far, which the inner search scores candidates with (NSGANetV2's loop).

The regressor is the one with the best cross-validated Kendall tau (`estimate.predictor`):
what the proposals need is the ranking of archs, not their exact accuracies. With an
accuracy prior (the committed predictor) the surrogate keeps the prior, rescaled, unless a
regressor beats it clearly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgenas.estimate.features import arch_features
from edgenas.estimate.predictor import Predictor, fit_predictor
from edgenas.estimate.prior import AccuracyPrior
from edgenas.space.arch import Arch

#: Folds of the surrogate's cross-validation; it needs twice as many trained archs.
FOLDS = 5


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
