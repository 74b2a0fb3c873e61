"""Which of some candidate archs enlarge a front the most: the trained search's proposals.

Greedy by hypervolume gain, one arch at a time, on costs compared as ratios; an arch that
adds nothing is still chosen when it is the farthest from everything chosen, so a round's
proposals stay spread out. Plain numpy over trials' objective values.
"""

from __future__ import annotations

import numpy as np
from optuna.trial import FrozenTrial

from edgenas.search.objectives import objective_matrix
from edgenas.search.pareto import hypervolume, non_dominated


def ratio_scale(points: np.ndarray, objectives: tuple[str, ...]) -> np.ndarray:
    """Costs on a log scale: 0.2 against 0.6 ms is as large a step as 1 against 3 ms, as a
    user reads a latency. On a linear scale the largest trained arch sets the unit, and the
    steps between small archs, where most of a front lies, count for little; on a log scale
    the choice no longer depends on how the costs are spread (any power of them gives the
    same picks)."""
    out = np.array(points, dtype=float)
    for j, name in enumerate(objectives):
        if name != "accuracy" and len(out) and np.all(out[:, j] > 0):
            out[:, j] = np.log(out[:, j])
    return out


def greedy_hypervolume(candidates: list[FrozenTrial], trained: list[FrozenTrial],
                       objectives: tuple[str, ...], k: int) -> list[FrozenTrial]:
    """Pick ``k`` candidates one at a time, each adding the most hypervolume to the trained
    front plus those already picked; ties (no gain) go to the candidate farthest from
    everything picked, so the proposal stays spread out."""
    cand = ratio_scale(objective_matrix(candidates, objectives), objectives)
    base = (ratio_scale(objective_matrix(trained, objectives), objectives) if trained
            else np.empty((0, len(objectives))))
    everything = np.vstack([cand, base])
    low, high = everything.min(axis=0), everything.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    cand, base = (cand - low) / span, (base - low) / span
    reference = np.full(len(objectives), 1.1)
    keep = non_dominated(cand)  # dominated candidates cannot add hypervolume first
    order = list(np.flatnonzero(keep)) + list(np.flatnonzero(~keep))
    chosen: list[int] = []
    current = base
    for _ in range(min(k, len(candidates))):
        level = hypervolume(current, reference) if len(current) else 0.0
        best, best_gain, best_spread = -1, -1.0, -1.0
        for i in order:
            if i in chosen:
                continue
            gain = hypervolume(np.vstack([current, cand[i]]), reference) - level
            spread = (np.min(np.linalg.norm(current - cand[i], axis=1)) if len(current)
                      else 0.0)
            if gain > best_gain + 1e-12 or (abs(gain - best_gain) <= 1e-12
                                             and spread > best_spread):
                best, best_gain, best_spread = i, gain, spread
        chosen.append(best)
        current = np.vstack([current, cand[best]])
    return [candidates[i] for i in chosen]
