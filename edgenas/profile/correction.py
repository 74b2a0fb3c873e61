"""How the sum of a network's unit times becomes its predicted time: one object per form.

Each separately timed unit pays the runtime's fixed per-call cost once, the network pays it
once in total, and a runtime fuses and caches across units in ways no unit timing sees; so
a table corrects its unit sums with a form fitted on whole networks timed end to end.
Which form predicts held-out networks best differs from device to device, so every
`Correction` in `CORRECTIONS` is fitted and cross-validated, and the table keeps the best
(`fit_correction`). A table stores the chosen form's coefficients as a plain dict with its
name in ``form``; `form_of` is the one place that reads a stored dict back into its form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgenas.errors import ProfileError
from edgenas.profile.boosted import UNIT_KINDS, BoostedModel, fit_boosted
from edgenas.profile.padded_work import TERMS, relative_nnls


@dataclass(frozen=True)
class Networks:
    """What a correction sees of a batch of networks (one row each): their unit sums in
    ms, unit counts, and, where known, the unit sums per `UNIT_KINDS`, the boosted
    trees' whole-network features and the networks' padded work
    (`edgenas.profile.padded_work`, by channel block)."""

    sums: np.ndarray
    units: np.ndarray
    kinds: np.ndarray | None = None
    features: np.ndarray | None = None
    padded: Mapping[int, np.ndarray] | None = None

    @classmethod
    def of(cls, kinds: np.ndarray, units: np.ndarray, features: np.ndarray | None = None,
           padded: Mapping[int, np.ndarray] | None = None) -> "Networks":
        """Networks known by their per-kind sums (rows), as predictions see them."""
        kinds = np.asarray(kinds, dtype=np.float64)
        return cls(kinds.sum(axis=1), np.asarray(units, dtype=np.float64), kinds, features,
                   padded)

    def take(self, rows: np.ndarray) -> "Networks":
        """The networks at ``rows``."""
        return Networks(self.sums[rows], self.units[rows],
                        None if self.kinds is None else self.kinds[rows],
                        None if self.features is None else self.features[rows],
                        None if self.padded is None
                        else {block: work[rows] for block, work in self.padded.items()})


#: Coefficients of a form that fits no line: the line's identity, kept so every stored
#: correction reads as ``intercept + scale * sum + per_unit * units`` at a glance.
IDENTITY = {"intercept_ms": 0.0, "scale": 1.0, "per_unit_ms": 0.0}


class Correction:
    """One form of correction: ``fit`` on timed networks, ``predict`` networks, ``describe``.

    ``needs`` names the input beyond unit sums and counts the form fits on (``kinds`` or
    ``features``); it is a candidate only where that is given and, for ``min_networks``,
    where enough networks were timed."""

    name = ""
    needs: str | None = None
    min_networks = 0

    def usable(self, networks: Networks, count: int) -> bool:
        """Whether this form can be fitted on ``count`` networks known as ``networks``."""
        return (self.needs is None or getattr(networks, self.needs) is not None) \
            and count >= self.min_networks

    def fit(self, networks: Networks, measured: np.ndarray) -> dict[str, Any]:
        """The form's coefficients, fitted on ``networks`` timed at ``measured`` ms."""
        raise NotImplementedError

    def predict(self, coef: Mapping[str, Any], networks: Networks) -> np.ndarray:
        """Predicted ms of each of ``networks``."""
        raise NotImplementedError

    def bind(self, coef: Mapping[str, Any]) -> Callable[[Networks], np.ndarray]:
        """`predict` with ``coef`` read once, for a model that predicts many archs."""
        return lambda networks: self.predict(coef, networks)

    def held_out(self, coef: Mapping[str, Any], networks: Networks) -> np.ndarray:
        """What cross-validation scores the form by on networks left out of its fit."""
        return self.predict(coef, networks)

    def describe(self, coef: Mapping[str, Any]) -> str:
        """The fitted form in one line, in its own terms."""
        raise NotImplementedError


