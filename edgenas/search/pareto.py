"""Pareto fronts, hypervolume and picking one point from a front.

All functions work on objective vectors in *minimisation* form (accuracy enters as
``1 - accuracy``), so one hypervolume code path serves every objective set.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def to_minimization(values: Sequence[float], directions: Sequence[str]) -> np.ndarray:
    """Flip maximised objectives; accuracy in [0, 1] becomes error = 1 - accuracy."""
    out = np.asarray(values, dtype=np.float64).copy()
    for i, direction in enumerate(directions):
        if direction == "maximize":
            out[..., i] = 1.0 - out[..., i]
    return out


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (minimisation)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    mask = non_dominated_all(points)
    # drop exact duplicates after the first
    _, first = np.unique(points[mask], axis=0, return_index=True)
    keep = np.flatnonzero(mask)[np.sort(first)]
    out = np.zeros(n, dtype=bool)
    out[keep] = True
    return out


def hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference`` (minimisation).

    Slicing along the last objective; O(n^2 log n) in 3-D, ample for fronts of hundreds.
    """
    ref = np.asarray(reference, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, len(ref))
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[non_dominated(pts)]
    return _hv(pts, ref)


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    if pts.shape[1] == 2:
        order = np.argsort(pts[:, 0])
        volume, best_y = 0.0, ref[1]
        for x, y in pts[order]:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return float(volume)
    order = np.argsort(pts[:, -1])
    pts = pts[order]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        height = upper - pts[i, -1]
        if height > 0:
            volume += height * _hv(pts[: i + 1, :-1], ref[:-1])
    return float(volume)


#: The margin a demanding user would always take: this much more accuracy (a fraction:
#: 0.03 is 3 points) ...
KNEE_MIN_ACCURACY_GAIN = 0.03
#: ... for at most this factor of latency (1.10: 10 % slower).
KNEE_MAX_LATENCY_RATIO = 1.10
#: `fastest` treats latencies within this fraction of the lowest as a tie (a table's
#: predictions are not finer than that) and takes the most accurate of them.
FASTEST_LATENCY_TOLERANCE = 0.02

KNEE_RULE = (
    "knee: the front arch closest to the ideal point, each objective's distance from the "
    "front's best measured in units of its range over every evaluated arch within budget; "
    f"then, while another front arch is at least {100 * KNEE_MIN_ACCURACY_GAIN:g} accuracy "
    f"points more accurate at no more than {100 * (KNEE_MAX_LATENCY_RATIO - 1):.0f} % more "
    "latency, the fastest such arch")
FASTEST_RULE = (f"fastest: the most accurate arch within {100 * FASTEST_LATENCY_TOLERANCE:g} % "
                "of the lowest latency")
BEST_RULE = "best: the most accurate arch within the latency budget"


def knee_index(points: np.ndarray, spread: Sequence[float] | None = None) -> int:
    """The point closest to the ideal point (the best value of each objective among
    ``points``), each objective's distance divided by its ``spread``.

    The spread says what a unit of each objective is worth. Over the front alone (the
    default) two points are always 1 apart in every objective, so on a 2-point front 9
    accuracy points weigh what 0.02 ms weigh; the range over every evaluated arch within
    budget measures each gap against what the search space offers instead. (``points`` in
    minimisation form; a spread of 0 counts as 1.)
    """
    pts = np.asarray(points, dtype=np.float64)
    low = pts.min(axis=0)
    scale = pts.max(axis=0) - low if spread is None else np.asarray(spread, dtype=np.float64)
    scaled = (pts - low) / np.where(scale > 0, scale, 1.0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))


def margin_guard(accuracy: Sequence[float], latency: np.ndarray, start: int,
                 gain: float = KNEE_MIN_ACCURACY_GAIN,
                 ratio: float = KNEE_MAX_LATENCY_RATIO) -> int:
    """The point reached from ``start`` by moving, while one exists, to the fastest point
    at least ``gain`` more accurate at no more than ``ratio`` times the latency.

    No compromise on scaled distances should leave a user on an arch they would trade away
    at once: whatever rule chose ``start``, the answer is never beaten by that margin.
    ``latency`` is one column per device (or a vector for one); a move must stay within
    ``ratio`` on every device. Each move gains at least ``gain``, so the walk ends.
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    lat = np.asarray(latency, dtype=np.float64).reshape(len(acc), -1)
    current = start
    while True:
        better = np.flatnonzero((acc >= acc[current] + gain - 1e-12)
                                & np.all(lat <= ratio * lat[current] + 1e-12, axis=1))
        if len(better) == 0:
            return current
        # the least slow-down of them (on the device it is worst on), then the most accurate
        base = lat[current]
        current = int(min(better, key=lambda i: ((lat[i] / base).max(), -acc[i])))


def fastest_index(latency: Sequence[float], accuracy: Sequence[float] | None = None,
                  tolerance: float = FASTEST_LATENCY_TOLERANCE) -> int:
    """The most accurate point within ``tolerance`` (a fraction) of the lowest latency; the
    lowest latency itself when there is no accuracy."""
    lat = np.asarray(latency, dtype=np.float64)
    if accuracy is None:
        return int(np.argmin(lat))
    acc = np.asarray(accuracy, dtype=np.float64)
    tied = np.flatnonzero(lat <= lat.min() * (1.0 + tolerance))
    return int(min(tied, key=lambda i: (-acc[i], lat[i])))


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each point within its set: per objective, the gap
    between its two neighbours scaled by the objective's range, summed; the extremes of any
    objective get infinity, so a selection that prefers large distances keeps them."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    n = len(points)
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for column in points.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance


def select_spread(points: np.ndarray, k: int) -> list[int]:
    """``k`` indices chosen the way NSGA-II fills a population: whole non-dominated layers
    in order, the layer that does not fit cut by crowding distance (its most isolated
    points first, extremes always). What successive halving promotes when there is more
    than one objective: the archs that could still end on the front, spread along it."""
    points = np.asarray(points, dtype=np.float64)
    left = np.arange(len(points))
    chosen: list[int] = []
    while len(chosen) < min(k, len(points)):
        layer = left[non_dominated_all(points[left])]
        room = k - len(chosen)
        if len(layer) <= room:
            chosen.extend(int(i) for i in layer)
        else:
            distance = crowding_distance(points[layer])
            order = sorted(range(len(layer)), key=lambda j: (-distance[j], int(layer[j])))
            chosen.extend(int(layer[j]) for j in order[:room])
        left = np.setdiff1d(left, layer)
    return chosen


def non_dominated_all(points: np.ndarray) -> np.ndarray:
    """Like `non_dominated`, but exact duplicates all stay in (they are distinct archs with
    equal numbers, equally worth keeping)."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    return np.array([not (np.all(points <= p, axis=1) & np.any(points < p, axis=1)).any()
                     for p in points], dtype=bool).reshape(len(points))
