"""`edgenas.estimate.rank` by hand-counted examples: which tau, how ties count, and what the
bootstrap interval is made of. (Its use on a ground truth: tests/test_estimate.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from edgenas.estimate.rank import Agreement, agreement, spearman
from edgenas.profile.ranking import kendall_tau


def test_kendall_is_tau_b_counting_ties_as_ties() -> None:
    # 4 concordant pairs, none discordant, one pair tied in each list: 4 / sqrt(5 x 5)
    # (tau-a would give 4 / 6)
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_is_the_correlation_of_ranks() -> None:
    # one swapped neighbour pair: 1 - 6 x 2 / (4 x 15)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [10, 100, 1000]) == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_a_constant_side_agrees_with_nothing() -> None:
    # no order to agree with: NaN unless the caller says what it stands for (a trust rule
    # must fail on it; a choice between predictors must rank it as chance)
    assert np.isnan(kendall_tau([1, 2, 3], [5, 5, 5])) and np.isnan(kendall_tau([1], [2]))
    assert kendall_tau([1, 2, 3], [5, 5, 5], undefined=0.0) == 0.0
    assert kendall_tau([4], [4], undefined=-2.0) == -2.0
    assert kendall_tau([1, 2, 3], [1, 2, 3], undefined=0.0) == 1.0
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0
    assert spearman([7, 7, 7], [1, 2, 3]) == 0.0


def test_the_interval_is_the_middle_95_percent_of_seeded_resamples_of_archs() -> None:
    rng = np.random.default_rng(4)
    truth = rng.uniform(0, 1, 20)
    estimate = truth + rng.normal(0, 0.3, 20)
    got = agreement(truth, estimate, resamples=200, seed=7)
    draws = np.random.default_rng(7)
    taus, rhos = [], []
    for _ in range(200):
        index = draws.integers(0, 20, 20)
        taus.append(stats.kendalltau(truth[index], estimate[index]).statistic)
        rhos.append(stats.spearmanr(truth[index], estimate[index]).statistic)
    assert got.kendall_ci == pytest.approx(tuple(np.percentile(taus, [2.5, 97.5])))
    assert got.spearman_ci == pytest.approx(tuple(np.percentile(rhos, [2.5, 97.5])))
    assert got.kendall_tau == pytest.approx(stats.kendalltau(truth, estimate).statistic)
    assert got.spearman_rho == pytest.approx(stats.spearmanr(truth, estimate).statistic)
    assert got.n == 20


def test_the_interval_is_reproducible_and_by_default_1000_resamples_from_seed_0() -> None:
    rng = np.random.default_rng(5)
    truth = rng.uniform(0, 1, 15)
    estimate = truth + rng.normal(0, 0.4, 15)
    assert agreement(truth, estimate) == agreement(truth, estimate, 1000, 0)


def test_every_arch_can_be_drawn_into_a_resample() -> None:
    # the estimate ranks only arch 0 wrongly: resamples without it agree perfectly
    truth = np.arange(10.0)
    estimate = truth.copy()
    estimate[0] = 100.0
    low, high = agreement(truth, estimate, resamples=200).kendall_ci
    assert low < 0.5 and high == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # some resamples
def test_three_archs_are_enough_and_two_are_not() -> None:
    assert agreement([1, 2, 3], [1, 2, 3], resamples=10).n == 3
    with pytest.raises(ValueError, match="rank agreement needs at least 3 archs, got 2"):
        agreement([1, 2], [1, 2])


def test_lists_of_different_lengths_or_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"need two equal-length lists, got \(3,\) and \(4,\)"):
        agreement([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="equal-length lists"):
        agreement([[1, 2], [3, 4]], [[1, 2], [3, 4]])


def test_an_agreement_is_written_as_plain_values() -> None:
    result = Agreement(5, 0.4, (0.1, 0.7), 0.5, (0.2, 0.8))
    assert result.to_dict() == {"n": 5, "kendall_tau": 0.4, "kendall_ci": (0.1, 0.7),
                                "spearman_rho": 0.5, "spearman_ci": (0.2, 0.8)}


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_an_estimator_that_scores_every_arch_alike_agrees_at_chance_with_a_tight_interval(
        ) -> None:
    """A constant estimate orders nothing: its tau is 0 (chance), not NaN (which would make
    the interval NaN and the estimator unrankable) and not 1, and so is every resample's."""
    found = agreement(list(range(12)), [0.5] * 12, resamples=200)
    assert found.kendall_tau == 0.0 and found.kendall_ci == (0.0, 0.0)
    assert found.spearman_rho == 0.0 and found.spearman_ci == (0.0, 0.0)