def _all_costs(coef: Mapping[str, Any]) -> bool:
    """Whether every term of a line is a cost (>= 0): a network's own call, a share of its
    units' time, a per-unit call; such a line cannot go wrong below its fitted range."""
    terms = [coef["intercept_ms"], coef["scale"], coef["per_unit_ms"],
             *coef.get("kind_scale", {}).values()]
    return all(term >= 0 for term in terms)


class _KindLine(Correction):
    """``intercept + scale * (kind weights . per-kind sums) + per_unit * units``.

    The line is fitted on the timed networks; a network smaller than all of them would
    extrapolate it, and a negative intercept then predicts a negative time. Below the
    smallest fitted sum the prediction keeps the ratio to the unit sum that the line has at
    that edge (the network is scaled up to the edge along its own mix of kinds), unless
    every term of the line is a cost (`_all_costs`); a prediction that still is not
    positive falls back to the plain sum."""

    needs = "kinds"

    def weights(self, coef: Mapping[str, Any]) -> np.ndarray:
        return np.ones(len(UNIT_KINDS))

    def predict(self, coef: Mapping[str, Any], networks: Networks) -> np.ndarray:
        assert networks.kinds is not None
        kinds, units = networks.kinds, networks.units
        raw = kinds.sum(axis=1)
        # a line with no negative term is a sum of costs, true at any size: no edge needed
        edge = 0.0 if _all_costs(coef) else float(coef.get("min_sum_ms") or 0.0)
        stretch = np.where((raw > 0) & (raw < edge), edge / np.where(raw > 0, raw, 1.0), 1.0)
        weighted = (kinds * stretch[:, None]) @ self.weights(coef)
        predicted = (coef["intercept_ms"] + coef["scale"] * weighted
                     + coef["per_unit_ms"] * (units * stretch)) / stretch
        return np.where(predicted > 0, predicted, raw)


class Line(_KindLine):
    """A constrained ``intercept + scale * sum + per_unit * units``: ``terms`` are the
    coefficients it fits, the others stay at the identity's 0, 1, 0."""

    needs = None  # fitted on plain sums; predictions still scale along the kinds at the edge

    def __init__(self, name: str, terms: tuple[str, ...]) -> None:
        self.name, self.terms = name, terms

    def fit(self, networks: Networks, measured: np.ndarray) -> dict[str, Any]:
        """Least squares on relative error (rows weighted by 1 / measured), since accuracy
        is judged in per cent and networks differ in latency several-fold."""
        coef = dict(IDENTITY)
        if self.terms:
            columns = {"intercept_ms": np.ones_like(measured), "scale": networks.sums,
                       "per_unit_ms": networks.units}
            x = np.column_stack([columns[t] for t in self.terms])
            fitted, *_ = np.linalg.lstsq(x / measured[:, None], np.ones_like(measured),
                                         rcond=None)
            coef.update({t: float(v) for t, v in zip(self.terms, fitted)})
        return coef

    def held_out(self, coef: Mapping[str, Any], networks: Networks) -> np.ndarray:
        """The line itself on plain sums: the fit is judged as fitted, kinds or not."""
        return coef["intercept_ms"] + coef["scale"] * networks.sums \
            + coef["per_unit_ms"] * networks.units

    def describe(self, coef: Mapping[str, Any]) -> str:
        return (f"{self.name}: {coef['intercept_ms']:+.4f} ms + {coef['scale']:.3f} x sum "
                f"{coef['per_unit_ms']:+.5f} ms x units")


