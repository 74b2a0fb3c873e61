"""Latency of an arch on one device, predicted from its latency lookup table.

A network's time is the sum of its units' measured times plus a correction fitted on
whole networks timed end to end: ``intercept + scale * sum + per_unit * units``. Each
separately timed unit pays the runtime's fixed per-call cost once, the network pays it
once in total; the per-unit term removes that, the scale absorbs fusion and cache effects.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from edgenas.device.descriptor import Device
from edgenas.cost.count import UnitCost, unit_cost
from edgenas.errors import ProfileError
from edgenas.profile.boosted import (UNIT_KINDS, BoostedModel, fit_boosted,
                                     network_features)
from edgenas.profile.keys import unit_key
from edgenas.profile.lut import LUT, find_lut
from edgenas.space.arch import Arch
from edgenas.space.plan import sites


def unit_rows(lut: LUT, arch: Arch, costs: dict[str, UnitCost] | None = None
              ) -> list[tuple[int, float, UnitCost | None]]:
    """(index in `UNIT_KINDS`, table ms, counted cost or None) per timed unit of ``arch``;
    costs are counted only when a ``costs`` cache is given (the whole-network model's)."""
    rows = []
    entries = lut.entries
    for site in sites(arch):
        unit = site.unit
        if unit.is_identity:
            continue  # a skipped block: the runtime removes the Identity
        key = unit_key(unit, site.height)
        entry = entries.get(key)
        if entry is None:
            raise ProfileError(f"latency table {lut.device}/{lut.space} has no entry for unit "
                               f"{key!r}; is the arch outside space {lut.space!r}? Re-run "
                               f"'edgenas profile {lut.device} --space {lut.space}'")
        kind = UNIT_KINDS.index(site.block.op if site.block is not None else site.role)
        work = None
        if costs is not None:
            work = costs.get(key)
            if work is None:
                work = costs[key] = unit_cost(unit, site.height)
        rows.append((kind, entry["median_ms"], work))
    return rows


def kind_sums(lut: LUT, arch: Arch) -> tuple[np.ndarray, int]:
    """(table ms summed per `UNIT_KINDS`, number of timed units) for the units of ``arch``."""
    sums = np.zeros(len(UNIT_KINDS))
    rows = unit_rows(lut, arch)
    for kind, ms, _ in rows:
        sums[kind] += ms
    return sums, len(rows)


def unit_sum(lut: LUT, arch: Arch) -> tuple[float, int]:
    """(sum of table entries in ms, number of timed units) for the units of ``arch``."""
    sums, units = kind_sums(lut, arch)
    return float(sums.sum()), units


#: The correction's candidate forms, each a constrained ``intercept + scale * sum +
#: per_unit * units``: which terms it fits (the others stay at 0, 1, 0).
CORRECTION_FORMS: dict[str, tuple[str, ...]] = {
    "none": (),
    "scale": ("scale",),
    "scale+per_unit": ("scale", "per_unit_ms"),
    "linear": ("intercept_ms", "scale", "per_unit_ms"),
}


def _fit_form(form: str, sums: np.ndarray, units: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least squares on relative error (rows weighted by 1 / measured), since accuracy is
    judged in per cent and networks differ in latency several-fold."""
    coef = {"intercept_ms": 0.0, "scale": 1.0, "per_unit_ms": 0.0}
    terms = CORRECTION_FORMS[form]
    if terms:
        columns = {"intercept_ms": np.ones_like(y), "scale": sums, "per_unit_ms": units}
        x = np.column_stack([columns[t] for t in terms])
        fitted, *_ = np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)
        coef.update({t: float(v) for t, v in zip(terms, fitted)})
    return coef


def _apply(coef: dict[str, float], sums: np.ndarray, units: np.ndarray) -> np.ndarray:
    return coef["intercept_ms"] + coef["scale"] * sums + coef["per_unit_ms"] * units


def _fit_per_kind(kinds: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """intercept + sum over kinds of weight x kind's unit time, on relative error, with the
    weights pulled gently towards 1 (a kind that few networks contain keeps its table time)."""
    x = np.column_stack([np.ones_like(y), kinds]) / y[:, None]
    prior = np.hstack([np.zeros((kinds.shape[1], 1)), np.eye(kinds.shape[1])])
    fitted, *_ = np.linalg.lstsq(np.vstack([x, prior]),
                                 np.hstack([np.ones_like(y), np.ones(kinds.shape[1])]),
                                 rcond=None)
    return {"intercept_ms": float(fitted[0]), "scale": 1.0, "per_unit_ms": 0.0,
            "kind_scale": dict(zip(UNIT_KINDS, map(float, fitted[1:])))}


def _ratio_features(kinds: np.ndarray, units: np.ndarray,
                    log_sum_range: tuple[float, float] | None = None) -> np.ndarray:
    """Per network: each kind's share of the unit sum, log unit sum, log unit count (the
    log sum clipped to the fitted range: outside it the model would extrapolate)."""
    total = kinds.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    log_sum = np.log(safe)
    if log_sum_range is not None:
        log_sum = np.clip(log_sum, *log_sum_range)
    return np.column_stack([kinds / safe[:, None], log_sum, np.log(np.maximum(units, 1.0))])


#: The log-ratio model's ridge penalty (features are shares and logs, all of order one).
RATIO_RIDGE = 0.1
#: The names of `_ratio_features`' columns, as the log-ratio model stores its weights.
RATIO_FEATURES = [f"share_{k}" for k in UNIT_KINDS] + ["log_sum", "log_units"]


def _fit_log_ratio(kinds: np.ndarray, units: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """log(measured / unit sum) as a ridge regression on `_ratio_features`: how much a
    network's mix of kinds, size and unit count make it faster or slower than the sum of its
    isolated units. Fitted on log ratios, so every network weighs by its relative error."""
    total = kinds.sum(axis=1)
    x = _ratio_features(kinds, units)
    target = np.log(y / total)
    centre = x.mean(axis=0)
    xc = x - centre
    weights = np.linalg.solve(xc.T @ xc + RATIO_RIDGE * len(y) * np.eye(x.shape[1]),
                              xc.T @ (target - target.mean()))
    intercept = float(target.mean() - centre @ weights)
    log_sum = np.log(total)
    return {"intercept_ms": 0.0, "scale": 1.0, "per_unit_ms": 0.0,
            "log_ratio": {"intercept": intercept,
                          "weights": dict(zip(RATIO_FEATURES, map(float, weights))),
                          "log_sum_range": [float(log_sum.min()), float(log_sum.max())]}}


def _predict_log_ratio(model: dict[str, Any], kinds: np.ndarray, units: np.ndarray) -> np.ndarray:
    weights = np.array([model["weights"].get(n, 0.0) for n in RATIO_FEATURES])
    x = _ratio_features(kinds, units, tuple(model["log_sum_range"]))
    return kinds.sum(axis=1) * np.exp(model["intercept"] + x @ weights)


def _line(coef: dict[str, Any], kinds: np.ndarray, units: np.ndarray) -> np.ndarray:
    weights = np.array([coef.get("kind_scale", {}).get(k, 1.0) for k in UNIT_KINDS])
    return coef["intercept_ms"] + coef["scale"] * (kinds @ weights) + coef["per_unit_ms"] * units


def _all_costs(coef: dict[str, Any]) -> bool:
    """Whether every term of a line is a cost (>= 0): a network's own call, a share of its
    units' time, a per-unit call; such a line cannot go wrong below its fitted range."""
    terms = [coef["intercept_ms"], coef["scale"], coef["per_unit_ms"],
             *coef.get("kind_scale", {}).values()]
    return all(term >= 0 for term in terms)


def predict_corrected(coef: dict[str, Any], kinds: np.ndarray, units: np.ndarray) -> np.ndarray:
    """A correction applied to per-kind unit sums (rows: networks).

    The correction is a line fitted on the timed networks; a network smaller than all of
    them would extrapolate it, and a negative intercept then predicts a negative time. Below
    the smallest fitted sum the prediction keeps the ratio to the unit sum that the line has
    at that edge (the network is scaled up to the edge along its own mix of kinds), unless
    every term of the line is a cost (`_all_costs`); a prediction that still is not
    positive falls back to the plain sum.
    """
    kinds = np.asarray(kinds, dtype=np.float64)
    units = np.asarray(units, dtype=np.float64)
    raw = kinds.sum(axis=1)
    if "log_ratio" in coef:  # multiplicative and clipped: positive, no edge needed
        return _predict_log_ratio(coef["log_ratio"], kinds, units)
    # a line with no negative term is a sum of costs, true at any size: no edge needed
    edge = 0.0 if _all_costs(coef) else float(coef.get("min_sum_ms") or 0.0)
    stretch = np.where((raw > 0) & (raw < edge), edge / np.where(raw > 0, raw, 1.0), 1.0)
    predicted = _line(coef, kinds * stretch[:, None], units * stretch) / stretch
    return np.where(predicted > 0, predicted, raw)


def fit_correction(sums: Sequence[float], units: Sequence[int],
                   measured: Sequence[float], folds: int = 5,
                   kinds: np.ndarray | None = None,
                   features: np.ndarray | None = None,
                   only: Sequence[str] | None = None) -> dict[str, Any]:
    """The correction from unit sums to whole-network time that predicts held-out networks best.

    Each form of `CORRECTION_FORMS` (the plain sum among them), the per-kind and log-ratio
    forms given ``kinds``, and whole-network boosted trees (`edgenas.profile.boosted`) given
    ``features`` (enough networks: `BOOSTED_MIN`) are scored by k-fold
    cross-validation on the timed networks: mean |relative error| first, the share within
    ±10 % to break ties. A correction is kept only where it beats the plain sum out of
    sample; on a host where isolated units add up differently from networks, a fitted line
    can be worse than no line at all. ``only`` restricts the candidates (to compare forms).
    """
    if len(measured) < 4:
        raise ProfileError(f"need at least 4 timed networks to fit the correction, got {len(measured)}")
    y = np.asarray(measured, dtype=np.float64)
    x_sum, x_units = np.asarray(sums, np.float64), np.asarray(units, np.float64)
    order = np.random.default_rng(0).permutation(len(y))
    k = min(folds, len(y))
    forms = list(CORRECTION_FORMS) + (["per_kind", "log_ratio"] if kinds is not None else [])
    if features is not None and len(y) >= BOOSTED_MIN:
        forms.append("boosted")
    if only is not None:
        forms = [form for form in forms if form in only]
        if not forms:
            raise ProfileError(f"none of the forms {list(only)} can be fitted on these networks")

    def fit(form: str, rows: np.ndarray) -> dict[str, Any]:
        if form == "per_kind":
            assert kinds is not None
            return _fit_per_kind(kinds[rows], y[rows])
        if form == "log_ratio":
            assert kinds is not None
            return _fit_log_ratio(kinds[rows], x_units[rows], y[rows])
        if form == "boosted":
            assert features is not None
            return {"intercept_ms": 0.0, "scale": 1.0, "per_unit_ms": 0.0,
                    "boosted": fit_boosted(features[rows], y[rows])}
        return _fit_form(form, x_sum[rows], x_units[rows], y[rows])

    def apply(coef: dict[str, Any], rows: np.ndarray) -> np.ndarray:
        if "boosted" in coef:
            assert features is not None
            return BoostedModel(coef["boosted"]).predict(features[rows])
        if "kind_scale" in coef or "log_ratio" in coef:
            assert kinds is not None
            return predict_corrected(coef, kinds[rows], x_units[rows])
        return _apply(coef, x_sum[rows], x_units[rows])

    scores: dict[str, dict[str, float]] = {}
    for form in forms:
        predicted = np.empty_like(y)
        for fold in range(k):
            test = order[fold::k]
            train = np.setdiff1d(order, test)
            predicted[test] = apply(fit(form, train), test)
        error = np.abs(predicted - y) / y
        scores[form] = {"within_10pct": float(np.mean(error <= 0.10)),
                        "within_5pct": float(np.mean(error <= 0.05)),
                        "mean_abs_pct_error": float(100 * np.mean(error))}
    # mean |error| decides: on a noisy host the share within 10 % moves by a network or two
    # between forms, while a systematic error (a per-call cost, a fused kind) shows in the mean
    best = min(scores, key=lambda f: (scores[f]["mean_abs_pct_error"],
                                      -scores[f]["within_10pct"]))
    return {**fit(best, order), "form": best, "networks": len(y), "cv_folds": k,
            "cv": scores, "min_sum_ms": float(x_sum.min())}


def describe_correction(coef: dict[str, Any]) -> str:
    """The chosen correction in one line, in its own form's terms."""
    form = coef.get("form", "linear")
    if "boosted" in coef:
        return (f"{form}: {len(coef['boosted']['trees'])} boosted trees over whole-network "
                f"features, fitted on {coef['boosted']['networks']} timed networks")
    if "log_ratio" in coef:
        return (f"{form}: unit sum x exp(ridge over kind shares, log sum, log units), "
                f"intercept {coef['log_ratio']['intercept']:+.3f}")
    if "kind_scale" in coef:
        scales = ", ".join(f"{k} {v:.2f}" for k, v in coef["kind_scale"].items())
        return f"{form}: {coef['intercept_ms']:+.4f} ms + per-kind scales ({scales})"
    return (f"{form}: {coef['intercept_ms']:+.4f} ms + {coef['scale']:.3f} x sum "
            f"{coef['per_unit_ms']:+.5f} ms x units")


#: Boosted trees are a candidate only with this many timed networks (fewer overfit).
BOOSTED_MIN = 60


def arch_features(lut: LUT, arch: Arch, costs: dict[str, UnitCost] | None = None) -> np.ndarray:
    """The whole-network features of ``arch`` with the table's unit times."""
    rows = unit_rows(lut, arch, {} if costs is None else costs)
    return network_features(rows, arch.resolution)  # type: ignore[arg-type]


class LatencyModel:
    """Predicts milliseconds for archs of the table's space on the table's device.

    Predictions are at the device's level when the table was last re-anchored
    (`edgenas.profile.anchor`); ``anchored=False`` gives them at the table's own yardstick,
    the level its held-out and drift timings are expressed at."""

    def __init__(self, lut: LUT, anchored: bool = True) -> None:
        self.lut = lut
        self.anchor = float((lut.timing.get("anchor") or {}).get("ratio", 1.0)) if anchored else 1.0
        self.correction = lut.correction or {"intercept_ms": 0.0, "scale": 1.0,
                                             "per_unit_ms": 0.0}
        self.boosted = (BoostedModel(self.correction["boosted"])
                        if "boosted" in self.correction else None)
        self._costs: dict[str, UnitCost] = {}  # a unit's counted cost, by table key
        calibration = lut.networks.get("calibration") or []
        if lut.correction and "min_sum_ms" not in self.correction and calibration:
            # tables fitted before the edge was recorded: it is the smallest calibration sum
            sums = [kind_sums(lut, Arch.from_json(item["arch"]))[0].sum() for item in calibration]
            self.correction = {**self.correction, "min_sum_ms": float(min(sums))}

    def predict(self, arch: Arch) -> float:
        """Predicted batch-1 latency in ms."""
        if self.boosted is not None:
            features = arch_features(self.lut, arch, self._costs)
            return self.anchor * float(self.boosted.predict(features)[0])
        kinds, units = kind_sums(self.lut, arch)
        return self.anchor * float(predict_corrected(self.correction, kinds[None, :],
                                                     np.array([units]))[0])


def accuracy_metrics(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """How well predictions match measurements: the numbers nn-Meter and LitePred report,
    and the median bias (negative: predicted too fast), which tells a table at the wrong
    level of load from a noisy one."""
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    rel = (p - m) / m
    return {"n": int(m.size), "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
            "median_bias_pct": float(100 * np.median(rel)),
            "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
            "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
            "mean_abs_pct_error": float(100 * np.mean(np.abs(rel))),
            "max_abs_pct_error": float(100 * np.max(np.abs(rel))),
            "kendall_tau": kendall_tau(p, m)}


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties handled), O(n^2): n is a few hundred at most here."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), 1)
    concordance = (dx * dy)[upper].sum()
    ties_x = (dx[upper] != 0).sum()
    ties_y = (dy[upper] != 0).sum()
    if ties_x == 0 or ties_y == 0:
        return float("nan")
    return float(concordance / math.sqrt(ties_x * ties_y))


class DevicePrediction(NamedTuple):
    """A predicted latency with the table it came from (what a user should be shown)."""

    ms: float
    lut: LUT
    path: Path


def predict_on_device(device: Device, arch: Arch, profiles_dir: str | os.PathLike[str],
                      allow_stale: bool = False) -> DevicePrediction:
    """Predicted latency of ``arch`` on ``device``: the one entry point commands and exports use.

    The table is the device's table for the preset space that holds the arch; a stale or
    missing one is refused with the command that fixes it (`find_lut`).
    """
    lut, path = find_lut(device, arch, profiles_dir, allow_stale)
    return DevicePrediction(LatencyModel(lut).predict(arch), lut, path)
