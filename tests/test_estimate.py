"""Accuracy estimators, the ground-truth sample and table, and rank agreement."""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from conftest import acting_after_each_rename
from edgenas import get_space
from edgenas.cli import main
from edgenas.cost.count import count
from edgenas.estimate.estimators import EstimatorError, PredictorEstimator, make_estimator
from edgenas.estimate.groundtruth import (KIND, SCHEMA_VERSION, GroundTruth, GroundTruthError,
                                          from_dict, plan_jobs)
from edgenas.estimate.predictor import (candidates, clip, feature_matrix, fit_predictor, floors,
                                       folds)
from edgenas.estimate.rank import agreement
from edgenas.profile.ranking import kendall_tau
from edgenas.estimate.sample import stratified_sample
from edgenas.estimate.workqueue import WorkQueue
from edgenas.resources import default_groundtruth_path
from edgenas.space.presets import get_preset


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> None:
    """Zero-cost scores and decoded images go to a throw-away cache, not the user's."""
    monkeypatch.setenv("EDGENAS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# -- sample and plan -------------------------------------------------------------------------

def test_stratified_sample_covers_ops_and_macro_combinations() -> None:
    space = get_space("cifar")
    sample = stratified_sample(space, 60)
    assert len({s.arch.to_json() for s in sample}) == 60
    assert all(space.contains(s.arch) for s in sample)
    assert stratified_sample(space, 30) == sample[:30]          # a prefix: resumable, extendable
    strata = collections.Counter(s.stratum for s in sample)
    assert strata == {f"op:{op}": 10 for op in ("conv", "basic", "bottleneck", "dwsep",
                                                "mbconv")} | {"uniform": 10}
    for s in sample:
        if s.stratum.startswith("op:"):
            ops = [b.op for stage in s.arch.stages for b in stage.blocks]
            assert ops.count(s.stratum[3:]) / len(ops) >= 0.4, s.stratum
    macro = collections.Counter((s.arch.resolution, s.arch.width_mult, s.arch.depth_mult)
                                for s in sample)
    assert len(macro) == 12 and set(macro.values()) == {5}     # every combination, equally
    macs = [count(s.arch).macs for s in sample]
    assert max(macs) / min(macs) > 20                           # a real range of sizes


def test_plan_reseeds_spread_archs_and_keeps_baselines() -> None:
    jobs = plan_jobs(get_space("cifar"), 20, 5)
    ids = [job.id for job in jobs]
    assert len(ids) == len(set(ids)) == 20 + 3 + 5
    second = [job for job in jobs if job.seed == 1]
    assert [job.entry_id for job in second] == ["a000", "a004", "a008", "a012", "a016"]
    assert ids.index(second[0].id) < 10                         # interleaved, not all at the end
    assert {job.stratum for job in jobs if job.entry_id.startswith("b-")} == {"baseline"}
    with pytest.raises(GroundTruthError, match="--archs"):
        plan_jobs(get_space("cifar"), -1, 0)


# -- the folder queue ------------------------------------------------------------------------

def test_queue_claims_once_and_takes_over_dead_claims(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path)
    assert queue.claim("a") and not queue.claim("a")            # held by this live process
    queue.finish("a", {"val_accuracy": 0.5})
    assert queue.is_done("a") and not queue.claim("a")          # done jobs are never redone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / "claims" / "b").write_text(json.dumps(
        {"host": os.uname().nodename, "pid": int(dead.stdout)}))
    assert not queue.holder_alive("b") and list(queue.pending(["a", "b"])) == ["b"]
    assert queue.claim("b")                                     # a killed worker's job
    (tmp_path / "claims" / "c").write_text("{")                 # cut short while written
    assert queue.claim("c")


# -- rank agreement --------------------------------------------------------------------------

def test_agreement_and_its_interval() -> None:
    truth = list(range(30))
    same = agreement(truth, [2 * t + 1 for t in truth])
    assert same.kendall_tau == pytest.approx(1.0) and same.spearman_rho == pytest.approx(1.0)
    assert kendall_tau(truth, truth[::-1]) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    noisy = agreement(truth, np.array(truth) + rng.normal(0, 8, 30))
    low, high = noisy.kendall_ci
    assert low < noisy.kendall_tau < high and high - low > 0.1
    assert kendall_tau([1, 2, 3], [5, 5, 5], undefined=0.0) == 0.0
    with pytest.raises(ValueError, match="at least 3"):
        agreement([1, 2], [1, 2])


# -- the table -------------------------------------------------------------------------------

def _table(archs, accuracies, second=None) -> dict:
    return {"kind": KIND, "schema_version": SCHEMA_VERSION, "space": "cifar",
            "data": {"spec": "digits"}, "recipe": {"epochs": 1},
            "archs": [{"id": f"a{i}", "arch": a.to_dict(),
                       "runs": {"0": {"val_accuracy": acc},
                                **({"1": {"val_accuracy": second[i]}} if second else {})}}
                      for i, (a, acc) in enumerate(zip(archs, accuracies))]}


