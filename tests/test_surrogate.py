"""Surrogate-assisted search: trains exactly its budget, never an arch twice, resumes after a
crash, shares its training between processes, and refuses a changed recipe.

Training is replaced by a deterministic function of the arch (a fraction of a second), so
these tests check the loop, not accuracy.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from conftest import wait_until
from edgenas.cost.count import count
from edgenas.search.objectives import Budgets, Evaluator, SearchError
from edgenas.search.study_store import open_storage
from edgenas.search.trained_search import (SurrogateConfig, join_surrogate_search,
                                           run_surrogate_search, surrogate_summary)
from edgenas.search.work_queue import trained_trials
from edgenas.space import get_space
from edgenas.space.arch import Arch

SPACE = get_space("cifar")
CONFIG = SurrogateConfig(train_budget=14, initial=10, per_round=2, inner_trials=60,
                         population=10)
RECIPE = {"epochs": 1}
#: A guard against a hang only (a search that waits for ever), never what a test measures:
#: far more than any host takes.
HANG_S = 600


def fake_accuracy(arch: Arch) -> float:
    """Bigger and higher-resolution archs do better, as after a short real training."""
    return 0.4 + 0.05 * math.log(count(arch).macs / 1e6) + 0.002 * arch.resolution


def evaluator(max_memory_mb: float | None = None) -> Evaluator:
    return Evaluator(("accuracy", "macs", "memory"), Budgets(max_memory_mb=max_memory_mb),
                     None, lambda arch: 0.0)


class Trainer:
    """Counts its calls; ``fail_at`` raises on that call (a crash mid-search); ``hold``:
    each training ends only once ``hold()`` is true (another process took a candidate)."""

    def __init__(self, fail_at: int | None = None, log: Path | None = None,
                 delay_s: float = 0.0, hold: Callable[[], bool] | None = None) -> None:
        self.calls: list[str] = []
        self.fail_at, self.log, self.delay_s, self.hold = fail_at, log, delay_s, hold

    def __call__(self, arch: Arch) -> dict[str, object]:
        self.calls.append(arch.to_json())
        self._write({"event": "start", "arch": arch.to_json()})
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise KeyboardInterrupt("killed mid-training")
        time.sleep(self.delay_s)
        if self.hold is not None:
            wait_until(self.hold, "another process to take a candidate too", timeout_s=HANG_S)
        self._write({"event": "done", "arch": arch.to_json()})
        return {"accuracy": fake_accuracy(arch), "run_dir": f"/runs/{len(self.calls)}"}

    def _write(self, record: dict[str, str]) -> None:
        if self.log is not None:
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"pid": os.getpid(), **record}) + "\n")


def events(log: Path, kind: str) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["event"] == kind]


def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_trains_exactly_its_budget_and_every_front_arch_is_trained(tmp_path: Path) -> None:
    trainer = Trainer()
    study = run_surrogate_search(SPACE, evaluator(), trainer, CONFIG, RECIPE,
                                 storage=storage(tmp_path), poll_s=0.05)
    trials = trained_trials(study)
    assert len(trainer.calls) == len(set(trainer.calls)) == CONFIG.train_budget
    assert len(trials) == CONFIG.train_budget
    for trial in trials:  # the accuracy on record is the trained one, not a prediction
        arch = Arch.from_json(trial.user_attrs["arch"])
        assert trial.user_attrs["metrics"]["accuracy"] == pytest.approx(fake_accuracy(arch))
    proposed = [t for t in trials if t.user_attrs.get("predicted_accuracy") is not None]
    assert len(proposed) == CONFIG.train_budget - CONFIG.initial  # rounds after the first
    summary = surrogate_summary(study)
    assert summary["rounds"] == 1 + (CONFIG.train_budget - CONFIG.initial) // CONFIG.per_round
    assert -1.0 <= summary["final"]["cv_kendall_tau"] <= 1.0
    assert summary["proposals"]["n"] == len(proposed)

    again = Trainer()  # a finished search re-run trains nothing
    run_surrogate_search(SPACE, evaluator(), again, CONFIG, RECIPE, storage=storage(tmp_path),
                         poll_s=0.05)
    assert again.calls == []


def test_a_search_killed_mid_training_resumes_without_retraining(tmp_path: Path) -> None:
    first = Trainer(fail_at=12)  # killed during round 1, after the initial ten
    with pytest.raises(KeyboardInterrupt):
        run_surrogate_search(SPACE, evaluator(), first, CONFIG, RECIPE,
                             storage=storage(tmp_path), poll_s=0.05)
    finished = set(first.calls[:-1])
    second = Trainer()
    study = run_surrogate_search(SPACE, evaluator(), second, CONFIG, RECIPE,
                                 storage=storage(tmp_path), poll_s=0.05)
    assert not finished & set(second.calls), "a finished training ran again"
    assert first.calls[-1] in second.calls, "the interrupted candidate was not trained"
    assert len(trained_trials(study)) == CONFIG.train_budget

    (tmp_path / "clean").mkdir()
    uninterrupted = run_surrogate_search(SPACE, evaluator(), Trainer(), CONFIG, RECIPE,
                                         storage=storage(tmp_path / "clean"), poll_s=0.05)
    assert {t.user_attrs["arch"] for t in trained_trials(study)} == \
        {t.user_attrs["arch"] for t in trained_trials(uninterrupted)}


@pytest.mark.parametrize("kind", ["queued", "retried"])
def test_a_candidate_orphaned_before_its_first_heartbeat_is_trained_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A worker killed between taking a queued candidate and its first heartbeat leaves the
    trial running for ever (Optuna's stale check needs one heartbeat); the leader waited. A
    retried candidate carries its failed original's attributes, "taken" among them."""
    import optuna

    from edgenas.search import study_store
    from edgenas.search.work_queue import TAKEN

    with pytest.raises(KeyboardInterrupt):
        run_surrogate_search(SPACE, evaluator(), Trainer(fail_at=12), CONFIG, RECIPE,
                             storage=storage(tmp_path), poll_s=0.05)
    study = optuna.load_study(study_name="edgenas-trained", storage=storage(tmp_path))
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))[-1]
    inherited = {TAKEN: "host:1"} if kind == "retried" else {}
    study.enqueue_trial(SPACE.encode(Arch.from_json(failed.user_attrs["arch"])),
                        user_attrs={"arch": failed.user_attrs["arch"], **inherited})
    taken = study.ask()  # and its worker killed at once
    assert taken.user_attrs["arch"] == failed.user_attrs["arch"]
    monkeypatch.setattr(study_store, "ORPHAN_S", 0.5)
    result: list[optuna.Study] = []
    leader = threading.Thread(daemon=True, target=lambda: result.append(run_surrogate_search(
        SPACE, evaluator(), Trainer(), CONFIG, RECIPE, storage=storage(tmp_path), poll_s=0.05)))
    leader.start()
    wait_until(lambda: not leader.is_alive(), "the search to end without the dead worker's "
               "candidate", timeout_s=HANG_S)
    assert result, "the search failed"
    assert len(trained_trials(result[0])) == CONFIG.train_budget


