"""`edgenas run`: the main job end to end on the embedded default, and its resume."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from edgenas.cli import main
from edgenas.export.bundle import load_bundle

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


@pytest.fixture
def profiles(tmp_path) -> Path:
    """A copy of the committed tables: on a host whose fingerprint differs the main job
    measures its table anew, and it must do so in the copy, not in the checkout that later
    tests read."""
    copy = tmp_path / "profiles"
    shutil.copytree(PROFILES, copy, ignore=shutil.ignore_patterns(".*.lock"))
    return copy


def test_main_job_profiles_trains_searches_exports_deploys_and_reports(tmp_path, profiles,
                                                                       capsys) -> None:
    out = tmp_path / "main"
    # the drift check and its repairs are tested in test_profile.py; here the stored table is
    # trusted so that the test does not depend on how fast this host is today
    argv = ["run", "--out", str(out), "--profiles-dir", str(profiles), "--skip-table-check",
            "--train-epochs", "1", "--train-budget", "11", "--trials", "40", "--population", "8"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [m["name"] for m in summary["models"]] == ["knee", "fastest"]
    # the search trained every arch on its front; the picks are not trained a second time
    front = json.loads((out / "search" / "front.json").read_text())
    assert front["trials"] == 11 and all(r.get("run_dir") for r in front["front"])
    assert summary["supernet"] == {"skipped": "the 'trained' estimator needs no supernet"}
    surrogate = summary["search"]["surrogate"]
    assert surrogate["trained_archs"] == 11 and -1 <= surrogate["final"]["cv_kendall_tau"] <= 1
    for model in summary["models"]:
        bundle = load_bundle(Path(model["bundle"]))
        assert "onnx" in model["formats"] and bundle["metrics"]["verification"]["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4
        assert model["measured_ms"] > 0 and model["predicted_ms"] > 0
        assert (Path(model["bundle"]) / "deploy" / "host-cpu.json").exists()
    baselines = {b["name"]: b for b in summary["baselines"]}
    assert list(baselines) == ["ResNet-20", "ResNet-56", "MobileNetV2 (in space)"]
    for record in baselines.values():
        assert record["measured_ms"] > 0 and 0.0 <= record["val_accuracy"] <= 1.0
    # ResNets are outside the cifar space, so only measurement can place them; the
    # in-space MobileNetV2 also gets the table's prediction
    assert baselines["ResNet-20"]["predicted_ms"] is None
    assert baselines["MobileNetV2 (in space)"]["predicted_ms"] > 0
    assert baselines["ResNet-56"]["macs"] > 3 * baselines["ResNet-20"]["macs"]
    assessment = json.loads((out / "standalone" / "assessment.json").read_text())
    assert assessment["recipe"]["epochs"] == 1 and len(assessment["networks"]) == 5
    trained = {r["name"]: r for r in assessment["networks"]}
    for model in summary["models"]:
        assert Path(trained[model["name"]]["run_dir"]).parent == out / "search" / "trained"
        assert model["accuracy_estimate"] == trained[model["name"]]["val_accuracy"]
    report = (out / "report.html").read_text()
    assert "Exported models" in report and "data:image/png;base64," in report
    assert "Hand-designed baselines" in report and "ResNet-56" in report
    assert "Every arch on the front was trained" in report and "Kendall tau" in report
    assert (out / "comparison.png").stat().st_size > 10_000
    assert "report:" in capsys.readouterr().out
    start = time.perf_counter()  # a re-run finds every stage done and only re-exports
    assert main(argv) == 0
    assert json.loads((out / "summary.json").read_text())["search"]["trials"] == 11
    assert time.perf_counter() - start < 120


def test_main_job_with_the_supernet_estimator(tmp_path, profiles) -> None:
    """The weight-sharing path stays available for users with a GPU."""
    out = tmp_path / "main"
    assert main(["run", "--out", str(out), "--profiles-dir", str(profiles),
                 "--skip-table-check", "--estimator", "supernet", "--supernet-epochs", "1",
                 "--train-epochs", "1", "--trials", "6", "--population", "3",
                 "--val-limit", "50"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["supernet"]["val_accuracy_largest"] is not None
    assert summary["search"]["trials"] == 6 and summary["search"]["surrogate"] is None
    assert "supernet estimate" in (out / "report.html").read_text()
