"""benchmarks/strategies.py: strategies compared at equal evaluations, on one reference point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from benchmarks.strategies import compare_strategies, jsonable, searched_trials
from edgenas import get_space
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import load_lut
from edgenas.search.objectives import Budgets, Evaluator

optuna.logging.set_verbosity(optuna.logging.WARNING)
LUT_FILE = Path(__file__).resolve().parents[2] / "profiles" / "host-cpu" / "cifar.json"


def more_macs_more_accurate(arch) -> float:
    """A deterministic stand-in for an accuracy estimator: the comparison is under test."""
    macs = Evaluator(("macs",)).cheap_metrics(arch)["macs"]
    return float(1 - 1 / (1 + np.sqrt(macs) / 3))


def test_strategies_are_compared_at_equal_evaluations_on_one_reference() -> None:
    evaluator = Evaluator(("accuracy", "latency", "memory"), Budgets(),
                          LatencyModel(load_lut(LUT_FILE)), more_macs_more_accurate)
    summary = compare_strategies(get_space("cifar"), evaluator, ("nsga2", "random"), 12, 4,
                                 (0, 1))
    assert set(summary["strategies"]) == {"nsga2", "random"}
    assert all(len(run["trials"]) == 12 for run in summary["runs"])
    points = [t.user_attrs["metrics"] for run in summary["runs"] for t in run["trials"]]
    assert summary["reference"][0] == 1.0
    assert summary["reference"][1] == pytest.approx(1.1 * max(p["latency"] for p in points))
    for row in summary["strategies"].values():
        assert len(row["hypervolume"]) == 2 and all(hv > 0 for hv in row["hypervolume"])
    # the shared evaluator scored each distinct arch once across all four runs
    distinct = {t.user_attrs["arch"] for run in summary["runs"] for t in run["trials"]}
    assert evaluator.accuracy_calls == len(distinct)
    assert len(searched_trials(summary, "nsga2")) == 24
    json.dumps(jsonable(summary))  # what the benchmarks write
