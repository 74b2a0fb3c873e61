"""`edgenas run`: the main job end to end on the embedded default, and its resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from scipy import stats

from conftest import EDGENAS_CLI, acting_after_each_rename, copy_tables_current_here
from edgenas.cli import main
from edgenas.data.augment import prepare_batch
from edgenas.estimate.features import arch_features
from edgenas.estimate.predictor import candidates, out_of_fold
from edgenas.export.bundle import load_bundle
from edgenas import pipeline
from edgenas.pipeline import STAGES, Stage
from edgenas.search.work_queue import trained_trials
from edgenas.stage_results import TableResult
from edgenas.space import Arch
from edgenas.train.checkpoint import read_run
from edgenas.train.weights import trained_model


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> Path:
    """A copy of the committed tables, current on this host whichever host measured them: a
    table whose fingerprint differs would be measured anew, for minutes and differently on
    each host (the table stage's outcomes are tested in test_table_stage.py). The module's
    runs share it, so that they search on one table."""
    return copy_tables_current_here(tmp_path_factory.mktemp("profiles") / "profiles")


def main_job_argv(out: Path, profiles: Path) -> list[str]:
    # the drift check and its repairs are tested in test_profile.py; here the stored table is
    # trusted so that the test does not depend on how fast this host is today
    return ["run", "--out", str(out), "--profiles-dir", str(profiles), "--skip-table-check",
            "--train-epochs", "1", "--train-budget", "11", "--trials", "40", "--population", "8",
            # 500 of the 1,797 digits: every training takes seconds (accuracies near chance,
            # which is fine for a test of the job's plumbing and resume)
            "--data-limit", "500",
            # ResNet-56 alone would take longer than the rest of the job
            "--baselines", "resnet-20,mobilenetv2-in-space"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, profiles) -> Path:
    """The main job run once, start to end."""
    out = tmp_path_factory.mktemp("uninterrupted") / "main"
    assert main(main_job_argv(out, profiles)) == 0
    return out


def test_main_job_profiles_trains_searches_exports_deploys_and_reports(uninterrupted, profiles,
                                                                       capsys) -> None:
    out = uninterrupted
    argv = main_job_argv(out, profiles)
    summary = json.loads((out / "summary.json").read_text())
    # knee and fastest, each exported once (a pick on an earlier pick's arch is not repeated)
    assert [m["name"] for m in summary["models"]] + list(summary["same_picks"]) == ["knee", "fastest"]
    # the search trained every arch on its front; the picks are not trained a second time
    front = json.loads((out / "search" / "front.json").read_text())
    assert front["trials"] == 11 and all(r.get("run_dir") for r in front["front"])
    assert summary["supernet"] == {"skipped": "the 'trained' estimator needs no supernet"}
    surrogate = summary["search"]["surrogate"]
    assert surrogate["trained_archs"] == 11
    # the final surrogate's cross-validated tau, recomputed from the run's trained archs and
    # the accuracies their own run folders recorded: each candidate's, and the kept one's
    final = surrogate["final"]
    scores = _candidates_refitted(out, seed=summary["config"]["seed"])
    assert final["candidates"] == {name: pytest.approx(score) for name, score in scores.items()}
    kept = max(scores, key=lambda name: (scores[name]["cv_tau"], -scores[name]["cv_mae"]))
    assert final["model"] == kept
    assert final["cv_kendall_tau"] == pytest.approx(scores[kept]["cv_tau"])
    for model in summary["models"]:
        bundle = load_bundle(Path(model["bundle"]))
        assert "onnx" in model["formats"] and bundle["metrics"]["verification"]["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4
        assert model["measured_ms"] > 0 and model["predicted_ms"] > 0
        assert (Path(model["bundle"]) / "deploy" / "host-cpu.json").exists()
    baselines = {b["name"]: b for b in summary["baselines"]}
    assert list(baselines) == ["ResNet-20", "MobileNetV2 (in space)"]
    for record in baselines.values():
        assert record["measured_ms"] > 0
        assert record["val_accuracy"] == _recounted_accuracy(record)
    # ResNets are outside the cifar space, so only measurement can place them; the
    # in-space MobileNetV2 also gets the table's prediction
    assert baselines["ResNet-20"]["predicted_ms"] is None
    assert baselines["MobileNetV2 (in space)"]["predicted_ms"] > 0
    assessment = json.loads((out / "standalone" / "assessment.json").read_text())
    assert assessment["recipe"]["epochs"] == 1 and len(assessment["networks"]) == len(summary["models"]) + 2
    trained = {r["name"]: r for r in assessment["networks"]}
    for model in summary["models"]:
        assert Path(trained[model["name"]]["run_dir"]).parent == out / "search" / "trained"
        assert model["accuracy_estimate"] == trained[model["name"]]["val_accuracy"]
    report = (out / "report.html").read_text()
    assert "Exported models" in report and "data:image/png;base64," in report
    assert "Hand-designed baselines" in report and "ResNet-20" in report
    assert "Every arch on the front was trained" in report and "Kendall tau" in report
    assert (out / "comparison.png").stat().st_size > 10_000
    stored = _stage_records(out)
    assert sorted(stored) == sorted(stage.name for stage in STAGES)
    assert main(argv) == 0  # a re-run finds every stage done and runs none of them again
    assert _stage_records(out) == stored
    assert json.loads((out / "summary.json").read_text())["search"]["trials"] == 11
    assert "report:" in capsys.readouterr().out


def test_every_stage_result_reads_back_as_the_value_it_stored(uninterrupted) -> None:
    """The stages hand each other typed values and store them as JSON: each stored result,
    read as its stage's value and stored again, is the same JSON, so a resumed run goes on
    from exactly what the finished stages left."""
    for stage in STAGES:
        path = uninterrupted / "stages" / f"{stage.name}.json"
        stored = json.loads(path.read_text())["result"]
        assert stage.store(stage.load(stored, str(path))) == stored, stage.name


def test_a_stored_result_that_does_not_read_as_its_stage_s_value_is_run_again(
        tmp_path, monkeypatch, caplog) -> None:
    """A hand-edited (or foreign) stage result is not gone on from: its stage runs again,
    and every stage after it, with a warning that names the file and the field."""
    runs: list[str] = []

    def stage(name: str) -> Stage:
        def run(state: Any) -> TableResult:
            runs.append(name)
            return TableResult(tmp_path / f"{name}.json", None, None)
        return Stage(name, name, run, lambda result: result.to_dict(), TableResult.from_dict)

    monkeypatch.setattr(pipeline, "STAGES", (stage("first"), stage("second"), stage("third"),
                                             Stage("report", "report", lambda state: {})))
    config = pipeline.RunConfig(out=str(tmp_path / "main"))
    pipeline._run_stages(config)
    assert runs == ["first", "second", "third"]
    stored = tmp_path / "main" / "stages" / "second.json"
    broken = json.loads(stored.read_text())
    del broken["result"]["path"]
    stored.write_text(json.dumps(broken))
    runs.clear()
    with caplog.at_level("WARNING"):
        pipeline._run_stages(config)
    assert runs == ["second", "third"]
    assert f"{stored}: path: expected str, got None; running the stage again" in caplog.text


def _candidates_refitted(out: Path, seed: int) -> dict[str, dict[str, float]]:
    """Each surrogate candidate's out-of-fold Kendall tau (scipy's) and mean absolute error
    on the archs the search trained, in the order it proposed them, at the accuracies their
    run folders hold."""
    study = optuna.load_study(study_name="edgenas-trained",
                              storage=f"sqlite:///{out / 'search' / 'study.db'}")
    archs, accuracies = [], []
    for trial in trained_trials(study):
        run_dir = Path(trial.user_attrs["run_dir"])
        archs.append(Arch.from_json(read_run(run_dir)["arch"]))
        accuracies.append(json.loads((run_dir / "result.json").read_text())["val_accuracy"])
    x, y = np.vstack([arch_features(arch) for arch in archs]), np.asarray(accuracies)
    scores = {}
    for name, make in candidates(seed).items():
        predicted = out_of_fold(make, x, y, 5, seed)
        # tau-b; 0 where the predictions are all one value (as the surrogate counts it)
        tau = float(np.nan_to_num(stats.kendalltau(y, predicted).statistic))
        scores[name] = {"cv_tau": tau, "cv_mae": float(np.mean(np.abs(predicted - y)))}
    return scores


def _recounted_accuracy(record: dict[str, Any]) -> float:
    """A trained network's share of its run's validation images classified right, counted
    here from the weights its run folder holds."""
    arch = Arch.from_dict(record["arch"])
    model, run_data, _ = trained_model(arch, record["run_dir"])
    val = run_data.split.val
    right = 0
    with torch.no_grad():
        for start in range(0, len(val), 256):
            index = val[start:start + 256]
            logits = model(prepare_batch(run_data.data.images[index], run_data.normalize,
                                         False, arch.resolution))
            right += int((logits.argmax(1) == run_data.data.labels[index]).sum())
    return right / len(val)


def _stage_records(out: Path) -> dict[str, tuple[int, int]]:
    """Each stored stage result's file identity: a stage that ran again replaces its file."""
    return {path.stem: (path.stat().st_ino, path.stat().st_mtime_ns)
            for path in (out / "stages").glob("*.json")}