def test_table_validation_names_file_and_field(tmp_path: Path) -> None:
    archs = [get_space("cifar").sample(i) for i in range(4)]
    data = _table(archs, [0.1, 0.2, 0.3, 0.4], [0.15, 0.2, 0.35, 0.5])
    table = from_dict(data)
    assert table.seed_agreement().kendall_tau == pytest.approx(1.0)
    assert table.accuracies()[0] == pytest.approx(0.125)
    data["archs"][2]["runs"]["0"]["val_accuracy"] = 7
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GroundTruthError, match=r"gt.json: archs\[2\].runs.0.val_accuracy"):
        GroundTruth.load(path)
    data["archs"][1]["arch"]["stages"] = "x"
    path.write_text(json.dumps(data))
    with pytest.raises(GroundTruthError, match=r"archs\[1\]"):
        GroundTruth.load(path)
    path.write_text("{")
    with pytest.raises(GroundTruthError, match="not valid JSON"):
        GroundTruth.load(path)
    path.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(GroundTruthError, match="kind"):
        GroundTruth.load(path)


def test_committed_ground_truth_is_valid() -> None:
    table = GroundTruth.load(default_groundtruth_path())
    assert table.space == "cifar" and len(table.finished) >= 10
    assert table.data["split"]["val_size"] > 0
    space = get_space("cifar")
    assert sum(space.contains(a) for a in table.archs()) >= len(table.finished) - 3


BUILD = [sys.executable, "-m", "edgenas.cli", "groundtruth", "build", "--data", "digits",
         "--archs", "3", "--reseed", "1", "--no-baselines", "--epochs", "1", "--limit", "300",
         "--workers", "2"]


#: A guard against a hang only, never a moment the test acts at: far more than any host takes.
HANG_S = 1800

#: The groundtruth command as a script file with its CLI call under a main guard: the build
#: spawns its workers (multiprocessing's "spawn"), which run a script file again as their
#: main module, so the action after each rename is installed in the workers too.
SPAWNED_CLI = """
if __name__ == "__main__":
    from edgenas.cli import main
    sys.exit(main(sys.argv[1:]))
"""


