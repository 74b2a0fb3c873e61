"""Kendall's tau-b: the one rank correlation every part of edgenas reports.

A table's predictions, an accuracy estimator and a supernet are all judged by how well
they order archs, so they share one statistic (scipy's, which handles ties) rather than
each computing its own. It lives at the profile layer so that both the latency table and
`edgenas.estimate.rank` may import it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats


def kendall_tau(a: Sequence[float], b: Sequence[float], undefined: float = float("nan")
                ) -> float:
    """Kendall's tau-b of two equal-length sequences (ties handled).

    ``undefined``: the answer where one side is constant or shorter than two, since no
    order can then agree or disagree. NaN by default, so that a trust rule (tau >= x) fails;
    0.0 where taus are compared or averaged (choosing a predictor, a bootstrap), so that a
    model predicting a constant ranks as no better than chance instead of poisoning a mean."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(x) < 2:  # scipy warns as well as answering NaN
        return undefined
    tau = float(stats.kendalltau(x, y).statistic)
    return undefined if np.isnan(tau) else tau
