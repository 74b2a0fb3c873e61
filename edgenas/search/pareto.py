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
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated_by = np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1)
        if dominated_by.any():
            mask[i] = False
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


def knee_index(points: np.ndarray) -> int:
    """The front point closest to the ideal point after scaling each objective to [0, 1].

    A balanced choice: no objective is at its worst, none is sacrificed for a sliver of
    another. (``points`` in minimisation form.)
    """
    pts = np.asarray(points, dtype=np.float64)
    low, high = pts.min(axis=0), pts.max(axis=0)
    scaled = (pts - low) / np.where(high > low, high - low, 1.0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))