def test_main_job_with_the_supernet_estimator(tmp_path, profiles) -> None:
    """The weight-sharing path stays available for users with a GPU."""
    out = tmp_path / "main"
    assert main(["run", "--out", str(out), "--profiles-dir", str(profiles),
                 "--skip-table-check", "--estimator", "supernet", "--supernet-epochs", "1",
                 "--train-epochs", "1", "--trials", "6", "--population", "3",
                 "--val-limit", "50", "--data-limit", "500", "--baselines", "none"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["supernet"]["val_accuracy_largest"] is not None
    assert summary["search"]["trials"] == 6 and summary["search"]["surrogate"] is None
    assert "supernet estimate" in (out / "report.html").read_text()


def _results(folder: Path) -> list[Path]:
    return list(folder.glob("*/result.json")) if folder.exists() else []


#: Where the main job is killed (SIGKILL, the whole process group), in order: a name and
#: the state, judged from what the job has written so far. Each is reached only while its
#: stage runs (not already when the job is started again), and the job kills itself the
#: moment a file it writes makes the state true: the kill lands at that state on any host.
KILL_POINTS: list[tuple[str, Any]] = [
    ("search, after 2 trained archs", lambda out: len(_results(out / "search" / "trained")) >= 2),
    ("search, in the middle of the 7th training",
     lambda out: len(_results(out / "search" / "trained")) >= 6
     and len(list((out / "search" / "trained").glob("*/run.json"))) >= 7),
    ("training the baselines", lambda out: (out / "stages" / "search.json").exists()
     and any((out / "standalone").rglob("run.json"))),
    ("export", lambda out: (out / "stages" / "train.json").exists()
     and (out / "bundles").exists()),
    ("deploy, after the first model", lambda out: (out / "stages" / "export.json").exists()
     and any((out / "bundles").glob("*/deploy/*.json"))),
    ("report, after the summary", lambda out: (out / "stages" / "deploy.json").exists()
     and (out / "summary.json").exists()),
]


def killed_at(point: int, out: Path) -> str:
    """``after_rename``'s body for the job killed at ``KILL_POINTS[point]``."""
    return f"""
from test_pipeline import KILL_POINTS
if KILL_POINTS[{point}][1](Path({str(out)!r})):
    os.killpg(0, signal.SIGKILL)
"""


@pytest.mark.slow
def test_main_job_killed_at_every_stage_ends_as_an_uninterrupted_run(uninterrupted, profiles,
                                                                     tmp_path) -> None:
    """SIGKILL during the search (between and in the middle of trainings), the baselines'
    training, export, deploy and report; each time the same command is run again. It ends
    with what the uninterrupted run made: the same trained archs with the same accuracies
    (CPU training here is deterministic, seeded per epoch), the same front, picks and
    exported archs. Only timings (latency measured on deploy) may differ."""
    out = tmp_path / "main"
    # the tables as the uninterrupted run found them: its measured front refitted the shared
    # copy, and a search on a refitted table predicts other latencies
    argv = main_job_argv(out, copy_tables_current_here(tmp_path / "profiles"))
    for point, (name, _) in enumerate(KILL_POINTS):
        process = subprocess.Popen([*acting_after_each_rename(EDGENAS_CLI, killed_at(point, out)),
                                    *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
        try:
            _, stderr = process.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"the main job hung before {name!r}")
        assert process.returncode == -signal.SIGKILL, (
            f"the job never reached {name!r} (exit {process.returncode}): {stderr[-3000:]}")
    finished = subprocess.run([sys.executable, "-m", "edgenas.cli", *argv], capture_output=True,
                              text=True, timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]

    def trained(folder: Path) -> dict[str, float]:
        return {json.loads((r.parent / "run.json").read_text())["arch"]:
                json.loads(r.read_text())["val_accuracy"] for r in _results(folder)}

    # nothing was trained twice, and what was trained matches the uninterrupted run's
    accuracies = trained(uninterrupted / "search" / "trained")
    assert trained(out / "search" / "trained") == accuracies
    fronts = [json.loads((o / "search" / "front.json").read_text()) for o in (out, uninterrupted)]
    assert fronts[0]["trials"] == fronts[1]["trials"] == 11
    # the front is ranked on latencies measured after the search (timings, which may differ
    # between runs): each of its archs is a trained one, with the uninterrupted run's accuracy
    for row in fronts[0]["front"]:
        assert row["latency_basis"] == "measured"
        assert row["accuracy"] == pytest.approx(accuracies[Arch.from_dict(row["arch"]).to_json()])
    summaries = [json.loads((o / "summary.json").read_text()) for o in (out, uninterrupted)]
    for mine, theirs in zip(summaries[0]["models"], summaries[1]["models"]):
        assert mine["name"] == theirs["name"]
        arch = Arch.from_dict(json.loads((Path(mine["bundle"]) / "arch.json").read_text()))
        assert mine["accuracy_estimate"] == pytest.approx(accuracies[arch.to_json()])
        load_bundle(Path(mine["bundle"]))
    baselines = [{b["name"]: b["val_accuracy"] for b in s["baselines"]} for s in summaries]
    assert baselines[0] == baselines[1]


def test_a_misspelt_baseline_is_refused_before_any_work(tmp_path, capsys) -> None:
    assert main(["run", "--out", str(tmp_path / "main"), "--baselines", "resnet-20,resnet-99"]) == 2
    assert "--baselines 'resnet-20,resnet-99': resnet-99 unknown" in capsys.readouterr().err
    assert not (tmp_path / "main").exists()


def test_a_bad_number_is_refused_before_any_work(tmp_path, capsys) -> None:
    assert main(["run", "--out", str(tmp_path / "main"), "--train-epochs", "0"]) == 2
    assert "--train-epochs 0: must be a whole number >= 1" in capsys.readouterr().err
    assert not (tmp_path / "main").exists()
