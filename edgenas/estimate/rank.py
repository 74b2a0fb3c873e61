"""Rank agreement with confidence intervals: how far an accuracy estimate can be trusted.

Kendall tau is what NAS papers quote for estimators (NAS-Bench-201, FairNAS); with a few
dozen archs its sampling error is large (about +-0.15 at n = 60), so every tau here comes
with a bootstrap interval over archs, and two estimators are only told apart when their
intervals say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

from edgenas.profile.ranking import kendall_tau


@dataclass(frozen=True)
class Agreement:
    """Kendall tau-b and Spearman rho with bootstrap 95 % intervals, over ``n`` archs."""

    n: int
    kendall_tau: float
    kendall_ci: tuple[float, float]
    spearman_rho: float
    spearman_ci: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rho; 0 where one side is constant."""
    rho = stats.spearmanr(np.asarray(a, float), np.asarray(b, float)).statistic
    return 0.0 if np.isnan(rho) else float(rho)


def agreement(truth: Sequence[float], estimate: Sequence[float], resamples: int = 1000,
              seed: int = 0) -> Agreement:
    """Rank agreement of ``estimate`` with ``truth``, bootstrapped over archs (percentile)."""
    truth_a, estimate_a = np.asarray(truth, float), np.asarray(estimate, float)
    if truth_a.shape != estimate_a.shape or truth_a.ndim != 1:
        raise ValueError(f"need two equal-length lists, got {truth_a.shape} and "
                         f"{estimate_a.shape}")
    n = len(truth_a)
    if n < 3:
        raise ValueError(f"rank agreement needs at least 3 archs, got {n}")
    rng = np.random.default_rng(seed)
    taus, rhos = [], []
    for _ in range(resamples):
        index = rng.integers(0, n, n)
        taus.append(kendall_tau(truth_a[index], estimate_a[index], undefined=0.0))
        rhos.append(spearman(truth_a[index], estimate_a[index]))

    def interval(values: list[float]) -> tuple[float, float]:
        low, high = np.percentile(values, [2.5, 97.5])
        return float(low), float(high)

    return Agreement(n, kendall_tau(truth_a, estimate_a, undefined=0.0), interval(taus),
                     spearman(truth_a, estimate_a), interval(rhos))
