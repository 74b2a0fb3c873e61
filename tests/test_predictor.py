"""`edgenas.estimate.predictor` part by part: the folds, out-of-fold predictions, the choice
among regressors, non-finite features, the feature rows, and fits built on a prior. (The
committed predictor held to its ground truth: tests/test_accuracy_claims.py.)"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from edgenas.estimate.features import arch_features
from edgenas.estimate.predictor import (MIN_PRIOR_SLOPE, PRIOR, PRIOR_MARGIN, PredictorError,
                                        PriorAsIs, PriorPlusResidual, RescaledPrior, candidates, choose,
                                        clip, feature_matrix, fit_predictor, floors, folds,
                                        out_of_fold, quiet_fit, score_candidates, with_prior)
from edgenas.profile.ranking import kendall_tau
from edgenas.space import get_space
from edgenas.space.presets import get_preset


class FakeMeanRegressor:
    """Not a real regressor: predicts the mean of the rows it was fitted on, so a test can
    tell from a prediction which rows the fit saw."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "FakeMeanRegressor":
        self.mean = float(np.mean(y))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.mean)


class FakeRegressorThatWarns:
    """Not a real regressor: its fit warns twice, once that it did not converge."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "FakeRegressorThatWarns":
        warnings.warn("did not converge", ConvergenceWarning)
        warnings.warn("something else", UserWarning)
        return self


def test_folds_are_disjoint_cover_every_row_and_are_seeded() -> None:
    parts = folds(23, 5, seed=3)
    assert len(parts) == 5
    assert sorted(np.concatenate(parts).tolist()) == list(range(23))
    assert sorted(len(p) for p in parts) == [4, 4, 5, 5, 5]
    again, other = folds(23, 5, seed=3), folds(23, 5, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


def test_every_out_of_fold_prediction_comes_from_a_fit_without_its_row() -> None:
    y = np.arange(20.0)
    predicted = out_of_fold(FakeMeanRegressor, y[:, None], y, k=4, seed=2)
    for test in folds(20, 4, seed=2):
        train = np.setdiff1d(np.arange(20), test)
        assert predicted[test] == pytest.approx(np.full(len(test), y[train].mean()))


def test_a_quiet_fit_silences_only_convergence_warnings_and_gives_the_model() -> None:
    model = FakeRegressorThatWarns()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert quiet_fit(model, np.zeros((2, 1)), np.zeros(2)) is model
    assert [w.category for w in caught] == [UserWarning]


def test_a_non_finite_feature_goes_one_below_its_columns_smallest_finite_value() -> None:
    x = np.array([[1.0, -np.inf, np.nan], [3.0, 2.0, np.inf]])
    floor = floors(x)
    assert floor.tolist() == [0.0, 1.0, 0.0]  # a column without a finite value: 0
    assert clip(x, floor).tolist() == [[1.0, 1.0, 0.0], [3.0, 2.0, 0.0]]
    assert np.array_equal(clip(x, None), x, equal_nan=True)
    finite = np.array([[1.0, 2.0]])
    assert clip(finite, np.array([9.0, 9.0])).tolist() == [[1.0, 2.0]]


def test_a_predictor_predicts_one_row_or_many_with_non_finite_features_clipped() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = x[:, 0] - 0.5 * x[:, 1] + 0.05 * rng.normal(size=30)
    x[4, 2] = -np.inf  # a zero-cost score that came out as -inf
    fitted = fit_predictor(x, y, only=["ridge"])
    assert fitted.name == "ridge" and list(fitted.candidates) == ["ridge"] and fitted.n == 30
    assert fitted.floor is not None and fitted.floor.tolist() == floors(x).tolist()
    one = fitted.predict(x[0])
    assert one.shape == (1,) and one.dtype == np.float64
    assert fitted.predict(x).shape == (30,) and fitted.predict(x)[0] == pytest.approx(one[0])
    row = np.array([1.0, 2.0, -np.inf])
    assert fitted.predict(row)[0] == pytest.approx(
        fitted.predict(np.array([1.0, 2.0, fitted.floor[2]]))[0])
    # fitted on every row: in sample it ranks the target it was fitted on
    assert np.corrcoef(fitted.predict(x), y)[0, 1] > 0.99


def test_the_choice_is_the_best_cross_validated_tau_then_the_smallest_error() -> None:
    x = np.linspace(0.0, 1.0, 30)[:, None]
    y = 2.0 * x[:, 0] + 1.0  # ranked perfectly by more than one candidate
    fitted = fit_predictor(x, y, k=5)
    taus = {name: score["cv_tau"] for name, score in fitted.candidates.items()}
    assert set(taus) == {"ridge", "gp-rbf", "random-forest", "gbdt"}
    top = [name for name, tau in taus.items() if tau == max(taus.values())]
    assert len(top) >= 2, taus  # the premise: a tie in tau for the error to break
    assert fitted.name == min(top, key=lambda name: fitted.candidates[name]["cv_mae"])
    assert fitted.cv_tau == taus[fitted.name]
    assert fitted.cv_mae == fitted.candidates[fitted.name]["cv_mae"]


def test_a_predictor_is_reproducible_from_its_seed() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.3 * rng.normal(size=30)
    first, again = fit_predictor(x, y, seed=3), fit_predictor(x, y, seed=3)
    assert first.candidates == again.candidates  # every candidate's out-of-fold scores
    fresh = rng.normal(size=(10, 4))
    assert again.predict(fresh).tolist() == first.predict(fresh).tolist()


def test_a_predictor_needs_two_rows_per_fold() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    assert fit_predictor(x, y, k=5, only=["ridge"]).n == 10
    with pytest.raises(ValueError, match="a predictor needs at least 10 trained archs, got 9"):
        fit_predictor(x[:9], y[:9], k=5)


def test_feature_rows_are_the_arch_features_then_the_extra_scores() -> None:
    archs = [get_preset("resnet20"), get_space("cifar").sample(1)]
    plain = feature_matrix(archs, None)
    assert plain.shape == (2, len(arch_features(archs[0])))
    assert np.array_equal(plain[1], arch_features(archs[1]))
    extra = feature_matrix(archs, lambda arch: [1.5, -2])
    assert np.array_equal(extra[:, :-2], plain)
    assert extra[:, -2:].tolist() == [[1.5, -2.0], [1.5, -2.0]]


# -- a prior: one prediction per row from a predictor fitted elsewhere --------------------------

def noise_features_and_a_ranking_prior(n: int, seed: int = 0
                                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features that say nothing about the accuracy, and a prior that ranks it (the truth
    plus a little noise, on another scale): what a search's first rounds look like."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.3, 0.4, n)
    prior = 2.0 * truth + 0.1 + rng.normal(0.0, 0.004, n)
    return rng.normal(size=(n, 6)), truth, prior


def test_the_prior_is_kept_when_the_features_are_noise_and_the_prior_ranks() -> None:
    x, y, prior = noise_features_and_a_ranking_prior(12)
    fitted = fit_predictor(x, y, k=5, seed=0, prior=prior)
    assert fitted.uses_prior and fitted.name == PRIOR
    assert set(fitted.candidates) == set(candidates(0, prior=True))
    assert fitted.cv_tau == fitted.candidates[PRIOR]["cv_tau"] > 0.6


def test_a_prior_aware_predictor_predicts_new_rows_from_their_prior() -> None:
    x, y, prior = noise_features_and_a_ranking_prior(40)
    fitted = fit_predictor(x[:12], y[:12], prior=prior[:12], only=[PRIOR])
    new = fitted.predict(x[12:], prior=prior[12:])
    assert new.shape == (28,)
    assert kendall_tau(prior[12:], new) == pytest.approx(1.0)  # ranks exactly as the prior
    assert np.mean(np.abs(new - y[12:])) < 0.01           # rescaled onto the accuracies
    one = fitted.predict(x[12], prior=prior[12])
    assert one.shape == (1,) and one[0] == pytest.approx(new[0])
    with pytest.raises(PredictorError, match="fitted with a prior: pass prior="):
        fitted.predict(x[12:])


def test_the_choice_keeps_the_prior_unless_beaten_by_the_margin() -> None:
    def scores(**taus: float) -> dict[str, dict[str, float]]:
        return {name.replace("_", "+"): {"cv_tau": tau, "cv_mae": 0.01}
                for name, tau in taus.items()}

    close = scores(prior=0.30, gbdt_prior=0.45)
    assert choose(close, prior_margin=0.2) == PRIOR
    assert choose(close, prior_margin=0.1) == "gbdt+prior"
    assert choose(close, prior_margin=0.0) == "gbdt+prior"
    assert choose(scores(prior=0.30, gbdt_prior=0.55), prior_margin=0.2) == "gbdt+prior"
    assert choose(scores(ridge=0.1, gbdt=0.2), prior_margin=0.2) == "gbdt"  # no prior scored
    assert PRIOR_MARGIN > 0


def test_a_rescaled_prior_never_reverses_the_priors_order() -> None:
    prior = np.linspace(0.3, 0.4, 10)
    contradicted = RescaledPrior().fit(prior[:, None], prior[::-1].copy())
    assert contradicted.slope == MIN_PRIOR_SLOPE
    assert np.all(np.diff(contradicted.predict(prior[:, None])) > 0)
    agreed = RescaledPrior().fit(prior[:, None], 0.5 * prior + 0.1)
    assert agreed.slope == pytest.approx(0.5) and agreed.intercept == pytest.approx(0.1)


def test_the_residual_model_learns_what_the_prior_misses() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 4))
    prior = rng.uniform(0.3, 0.4, 30)
    y = prior + 0.03 * x[:, 0]               # the prior misses the first feature
    rows = np.hstack([x, prior[:, None]])
    alone = RescaledPrior().fit(rows[:20], y[:20]).predict(rows[20:])
    corrected = PriorPlusResidual().fit(rows[:20], y[:20]).predict(rows[20:])
    assert kendall_tau(y[20:], corrected) > kendall_tau(y[20:], alone) + 0.2
    # and the accuracies themselves, not only their order
    assert np.mean(np.abs(corrected - y[20:])) < np.mean(np.abs(alone - y[20:]))


def test_without_a_prior_the_candidates_and_their_use_are_unchanged() -> None:
    x, y, prior = noise_features_and_a_ranking_prior(12)
    fitted = fit_predictor(x, y)
    assert not fitted.uses_prior
    assert set(fitted.candidates) == {"ridge", "gp-rbf", "random-forest", "gbdt"}
    assert fitted.predict(x).shape == (12,)
    with pytest.raises(PredictorError, match="fitted without a prior"):
        fitted.predict(x, prior=prior)


@pytest.mark.parametrize("bad, message", [
    (np.zeros(11), r"one value per row, shape \(12,\), got shape \(11,\)"),
    (np.zeros((12, 2)), r"one value per row, shape \(12,\), got shape \(12, 2\)"),
    (np.r_[np.zeros(11), np.nan], r"rows \[11\] are not finite"),
])
def test_a_prior_of_the_wrong_shape_or_not_finite_is_refused(bad: np.ndarray,
                                                              message: str) -> None:
    x, y, _ = noise_features_and_a_ranking_prior(12)
    with pytest.raises(PredictorError, match=message):
        fit_predictor(x, y, prior=bad)
    fitted = fit_predictor(x, y, prior=np.arange(12.0), only=[PRIOR])
    with pytest.raises(PredictorError, match="one value per row"):
        fitted.predict(x[:3], prior=np.zeros(2))


def test_an_unknown_candidate_is_refused_with_the_names_to_choose_from() -> None:
    x, y, prior = noise_features_and_a_ranking_prior(12)
    with pytest.raises(PredictorError, match="choose candidates among prior, prior\\+residual"):
        fit_predictor(x, y, prior=prior, only=["ridge"])  # with a prior: "ridge+prior"


def test_a_prior_used_as_is_predicts_its_own_values_whatever_the_trained_archs_say() -> None:
    """When the archs are trained with the prior's own recipe, its values are predictions
    already: a round's few noisy accuracies must not rescale them, so the proposals of
    every round are predicted on one scale."""
    x, y, prior = noise_features_and_a_ranking_prior(40)
    values = prior / 2.0  # on the accuracies' scale, give or take the noise
    fits = [fit_predictor(x[:n], y[:n] + shift, prior=values[:n], only=[PRIOR],
                          prior_as_is=True) for n, shift in ((12, 0.0), (20, 0.05))]
    for fitted in fits:  # two rounds, other archs and another level: the same predictions
        assert fitted.uses_prior and fitted.name == PRIOR
        assert np.array_equal(fitted.predict(x[20:], prior=values[20:]), values[20:])
    assert isinstance(candidates(0, prior=True, prior_as_is=True)[PRIOR](), PriorAsIs)
    rescaled = fit_predictor(x[:20], y[:20] + 0.05, prior=values[:20], only=[PRIOR])
    assert not np.allclose(rescaled.predict(x[20:], prior=values[20:]), values[20:])


def test_a_residual_on_a_prior_used_as_is_corrects_the_prior_not_a_rescale_of_it() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 4))
    prior = rng.uniform(0.3, 0.4, 30)
    y = prior + 0.03 * x[:, 0]
    rows = np.hstack([x, prior[:, None]])
    model = PriorPlusResidual(as_is=True).fit(rows[:20], y[:20])
    assert isinstance(model.prior, PriorAsIs)
    assert kendall_tau(y[20:], model.predict(rows[20:])) > kendall_tau(y[20:], prior[20:]) + 0.2


def test_features_count_the_blocks_the_network_builds_not_the_listed_ones_scaled() -> None:
    """The plan repeats a stage's last block under a depth multiplier, skips included, so a
    stage listed as [mbconv, skip] at x1.5 builds one mbconv and two identities: one block of
    work, not ceil(1 x 1.5) = 2."""
    from edgenas.space.arch import Arch, Block, Head, Stage, Stem
    from edgenas.estimate.features import feature_names
    stage = Stage(channels=16, stride=1, blocks=(Block(op="mbconv", kernel=3, expansion=3.0),
                                                 Block(op="skip")))
    names = feature_names()
    for mult, built in ((1.0, 1), (1.5, 1), (2.0, 1)):
        arch = Arch(resolution=32, stem=Stem(channels=16), stages=(stage,), head=Head(),
                    depth_mult=mult)
        row = dict(zip(names, arch_features(arch)))
        assert row["s0.depth"] == built and row["blocks_mbconv"] == built, mult
    reversed_stage = Stage(channels=16, stride=1, blocks=stage.blocks[::-1])
    arch = Arch(resolution=32, stem=Stem(channels=16), stages=(reversed_stage,), head=Head(),
                depth_mult=2.0)  # [skip, mbconv] x2 builds skip, mbconv, mbconv, mbconv
    row = dict(zip(names, arch_features(arch)))
    assert row["s0.depth"] == 3 and row["blocks_mbconv"] == 3


# -- what each candidate is for, and how a fit reports its choice ------------------------------

class FakeConstantRegressor:
    """Not a real regressor: predicts 0.5 whatever it was fitted on, as a model shrunk to
    nothing does."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "FakeConstantRegressor":
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), 0.5)


