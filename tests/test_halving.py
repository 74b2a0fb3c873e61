"""Successive halving in the trained search: every arch scored at the first rung, 1 in
``halving`` promoted to the next, the front made of full-recipe archs only; a run stopped at
a rung continues to the full recipe exactly as an uninterrupted one; a kill mid-promotion
trains nothing twice.

The search tests replace training with a deterministic function of the arch and the epochs
(a fraction of a second); the training tests train a tiny network on a few digits.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from edgenas.cost.count import count
from edgenas.data import open_dataset
from edgenas.errors import CheckpointError, EdgenasError
from edgenas.search.objectives import Budgets, Evaluator, SearchError
from edgenas.search.pareto import crowding_distance, non_dominated, select_spread
from edgenas.search.trained_search import (SurrogateConfig, TrainedSearch,
                                           run_surrogate_search, surrogate_summary)
from edgenas.search.work_queue import WorkQueue, fidelity_of, trained_trials, trials_at
from edgenas.space import get_space
from edgenas.space.arch import Arch, Block, Head, Stage, Stem
from edgenas.train.checkpoint import CHECKPOINT_FILE, RESULT_FILE, load_checkpoint
from edgenas.train.loop import TrainConfig
from edgenas.train.standalone import rung_file, train_arch

SPACE = get_space("cifar")
RECIPE = {"epochs": 3}
CONFIG = SurrogateConfig(train_budget=12, initial=10, per_round=1, inner_trials=40,
                         population=10, rungs=(1, 2), halving=2)


def full_accuracy(arch: Arch) -> float:
    return 0.4 + 0.05 * math.log(count(arch).macs / 1e6) + 0.002 * arch.resolution


class Trainer:
    """Scores an arch lower the fewer epochs it had; records every (arch, epochs) call."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[str, int | None]] = []
        self.fail_at = fail_at

    def __call__(self, arch: Arch, epochs: int | None = None) -> dict[str, object]:
        self.calls.append((arch.to_json(), epochs))
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise KeyboardInterrupt("killed mid-training")
        # a rung's score ranks like the full one, except a fixed per-arch wobble
        wobble = (zlib.crc32(arch.to_json().encode()) % 7 - 3) * 0.004 if epochs != 3 else 0.0
        accuracy = full_accuracy(arch) - 0.1 * (3 - (epochs or 3)) + wobble
        return {"accuracy": accuracy, "run_dir": f"/runs/{len(self.calls)}", "epochs": epochs}


def evaluator() -> Evaluator:
    return Evaluator(("accuracy", "macs", "memory"), Budgets(), None, lambda arch: 0.0)


def run(tmp_path: Path, trainer: Trainer, config: SurrogateConfig = CONFIG):
    return run_surrogate_search(SPACE, evaluator(), trainer, config, RECIPE,
                                storage=f"sqlite:///{tmp_path / 'study.db'}", poll_s=0.01)


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    """One uninterrupted search with two rungs, shared by the tests that only read it."""
    trainer = Trainer()
    return run(tmp_path_factory.mktemp("halved"), trainer), trainer


def test_every_arch_is_scored_at_the_first_rung_and_one_in_halving_goes_on(halved) -> None:
    study, trainer = halved
    scored = trained_trials(study)
    assert len(scored) == CONFIG.train_budget
    assert {fidelity_of(t) for t in scored} == {1}
    second, third = trials_at(study, 2), trials_at(study, 3)
    assert len(second) == math.ceil(12 / 2) and len(third) == math.ceil(6 / 2)
    # promoted archs come from the rung below, and each (arch, epochs) is trained once
    assert {t.user_attrs["arch"] for t in third} <= {t.user_attrs["arch"] for t in second}
    assert len(trainer.calls) == len(set(trainer.calls)) == 12 + 6 + 3
    assert {e for _, e in trainer.calls} == {1, 2, 3}
    # a promoted arch keeps the round it was proposed in
    assert all(t.user_attrs.get("round") is not None for t in third)
    summary = surrogate_summary(study)
    assert summary["rungs"]["epochs"] == [1, 2, 3] and summary["rungs"]["archs"] == [12, 6, 3]
    assert [p["archs"] for p in summary["rungs"]["promotions"]] == [6, 3]