class PerKind(_KindLine):
    """``intercept + sum over kinds of weight x kind's unit time``."""

    name = "per_kind"

    def weights(self, coef: Mapping[str, Any]) -> np.ndarray:
        return np.array([coef["kind_scale"].get(k, 1.0) for k in UNIT_KINDS])

    def fit(self, networks: Networks, measured: np.ndarray) -> dict[str, Any]:
        """On relative error, with the weights pulled gently towards 1 (a kind that few
        networks contain keeps its table time)."""
        kinds, y = networks.kinds, measured
        assert kinds is not None
        x = np.column_stack([np.ones_like(y), kinds]) / y[:, None]
        prior = np.hstack([np.zeros((kinds.shape[1], 1)), np.eye(kinds.shape[1])])
        fitted, *_ = np.linalg.lstsq(np.vstack([x, prior]),
                                     np.hstack([np.ones_like(y), np.ones(kinds.shape[1])]),
                                     rcond=None)
        return {"intercept_ms": float(fitted[0]), "scale": 1.0, "per_unit_ms": 0.0,
                "kind_scale": dict(zip(UNIT_KINDS, map(float, fitted[1:])))}

    def describe(self, coef: Mapping[str, Any]) -> str:
        scales = ", ".join(f"{k} {v:.2f}" for k, v in coef["kind_scale"].items())
        return f"{self.name}: {coef['intercept_ms']:+.4f} ms + per-kind scales ({scales})"


#: The log-ratio model's ridge penalty (features are shares and logs, all of order one).
RATIO_RIDGE = 0.1
#: The names of `LogRatio.features`' columns, as the log-ratio model stores its weights.
RATIO_FEATURES = [f"share_{k}" for k in UNIT_KINDS] + ["log_sum", "log_units"]


class LogRatio(Correction):
    """Unit sum x exp(a ridge regression over the network's mix of kinds, size and unit
    count): multiplicative and clipped to the fitted size range, so positive at any size."""

    name = "log_ratio"
    needs = "kinds"

    @staticmethod
    def features(kinds: np.ndarray, units: np.ndarray,
                 log_sum_range: tuple[float, float] | None = None) -> np.ndarray:
        """Per network: each kind's share of the unit sum, log unit sum, log unit count (the
        log sum clipped to the fitted range: outside it the model would extrapolate)."""
        total = kinds.sum(axis=1)
        safe = np.where(total > 0, total, 1.0)
        log_sum = np.log(safe)
        if log_sum_range is not None:
            log_sum = np.clip(log_sum, *log_sum_range)
        return np.column_stack([kinds / safe[:, None], log_sum, np.log(np.maximum(units, 1.0))])

    def fit(self, networks: Networks, measured: np.ndarray) -> dict[str, Any]:
        """log(measured / unit sum) as a ridge regression on `features`: how much a
        network's mix of kinds, size and unit count make it faster or slower than the sum of
        its isolated units. Fitted on log ratios, so every network weighs by its relative
        error."""
        kinds = networks.kinds
        assert kinds is not None
        total = kinds.sum(axis=1)
        x = self.features(kinds, networks.units)
        target = np.log(measured / total)
        centre = x.mean(axis=0)
        xc = x - centre
        weights = np.linalg.solve(xc.T @ xc + RATIO_RIDGE * len(measured) * np.eye(x.shape[1]),
                                  xc.T @ (target - target.mean()))
        intercept = float(target.mean() - centre @ weights)
        log_sum = np.log(total)
        return {**IDENTITY,
                "log_ratio": {"intercept": intercept,
                              "weights": dict(zip(RATIO_FEATURES, map(float, weights))),
                              "log_sum_range": [float(log_sum.min()), float(log_sum.max())]}}

    def predict(self, coef: Mapping[str, Any], networks: Networks) -> np.ndarray:
        assert networks.kinds is not None
        model = coef["log_ratio"]
        weights = np.array([model["weights"].get(n, 0.0) for n in RATIO_FEATURES])
        x = self.features(networks.kinds, networks.units, tuple(model["log_sum_range"]))
        return networks.kinds.sum(axis=1) * np.exp(model["intercept"] + x @ weights)

    def describe(self, coef: Mapping[str, Any]) -> str:
        return (f"{self.name}: unit sum x exp(ridge over kind shares, log sum, log units), "
                f"intercept {coef['log_ratio']['intercept']:+.3f}")


