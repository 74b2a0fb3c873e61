"""Picking one arch from a front: ``knee``, ``fastest`` and ``best`` on fronts of 1, 2, 3 and
many points, through `pick` (what `edgenas pareto --pick` and `edgenas export --pick` call)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from edgenas.cli import main
from edgenas.errors import EdgenasError
from edgenas.search.pareto import (FASTEST_LATENCY_TOLERANCE, FASTEST_RULE,
                                   KNEE_MAX_LATENCY_RATIO, KNEE_MIN_ACCURACY_GAIN, KNEE_RULE,
                                   knee_index, margin_guard)
from edgenas.search.results import (SCHEMA_VERSION, admitting, evaluated_lowest,
                                    feasible_ranges, pick)

OBJECTIVES = ("accuracy", "latency", "memory")


def summary_of(points: list[tuple[int, float, float, float]], *,
               ranges: dict[str, list[float]] | None = None, **extra: Any) -> dict[str, Any]:
    """A summary shaped like front.json from (trial, accuracy, latency ms, memory MB) rows."""
    records = [{"trial": trial, "accuracy": acc, "latency": lat, "memory": mem,
                "macs": 1.0, "params": 0.1, "feasible": True, "arch": {"trial": trial}}
               for trial, acc, lat, mem in points]
    records.sort(key=lambda r: -r["accuracy"])  # as front_records orders a front
    summary = {"schema_version": SCHEMA_VERSION, "objectives": list(OBJECTIVES),
               "device": "host-cpu", "space": "cifar", "trials": 14, "hypervolume": 0.0,
               "front": records, **extra}
    if ranges is not None:
        summary["feasible_ranges"] = ranges
    return summary


# the main job's front of 2026-12-03 (search/front.json): trial 13 and trial 10
MAIN_JOB_FRONT = [(13, 0.814, 0.222, 0.50), (10, 0.905, 0.244, 0.81)]
# the spread of 14 trained archs the front could have come from
MAIN_JOB_RANGES = {"accuracy": [0.60, 0.905], "latency": [0.222, 0.55], "memory": [0.50, 1.6]}


def random_front(rng: np.random.Generator, n: int) -> list[tuple[int, float, float, float]]:
    """A 2-objective front (more accurate costs more latency), memory arbitrary."""
    latency = np.sort(rng.uniform(0.1, 2.0, n))
    accuracy = np.sort(rng.uniform(0.5, 0.95, n))
    return [(i, float(a), float(t), float(rng.uniform(0.2, 3.0)))
            for i, (a, t) in enumerate(zip(accuracy, latency))]


# -- knee ----------------------------------------------------------------------------------------

def test_knee_of_the_main_jobs_two_point_front_is_the_nine_points_more_accurate_arch() -> None:
    assert pick(summary_of(MAIN_JOB_FRONT, ranges=MAIN_JOB_RANGES), "knee")["trial"] == 10


def test_knee_of_a_front_file_without_ranges_still_takes_the_more_accurate_arch() -> None:
    # front.json written before the ranges were recorded: the front's own range, then the guard
    assert pick(summary_of(MAIN_JOB_FRONT), "knee")["trial"] == 10


def test_knee_of_one_point_is_that_point() -> None:
    assert pick(summary_of([(4, 0.7, 0.3, 1.0)]), "knee")["trial"] == 4


def test_knee_of_three_points_is_the_balanced_middle() -> None:
    front = [(1, 0.70, 0.10, 0.5), (2, 0.88, 0.15, 0.6), (3, 0.90, 0.60, 2.0)]
    ranges = {"accuracy": [0.5, 0.90], "latency": [0.10, 0.8], "memory": [0.5, 2.5]}
    assert pick(summary_of(front, ranges=ranges), "knee")["trial"] == 2


def test_knee_keeps_an_arch_when_more_accuracy_costs_over_ten_percent_latency() -> None:
    # the accurate arch is 15 % slower: not the guard's trade, and the scales favour the fast one
    front = [(1, 0.80, 0.200, 0.5), (2, 0.90, 0.230, 0.5)]
    ranges = {"accuracy": [0.40, 0.90], "latency": [0.200, 0.230], "memory": [0.5, 0.5]}
    assert pick(summary_of(front, ranges=ranges), "knee")["trial"] == 1


def beaten_by(knee: dict[str, Any], front: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points of ``front`` three points more accurate than ``knee`` at most 10 % slower."""
    return [r for r in front if r["accuracy"] >= knee["accuracy"] + KNEE_MIN_ACCURACY_GAIN
            and r["latency"] <= KNEE_MAX_LATENCY_RATIO * knee["latency"]]


