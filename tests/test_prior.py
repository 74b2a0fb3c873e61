"""`edgenas.estimate.prior`: the committed ground truth's predictor as a function of an arch,
cheap enough for every arch a search's inner loop scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgenas.estimate.estimators import DEFAULT_TABLE, EstimatorError, PredictorEstimator
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.estimate.predictor import folds
from edgenas.estimate.prior import AccuracyPrior, accuracy_prior
from edgenas.profile.ranking import kendall_tau
from edgenas.space import get_space


@pytest.fixture(scope="module")
def prior() -> AccuracyPrior:
    if not DEFAULT_TABLE.is_file():
        pytest.skip(f"{DEFAULT_TABLE}: the committed ground truth is not in this checkout")
    return accuracy_prior()


def test_the_prior_ranks_archs_it_was_not_fitted_on(prior: AccuracyPrior) -> None:
    """Each fifth of the ground truth is scored by a prior fitted on the other four fifths
    (as `accuracy_prior` fits it: the archs' own features); pooled, the held-out scores rank
    the 63 trained accuracies at tau 0.53. A constant or shuffled prior ranks them near 0
    (tau's spread by chance over 63 archs is about 0.09), so 0.4 leaves both far below."""
    table = GroundTruth.load(DEFAULT_TABLE)
    entries = list(table.finished)
    held_out_values = np.full(len(entries), np.nan)
    for held_out in folds(len(entries), 5, seed=0):
        fitted_on = sorted(set(range(len(entries))) - set(held_out.tolist()))
        fold_prior = AccuracyPrior(PredictorEstimator(DEFAULT_TABLE, entries=fitted_on,
                                                      use_proxies=False))
        assert fold_prior.estimator.predictor.n == len(fitted_on)
        held_out_values[held_out] = fold_prior.values([entries[i].arch for i in held_out])
    assert np.isfinite(held_out_values).all()
    assert kendall_tau(table.accuracies(), held_out_values) > 0.4


def test_the_prior_scores_new_archs_without_zero_cost_proxies_and_remembers_them(
        prior: AccuracyPrior) -> None:
    archs = [get_space("cifar").sample(seed) for seed in range(5000, 5020)]
    values = prior.values(archs)
    assert np.isfinite(values).all() and ((0.0 < values) & (values < 1.0)).all()
    assert len(set(values.tolist())) > 15
    # no forward or backward pass of any network: the cost is the features' (milliseconds)
    assert prior.estimator.naswot.seconds == [] and prior.estimator.synflow.seconds == []
    calls = len(prior.estimator.seconds)
    assert prior(archs[3]) == values[3] and len(prior.estimator.seconds) == calls
    described = prior.describe()
    assert described["zero_cost"] is False and described["trained_archs"] == 63
    assert described["prior"] == f"predictor:{DEFAULT_TABLE}"


def test_a_missing_table_names_the_file_and_how_to_get_one(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(EstimatorError, match=r"nowhere\.json: no ground-truth table there "
                                             r"for the accuracy prior; build one with "
                                             r"'edgenas groundtruth build --out TABLE'"):
        accuracy_prior(table=missing)


def test_a_search_with_the_prior_fits_its_surrogate_around_it(tmp_path) -> None:
    """Trained accuracies that follow the committed predictor: the search's surrogate keeps
    the prior, predicts its proposals with it, and says so; a study started without the
    prior is refused with it (their surrogates differ)."""
    from edgenas.search.objectives import Budgets, Evaluator, SearchError
    from edgenas.search.trained_search import (SurrogateConfig, run_surrogate_search,
                                               surrogate_summary)
    from edgenas.space import get_space

    prior = accuracy_prior()
    space = get_space("cifar")
    evaluator = Evaluator(("accuracy", "macs", "memory"), Budgets(), None, lambda arch: 0.0)
    config = SurrogateConfig(train_budget=13, initial=10, per_round=3, inner_trials=30,
                             population=10, prior=True)

    def trainer(arch):  # noqa: ANN001, ANN202
        return {"accuracy": prior(arch), "run_dir": "/runs/x"}

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = run_surrogate_search(space, evaluator, trainer, config, {"epochs": 2},
                                 storage=storage, poll_s=0.01)
    proposal = study.user_attrs["proposal_1"]
    assert proposal["surrogate"]["model"] == "prior"
    assert proposal["surrogate"]["prior"]["trained_archs"] > 10
    summary = surrogate_summary(study, 0, prior)
    assert summary["proposals"]["kendall_tau"] == pytest.approx(1.0)
    with pytest.raises(SearchError, match="prior"):
        run_surrogate_search(space, evaluator, trainer,
                             SurrogateConfig(train_budget=13, initial=10, per_round=3,
                                             inner_trials=30, population=10),
                             {"epochs": 2}, storage=storage, poll_s=0.01)


def test_a_prior_used_as_is_without_the_prior_is_one_line_naming_both_options() -> None:
    from edgenas.search.objectives import SearchError
    from edgenas.search.trained_search import SurrogateConfig, search_prior

    with pytest.raises(SearchError, match="--prior-as-is says how to use the prior: give "
                                          "--prior too"):
        SurrogateConfig(prior_as_is=True)
    if not DEFAULT_TABLE.is_file():
        pytest.skip(f"{DEFAULT_TABLE}: the committed ground truth is not in this checkout")
    prior = search_prior(SurrogateConfig(prior=True, prior_as_is=True))
    assert prior is not None and prior.as_is and prior.describe()["as_is"] is True
    assert search_prior(SurrogateConfig(prior=True)).as_is is False
