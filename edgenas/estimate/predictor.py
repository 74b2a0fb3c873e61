"""A surrogate accuracy predictor fitted on a ground truth (NSGANetV2's idea, our code).

Features are the arch's own description (`features.arch_features`) plus the zero-cost
scores on a real batch; the regressor is chosen among a few small ones by k-fold
cross-validated Kendall tau on the table it is fitted on, since ranking archs is all a
search asks of it. The chosen model's cross-validated tau and error travel with it, so a
front can say how far its predicted accuracies can be trusted.

With a *prior* (one accuracy per row from a predictor fitted elsewhere, such as
`estimate.prior`'s), the candidates build on it instead: the prior rescaled, the prior
plus a regularised residual, or a regressor given the prior as one more feature. On the
10-20 archs of a search's first rounds, cross-validated tau is too noisy to choose among
them fairly (a fold holds two to four archs), so the rescaled prior is kept unless another
candidate beats it by a margin (`PRIOR_MARGIN`; benchmarks/bench_surrogate.py replays recorded
searches to measure the choice).
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

from edgenas.errors import EdgenasError
from edgenas.estimate.features import arch_features
from edgenas.profile.ranking import kendall_tau
from edgenas.space.arch import Arch

log = logging.getLogger(__name__)

#: The candidate that is the prior itself, rescaled.
PRIOR = "prior"
#: The rescaled prior is kept unless another candidate's cross-validated tau beats its own
#: by this much: about what the best of five candidates gains by chance on 10-20 rows. In
#: the replay of the recorded searches (benchmarks/bench_surrogate.py) no candidate ranked the
#: proposals better than the prior alone, while choosing by tau alone claimed 0.41 and
#: reached 0.21.
PRIOR_MARGIN = 0.3
#: Smallest slope of the rescaled prior: a prior that the trained archs contradict is
#: flattened towards their mean, never turned upside down.
MIN_PRIOR_SLOPE = 0.05


class PredictorError(EdgenasError, ValueError):
    """Rows, targets or prior values a predictor cannot be fitted on or predict from."""


def candidates(seed: int, prior: bool = False,
               prior_as_is: bool = False) -> dict[str, Callable[[], Any]]:
    """The candidate regressors by name, each a maker of an unfitted model; with ``prior``,
    those for rows whose last column is the prior (`with_prior`), the prior itself taken
    as it is (`PriorAsIs`) with ``prior_as_is``, else rescaled (`RescaledPrior`)."""
    plain: dict[str, Callable[[], Any]] = {
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
    if not prior:
        return plain
    return {PRIOR: PriorAsIs if prior_as_is else RescaledPrior,
            "prior+residual": lambda: PriorPlusResidual(prior_as_is),
            **{f"{name}+prior": make for name, make in plain.items()}}


class PriorAsIs:
    """The prior's own values. When the archs are trained with the recipe and data the prior
    was fitted on, its values already predict their accuracies. A rescale fitted on a
    round's 10-20 trained archs would then only follow those archs' training noise. It
    moves from round to round and reorders the proposals of different rounds, which the
    prior had ranked on one scale (docs/notebook/results-log.md §16)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "PriorAsIs":
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.array(x[:, -1], dtype=float)


class RescaledPrior:
    """``a + b * prior`` by least squares, the prior being the last column; ``b`` is kept
    at least `MIN_PRIOR_SLOPE`, so the predictions rank exactly as the prior does."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "RescaledPrior":
        prior = x[:, -1]
        spread = float(np.var(prior))
        slope = float(np.mean((prior - prior.mean()) * (y - y.mean())) / spread) \
            if spread > 0 else 1.0
        self.slope = max(slope, MIN_PRIOR_SLOPE)
        self.intercept = float(y.mean() - self.slope * prior.mean())
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * x[:, -1]


class PriorPlusResidual:
    """The prior (rescaled, or ``as_is``) plus a strongly regularised ridge, on the arch
    features (every column but the last), of what the prior got wrong on the trained archs."""

    def __init__(self, as_is: bool = False) -> None:
        self.prior: RescaledPrior | PriorAsIs = PriorAsIs() if as_is else RescaledPrior()
        # alphas from 10 up: with ~10 rows and ~50 features a weaker ridge fits the noise
        self.residual = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(1, 4, 10)))

    def fit(self, x: np.ndarray, y: np.ndarray) -> "PriorPlusResidual":
        self.prior.fit(x, y)
        self.residual.fit(x[:, :-1], y - self.prior.predict(x))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.prior.predict(x) + self.residual.predict(x[:, :-1])


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
    """The chosen regressor, fitted on every row, and how each candidate cross-validated.

    ``uses_prior``: fitted with a prior, so `predict` needs each new row's prior too."""

    name: str
    model: Any
    cv_tau: float
    cv_mae: float
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    n: int = 0
    floor: np.ndarray | None = None     # per feature: where a non-finite value is put
    uses_prior: bool = False

    def predict(self, x: np.ndarray, prior: np.ndarray | Sequence[float] | float | None = None
                ) -> np.ndarray:
        """Predicted accuracy for feature rows (and, if fitted with one, their prior)."""
        rows = clip(np.atleast_2d(x), self.floor)
        if self.uses_prior:
            if prior is None:
                raise PredictorError(f"{self.name} was fitted with a prior: pass prior=, "
                                     "one value per row (the prior the fit was given)")
            rows = with_prior(rows, prior)
        elif prior is not None:
            raise PredictorError(f"{self.name} was fitted without a prior; refit with "
                                 "fit_predictor(..., prior=) to use one")
        return np.asarray(self.model.predict(rows), float)


