"""What the user sees: the main job's closing lines, `edgenas run --help`, the study's
metric names, where a front's accuracy comes from, and one export per distinct pick."""

from __future__ import annotations

import argparse
import csv
import json
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest

from edgenas import get_space
from edgenas.cli import main
from edgenas.commands import run
from edgenas.pipeline import assess_convergence, choose_picks
from edgenas.profile.lut import load_lut
from edgenas.report import rung_words, write_report
from edgenas.search import accuracy_source
from edgenas.search.engine import SearchConfig, run_search
from edgenas.search.study_store import open_storage
from edgenas.search.objectives import Evaluator
from edgenas.search.trained_search import SurrogateConfig, open_archive, training_line
from edgenas.space.baselines import baseline_archs

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[1]


def _baseline(name: str, accuracy: float) -> dict:
    arch = baseline_archs(get_space("cifar"))[name]
    return {"name": name, "arch": arch.to_dict(), "val_accuracy": accuracy, "macs": 125e6,
            "params": 0.85e6, "memory_bytes_fp32": 3e6, "predicted_ms": None,
            "measured_ms": 4.2}


def test_run_says_a_baseline_did_not_converge_instead_of_its_accuracy() -> None:
    best = 0.905
    summary = {"models": [], "baselines": [assess_convergence(_baseline("ResNet-20", 0.86), best),
                                           assess_convergence(_baseline("ResNet-56", 0.163), best)]}
    lines = run.summary_lines(summary, "host-cpu")
    resnet20, resnet56 = (next(line for line in lines if name in line)
                          for name in ("ResNet-20", "ResNet-56"))
    assert "val. accuracy 86.0 %" in resnet20
    assert "did not converge: 16.3 % is below" in resnet56
    assert "val. accuracy" not in resnet56


def test_every_run_option_has_help() -> None:
    commands = argparse.ArgumentParser().add_subparsers()
    run.register(commands)
    parser = commands.choices["run"]
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert "--train-warmup-epochs" in {s for a in options for s in a.option_strings}
    missing = [a.option_strings[0] for a in options if not (a.help or "").strip()]
    assert not missing, f"options without help: {missing}"
    assert parser.parse_args(["--train-warmup-epochs", "0.25"]).train_warmup_epochs == 0.25


def _evaluator() -> Evaluator:
    return Evaluator(("accuracy", "macs", "memory"),
                     accuracy_fn=lambda arch: float(np.tanh(arch.resolution / 64)))


def test_studies_name_their_metrics(tmp_path: Path) -> None:
    """optuna-dashboard shows accuracy, latency and memory instead of 0, 1, 2."""
    space, evaluator = get_space("cifar"), _evaluator()
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = run_search(space, evaluator, SearchConfig("random", 2, 2), storage=storage,
                           study_name="search")
        archive = open_archive(space, evaluator, SurrogateConfig(10, 10, 1), {}, storage,
                               "trained")
        weighted = run_search(space, evaluator, SearchConfig("weighted-sum", 1, 2),
                              storage=storage, study_name="weighted")
    assert study.metric_names == ["accuracy", "macs", "memory"]
    assert archive.metric_names == ["accuracy", "macs", "memory"]
    assert weighted.metric_names == ["weighted_sum"]
    assert not [w for w in caught if "metric_names" in str(w.message)]
    # a study created before the names were recorded gets them when it is resumed
    optuna.create_study(study_name="old", directions=evaluator.directions, storage=storage)
    again = run_search(space, evaluator, SearchConfig("random", 1, 2), storage=storage,
                       study_name="old", resume=True)
    assert again.metric_names == ["accuracy", "macs", "memory"]