def test_build_survives_kill_and_never_retrains_finished_work(tmp_path: Path) -> None:
    out, work = tmp_path / "gt.json", tmp_path / "work"
    args = [*BUILD, "--out", str(out), "--work", str(work)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = work / "queue" / "results"
    # the build and its workers are killed the moment a worker's first result is in place:
    # one training finished (two, if both workers finish theirs in the same instant), the
    # rest not, on any host
    killed_at_first_result = f"""
if path.parent == Path({str(results)!r}):
    os.killpg(0, signal.SIGKILL)
"""
    script = tmp_path / "build_killed_at_first_result.py"
    script.write_text(acting_after_each_rename(SPAWNED_CLI, killed_at_first_result)[-1])
    killed = subprocess.run([sys.executable, str(script), *BUILD[3:], "--out", str(out),
                             "--work", str(work)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            timeout=HANG_S)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    finished = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    assert 1 <= len(finished) <= 2                              # one per worker at most
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert rerun.returncode == 0, rerun.stderr
    assert {p.name: p.stat().st_mtime_ns for p in results.iterdir()
            if p.name in finished} == finished                  # finished work kept as it was
    table = GroundTruth.load(out)
    assert len(table.finished) == 3 and len(table.seed_pairs()[0]) == 1
    stored = json.loads(out.read_text())
    assert stored["recipe"]["split_seed"] == 0 and stored["finished_trainings"] == 4
    assert "ground truth: 4/4" in rerun.stderr                  # plain progress lines in a log
    changed = subprocess.run([*args[:-4], "--epochs", "2", "--out", str(out), "--work",
                              str(work)], capture_output=True, text=True, timeout=HANG_S)
    assert changed.returncode == 2 and "another recipe" in changed.stderr
    # a fresh clone has the committed table but not the work folder: nothing is retrained
    fresh = subprocess.run([*BUILD, "--out", str(out), "--work", str(tmp_path / "fresh")],
                           env=env, capture_output=True, text=True, timeout=HANG_S)
    assert fresh.returncode == 0 and "4 trainings taken from" in fresh.stderr
    assert not (tmp_path / "fresh" / "runs").exists()
    assert GroundTruth.load(out).accuracies() == table.accuracies()


# -- estimators ------------------------------------------------------------------------------

def test_zero_cost_proxies_are_deterministic_and_finite() -> None:
    space = get_space("cifar")
    archs = [space.sample(i) for i in range(3)]
    for name in ("naswot", "synflow"):
        first = make_estimator(name, "digits").score_many(archs)
        again = make_estimator(name, "digits").score_many(archs)
        assert first == again and all(math.isfinite(v) for v in first), name
    wide, narrow = get_preset("resnet56"), get_preset("resnet20")
    synflow = make_estimator("synflow")
    assert synflow.score(wide) > synflow.score(narrow)          # more paths, more flow


def test_counts_estimators_and_unknown_names() -> None:
    arch = get_preset("resnet20")
    assert make_estimator("params").score(arch) == count(arch).params
    assert make_estimator("macs").score(arch) == count(arch).macs
    with pytest.raises(EstimatorError, match="choose from params, macs"):
        make_estimator("flops")
    with pytest.raises(EstimatorError, match="supernet:DIR"):
        make_estimator("supernet")
    with pytest.raises(EstimatorError, match="nowhere: no such run folder"):
        make_estimator("supernet:nowhere")
    with pytest.raises(EstimatorError, match="no ground-truth table"):
        make_estimator("predictor:missing.json")


def test_predictor_selection_by_cross_validated_tau() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = x[:, 0] * 2 + 0.1 * rng.normal(size=40)
    fitted = fit_predictor(x, y, k=5)
    assert fitted.cv_tau > 0.7 and fitted.name in fitted.candidates
    assert kendall_tau(y, fitted.predict(x)) > 0.8
    with pytest.raises(ValueError, match="at least 10"):
        fit_predictor(x[:6], y[:6])


def test_predictor_estimator_ranks_held_out_archs(tmp_path: Path) -> None:
    space = get_space("cifar")
    archs = [s.arch for s in stratified_sample(space, 24, seed=3)]
    truth = [math.log(count(a).params) + 0.3 * math.log(count(a).macs) for a in archs]
    low, high = min(truth), max(truth)
    accuracies = [(t - low) / (high - low) for t in truth]
    table = tmp_path / "gt.json"
    table.write_text(json.dumps(_table(archs[:16], accuracies[:16])))
    # zero-cost scores given (they cost seconds per arch; their own test is above)
    fake = {a.to_json(): [float(i % 5), -math.inf if i == 3 else 1.0] for i, a in enumerate(archs)}
    estimator = PredictorEstimator(table, "digits", proxy_cache=dict(fake))
    info = estimator.describe()
    assert info["trained_archs"] == 16
    # the tau it reports is that of its chosen model on archs each fold left out, as
    # counted here by hand
    x = clip(feature_matrix(archs[:16], lambda a: fake[a.to_json()]),
             floors(feature_matrix(archs[:16], lambda a: fake[a.to_json()])))
    y = np.asarray(accuracies[:16])
    left_out = np.empty(16)
    for test in folds(16, 5, 0):
        train = np.setdiff1d(np.arange(16), test)
        model = candidates(0)[info["model"]]().fit(x[train], y[train])
        left_out[test] = model.predict(x[test])
    assert info["cv_kendall_tau"] == pytest.approx(scipy.stats.kendalltau(y, left_out)[0])
    assert kendall_tau(accuracies[16:], estimator.score_many(archs[16:])) > 0.4
    plain = PredictorEstimator(table, "digits", use_proxies=False)
    assert kendall_tau(accuracies[16:], plain.score_many(archs[16:])) > 0.4


def test_estimate_cli_json_and_errors(tmp_path: Path, capsys) -> None:
    arch_file = tmp_path / "a.json"
    arch_file.write_text(get_space("cifar").sample(1).to_json())
    assert main(["estimate", "resnet20", str(arch_file), "--estimator", "params",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows] == ["resnet20", str(arch_file)]
    assert rows[0]["score"] == count(get_preset("resnet20")).params
    assert main(["estimate", "resnet20", "--estimator", "bogus"]) == 2
    assert "choose from" in capsys.readouterr().err
    assert main(["estimate", "no-such-arch", "--estimator", "params"]) == 2
    assert "neither an arch preset" in capsys.readouterr().err


def test_default_estimator_uses_the_committed_table(capsys) -> None:
    assert main(["estimate", "resnet20", "resnet56", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    committed = PredictorEstimator(default_groundtruth_path())
    assert [r["score"] for r in rows] == [committed.score(get_preset(name))
                                          for name in ("resnet20", "resnet56")]


def test_search_takes_an_estimator_by_name(tmp_path: Path) -> None:
    out = tmp_path / "search"
    assert main(["search", "--objectives", "accuracy,memory", "--estimator", "macs",
                 "--trials", "6", "--population", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "front.json").read_text())
    assert summary["estimator"]["estimator"] == "macs"
    assert main(["search", "--objectives", "accuracy,memory", "--estimator", "params",
                 "--supernet", "x", "--out", str(out)]) == 2