def prior_column(prior: np.ndarray | Sequence[float] | float, rows: int) -> np.ndarray:
    """``prior`` as one finite value per row, else a `PredictorError` saying what is wrong."""
    values = np.atleast_1d(np.asarray(prior, dtype=float))
    if values.shape != (rows,):
        raise PredictorError(f"prior: expected one value per row, shape ({rows},), got "
                             f"shape {values.shape}")
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values)).tolist()
        raise PredictorError(f"prior: rows {bad[:5]} are not finite; a prior gives every "
                             "arch a number")
    return values


def floors(x: np.ndarray) -> np.ndarray:
    """Per column: one below its smallest finite value (0 for a column with none)."""
    finite = np.where(np.isfinite(x), x, np.inf).min(axis=0)
    return np.where(np.isfinite(finite), finite - 1.0, 0.0)


def clip(x: np.ndarray, floor: np.ndarray | None) -> np.ndarray:
    """Non-finite entries (a zero-cost score of -inf) replaced by the column's floor."""
    if floor is None or np.isfinite(x).all():
        return x
    return np.where(np.isfinite(x), x, np.broadcast_to(floor, x.shape))


def choose(scores: dict[str, dict[str, float]], prior_margin: float = PRIOR_MARGIN) -> str:
    """The candidate to keep: the best cross-validated tau (then the smallest error), but
    the rescaled prior, when scored, unless the best beats its tau by ``prior_margin``."""
    best = max(scores, key=lambda name: (scores[name]["cv_tau"], -scores[name]["cv_mae"]))
    if PRIOR in scores and scores[best]["cv_tau"] < scores[PRIOR]["cv_tau"] + prior_margin:
        return PRIOR
    return best


def score_candidates(makers: dict[str, Callable[[], Any]], x: np.ndarray, y: np.ndarray,
                     k: int = 5, seed: int = 0
                     ) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Each candidate's out-of-fold Kendall tau and mean absolute error, and the out-of-fold
    predictions themselves (rows prepared as `fit_predictor` prepares them)."""
    scores: dict[str, dict[str, float]] = {}
    predictions: dict[str, np.ndarray] = {}
    for name, make in makers.items():
        predicted = out_of_fold(make, x, y, k, seed)
        predictions[name] = predicted
        scores[name] = {"cv_tau": kendall_tau(y, predicted, undefined=0.0),
                        "cv_mae": float(np.mean(np.abs(predicted - y)))}
    return scores, predictions


def with_prior(x: np.ndarray, prior: np.ndarray | Sequence[float] | None) -> np.ndarray:
    """``x`` with ``prior`` appended as its last column (the rows prior candidates take)."""
    if prior is None:
        return x
    return np.hstack([x, prior_column(prior, len(x))[:, None]])


def fit_predictor(x: np.ndarray, y: np.ndarray, k: int = 5, seed: int = 0,
                  only: Sequence[str] | None = None,
                  prior: np.ndarray | Sequence[float] | None = None,
                  prior_margin: float = PRIOR_MARGIN, prior_as_is: bool = False) -> Predictor:
    """Choose a candidate by out-of-fold Kendall tau (`choose`), refit it on all rows.

    ``prior``: one prior accuracy per row (aligned with ``y``); the candidates are then
    those built on it, and `Predictor.predict` needs new rows' prior values too.
    ``prior_as_is``: the prior predicts these accuracies unscaled (`PriorAsIs`)."""
    y = np.asarray(y, float)
    if len(y) < 2 * k:
        raise PredictorError(f"a predictor needs at least {2 * k} trained archs, got {len(y)}")
    if len(x) != len(y):
        raise PredictorError(f"{len(x)} feature rows but {len(y)} accuracies")
    makers = candidates(seed, prior is not None, prior_as_is)
    if only is not None:
        unknown = sorted(set(only) - set(makers))
        if unknown or not only:
            raise PredictorError(f"only={list(only)}: choose candidates among "
                                 f"{', '.join(makers)}")
        makers = {name: make for name, make in makers.items() if name in only}
    floor = floors(x)
    rows = with_prior(clip(x, floor), prior)
    scores, _ = score_candidates(makers, rows, y, k, seed)
    best = choose(scores, prior_margin)
    log.info("predictor: %s; kept %s", ", ".join(f"{name} tau {s['cv_tau']:.3f}"
                                                 for name, s in scores.items()), best)
    return Predictor(best, quiet_fit(makers[best](), rows, y), scores[best]["cv_tau"],
                     scores[best]["cv_mae"], scores, len(y), floor,
                     uses_prior=prior is not None)


def feature_matrix(archs: Sequence[Arch], extra: Callable[[Arch], Sequence[float]] | None
                   ) -> np.ndarray:
    """Rows of `arch_features`, each followed by ``extra(arch)`` (the zero-cost scores)."""
    return np.vstack([np.concatenate([arch_features(a),
                                      np.asarray(extra(a) if extra else [], float)])
                      for a in archs])