def test_a_training_names_its_round_and_place(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    space = get_space("cifar")
    archive = open_archive(space, _evaluator(), SurrogateConfig(14, 10, 2), {},
                           f"sqlite:///{tmp_path / 'archive.db'}", "trained")
    archs = [space.sample(i).to_json() for i in range(4)]
    archive.set_user_attr("proposal_2", {"round": 2, "surrogate": None,
                                         "archs": [{"arch": a, "predicted": 0.5} for a in archs]})
    line = training_line(archive, 12, archs[2], 2, 14)
    assert line == "round 2: training arch 3 of 4 (trial 12), 1 of 14 in all"


def test_an_estimated_front_says_what_its_accuracy_predicts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], tables_from_another_cpu: Path
        ) -> None:
    """The issue's command with the default predictor, at the smallest settings; a budget every
    arch meets, so the front is never empty whatever the two sampled archs are."""
    out = tmp_path / "run"
    assert main(["search", "--device", "host-cpu", "--max-latency-ms", "1000", "--trials", "2",
                 "--population", "2", "--out", str(out), "--profiles-dir",
                 str(tables_from_another_cpu), "--allow-stale"]) == 0
    source = json.loads((out / "front.json").read_text())["accuracy_source"]
    assert source["kind"] == "estimated" and source["estimator"].startswith("predictor")
    assert source["tau"] is not None
    assert source["predicts"]["recipe"]["epochs"] == 2
    capsys.readouterr()
    assert main(["pareto", str(out)]) == 0
    header = capsys.readouterr().out.splitlines()[1]
    assert header.startswith("accuracy: estimated by predictor")
    assert "Kendall tau" in header and "2 epochs" in header and "4,000 images" in header
    assert "not the network's accuracy" in header
    with open(out / "front.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(r["accuracy_source"].startswith("estimated by predictor (tau ")
                        and "2-epoch" in r["accuracy_source"] for r in rows)
    # the metrics' names carry no unit: the CSV's columns do, and front.json says them
    assert {"accuracy", "latency_ms", "memory_mb", "mmacs", "mparams"} <= set(rows[0])
    units = json.loads((out / "front.json").read_text())["units"]
    assert units == {"accuracy": "fraction", "latency": "ms", "memory": "MB",
                     "macs": "millions", "params": "millions"}
    front = json.loads((out / "front.json").read_text())["front"]
    assert float(rows[0]["mmacs"]) == pytest.approx(front[0]["macs"])


def test_a_front_of_mixed_fidelities_is_never_shown_as_equals() -> None:
    source = accuracy_source.trained({"epochs": 4, "batch_size": 32, "lr": 0.1}, "digits")
    same = accuracy_source.describe(source, [{"epochs": 4}, {"epochs": 4}])
    mixed = accuracy_source.describe(source, [{"epochs": 1}, {"epochs": 4}])
    assert "NOT COMPARABLE" not in same and "4 epochs" in same
    assert "NOT COMPARABLE ACROSS ROWS" in mixed and "1 or 4 epochs" in mixed
    assert accuracy_source.label(source, {"epochs": 1}) == "trained 1 epoch on digits"


def test_a_source_reads_back_from_front_json_as_it_was_and_an_unknown_one_is_not_trusted(
        ) -> None:
    """Sources are typed inside edgenas and dicts in front.json: what a search writes, a
    later `edgenas pareto` must read back to the same words; a kind it does not know (a
    newer edgenas's front) is described as not recorded, never as some other kind."""
    recipe = {"epochs": 2, "batch_size": 64, "lr": 0.05}
    predictor = accuracy_source.estimated(
        "predictor", True, 0.55, "cross-validated", accuracy_source.trained(recipe, "digits"))
    for source in (accuracy_source.trained(recipe, "cifar10:/data", {"train_size": 4000,
                                                                     "val_size": 1000}),
                   predictor, accuracy_source.estimated("params", False)):
        stored = json.loads(json.dumps(source.to_dict()))
        assert accuracy_source.from_dict(stored) == source
        records = [{"epochs": 2}]
        assert accuracy_source.describe(stored, records) == source.describe(records)
        assert accuracy_source.label(stored, records[0]) == source.label(records[0])
    assert "predicts 2-epoch training on digits" in predictor.label({})
    assert accuracy_source.describe({"kind": "distilled", "estimator": "x"}) == \
        accuracy_source.NOT_RECORDED == accuracy_source.describe(None)
    assert accuracy_source.label({"kind": "distilled"}, {}) == "not recorded"


def _front(records: list[dict]) -> dict:
    objectives = ["accuracy", "latency", "memory"]
    return {"objectives": objectives, "device": "host-cpu", "trials": len(records),
            "front": records,
            "feasible_ranges": {o: [min(r[o] for r in records), max(r[o] for r in records)]
                                for o in objectives}}


def _record(trial: int, accuracy: float, latency: float, memory: float) -> dict:
    return {"trial": trial, "accuracy": accuracy, "latency": latency, "memory": memory,
            "macs": 10 * memory, "arch": get_space("cifar").sample(trial).to_dict()}


def test_knee_and_fastest_on_one_arch_are_exported_once() -> None:
    # the fastest arch is also the most accurate; the other only needs less memory
    front = _front([_record(3, 0.90, 0.20, 0.80), _record(7, 0.80, 0.30, 0.50)])
    chosen, same = choose_picks(front)
    assert list(chosen) == ["knee"] and chosen["knee"]["trial"] == 3
    assert same == {"fastest": "knee"}


def test_distinct_picks_are_each_exported() -> None:
    # the main job's 2-point front of issue 25: knee moves to the 9-points-better arch
    front = _front([_record(10, 0.905, 0.244, 0.81), _record(13, 0.814, 0.222, 0.50)])
    chosen, same = choose_picks(front)
    assert {n: r["trial"] for n, r in chosen.items()} == {"knee": 10, "fastest": 13}
    assert same == {}


def test_the_report_says_a_pick_is_the_same_arch_and_what_the_accuracy_is(
        tmp_path: Path) -> None:
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    front = [_record(3, 0.90, 0.20, 0.80), _record(7, 0.80, 0.30, 0.50)]
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "pareto.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    recipe = {"epochs": 2, "batch_size": 32, "lr": 0.1, "warmup_epochs": 0.5,
              "val_fraction": 0.3, "seed": 0}
    model = {"name": "knee", "formats": ["onnx"], "trial": 3, "accuracy_estimate": 0.9,
             "accuracy_exported": 0.9, "macs": 2e6, "params": 0.1e6, "memory_bytes_fp32": 0.8e6,
             "predicted_ms": 0.2, "measured_ms": 0.21, "bundle": "bundles/knee",
             "rule": "knee: ..."}
    summary = {"config": {"space": "cifar", "device": "host-cpu", "data": "digits"},
               "lut_validation": None, "lut_check": None,
               "search": {"trials": 14, "hypervolume": 0.5, "surrogate": None},
               "front_size": 2, "models": [model], "same_picks": {"fastest": "knee"},
               "pick_rules": {"knee": "knee: a rule", "fastest": "fastest: a rule"},
               "accuracy_source": accuracy_source.trained(recipe, "digits").to_dict(),
               "baselines": [], "convergence_rule": "", "recipe": recipe}
    page = write_report(tmp_path, summary, lut, front).read_text()
    assert "fastest: same arch as knee" in page
    assert "The front's accuracies: trained, the validation accuracy after 2 epochs" in page


def test_a_halved_front_says_how_its_archs_were_chosen() -> None:
    rungs = {"epochs": [1, 2], "archs": [24, 12],
             "promotions": [{"from_epochs": 1, "epochs": 2, "archs": 12, "kendall_tau": 0.61}]}
    summary = {"models": [], "baselines": [], "front_size": 6,
               "search": {"surrogate": {"rungs": rungs}}}
    assert run.summary_lines(summary, "host-cpu")[0].strip() == \
        "front: 6 archs, each trained to the full 2 epochs (12 of the 24 scored after 1 went on)"
    words = rung_words(rungs)
    assert "first scored after 1 epoch (24 archs); 12 of them went on to 2 epochs" in words
    assert "Kendall tau of 0.61 (1 against 2 epochs, 12 archs)" in words
    assert "only archs trained to the full 2 epochs" in words