def test_knee_is_never_beaten_by_three_points_at_ten_percent_more_latency() -> None:
    rng = np.random.default_rng(0)
    inside = 0  # knees that are not the front's most accurate point, which nothing can beat
    for n in [2, 3, 5, 8, 13, 30] * 20:
        front = random_front(rng, n)
        low = min(p[2] for p in front)
        ranges = {"accuracy": [0.3, 0.95], "latency": [low, 3.0], "memory": [0.1, 4.0]}
        for summary in (summary_of(front, ranges=ranges), summary_of(front)):
            knee = pick(summary, "knee")
            assert not beaten_by(knee, summary["front"]), (knee, beaten_by(knee, summary["front"]))
            inside += knee["accuracy"] < max(r["accuracy"] for r in summary["front"])
    assert inside >= 100  # of 240 knees: the property was held where it can fail


def test_knee_is_not_the_most_accurate_arch_where_two_more_points_cost_three_times_the_latency(
        ) -> None:
    # 2 beats 1 by 4 points for 5 % more latency; 3 is 2 points above 2, three times as slow
    front = [(1, 0.80, 0.200, 0.5), (2, 0.84, 0.210, 0.5), (3, 0.86, 0.600, 0.5)]
    ranges = {"accuracy": [0.40, 0.86], "latency": [0.200, 0.600], "memory": [0.5, 0.5]}
    summary = summary_of(front, ranges=ranges)
    knee = pick(summary, "knee")
    assert knee["trial"] == 2 and not beaten_by(knee, summary["front"])


def test_knee_within_a_latency_budget_leaves_out_the_arch_the_budget_excludes() -> None:
    summary = summary_of(MAIN_JOB_FRONT, ranges=MAIN_JOB_RANGES)
    assert pick(summary, "knee", max_latency_ms=0.23)["trial"] == 13


def test_knee_measures_each_gap_in_units_of_the_given_spread() -> None:
    points = np.array([[0.10, 0.30], [0.20, 0.20]])  # (error, latency)
    assert knee_index(points, spread=[0.5, 0.15]) == 1  # 0.1 of error is little here
    assert knee_index(points, spread=[0.1, 1.0]) == 0   # 0.1 ms of latency is little here
    assert knee_index(np.array([[0.0, 1.0], [0.2, 0.2], [1.0, 0.0]])) == 1  # the front's range


def test_margin_guard_moves_to_the_fastest_clearly_better_arch_and_repeats() -> None:
    accuracy = [0.80, 0.83, 0.86, 0.865]
    latency = np.array([1.00, 1.05, 1.12, 1.40])
    # 0.80 -> 0.83 (5 % slower) -> 0.86 (6.7 % slower than 1.05); 0.865 is 25 % slower
    assert margin_guard(accuracy, latency, 0) == 2


def test_margin_guard_moves_only_within_ten_percent_on_every_device() -> None:
    accuracy = [0.80, 0.90]
    assert margin_guard(accuracy, np.array([[1.0, 1.0], [1.05, 1.09]]), 0) == 1
    assert margin_guard(accuracy, np.array([[1.0, 1.0], [1.05, 1.20]]), 0) == 0


# -- fastest -------------------------------------------------------------------------------------

def test_fastest_takes_the_most_accurate_arch_within_two_percent_of_the_lowest_latency() -> None:
    front = [(1, 0.80, 0.200, 0.5), (2, 0.88, 0.203, 0.6), (3, 0.95, 0.400, 1.0)]
    assert pick(summary_of(front), "fastest")["trial"] == 2


def test_fastest_does_not_count_an_arch_over_two_percent_slower_as_a_tie() -> None:
    front = [(1, 0.80, 0.200, 0.5), (2, 0.88, 0.205, 0.6)]
    assert pick(summary_of(front), "fastest")["trial"] == 1


def test_fastest_of_the_main_jobs_two_point_front_is_the_faster_arch() -> None:
    assert pick(summary_of(MAIN_JOB_FRONT), "fastest")["trial"] == 13


def test_fastest_of_one_point_is_that_point() -> None:
    assert pick(summary_of([(4, 0.7, 0.3, 1.0)]), "fastest")["trial"] == 4


def test_fastest_of_many_points_is_within_two_percent_of_the_lowest_latency() -> None:
    summary = summary_of(random_front(np.random.default_rng(1), 40))
    chosen = pick(summary, "fastest")
    lowest = min(r["latency"] for r in summary["front"])
    tied = [r for r in summary["front"]
            if r["latency"] <= lowest * (1 + FASTEST_LATENCY_TOLERANCE)]
    assert chosen["accuracy"] == max(r["accuracy"] for r in tied)


# -- best ----------------------------------------------------------------------------------------

def test_best_without_a_budget_is_the_most_accurate_arch() -> None:
    assert pick(summary_of(MAIN_JOB_FRONT), "best")["trial"] == 10


def test_best_within_a_budget_that_excludes_the_most_accurate_arch() -> None:
    assert pick(summary_of(MAIN_JOB_FRONT), "best", max_latency_ms=0.23)["trial"] == 13


def test_best_of_three_points_within_a_budget() -> None:
    front = [(1, 0.70, 0.10, 0.5), (2, 0.88, 0.15, 0.6), (3, 0.90, 0.60, 2.0)]
    assert pick(summary_of(front), "best", max_latency_ms=0.5)["trial"] == 2


