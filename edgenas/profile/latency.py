"""Latency of an arch on one device, predicted from its latency lookup table.

A network's time is the sum of its units' measured times, corrected by the form the table
fitted on whole networks timed end to end (`edgenas.profile.correction`): each separately
timed unit pays the runtime's fixed per-call cost once, the network pays it once in total.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from edgenas.cost.count import UnitCost, unit_cost
from edgenas.device.descriptor import Device
from edgenas.errors import ProfileError
from edgenas.profile.boosted import UNIT_KINDS, network_features
from edgenas.profile.correction import IDENTITY, Networks, form_of
from edgenas.profile.keys import unit_key
from edgenas.profile.lut import LUT, find_lut
from edgenas.profile.padded_work import padded_work
from edgenas.profile.ranking import kendall_tau
from edgenas.profile.residual import residual_factor
from edgenas.space.arch import Arch
from edgenas.space.plan import sites
from edgenas.space.search_space import SearchSpace


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
        rows.append((kind, entry.median_ms, work))
    return rows


def kind_sums(lut: LUT, arch: Arch) -> tuple[np.ndarray, int]:
    """(table ms summed per `UNIT_KINDS`, number of timed units) for the units of ``arch``."""
    return _per_kind(unit_rows(lut, arch))


def _per_kind(rows: list[tuple[int, float, UnitCost | None]]) -> tuple[np.ndarray, int]:
    sums = np.zeros(len(UNIT_KINDS))
    for kind, ms, _ in rows:
        sums[kind] += ms
    return sums, len(rows)


def unit_sum(lut: LUT, arch: Arch) -> tuple[float, int]:
    """(sum of table entries in ms, number of timed units) for the units of ``arch``."""
    sums, units = kind_sums(lut, arch)
    return float(sums.sum()), units


def boosted_features(lut: LUT, arch: Arch, costs: dict[str, UnitCost] | None = None
                     ) -> np.ndarray:
    """The whole-network features the boosted correction reads (`boosted.FEATURES`) of
    ``arch``, with the table's unit times; ``costs`` caches counted unit costs by key."""
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
        self.correction = lut.correction or dict(IDENTITY)
        self.form = form_of(self.correction)
        self._costs: dict[str, UnitCost] = {}  # a unit's counted cost, by table key
        calibration = lut.networks.get("fitting") or []
        if lut.correction and "min_sum_ms" not in self.correction and calibration:
            # tables fitted before the edge was recorded: it is the smallest calibration sum
            sums = [kind_sums(lut, Arch.from_json(item.arch))[0].sum() for item in calibration]
            self.correction = {**self.correction, "min_sum_ms": float(min(sums))}
        self._predict = self.form.bind(self.correction)
        # the channel block whose padded work the correction reads, if it reads one
        self._block = int(self.correction["block"]) if self.form.needs == "padded" else None

    def predict(self, arch: Arch) -> float:
        """Predicted batch-1 latency in ms."""
        features = self.form.needs == "features"
        rows = unit_rows(self.lut, arch, self._costs if features else None)
        kinds, units = _per_kind(rows)
        padded = None if self._block is None else \
            {self._block: padded_work(arch, self._block)[None, :]}
        networks = Networks.of(kinds[None, :], np.array([units]),
                               network_features(rows, arch.resolution)[None, :]  # type: ignore[arg-type]
                               if features else None, padded)
        base = float(self._predict(networks)[0])
        return self.anchor * base * residual_factor(self.correction.get("residual"), base)


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


class DevicePrediction(NamedTuple):
    """A predicted latency with the table it came from (what a user should be shown)."""

    ms: float
    lut: LUT
    path: Path


def predict_on_device(device: Device, arch: Arch, profiles_dir: str | os.PathLike[str],
                      allow_stale: bool = False, holding: Sequence[SearchSpace] | None = None
                      ) -> DevicePrediction:
    """Predicted latency of ``arch`` on ``device``: the one entry point commands and exports use.

    The table is the device's table for the preset space that holds the arch; a stale or
    missing one is refused with the command that fixes it (`find_lut`). ``holding``: the
    spaces that hold the arch (`spaces_holding`), found once when asking several devices.
    """
    lut, path = find_lut(device, arch, profiles_dir, allow_stale, holding)
    return DevicePrediction(LatencyModel(lut).predict(arch), lut, path)
