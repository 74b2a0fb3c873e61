"""`edgenas.search.pareto` number by number: fronts and hypervolume held to brute force (on
small integer grids the dominated volume is a count of unit cells and dominance a double
loop, so every answer is exact), and the three rules behind the picks at their edges.
(The picks through `pick`, on whole front files: tests/test_picks.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgenas.search.pareto import (crowding_distance, fastest_index, hypervolume, knee_index,
                                   margin_guard, non_dominated, select_spread, to_minimization)


def dominated_cells(points: np.ndarray, reference: np.ndarray) -> int:
    """How many unit cells of [0, reference) some point is at or below in every objective:
    the hypervolume of integer points, counted."""
    cells = itertools.product(*(range(int(r)) for r in reference))
    return sum(any(np.all(p <= np.array(cell)) for p in points) for cell in cells)


def front_mask(points: np.ndarray) -> np.ndarray:
    """Kept: no other point is at least as good everywhere and better somewhere, and no
    earlier point is the same (a front lists each point once)."""
    n = len(points)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if np.all(points[j] <= points[i]) and np.any(points[j] < points[i]):
                keep[i] = False
    for i in range(n):
        if keep[i] and any(keep[j] and np.array_equal(points[j], points[i]) for j in range(i)):
            keep[i] = False
    return keep


def random_points(rng: np.random.Generator, n: int, dims: int, high: int) -> np.ndarray:
    """Integer points on a coarse grid: many ties, duplicates and dominated points."""
    return rng.integers(0, high, (n, dims)).astype(np.float64)


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_the_front_is_exactly_the_points_nothing_dominates_each_listed_once(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for _ in range(40):
        points = random_points(rng, int(rng.integers(1, 12)), dims, 4)
        assert non_dominated(points).tolist() == front_mask(points).tolist(), points


def test_a_point_better_in_one_objective_and_equal_in_the_rest_dominates() -> None:
    points = np.array([[1.0, 2.0], [1.0, 3.0], [0.5, 4.0], [1.0, 2.0]])
    assert non_dominated(points).tolist() == [True, False, True, False]


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_the_hypervolume_is_the_dominated_volume_below_the_reference(dims: int) -> None:
    rng = np.random.default_rng(10 + dims)
    for _ in range(30):
        reference = rng.integers(2, 5, dims)
        # mostly inside; some points on or beyond the reference in an objective add nothing
        points = rng.integers(0, reference + 2, (int(rng.integers(1, 11)), dims))
        points = points.astype(np.float64)
        expected = dominated_cells(points, reference)
        assert hypervolume(points, reference) == pytest.approx(expected), (points, reference)


def test_the_hypervolume_of_single_precision_objectives_is_summed_in_double() -> None:
    rng = np.random.default_rng(6)
    points = rng.uniform(0, 1, (15, 3)).astype(np.float32)
    reference = np.array([1.1, 1.1, 1.1], dtype=np.float32)
    exact = hypervolume(points.astype(np.float64), reference.astype(np.float64))
    assert hypervolume(points, reference) == pytest.approx(exact, rel=1e-15)


def test_the_hypervolume_of_two_points_in_two_objectives() -> None:
    # the union of [0, 2] x [1, 2] and [1, 2] x [0, 2]: 2 + 2 - 1
    assert hypervolume(np.array([[0.0, 1.0], [1.0, 0.0]]), [2.0, 2.0]) == pytest.approx(3.0)
    assert hypervolume(np.array([[0.25, 0.5]]), [1.0, 1.0]) == pytest.approx(0.375)


def test_the_hypervolume_scales_with_each_objectives_units() -> None:
    rng = np.random.default_rng(3)
    points = rng.uniform(0, 1, (12, 3))
    reference = np.array([1.1, 1.1, 1.1])
    stretch = np.array([2.0, 0.5, 3.0])
    assert hypervolume(points * stretch, reference * stretch) == \
        pytest.approx(3.0 * hypervolume(points, reference))


def test_points_outside_the_reference_add_nothing_and_none_left_is_zero() -> None:
    inside = np.array([[0.5, 0.5]])
    beyond = np.array([[0.1, 1.5], [1.5, 0.1], [1.0, 0.2]])  # past or on the reference
    assert hypervolume(np.vstack([inside, beyond]), [1.0, 1.0]) == pytest.approx(0.25)
    assert hypervolume(beyond, [1.0, 1.0]) == 0.0
    assert hypervolume(np.empty((0, 2)), [1.0, 1.0]) == 0.0


def test_a_flat_list_is_read_as_one_point() -> None:
    assert hypervolume([0.5, 0.5, 0.5], [1.0, 1.0, 1.0]) == pytest.approx(0.125)


def test_maximised_objectives_become_errors_and_the_rest_are_kept() -> None:
    values = np.array([[0.9, 0.2, 3.0], [0.6, 0.1, 5.0]])
    out = to_minimization(values, ("maximize", "minimize", "minimize"))
    assert out == pytest.approx(np.array([[0.1, 0.2, 3.0], [0.4, 0.1, 5.0]]))
    assert values.tolist() == [[0.9, 0.2, 3.0], [0.6, 0.1, 5.0]]  # the input is not changed
    one = to_minimization([1, 0], ("maximize", "minimize"))  # integers, flipped as numbers
    assert one.dtype == np.float64 and one.tolist() == [0.0, 0.0]


# -- the rules behind the picks ------------------------------------------------------------------

def test_the_knee_measures_each_objective_from_its_own_best_over_its_own_range() -> None:
    # (error, latency ms): scaled, A = (0, 1), B = (1, 0), C = (0.3, 0.4), 0.5 from the ideal
    points = np.array([[0.10, 5.2], [0.20, 5.0], [0.13, 5.08]])
    assert knee_index(points) == 2
    assert knee_index(points[:2]) == 0  # a tie goes to the first


def test_a_spread_of_zero_counts_as_one() -> None:
    points = np.array([[0.0, 0.6], [0.05, 0.0]])
    # error in units of 0.1, latency as it is: 0.6 from the ideal against 0.5
    assert knee_index(points, spread=[0.1, 0.0]) == 1
    assert knee_index(points, spread=[0.1, 1.0]) == 1


def test_the_guard_moves_to_an_arch_exactly_ten_percent_slower() -> None:
    assert margin_guard([0.5, 0.75], np.array([1.0, 1.1]), 0) == 1
    assert margin_guard([0.5, 0.75], np.array([1.0, 1.1000001]), 0) == 0


def test_the_guard_counts_gains_and_slow_downs_a_rounding_error_past_its_margins() -> None:
    # 0.80 + 0.03 is not 0.83 in floating point: the margins allow 1e-12 either way
    assert margin_guard([0.5, 0.75 - 1e-12], np.array([1.0, 1.0]), 0, gain=0.25) == 1
    assert margin_guard([0.5, 0.75], np.array([1.0, 1.1 + 1e-12]), 0, gain=0.25) == 1


def test_the_guard_takes_the_least_slow_down_not_the_first_or_most_accurate_arch() -> None:
    # both beat arch 0 by 3 points within 10 %; arch 2 costs less, and neither beats the other
    assert margin_guard([0.80, 0.90, 0.88], np.array([1.0, 1.08, 1.01]), 0) == 2


def test_the_guard_breaks_a_tie_in_slow_down_by_accuracy() -> None:
    assert margin_guard([0.80, 0.86, 0.84], np.array([1.0, 1.05, 1.05]), 0) == 1


def test_the_guard_compares_slow_downs_relative_to_each_device() -> None:
    # from (1 ms, 2 ms): arch 1 is 8 % slower on the first device, arch 2 5 % on the second
    latency = np.array([[1.0, 2.0], [1.08, 2.0], [1.0, 2.1]])
    assert margin_guard([0.80, 0.85, 0.84], latency, 0) == 2


def test_the_guard_stays_where_nothing_is_clearly_better() -> None:
    assert margin_guard([0.80, 0.82, 0.95], np.array([1.0, 1.0, 1.5]), 0) == 0
    assert margin_guard([0.80], np.array([1.0]), 0) == 0


def test_the_guard_never_trades_accuracy_for_speed() -> None:
    # faster but less accurate archs, within the slow-down and far below it: no move
    assert margin_guard([0.80, 0.70, 0.79], np.array([1.0, 0.5, 0.9]), 0) == 0


def test_the_guard_judges_single_precision_numbers_at_their_double_values() -> None:
    # float32 0.53 is 0.52999997: 2.9999997 points over 0.5, not 3
    assert margin_guard(np.float32([0.5, 0.53]), np.float32([1.0, 1.0]), 0) == 0
    # float32 1.1 is 1.10000002: past 10 % slower
    assert margin_guard([0.5, 0.75], np.float32([1.0, 1.1]), 0) == 0


def test_fastest_without_accuracies_is_the_lowest_latency() -> None:
    assert fastest_index([0.3, 0.1, 0.2]) == 1


def test_fastest_counts_a_latency_exactly_at_the_tolerance_as_a_tie() -> None:
    assert fastest_index([1.0, 1.02], [0.8, 0.9]) == 1
    assert fastest_index([1.0, 1.0201], [0.8, 0.9]) == 0


def test_fastest_judges_single_precision_latencies_at_their_double_values() -> None:
    # 1.0220411 is past 2 % over 1.002001 in double, not in single precision
    assert fastest_index(np.float32([1.002001, 1.0220411]), [0.8, 0.9]) == 0


def test_fastest_takes_the_most_accurate_of_the_tied_then_the_faster() -> None:
    assert fastest_index([1.0, 1.01, 1.005], [0.8, 0.9, 0.85]) == 1
    assert fastest_index([1.01, 1.0], [0.9, 0.9]) == 1
    assert fastest_index([1.0, 1.01], [0.9, 0.9], tolerance=0.0) == 0


def test_crowding_distance_sums_each_objective_s_neighbour_gap_over_its_range() -> None:
    # first objective: range 5, gaps 2 and 4; second: range 50, gaps 30 and 40
    points = np.array([[0, 50], [1, 40], [2, 20], [5, 0]])
    assert crowding_distance(points) == pytest.approx([np.inf, 0.4 + 0.6, 0.8 + 0.8, np.inf])
    # an objective all points share adds nothing (and divides by no zero range)
    assert crowding_distance(np.array([[0, 1], [1, 1], [3, 1]])) == pytest.approx(
        [np.inf, 1.0, np.inf])
    assert crowding_distance(np.array([[0, 1], [1, 0]])).tolist() == [np.inf, np.inf]


def test_crowding_distance_measures_gaps_against_each_objective_s_range_not_its_values() -> None:
    # latencies 10-15 ms (range 5), errors 0.1-0.6 (a range below 1 counts as well)
    points = np.array([[10.0, 0.6], [11.0, 0.5], [12.0, 0.3], [15.0, 0.1]])
    assert crowding_distance(points) == pytest.approx(
        [np.inf, 2 / 5 + 0.3 / 0.5, 4 / 5 + 0.4 / 0.5, np.inf])


def test_select_spread_cuts_a_layer_at_its_most_isolated_points() -> None:
    points = np.array([[0, 50], [1, 40], [2, 20], [5, 0], [5, 50]])  # the last is dominated
    assert select_spread(points, 3) == [0, 3, 2]  # extremes, then the most isolated
    assert select_spread(points, 4) == [0, 1, 2, 3]  # the whole front, as it lies
    # equally isolated: the earlier index goes first
    assert select_spread(np.array([[0, 2], [1, 1], [2, 0]]), 1) == [0]


def test_select_spread_takes_a_whole_front_then_cuts_the_next_layer_to_what_is_left() -> None:
    front = [[0, 50], [1, 40], [2, 20], [5, 0]]
    second = [[5, 50], [3, 60], [6, 30]]  # dominated by the front, not by each other
    # one place left after the front: the second layer's most isolated (an extreme)
    assert select_spread(np.array(front + second), 5) == [0, 1, 2, 3, 5]