def test_budgets_hold_for_every_trained_arch(tmp_path: Path) -> None:
    limit = 1.0
    study = run_surrogate_search(SPACE, evaluator(max_memory_mb=limit), Trainer(), CONFIG,
                                 RECIPE, storage=storage(tmp_path), poll_s=0.05)
    trained = trained_trials(study)
    assert len(trained) == CONFIG.train_budget
    assert all(t.user_attrs["metrics"]["memory"] <= limit for t in trained)


def test_a_study_created_but_never_stamped_is_taken_over(tmp_path: Path) -> None:
    """Creating a study and recording its settings are two writes; a worker joining between
    them was refused in CI, and so was a leader killed between them and run again."""
    import optuna

    optuna.create_study(study_name="edgenas-trained", storage=storage(tmp_path),
                        directions=evaluator().directions)
    study = run_surrogate_search(SPACE, evaluator(), Trainer(), CONFIG, RECIPE,
                                 storage=storage(tmp_path), poll_s=0.05)
    assert len(trained_trials(study)) == CONFIG.train_budget
    with pytest.raises(SearchError, match="recipe"):  # and now it is stamped
        run_surrogate_search(SPACE, evaluator(), Trainer(), CONFIG, {"epochs": 2},
                             storage=storage(tmp_path), poll_s=0.05)


def test_a_changed_recipe_is_refused(tmp_path: Path) -> None:
    run_surrogate_search(SPACE, evaluator(), Trainer(), CONFIG, RECIPE,
                         storage=storage(tmp_path), poll_s=0.05)
    with pytest.raises(SearchError, match="recipe"):
        run_surrogate_search(SPACE, evaluator(), Trainer(), CONFIG, {"epochs": 2},
                             storage=storage(tmp_path), poll_s=0.05)


def test_config_is_validated() -> None:
    with pytest.raises(SearchError, match="initial"):
        SurrogateConfig(initial=4)
    with pytest.raises(SearchError, match="train-budget"):
        SurrogateConfig(train_budget=5, initial=10)


def _worker(url: str, log: str, delay_s: float, study_name: str) -> None:
    join_surrogate_search(SPACE, evaluator(), Trainer(log=Path(log), delay_s=delay_s), CONFIG,
                          RECIPE, storage=open_storage(url, heartbeat_s=1), poll_s=0.05,
                          study_name=study_name)