def test_no_candidate_depends_on_the_units_a_feature_is_counted_in() -> None:
    """Features come in their own units (a resolution in pixels, a log of MACs, a share):
    counting one in other units must not change what a candidate predicts, so the linear
    and kernel candidates, and the residual on a prior, standardise the columns first."""
    rng = np.random.default_rng(0)
    x, new = rng.normal(size=(30, 3)), rng.normal(size=(8, 3))
    prior, new_prior = rng.uniform(0.3, 0.4, 30), rng.uniform(0.3, 0.4, 8)
    trend = 0.02 * x[:, 0] - 0.01 * x[:, 1] + 0.002 * rng.normal(size=30)
    units = np.array([1000.0, 0.001, 50.0])
    # a trend the features explain, with and without a prior: the GP fits it rather than
    # calling it noise, so its length scale is one the units could change
    for given, given_new, y in ((None, None, 0.3 + trend), (prior, new_prior, prior + trend)):
        for name, make in candidates(0, prior=given is not None).items():
            plain = quiet_fit(make(), with_prior(x, given), y).predict(with_prior(new, given_new))
            rescaled = quiet_fit(make(), with_prior(x * units, given), y).predict(
                with_prior(new * units, given_new))
            # to a millionth of accuracy: the GP's optimiser stops within rounding of its optimum
            assert rescaled == pytest.approx(plain, abs=1e-6), name