#: Boosted trees are a candidate only with this many timed networks (fewer overfit).
BOOSTED_MIN = 60
#: Fewer timed networks cannot cross-validate even a line.
MIN_FIT = 4


class Boosted(Correction):
    """Whole-network boosted trees (`edgenas.profile.boosted`): for devices where isolated
    units do not add up the way any line through their sum assumes."""

    name = "boosted"
    needs = "features"
    min_networks = BOOSTED_MIN

    def fit(self, networks: Networks, measured: np.ndarray) -> dict[str, Any]:
        assert networks.features is not None
        return {**IDENTITY, "boosted": fit_boosted(networks.features, measured)}

    def predict(self, coef: Mapping[str, Any], networks: Networks) -> np.ndarray:
        return self.bind(coef)(networks)

    def bind(self, coef: Mapping[str, Any]) -> Callable[[Networks], np.ndarray]:
        model = BoostedModel(coef["boosted"])  # the trees as arrays: built once per table

        def predict(networks: Networks) -> np.ndarray:
            assert networks.features is not None
            return model.predict(networks.features)
        return predict

    def describe(self, coef: Mapping[str, Any]) -> str:
        return (f"{self.name}: {len(coef['boosted']['trees'])} boosted trees over "
                f"whole-network features, fitted on {coef['boosted']['networks']} timed networks")


#: Padded work is a candidate only with this many timed networks: it fits a weight for
#: each of its terms (fewer networks overfit them; docs/results.md, "Transfer between two
#: native runtimes").
PADDED_MIN = 20


class PaddedWork(Correction):
    """A non-negative mix of the network's padded work (`edgenas.profile.padded_work`),
    fitted on whole networks for each channel block, the best-fitting block kept: for
    runtimes that fuse layers and compute in blocked channel layouts, where isolated units
    do not add up (OpenVINO's CPU plugin)."""

    name = "padded_work"
    needs = "padded"
    min_networks = PADDED_MIN

    def fit(self, networks: Networks, measured: np.ndarray) -> dict[str, Any]:
        assert networks.padded is not None
        fits = []
        for block, work in sorted(networks.padded.items()):
            weights = relative_nnls(work, measured)
            error = float(np.mean(np.abs(work @ weights - measured) / measured))
            fits.append((error, block, weights))
        _, block, weights = min(fits, key=lambda fit: fit[0])  # ties: the smaller block
        return {**IDENTITY, "block": int(block),
                "terms": {term: float(w) for term, w in zip(TERMS, weights)}}

    def predict(self, coef: Mapping[str, Any], networks: Networks) -> np.ndarray:
        return self.bind(coef)(networks)

    def bind(self, coef: Mapping[str, Any]) -> Callable[[Networks], np.ndarray]:
        block = int(coef["block"])
        weights = np.array([coef["terms"].get(term, 0.0) for term in TERMS])  # once per table

        def predict(networks: Networks) -> np.ndarray:
            assert networks.padded is not None
            return networks.padded[block] @ weights
        return predict

    def describe(self, coef: Mapping[str, Any]) -> str:
        used = sum(1 for w in coef["terms"].values() if w > 0)
        return (f"{self.name}: whole-network work, channels padded to blocks of "
                f"{coef['block']}, {used} of {len(coef['terms'])} terms weighted")


#: Every form, by the name a table stores in its correction's ``form``; cross-validation
#: ties go to the earlier one, so the simpler forms come first.
CORRECTIONS: dict[str, Correction] = {form.name: form for form in (
    Line("none", ()),
    Line("scale", ("scale",)),
    Line("scale+per_unit", ("scale", "per_unit_ms")),
    Line("linear", ("intercept_ms", "scale", "per_unit_ms")),
    PerKind(),
    LogRatio(),
    Boosted(),
    PaddedWork(),
)}


