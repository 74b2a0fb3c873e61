"""The decisions inside tools/hypotheses.py (the runs themselves are benchmarks, not tests)."""

from __future__ import annotations

import pytest

from tools import hypotheses as hypotheses_tool


@pytest.fixture(scope="module")
def hypotheses():
    return hypotheses_tool


def trial(hypotheses, macs: float, accuracy: float, feasible: bool = True):
    return hypotheses._Trial({"arch": f"{macs}-{accuracy}", "macs": macs, "accuracy": accuracy,
                              "latency": 1.0, "memory": 1.0, "feasible": feasible})


def test_matched_macs_takes_the_best_estimate_within_tolerance(hypotheses) -> None:
    trials = [trial(hypotheses, 38, 0.50), trial(hypotheses, 44, 0.60),
              trial(hypotheses, 20, 0.90), trial(hypotheses, 41, 0.99, feasible=False)]
    assert hypotheses.matched(trials, 40.8).user_attrs["metrics"]["macs"] == 44
    # nothing within 25 %: the closest in MACs, whatever its estimate
    assert hypotheses.matched(trials, 100).user_attrs["metrics"]["macs"] == 44
    assert hypotheses.matched(trials, 10).user_attrs["metrics"]["macs"] == 20


def test_verdict_does_not_claim_differences_inside_the_spread(hypotheses) -> None:
    assert hypotheses.verdict([10.0, 12.0], [11.0, 11.5]).startswith("not shown")
    assert hypotheses.verdict([20.0, 20.5], [10.0, 10.5]).startswith("supported")
    assert hypotheses.verdict([10.0, 10.5], [20.0, 20.5]).startswith("contradicted")