def test_the_gaussian_process_smooths_noisy_accuracies_instead_of_passing_through_each() -> None:
    """Two archs' accuracies differ by training noise as well as by design: the GP's kernel
    has a noise term, so it fits the trend through the trained archs, not each of them."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = 0.3 + 0.02 * x[:, 0] - 0.01 * x[:, 1] + 0.002 * rng.normal(size=30)
    gp = quiet_fit(candidates(0)["gp-rbf"](), x, y)
    in_sample = gp.predict(x)
    assert np.max(np.abs(in_sample - y)) > 0.001          # the noise is left out
    assert kendall_tau(y, in_sample) > 0.9                # the trend is fitted


def test_far_from_every_trained_arch_the_gaussian_process_predicts_their_mean_accuracy() -> None:
    """An arch unlike every trained one is predicted at their mean accuracy, not at 0: the
    GP models the accuracies around their mean (normalize_y)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = 0.8 + 0.02 * x[:, 0] + 0.002 * rng.normal(size=30)
    gp = quiet_fit(candidates(0)["gp-rbf"](), x, y)
    assert gp.predict(np.full((1, 3), 1e3))[0] == pytest.approx(y.mean())


def test_a_prior_is_rescaled_unless_the_fit_is_told_to_take_it_as_it_is() -> None:
    rescaled = candidates(0, prior=True)
    as_is = candidates(0, prior=True, prior_as_is=True)
    assert isinstance(rescaled[PRIOR](), RescaledPrior)
    assert isinstance(rescaled["prior+residual"]().prior, RescaledPrior)
    assert isinstance(PriorPlusResidual().prior, RescaledPrior)
    assert isinstance(as_is[PRIOR](), PriorAsIs)
    assert isinstance(as_is["prior+residual"]().prior, PriorAsIs)


