"""A whole-network latency model: boosted trees over network features, fitted on timed networks.

Where isolated units do not add up to the network the way any line through their sum
assumes (a shared host's caches, the runtime fusing a block's layers, per-call costs that
vary by kind), LitePred and HW-NAS-Bench predict from whole networks timed end to end. Here
the features are the network's own work per kind (MACs, unit counts), its size, and its
unit times from the table, so the trees learn how this device turns them into a network
time. The fitted trees are stored in the table as plain JSON and evaluated with numpy, so a
table needs no pickled objects and predicts in microseconds.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from edgenas.cost.count import UnitCost

#: What kinds a network's work is split into (a unit's role, or its block's op); the
#: table's per-kind sums use the same list.
UNIT_KINDS: tuple[str, ...] = ("stem", "pool", "head", "conv", "basic", "bottleneck", "dwsep",
                               "mbconv")
FEATURES: tuple[str, ...] = (
    "log_unit_sum_ms", *(f"share_ms_{k}" for k in UNIT_KINDS),
    *(f"log_mmacs_{k}" for k in UNIT_KINDS), *(f"units_{k}" for k in UNIT_KINDS),
    "log_macs", "log_params", "log_peak_elements", "resolution", "units")
#: Boosting settings: shallow trees and a small step, which held up on 100-300 networks.
TREES, DEPTH, STEP, SUBSAMPLE = 300, 2, 0.05, 0.8


def network_features(rows: Iterable[tuple[int, float, UnitCost]], resolution: int) -> np.ndarray:
    """`FEATURES` of one network from its units' rows: (index in `UNIT_KINDS`, the table's
    time in ms, the unit's counted cost)."""
    ms = np.zeros(len(UNIT_KINDS))
    macs = np.zeros(len(UNIT_KINDS))
    count = np.zeros(len(UNIT_KINDS))
    params = peak = 0
    for kind, unit_ms, work in rows:
        ms[kind] += unit_ms
        macs[kind] += work.macs
        count[kind] += 1
        params += work.params
        peak = max(peak, work.peak_elements)
    total = float(ms.sum()) or 1e-9
    return np.hstack([math.log(total), ms / total, np.log1p(macs / 1e6), count,
                      math.log1p(macs.sum()), math.log1p(params), math.log1p(peak),
                      resolution / 32.0, count.sum()])


def fit_boosted(features: np.ndarray, measured_ms: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Gradient-boosted trees on log milliseconds (so each network weighs by its relative
    error), exported to JSON."""
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(n_estimators=TREES, max_depth=DEPTH, learning_rate=STEP,
                                      subsample=SUBSAMPLE, random_state=seed)
    model.fit(features, np.log(measured_ms))
    trees = []
    for estimator in model.estimators_[:, 0]:
        tree = estimator.tree_
        trees.append({"feature": tree.feature.tolist(), "threshold": tree.threshold.tolist(),
                      "left": tree.children_left.tolist(), "right": tree.children_right.tolist(),
                      "value": tree.value[:, 0, 0].tolist()})
    init = float(np.ravel(model.init_.predict(features[:1]))[0])
    return {"features": list(FEATURES), "init": init, "step": STEP, "trees": trees,
            "networks": int(len(measured_ms))}


class BoostedModel:
    """`fit_boosted`'s JSON as padded arrays, every tree walked at once."""

    def __init__(self, model: dict[str, Any]) -> None:
        trees = model["trees"]
        width = max(len(t["left"]) for t in trees)

        def pad(key: str, fill: float) -> np.ndarray:
            return np.array([t[key] + [fill] * (width - len(t[key])) for t in trees])

        self.left, self.right = pad("left", -1).astype(np.int64), pad("right", -1).astype(np.int64)
        self.feature = np.maximum(pad("feature", 0), 0).astype(np.int64)
        self.threshold, self.value = pad("threshold", 0.0), pad("value", 0.0)
        self.init, self.step = float(model["init"]), float(model["step"])
        self.trees = np.arange(len(trees))[None, :]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Milliseconds for each row of ``features``."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        rows = np.arange(len(x))[:, None]
        node = np.zeros((len(x), self.trees.shape[1]), dtype=np.int64)
        while True:
            left = self.left[self.trees, node]
            inner = left >= 0
            if not inner.any():
                break
            go_left = x[rows, self.feature[self.trees, node]] <= self.threshold[self.trees, node]
            node = np.where(inner, np.where(go_left, left, self.right[self.trees, node]), node)
        return np.exp(self.init + self.step * self.value[self.trees, node].sum(axis=1))
