"""Successive halving for the trained search: every arch is first trained only part of the
recipe, on the recipe's own schedule, and scored there; once the budget of archs is scored,
the most promising share of them (`select_spread`: whole Pareto layers of the rung's scores,
spread by crowding distance) continues to the next rung, resuming its own checkpoint, until
the last ones finish the full recipe. The front holds only archs trained to the full recipe,
so its accuracies are equals and the picks need no further training.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from edgenas.profile.ranking import kendall_tau
from edgenas.search.batch import Candidate, Promotion
from edgenas.search.objectives import SearchError, objective_matrix
from edgenas.search.pareto import select_spread
from edgenas.search.work_queue import WorkQueue, completed, fidelity_of

log = logging.getLogger(__name__)


def schedule(rungs: tuple[int, ...], recipe_epochs: int) -> tuple[int | None, ...]:
    """The fidelities an arch passes through: the rungs, then the full recipe; a search
    without rungs has one, None (the recipe, unmarked as in studies before rungs)."""
    if not rungs:
        return (None,)
    if rungs[-1] >= recipe_epochs:
        raise SearchError(f"--rungs {' '.join(map(str, rungs))}: every rung must be "
                          f"below the recipe's {recipe_epochs} epochs (the last rung is "
                          "the full recipe itself)")
    return (*rungs, recipe_epochs)


def promotion(queue: WorkQueue, objectives: tuple[str, ...], halving: int,
              fidelities: tuple[int | None, ...], rung: int) -> Promotion:
    """The archs that go on from ``fidelities[rung]`` to the next: 1 in ``halving`` of those
    scored there (at least one), chosen by `select_spread` on their scores and exact costs.
    Stored in the study before any is queued, so that a leader killed mid-way goes on with
    the same choice."""
    recorded = queue.promotion(rung)
    if recorded is not None:
        return recorded
    pool = [t for t in queue.trials_at(fidelities[rung]) if t.user_attrs["feasible"]]
    want = math.ceil(len(pool) / halving)
    chosen = sorted(select_spread(objective_matrix(pool, objectives), want)) if pool else []
    batch = Promotion(rung, fidelities[rung], fidelities[rung + 1], tuple(
        Candidate(pool[i].user_attrs["arch"], pool[i].user_attrs.get("predicted_accuracy"),
                  pool[i].user_attrs.get("round"), pool[i].user_attrs["metrics"]["accuracy"])
        for i in chosen))
    queue.record_promotion(batch)
    log.info("promotion %d: %d of the %d archs scored after epoch %s go on to epoch %s "
             "(whole Pareto layers of their scores and costs, spread by crowding distance)",
             rung + 1, len(chosen), len(pool), fidelities[rung], fidelities[rung + 1])
    return batch


def rung_summary(queue: WorkQueue) -> dict[str, Any]:
    """What successive halving did: the archs trained to each fidelity, and per promotion
    how well the lower fidelity ranked the promoted archs as the higher one then did
    (Kendall tau over those archs only: a selected sample, the best of their rung, so
    narrower and usually lower than over all archs), the fidelity's own trust number."""
    done = completed(queue.study)
    epochs = sorted({fidelity_of(t) for t in done} - {None})
    at = {e: {t.user_attrs["arch"]: t.user_attrs["metrics"]["accuracy"]
              for t in queue.per_arch(done, e)} for e in epochs}
    out: dict[str, Any] = {"epochs": epochs, "archs": [len(at[e]) for e in epochs],
                           "promotions": []}
    for low, high in zip(epochs, epochs[1:]):
        both = sorted(set(at[low]) & set(at[high]))
        tau = (kendall_tau(np.array([at[high][k] for k in both]),
                           np.array([at[low][k] for k in both]), undefined=0.0)
               if len(both) >= 3 else None)
        out["promotions"].append({"from_epochs": low, "epochs": high, "archs": len(both),
                                  "kendall_tau": tau})
    return out