def test_best_of_many_points_is_the_most_accurate_within_the_budget() -> None:
    summary = summary_of(random_front(np.random.default_rng(2), 40))
    limit = float(np.median([r["latency"] for r in summary["front"]]))
    chosen = pick(summary, "best", max_latency_ms=limit)
    within = [r for r in summary["front"] if r["latency"] <= limit]
    assert chosen["accuracy"] == max(r["accuracy"] for r in within)


# -- what cannot be picked -----------------------------------------------------------------------

def test_an_infeasible_budget_names_the_budget_that_would_admit_an_arch() -> None:
    with pytest.raises(EdgenasError) as caught:
        pick(summary_of(MAIN_JOB_FRONT), "best", max_latency_ms=0.1)
    assert str(caught.value) == ("no front point is within 0.1 ms; the fastest takes 0.222 ms: "
                                 "use --max-latency-ms 0.23 or more")


@pytest.mark.parametrize("how", ["knee", "fastest"])
def test_every_named_pick_refuses_an_infeasible_budget_the_same_way(how: str) -> None:
    with pytest.raises(EdgenasError, match=r"use --max-latency-ms 0\.23 or more"):
        pick(summary_of(MAIN_JOB_FRONT), how, max_latency_ms=0.1)


def test_an_empty_front_says_which_budget_would_admit_an_evaluated_arch() -> None:
    summary = summary_of([], budgets={"max_latency_ms": 0.1},
                         evaluated_lowest={"latency": 0.222, "memory": 0.5})
    with pytest.raises(EdgenasError) as caught:
        pick(summary, "knee")
    assert str(caught.value) == ("the front is empty: none of the 14 evaluated archs met the "
                                 "budgets; at the least use --max-latency-ms 0.23 or more "
                                 "(now 0.1)")


def test_an_empty_front_without_recorded_budgets_says_to_raise_one() -> None:
    with pytest.raises(EdgenasError, match="front is empty.*raise a budget"):
        pick(summary_of([]), "fastest")


def test_a_budget_is_rounded_up_so_that_it_admits_the_arch() -> None:
    assert [admitting(v) for v in (0.222, 0.22, 1.75, 12.34, 150.0)] == \
        ["0.23", "0.22", "1.8", "13", "150"]


def test_an_unknown_pick_lists_what_is_accepted() -> None:
    with pytest.raises(EdgenasError, match=r"use knee, best, fastest, or an index 0\.\.1"):
        pick(summary_of(MAIN_JOB_FRONT), "middle")


# -- the rules as the report states them -----------------------------------------------------------

def test_the_rule_texts_state_the_margins_the_code_applies() -> None:
    assert f"at least {round(100 * KNEE_MIN_ACCURACY_GAIN)} accuracy points" in KNEE_RULE
    assert f"no more than {round(100 * (KNEE_MAX_LATENCY_RATIO - 1))} % more latency" in KNEE_RULE
    assert f"within {round(100 * FASTEST_LATENCY_TOLERANCE)} % of the lowest latency" in FASTEST_RULE


# -- what a search records for the picks -----------------------------------------------------------

def _trial(number: int, arch: str, feasible: bool, **metrics: float) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(values=[metrics["accuracy"], metrics["latency"]],
                                      user_attrs={"metrics": metrics, "feasible": feasible,
                                                  "arch": arch})
    trial.number = number
    return trial


def test_ranges_span_every_arch_within_budget_and_lowest_spans_every_evaluated_arch() -> None:
    trials = [_trial(0, "a", True, accuracy=0.60, latency=0.30, memory=1.0),
              _trial(1, "b", True, accuracy=0.90, latency=0.50, memory=0.8),
              _trial(2, "c", False, accuracy=0.0, latency=0.10, memory=0.4),
              _trial(3, "a", True, accuracy=0.60, latency=0.30, memory=1.0)]
    assert feasible_ranges(trials, ("accuracy", "latency")) == {"accuracy": [0.60, 0.90],
                                                                 "latency": [0.30, 0.50]}
    assert evaluated_lowest(trials) == {"latency": 0.10, "memory": 0.4}
    assert feasible_ranges(trials[2:3], ("accuracy", "latency")) == {}


# -- through the command line ----------------------------------------------------------------------

def test_pareto_pick_knee_on_the_main_jobs_front_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "front.json").write_text(json.dumps(summary_of(MAIN_JOB_FRONT,
                                                               ranges=MAIN_JOB_RANGES)))
    assert main(["pareto", str(tmp_path), "--pick", "knee", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trial"] == 10


def test_pareto_pick_with_an_infeasible_budget_fails_in_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "front.json").write_text(json.dumps(summary_of(MAIN_JOB_FRONT)))
    assert main(["pareto", str(tmp_path), "--pick", "best", "--max-latency-ms", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "use --max-latency-ms 0.23 or more" in err and len(err.splitlines()) == 1
