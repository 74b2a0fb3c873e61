"""benchmarks/main_job_picks: a pick's promise holds when the search's prediction is within
10 % of deploy's measurement, or within the spread of deploy's own rounds, and not otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.main_job_picks import main, pick_rows


def _model(name: str, searched: float | None, measured: float) -> dict[str, object]:
    return {"name": name, "predicted_by_search_ms": searched, "measured_ms": measured,
            "predicted_ms": measured, "formats": ["onnx", "int8"]}


def test_a_pick_holds_within_10_pct_or_within_its_own_rounds_spread() -> None:
    summary = {"models": [_model("near", 1.09, 1.0), _model("far", 1.2, 1.0),
                          _model("noisy", 1.2, 1.0), _model("unpredicted", None, 1.0)]}
    rows = {r["name"]: r for r in pick_rows(summary, {"far": [0.95, 1.0, 1.05],
                                                      "noisy": [0.8, 1.0, 1.25]})}
    assert rows["near"]["promise_held"] and rows["near"]["search_error"] == pytest.approx(0.09)
    assert not rows["far"]["promise_held"] and rows["far"]["deploy_spread"] == pytest.approx(0.1)
    assert rows["noisy"]["promise_held"] and rows["noisy"]["deploy_spread"] == pytest.approx(0.45)
    assert not rows["unpredicted"]["promise_held"]


def test_it_reads_a_run_folder_and_writes_its_record(tmp_path: Path, capsys) -> None:
    run = tmp_path / "main"
    (run / "stages").mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps(
        {"models": [_model("knee", 1.0, 1.25)], "front_size": 5}))
    (run / "stages" / "deploy.json").write_text(json.dumps(
        {"config": {}, "result": {"knee": {"rounds_ms": [1.2, 1.25, 1.3]}}}))
    assert main([str(run), "--json", str(tmp_path / "out.json")]) == 0
    assert "every pick's promise held: False" in capsys.readouterr().out
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["front_size"] == 5 and record["picks"][0]["deploy_rounds_ms"] == [1.2, 1.25, 1.3]
