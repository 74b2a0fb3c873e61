"""Latency tables for spaces too large to time unit by unit: time a sample, predict the rest.

The `imagenet` space has ~120,000 distinct units: hours on a CPU, far more on a Jetson
where each unit is an engine build. nn-Meter's observation is that a unit's latency is a
smooth function of its kind and its shapes, so a regressor fitted on timed units of each
kind predicts the others well. Here: a stratified first sample covers every structural kind
(the unit's layer sequence with its sizes left out) across sizes, a random forest over unit
features (op structure, MACs, parameters, activation sizes, in log space) is fitted on it,
and further rounds time the units where its trees disagree most. Predicted entries are
marked in the table, with their uncertainty, and are replaced by measurements whenever a
later run times them.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from edgenas.cost.count import unit_cost
from edgenas.space.plan import Conv, Pool, SqueezeExcite, Unit, unit_output_size

#: Above this many units a space is sampled unless told otherwise (`cifar` has ~7,000).
SAMPLE_ABOVE = 20_000
#: Share of the unit budget spent on the stratified first sample; the rest goes to rounds
#: of the units the regressor is least sure of.
FIRST_SAMPLE = 0.6
ACTIVE_ROUNDS = 4


def structure(key: str) -> str:
    """A unit key without its sizes: ``@16|dw3s2:96>96:relu|se:96/24`` -> ``dw3s2:relu|se``."""
    return "|".join(re.sub(r":\d+(>\d+|/\d+)?", "", p) for p in key.split("|")[1:])


def unit_features(unit: Unit, size: int) -> list[float]:
    """What a unit's time depends on: its shapes and work (log scale) and its op structure."""
    cost = unit_cost(unit, size)
    convs = [layer for layer in unit.layers if isinstance(layer, Conv)]
    out_size = unit_output_size(unit, size)
    return [
        math.log1p(cost.macs), math.log1p(cost.params), math.log1p(cost.peak_elements),
        math.log1p(unit.in_channels * size * size), math.log1p(unit.out_channels * out_size ** 2),
        math.log(size), math.log(unit.in_channels), math.log(unit.out_channels),
        float(len(convs)), float(sum(c.depthwise for c in convs)),
        float(max((c.kernel for c in convs), default=0)),
        float(max((c.stride for c in convs), default=1)),
        float(any(isinstance(layer, SqueezeExcite) for layer in unit.layers)),
        float(any(isinstance(layer, Pool) for layer in unit.layers)),
        float(unit.shortcut == "identity"), float(isinstance(unit.shortcut, Conv)),
        float(unit.post_activation is not None),
    ]


def first_sample(keys: Sequence[str], count: int, seed: int = 0) -> list[str]:
    """``count`` keys covering every structural kind, spread over sizes within each kind.

    Kinds are visited round-robin, each one's keys in random order, so every kind is timed
    before any kind is timed twice.
    """
    rng = random.Random(seed)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_kind[structure(key)].append(key)
    queues = []
    for kind in sorted(by_kind):
        members = by_kind[kind][:]
        rng.shuffle(members)
        queues.append(members)
    chosen: list[str] = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    return chosen


class UnitRegressor:
    """Random forest on log time; the spread of its trees is the uncertainty of a guess."""

    def __init__(self, seed: int = 0) -> None:
        from sklearn.ensemble import RandomForestRegressor  # local: only sampled profiles fit one

        self.forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=1,
                                            max_features=0.6, random_state=seed, n_jobs=1)

    def fit(self, features: np.ndarray, ms: np.ndarray) -> "UnitRegressor":
        self.forest.fit(features, np.log(np.maximum(ms, 1e-6)))
        return self

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ms, standard deviation of log ms across the trees)."""
        trees = np.stack([tree.predict(features) for tree in self.forest.estimators_])
        return np.exp(trees.mean(axis=0)), trees.std(axis=0)


def cross_validated_error(features: np.ndarray, ms: np.ndarray, folds: int = 5,
                          seed: int = 0) -> dict[str, Any]:
    """How well the regressor predicts timed units it was not fitted on (relative error)."""
    order = np.random.default_rng(seed).permutation(len(ms))
    predicted = np.empty_like(ms)
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        predicted[test] = UnitRegressor(seed).fit(features[train], ms[train]).predict(
            features[test])[0]
    error = np.abs(predicted - ms) / ms
    return {"units": int(len(ms)), "within_10pct": float(np.mean(error <= 0.10)),
            "within_20pct": float(np.mean(error <= 0.20)),
            "median_abs_pct_error": float(100 * np.median(error))}