def test_a_prior_the_trained_archs_cannot_scale_keeps_its_own_scale() -> None:
    """When every trained arch has the same prior, their accuracies cannot say how much a
    difference in the prior is worth: the rescale keeps the prior's own scale (slope 1) and
    only moves it onto their mean accuracy."""
    same = np.full((10, 1), 0.5)
    y = np.linspace(0.3, 0.4, 10)
    rescaled = RescaledPrior().fit(same, y)
    assert rescaled.slope == 1.0
    assert rescaled.predict(np.array([[0.5], [0.55]])) == pytest.approx(
        [y.mean(), y.mean() + 0.05])


def test_a_candidate_that_beats_the_prior_by_exactly_the_margin_is_kept() -> None:
    scores = {PRIOR: {"cv_tau": 0.25, "cv_mae": 0.01},
              "ridge+prior": {"cv_tau": 0.75, "cv_mae": 0.01}}
    assert choose(scores, prior_margin=0.5) == "ridge+prior"  # 0.25 + 0.5 is 0.75 exactly
    assert choose(scores, prior_margin=0.625) == PRIOR


def test_the_margin_a_fit_is_given_decides_whether_the_prior_is_kept() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(15, 3))
    y = 0.3 + 0.02 * x[:, 0] + 0.002 * rng.normal(size=15)  # the features rank
    prior = rng.uniform(0.3, 0.4, 15)                       # the prior does not
    among = dict(only=[PRIOR, "ridge+prior"], prior=prior)
    assert fit_predictor(x, y, **among).name == "ridge+prior"
    assert fit_predictor(x, y, prior_margin=2.0, **among).name == PRIOR  # taus lie in [-1, 1]