def test_the_promoted_archs_are_the_best_pareto_layers_of_their_rung(halved) -> None:
    study, _ = halved
    first = trials_at(study, 1)
    promoted = {t.user_attrs["arch"] for t in trials_at(study, 2)}
    points = np.array([[1 - t.user_attrs["metrics"]["accuracy"], t.user_attrs["metrics"]["macs"],
                        t.user_attrs["metrics"]["memory"]] for t in first])
    on_front = {first[i].user_attrs["arch"] for i in np.flatnonzero(non_dominated(points))}
    # every arch of the first rung's front goes on when there is room for all of them
    assert on_front <= promoted or len(promoted) < len(on_front)
    assert len(promoted & on_front) == min(len(on_front), len(promoted))


def test_the_study_s_proposals_and_promotions_read_back_as_they_were_stored(halved) -> None:
    """The leader keeps its batches in the study as typed values and stores them as the
    JSON attributes studies have always held, so that a study of an earlier edgenas resumes:
    each reads back and stores as the same JSON, and a hand-broken one names its attribute."""
    study, _ = halved
    queue = WorkQueue(study)
    stored = study.user_attrs
    proposals, promotions = queue.proposals(), [queue.promotion(rung) for rung in (0, 1)]
    assert [p.to_dict() for p in proposals] == [stored[f"proposal_{i}"]
                                                for i in range(len(proposals))]
    assert [p.to_dict() for p in promotions] == [stored["promotion_0"], stored["promotion_1"]]
    assert queue.promotion(2) is None and len(promotions[1].archs) == 3
    promoted = promotions[0].archs[0]
    assert promoted.score is not None and promoted.round is not None
    assert promotions[0].origin(promoted) == {"promotion": 0, "round": promoted.round,
                                              "predicted_accuracy": promoted.predicted}
    study.set_user_attr("proposal_0", {"round": 0})
    with pytest.raises(EdgenasError, match="study attribute proposal_0: not a batch of archs"):
        WorkQueue(study).proposals()
    study.set_user_attr("proposal_0", stored["proposal_0"])


def test_the_front_holds_only_full_recipe_archs(tmp_path) -> None:
    trainer = Trainer()
    search = TrainedSearch(SPACE, evaluator(), CONFIG, TrainConfig(epochs=3), "digits", trainer)
    study = search.run(storage=f"sqlite:///{tmp_path / 'study.db'}")
    trials, info = search.outcome(study)
    assert len(trials) == 3 and {fidelity_of(t) for t in trials} == {3}
    assert info["surrogate"]["rungs"]["archs"] == [12, 6, 3]


def test_a_kill_mid_promotion_resumes_without_training_anything_twice(tmp_path, halved) -> None:
    first = Trainer(fail_at=12 + 3)  # killed in the middle of the first promotion
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, first)
    second = Trainer()
    study = run(tmp_path, second)
    finished_before = set(first.calls[:-1])
    assert not finished_before & set(second.calls)
    uninterrupted, _ = halved
    assert {t.user_attrs["arch"] for t in trials_at(study, 3)} == \
        {t.user_attrs["arch"] for t in trials_at(uninterrupted, 3)}


def test_rungs_are_checked_before_any_work() -> None:
    with pytest.raises(SearchError, match="increasing"):
        SurrogateConfig(rungs=(2, 1))
    with pytest.raises(SearchError, match="increasing"):
        SurrogateConfig(rungs=(0,))
    with pytest.raises(SearchError, match="halving"):
        SurrogateConfig(rungs=(1,), halving=1)
    with pytest.raises(SearchError, match="below the recipe's 2 epochs"):
        SurrogateConfig(rungs=(1, 2)).schedule(2)
    assert SurrogateConfig().schedule(2) == (None,)
    assert SurrogateConfig(rungs=(1,)).schedule(2) == (1, 2)


def test_a_study_with_other_rungs_is_refused(tmp_path) -> None:
    run(tmp_path, Trainer(), SurrogateConfig(train_budget=10, initial=10, inner_trials=20,
                                             population=10, rungs=(1,)))
    with pytest.raises(SearchError, match="rungs"):
        run(tmp_path, Trainer(), SurrogateConfig(train_budget=10, initial=10, inner_trials=20,
                                                 population=10, rungs=(2,)))


