"""A table's residual where searches go: its error on measured front archs, applied nearby.

A table's correction is fitted mostly on random archs of the space, and a search picks where
those rarely are, so the correction's error there is systematic (the cheap end pays the
runtime's fixed costs differently; fused layers; a level that moved). Once front archs are
measured (`edgenas.search.measured_front`) their log-ratio of measured to predicted time is
known; an arch predicted near them (in log latency) takes their kernel-weighted mean, shrunk
towards no change by a pseudo-count, so archs far from any measured one keep the correction
as it is. The residual is stored in the table's correction (``residual``) and applied by
`edgenas.profile.latency.LatencyModel`, but only where it predicts each measured arch
better from the others than no residual does (`cross_validated`): on a table already at
the device's noise floor it would fit the noise of a few timings.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

#: Kernel width in natural log of the predicted time: archs within ~25 % of a measured one
#: share most of its residual.
BANDWIDTH = 0.25
#: The weight of "no change" against the measured archs: one measured arch right at a
#: prediction moves it 80 % of the way (in log) towards its ratio.
PRIOR_WEIGHT = 0.25


def fit_residual(predicted_ms: Sequence[float], measured_ms: Sequence[float]
                 ) -> dict[str, Any]:
    """The residual of predictions ``predicted_ms`` against ``measured_ms`` (same archs)."""
    points = [[math.log(p), math.log(m / p)] for p, m in zip(predicted_ms, measured_ms)
              if p > 0 and m > 0]
    return {"points": points, "bandwidth": BANDWIDTH, "prior_weight": PRIOR_WEIGHT}


def residual_factor(residual: Mapping[str, Any] | None, predicted_ms: float) -> float:
    """What multiplies a prediction of ``predicted_ms`` (1.0 without a residual)."""
    if not residual or not residual.get("points") or predicted_ms <= 0:
        return 1.0
    x, width = math.log(predicted_ms), float(residual["bandwidth"])
    weights = [(math.exp(-0.5 * ((x - px) / width) ** 2), ratio)
               for px, ratio in residual["points"]]
    total = float(residual["prior_weight"]) + sum(w for w, _ in weights)
    return math.exp(sum(w * ratio for w, ratio in weights) / total)


def cross_validated(predicted_ms: Sequence[float], measured_ms: Sequence[float]
                    ) -> dict[str, float]:
    """Leave-one-out mean |log(predicted / measured)| with and without a residual fitted on
    the other archs: what decides whether a table keeps one (``keep``: 1.0 or 0.0)."""
    pairs = [(p, m) for p, m in zip(predicted_ms, measured_ms) if p > 0 and m > 0]
    if len(pairs) < 2:
        return {"with": math.nan, "without": math.nan, "keep": 0.0}
    with_residual = without = 0.0
    for k, (p, m) in enumerate(pairs):
        others = [pair for j, pair in enumerate(pairs) if j != k]
        fitted = fit_residual([o[0] for o in others], [o[1] for o in others])
        with_residual += abs(math.log(p * residual_factor(fitted, p) / m))
        without += abs(math.log(p / m))
    n = len(pairs)
    return {"with": with_residual / n, "without": without / n,
            "keep": float(with_residual < without)}