def test_a_candidate_predicting_a_constant_ranks_no_better_than_chance() -> None:
    """No order can agree or disagree with a constant: its tau is 0, not NaN, so that the
    choice among candidates can still compare it."""
    y = np.arange(10.0)
    scores, _ = score_candidates({"constant": FakeConstantRegressor}, y[:, None], y)
    assert scores["constant"]["cv_tau"] == 0.0


def test_scoring_with_the_defaults_gives_the_scores_a_default_fit_records() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 3))
    y = x[:, 0] + 0.3 * rng.normal(size=20)
    fitted = fit_predictor(x, y, only=["ridge"])
    scores, predicted = score_candidates({"ridge": candidates(0)["ridge"]}, x, y)
    assert scores == fitted.candidates
    # the out-of-fold predictions given are those the scores were computed from
    assert scores["ridge"]["cv_tau"] == kendall_tau(y, predicted["ridge"])
    assert scores["ridge"]["cv_mae"] == pytest.approx(np.mean(np.abs(predicted["ridge"] - y)))


def test_the_seed_draws_the_folds_the_candidates_are_scored_on() -> None:
    x, y, prior = noise_features_and_a_ranking_prior(12)
    rows = with_prior(x, prior)
    fits = {seed: fit_predictor(x, y, seed=seed, prior=prior, only=[PRIOR]) for seed in (1, 2)}
    for seed, fitted in fits.items():
        assert fitted.candidates == score_candidates({PRIOR: RescaledPrior}, rows, y, 5, seed)[0]
    assert fits[1].candidates != fits[2].candidates  # other folds, other scores