def form_of(coef: Mapping[str, Any]) -> Correction:
    """The form of a stored correction: its ``form`` field.

    Corrections stored before every form was named carry no such field; they are told by
    the model they hold (boosted trees, a log-ratio model, per-kind scales, else a line).
    This is the only place a correction's keys decide what it is."""
    name = coef.get("form")
    if name is None:
        legacy = ("boosted", "log_ratio", "kind_scale")
        name = next((key for key in legacy if key in coef), "linear")
        name = "per_kind" if name == "kind_scale" else name
    if name not in CORRECTIONS:
        raise ProfileError(f"correction form {name!r} is not one of {list(CORRECTIONS)}")
    return CORRECTIONS[name]


def predict_corrected(coef: Mapping[str, Any], kinds: np.ndarray, units: np.ndarray
                      ) -> np.ndarray:
    """A stored correction applied to per-kind unit sums (rows: networks)."""
    return form_of(coef).predict(coef, Networks.of(kinds, units))


def describe_correction(coef: Mapping[str, Any]) -> str:
    """The stored correction in one line, in its own form's terms."""
    return form_of(coef).describe(coef)


def fit_correction(sums: Sequence[float], units: Sequence[int],
                   measured: Sequence[float], folds: int = 5,
                   kinds: np.ndarray | None = None,
                   features: np.ndarray | None = None,
                   only: Sequence[str] | None = None,
                   padded: Mapping[int, np.ndarray] | None = None) -> dict[str, Any]:
    """The correction from unit sums to whole-network time that predicts held-out networks best.

    Every form of `CORRECTIONS` that the inputs allow (`Correction.usable`: per-kind sums
    given as ``kinds``, boosted-tree ``features``, ``padded`` work by channel block, and
    enough networks) is scored by k-fold
    cross-validation on the timed networks: mean |relative error| first, the share within
    ±10 % to break ties. A correction is kept only where it beats the plain sum out of
    sample; on a host where isolated units add up differently from networks, a fitted line
    can be worse than no line at all. ``only`` restricts the candidates (to compare forms).
    """
    if len(measured) < MIN_FIT:
        raise ProfileError(f"need at least {MIN_FIT} timed networks to fit the correction, "
                           f"got {len(measured)}")
    y = np.asarray(measured, dtype=np.float64)
    networks = Networks(np.asarray(sums, np.float64), np.asarray(units, np.float64),
                        None if kinds is None else np.asarray(kinds, np.float64), features,
                        padded)
    order = np.random.default_rng(0).permutation(len(y))
    k = min(folds, len(y))
    forms = [form for form in CORRECTIONS.values() if form.usable(networks, len(y))]
    if only is not None:
        forms = [form for form in forms if form.name in only]
        if not forms:
            raise ProfileError(f"none of the forms {list(only)} can be fitted on these networks")

    scores: dict[str, dict[str, float]] = {}
    for form in forms:
        predicted = np.empty_like(y)
        for fold in range(k):
            test = order[fold::k]
            train = np.setdiff1d(order, test)
            coef = form.fit(networks.take(train), y[train])
            predicted[test] = form.held_out(coef, networks.take(test))
        error = np.abs(predicted - y) / y
        scores[form.name] = {"within_10pct": float(np.mean(error <= 0.10)),
                             "within_5pct": float(np.mean(error <= 0.05)),
                             "mean_abs_pct_error": float(100 * np.mean(error))}
    # mean |error| decides: on a noisy host the share within 10 % moves by a network or two
    # between forms, while a systematic error (a per-call cost, a fused kind) shows in the mean
    best = min(scores, key=lambda f: (scores[f]["mean_abs_pct_error"],
                                      -scores[f]["within_10pct"]))
    return {**CORRECTIONS[best].fit(networks.take(order), y[order]), "form": best,
            "networks": len(y), "cv_folds": k, "cv": scores,
            "min_sum_ms": float(networks.sums.min())}