def test_select_spread_takes_whole_layers_then_the_most_isolated() -> None:
    points = np.array([[0, 4], [1, 3], [2, 2], [3, 1], [4, 0],   # the front
                       [1, 4], [4, 4]])                          # dominated
    assert sorted(select_spread(points, 5)) == [0, 1, 2, 3, 4]
    three = select_spread(points, 3)
    assert {0, 4} <= set(three) and len(three) == 3       # extremes always kept
    assert sorted(select_spread(points, 6)) == [0, 1, 2, 3, 4, 5]  # then the next layer
    assert sorted(select_spread(points, 99)) == list(range(7))
    assert np.isinf(crowding_distance(points[:5])[[0, 4]]).all()


TINY = Arch(resolution=16, stem=Stem(8), head=Head(0),
            stages=(Stage(8, 1, (Block("basic", 3),)), Stage(16, 2, (Block("basic", 3),))))


def test_a_run_stopped_at_a_rung_continues_as_an_uninterrupted_run(tmp_path) -> None:
    recipe = TrainConfig(epochs=2, batch_size=32, limit=160, val_fraction=0.25,
                         warmup_epochs=0.5)
    data = open_dataset("digits")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order both times
    try:
        _stop_and_continue(recipe, data, tmp_path)
    finally:  # later tests in this process compare trainings with subprocesses' own
        torch.set_num_threads(threads)


def _stop_and_continue(recipe: TrainConfig, data, tmp_path: Path) -> None:  # noqa: ANN001
    rung = train_arch(TINY, "digits", tmp_path / "halved", recipe, data=data, until_epoch=1)
    assert rung["epochs"] == 1 and len(rung["history"]) == 1
    assert (tmp_path / "halved" / rung_file(1)).exists()
    assert not (tmp_path / "halved" / RESULT_FILE).exists()
    full = train_arch(TINY, "digits", tmp_path / "halved", recipe, data=data)
    straight = train_arch(TINY, "digits", tmp_path / "straight", recipe, data=data)
    assert full["epochs"] == straight["epochs"] == 2
    a = load_checkpoint(tmp_path / "halved" / CHECKPOINT_FILE)["model"]
    b = load_checkpoint(tmp_path / "straight" / CHECKPOINT_FILE)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert full["val_accuracy"] == pytest.approx(straight["val_accuracy"], abs=1e-9)
    # the rung's score is kept and returned as it was, the weights having moved on
    again = train_arch(TINY, "digits", tmp_path / "halved", recipe, data=data, until_epoch=1)
    assert again["val_accuracy"] == rung["val_accuracy"]


def test_a_rung_asked_for_after_the_run_went_past_it_unscored_is_refused(tmp_path) -> None:
    recipe = TrainConfig(epochs=2, batch_size=32, limit=160, val_fraction=0.25)
    data = open_dataset("digits")
    train_arch(TINY, "digits", tmp_path, recipe, data=data)
    with pytest.raises(CheckpointError, match="kept no score of epoch 1"):
        train_arch(TINY, "digits", tmp_path, recipe, data=data, until_epoch=1)


def test_proposals_weigh_costs_as_ratios() -> None:
    """The greedy hypervolume choice is the same whatever power of the latency it sees: a
    cost is compared by its ratio, not by its distance in ms (on a linear scale the two
    latency sets below lead to different picks)."""
    from types import SimpleNamespace

    from edgenas.search.hypervolume_gain import greedy_hypervolume

    def trial(accuracy: float, latency: float, memory: float) -> SimpleNamespace:
        return SimpleNamespace(user_attrs={"metrics": {"accuracy": accuracy, "latency": latency,
                                                       "memory": memory}})

    objectives = ("accuracy", "latency", "memory")
    trained = [(.85, .18, .5), (.90, 2.6, 10.0)]
    candidates = [(.865, .97, 2.5), (.875, 1.59, 3.7), (.862, .53, 2.1)]
    chosen = []
    for power in (1.0, 2.0, 0.5):
        scaled = [[trial(a, lat ** power, m) for a, lat, m in rows]
                  for rows in (candidates, trained)]
        pick = greedy_hypervolume(*scaled, objectives, 1)[0]
        chosen.append(round(pick.user_attrs["metrics"]["latency"] ** (1 / power), 6))
    assert chosen == [0.53] * 3  # linear: 0.53 ms, but 1.59 ms on the squared latencies