def test_a_fit_logs_every_candidates_tau_and_the_one_it_kept(
        caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    y = x[:, 0] + 0.1 * rng.normal(size=20)
    with caplog.at_level(logging.INFO, logger="edgenas.estimate.predictor"):
        fitted = fit_predictor(x, y, only=["ridge", "gbdt"])
    ridge, gbdt = (fitted.candidates[name]["cv_tau"] for name in ("ridge", "gbdt"))
    assert [r.getMessage() for r in caplog.records if r.name == "edgenas.estimate.predictor"] \
        == [f"predictor: ridge tau {ridge:.3f}, gbdt tau {gbdt:.3f}; kept {fitted.name}"]


def test_accuracies_given_as_integers_are_fitted_as_the_same_numbers() -> None:
    """Counts of correctly classified images, say: their out-of-fold predictions are not
    rounded to integers."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 2))
    correct = [int(v) for v in 9000 + 300 * x[:, 0] + rng.integers(0, 50, 20)]
    as_ints = fit_predictor(x, correct, only=["ridge"])
    as_floats = fit_predictor(x, np.array(correct, float), only=["ridge"])
    assert as_ints.candidates == as_floats.candidates


def test_predictions_are_double_precision_whatever_precision_the_features_come_in() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = x[:, 0] + 0.1 * rng.normal(size=20)
    fitted = fit_predictor(x, y, only=["ridge"])
    assert fitted.predict(x).dtype == np.float64


def test_feature_rows_and_accuracies_of_different_lengths_are_refused_with_both_counts() -> None:
    x, y, _ = noise_features_and_a_ranking_prior(12)
    with pytest.raises(PredictorError, match=r"^11 feature rows but 12 accuracies$"):
        fit_predictor(x[:11], y)


def test_a_predictor_called_without_its_prior_or_with_an_unexpected_one_says_how_to_call_it(
        ) -> None:
    x, y, prior = noise_features_and_a_ranking_prior(12)
    with pytest.raises(PredictorError) as missing:
        fit_predictor(x, y, prior=prior, only=[PRIOR]).predict(x)
    assert str(missing.value) == ("prior was fitted with a prior: pass prior=, one value per "
                                  "row (the prior the fit was given)")
    with pytest.raises(PredictorError) as unexpected:
        fit_predictor(x, y, only=["ridge"]).predict(x, prior=prior)
    assert str(unexpected.value) == ("ridge was fitted without a prior; refit with "
                                     "fit_predictor(..., prior=) to use one")


def test_a_prior_with_missing_values_is_refused_naming_the_first_five() -> None:
    x, y, prior = noise_features_and_a_ranking_prior(12)
    missing = [None] * 7 + prior[7:].tolist()  # JSON's null, where an arch had no prior
    with pytest.raises(PredictorError) as refused:
        fit_predictor(x, y, prior=missing)
    assert str(refused.value) == ("prior: rows [0, 1, 2, 3, 4] are not finite; a prior gives "
                                  "every arch a number")


def test_a_missing_extra_score_is_a_nan_in_the_feature_rows_for_the_fit_to_clip() -> None:
    archs = [get_preset("resnet20"), get_space("cifar").sample(1)]
    rows = feature_matrix(archs, lambda arch: [None, 2])
    assert rows.dtype == np.float64
    assert np.isnan(rows[:, -2]).all() and rows[:, -1].tolist() == [2.0, 2.0]
