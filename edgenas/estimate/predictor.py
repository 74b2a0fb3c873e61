"""A surrogate accuracy predictor fitted on a ground truth (NSGANetV2's idea, our code).

Features are the arch's own description (`features.arch_features`) plus the zero-cost
scores on a real batch; the regressor is chosen among a few small ones by k-fold
cross-validated Kendall tau on the table it is fitted on, since ranking archs is all a
search asks of it. The chosen model's cross-validated tau and error travel with it, so a
front can say how far its predicted accuracies can be trusted.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edgenas.estimate.features import arch_features
from edgenas.estimate.rank import kendall
from edgenas.space.arch import Arch

log = logging.getLogger(__name__)


def _candidates(seed: int) -> dict[str, Callable[[], Any]]:
    return {
        "ridge": lambda: make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12))),
        "gp-rbf": lambda: make_pipeline(StandardScaler(), GaussianProcessRegressor(
            ConstantKernel() * RBF(length_scale=5.0) + WhiteKernel(1e-3), normalize_y=True,
            random_state=seed)),
        "random-forest": lambda: RandomForestRegressor(100, min_samples_leaf=2,
                                                       random_state=seed),
        "gbdt": lambda: GradientBoostingRegressor(n_estimators=100, max_depth=2,
                                                  learning_rate=0.1, subsample=0.8,
                                                  random_state=seed),
    }


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` seeded, disjoint test index sets covering range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(k)]


def out_of_fold(make: Callable[[], Any], x: np.ndarray, y: np.ndarray, k: int,
                seed: int) -> np.ndarray:
    """Predictions for every row from a model fitted without it."""
    predictions = np.empty_like(y)
    for test in folds(len(y), k, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        predictions[test] = quiet_fit(make(), x[train], y[train]).predict(x[test])
    return predictions


def quiet_fit(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """``model.fit`` without scikit-learn's convergence chatter (the CV score judges it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


@dataclass
class Predictor:
    """The chosen regressor, fitted on every row, and how each candidate cross-validated."""

    name: str
    model: Any
    cv_tau: float
    cv_mae: float
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    n: int = 0
    floor: np.ndarray | None = None     # per feature: where a non-finite value is put

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted accuracy for feature rows."""
        return np.asarray(self.model.predict(clip(np.atleast_2d(x), self.floor)), float)


def floors(x: np.ndarray) -> np.ndarray:
    """Per column: one below its smallest finite value (0 for a column with none)."""
    finite = np.where(np.isfinite(x), x, np.inf).min(axis=0)
    return np.where(np.isfinite(finite), finite - 1.0, 0.0)


def clip(x: np.ndarray, floor: np.ndarray | None) -> np.ndarray:
    """Non-finite entries (a zero-cost score of -inf) replaced by the column's floor."""
    if floor is None or np.isfinite(x).all():
        return x
    return np.where(np.isfinite(x), x, np.broadcast_to(floor, x.shape))


def fit_predictor(x: np.ndarray, y: np.ndarray, k: int = 5, seed: int = 0,
                  only: Sequence[str] | None = None) -> Predictor:
    """Choose the candidate with the best out-of-fold Kendall tau, refit it on all rows."""
    if len(y) < 2 * k:
        raise ValueError(f"a predictor needs at least {2 * k} trained archs, got {len(y)}")
    floor = floors(x)
    x = clip(x, floor)
    scores: dict[str, dict[str, float]] = {}
    makers = _candidates(seed)
    for name, make in makers.items():
        if only is not None and name not in only:
            continue
        predicted = out_of_fold(make, x, y, k, seed)
        scores[name] = {"cv_tau": kendall(y, predicted),
                        "cv_mae": float(np.mean(np.abs(predicted - y)))}
    best = max(scores, key=lambda name: (scores[name]["cv_tau"], -scores[name]["cv_mae"]))
    log.info("predictor: %s", ", ".join(f"{name} tau {s['cv_tau']:.3f}"
                                        for name, s in scores.items()))
    return Predictor(best, quiet_fit(makers[best](), x, y), scores[best]["cv_tau"],
                     scores[best]["cv_mae"], scores, len(y), floor)


def feature_matrix(archs: Sequence[Arch], extra: Callable[[Arch], Sequence[float]] | None
                   ) -> np.ndarray:
    """Rows of `arch_features`, each followed by ``extra(arch)`` (the zero-cost scores)."""
    return np.vstack([np.concatenate([arch_features(a),
                                      np.asarray(extra(a) if extra else [], float)])
                      for a in archs])