def _start_worker(url: str, log: Path, delay_s: float,
                  study_name: str = "edgenas-trained") -> multiprocessing.Process:
    worker = multiprocessing.get_context("fork").Process(
        target=_worker, args=(url, str(log), delay_s, study_name))
    worker.start()
    return worker


def test_a_worker_shares_the_training_and_no_arch_is_trained_twice(tmp_path: Path,
                                                                   postgres: str) -> None:
    # several processes on one study need a server database: SQLite can hand one queued
    # trial to two processes on a loaded host (seen in CI), PostgreSQL cannot
    log, url, name = tmp_path / "trained.jsonl", postgres, f"shares-{tmp_path.name}"
    worker = _start_worker(url, log, 0.3, name)

    def worker_took_one() -> bool:  # the leader's first training ends only then, so that a
        # worker slow to start on a loaded host still finds a candidate left to take
        return any(r["pid"] == worker.pid for r in events(log, "start"))

    try:
        study = run_surrogate_search(SPACE, evaluator(),
                                     Trainer(log=log, delay_s=0.3, hold=worker_took_one), CONFIG,
                                     RECIPE, storage=url, poll_s=0.05, study_name=name)
        worker.join(timeout=HANG_S)
    finally:
        if worker.is_alive():
            worker.kill()
    assert worker.exitcode == 0, "the worker did not stop when the leader finished"
    done = events(log, "done")
    archs = [r["arch"] for r in done]
    assert len(archs) == len(set(archs)) == CONFIG.train_budget
    assert len({r["pid"] for r in done}) == 2, "one process trained everything"
    assert len(trained_trials(study)) == CONFIG.train_budget


def test_a_killed_workers_candidate_is_trained_again(tmp_path: Path, postgres: str) -> None:
    log, url = tmp_path / "trained.jsonl", postgres
    name = f"killed-{tmp_path.name}"  # one PostgreSQL database serves every test
    worker = _start_worker(url, log, 600.0, name)  # never finishes on its own

    def killed_once_it_trains() -> bool:  # the leader's first training ends only then, so
        # that a worker slow to start on a loaded host still finds a candidate left to take
        if not any(r["pid"] == worker.pid for r in events(log, "start")):
            return False
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGKILL)
            worker.join()
        return True

    study = run_surrogate_search(SPACE, evaluator(),
                                 Trainer(log=log, delay_s=0.05, hold=killed_once_it_trains),
                                 CONFIG, RECIPE, storage=open_storage(url, heartbeat_s=1),
                                 poll_s=0.05, study_name=name)
    assert worker.exitcode == -signal.SIGKILL
    lost = [r["arch"] for r in events(log, "start") if r["pid"] == worker.pid]
    assert lost, "the worker never took a candidate"
    finished = {r["arch"] for r in events(log, "done")}
    assert set(lost) <= finished, "the killed worker's candidate was never trained"
    assert len(trained_trials(study)) == CONFIG.train_budget


def test_cli_trained_search_writes_a_trained_front_and_exports_its_weights(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgenas.cli import main

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"recipe": {"epochs": 1, "limit": 300, "val_fraction": 0.3,
                                             "batch_size": 32}}))
    out = tmp_path / "search"
    argv = ["search", "--estimator", "trained", "--data", "digits", "--recipe", str(recipe),
            "--objectives", "accuracy,macs,memory", "--train-budget", "11", "--per-round", "1",
            "--trials", "30", "--population", "8", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "front.json").read_text())
    assert summary["trials"] == 11 and summary["recipe"]["limit"] == 300
    assert summary["surrogate"]["trained_archs"] == 11
    for record in summary["front"]:
        assert Path(record["run_dir"]).parent == out / "trained"
        result = json.loads((Path(record["run_dir"]) / "result.json").read_text())
        assert result["val_accuracy"] == pytest.approx(record["accuracy"])
    capsys.readouterr()
    assert main(["export", str(out), "--pick", "knee", "--formats", "onnx",
                 "--out", str(tmp_path / "bundle")]) == 0
    assert "trained by the search" in capsys.readouterr().out
    bundle = json.loads((tmp_path / "bundle" / "metrics.json").read_text())
    knee = json.loads((tmp_path / "bundle" / "arch.json").read_text())
    assert knee in [r["arch"] for r in summary["front"]] and bundle["accuracy"]["top1"] > 0
    # the recipe is checked, naming the file and the field
    recipe.write_text(json.dumps({"epochs": "one"}))
    assert main(argv[:-2] + ["--out", str(tmp_path / "other")]) != 0
    assert f"{recipe}: recipe field 'epochs'" in capsys.readouterr().err
