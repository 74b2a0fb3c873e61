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
from typing import NamedTuple, Sequence

import numpy as np

from edgenas.device.descriptor import Device
from edgenas.errors import ProfileError
from edgenas.profile.keys import unit_key
from edgenas.profile.lut import LUT, find_lut
from edgenas.space.arch import Arch
from edgenas.space.plan import sites


def unit_sum(lut: LUT, arch: Arch) -> tuple[float, int]:
    """(sum of table entries in ms, number of timed units) for the units of ``arch``."""
    total, units = 0.0, 0
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
        total += entry["median_ms"]
        units += 1
    return total, units


def fit_correction(sums: Sequence[float], units: Sequence[int],
                   measured: Sequence[float]) -> dict[str, float]:
    """Least-squares fit of measured ~ intercept + scale * sum + per_unit * units.

    Fitted on relative error (rows weighted by 1 / measured), since accuracy is judged in
    per cent and networks differ in latency several-fold.
    """
    if len(measured) < 4:
        raise ProfileError(f"need at least 4 timed networks to fit the correction, got {len(measured)}")
    y = np.asarray(measured, dtype=np.float64)
    x = np.column_stack([np.ones_like(y), np.asarray(sums, np.float64),
                         np.asarray(units, np.float64)])
    weights = 1.0 / y
    coef, *_ = np.linalg.lstsq(x * weights[:, None], y * weights, rcond=None)
    return {"intercept_ms": float(coef[0]), "scale": float(coef[1]),
            "per_unit_ms": float(coef[2]), "networks": len(y)}


class LatencyModel:
    """Predicts milliseconds for archs of the table's space on the table's device."""

    def __init__(self, lut: LUT) -> None:
        self.lut = lut
        self.correction = lut.correction or {"intercept_ms": 0.0, "scale": 1.0,
                                             "per_unit_ms": 0.0}

    def predict(self, arch: Arch) -> float:
        """Predicted batch-1 latency in ms."""
        total, units = unit_sum(self.lut, arch)
        c = self.correction
        return c["intercept_ms"] + c["scale"] * total + c["per_unit_ms"] * units


def accuracy_metrics(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """How well predictions match measurements: the numbers nn-Meter and LitePred report."""
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    rel = (p - m) / m
    return {"n": int(m.size), "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
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
