"""Search: variation operators, hypervolume, budgets, caching, storage, workers, results."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from conftest import wait_until
from edgenas import get_space
from edgenas.cli import main
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import load_lut
from edgenas.search.engine import SearchConfig, front, run_search
from edgenas.search.work_queue import completed
from edgenas.search.objectives import (Budgets, Evaluator, SearchError, check_budgets_reachable,
                                       smallest_achievable)
from edgenas.search.pareto import hypervolume, knee_index, non_dominated
from edgenas.search.study_store import open_storage
from edgenas.search.variation import HierarchicalVariation, gene_group

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[1]
LUT_FILE = ROOT / "profiles" / "host-cpu" / "cifar.json"
#: A search's time limit where a bug would make it wait for ever: a guard against a hang,
#: far beyond what any host takes, never what the test measures.
HANG_S = 600


def fake_accuracy(arch) -> float:
    """A deterministic stand-in for the supernet: more MACs, higher 'accuracy'.

    The search machinery under test is real; only the accuracy estimate is replaced, so
    these tests run in seconds (the supernet has its own tests).
    """
    macs = Evaluator(("macs",)).cheap_metrics(arch)["macs"]
    return float(1 - 1 / (1 + np.sqrt(macs) / 3))


@pytest.fixture(scope="module")
def latency_model() -> LatencyModel:
    return LatencyModel(load_lut(LUT_FILE))


def make_evaluator(latency_model, **budgets) -> Evaluator:
    return Evaluator(("accuracy", "latency", "memory"), Budgets(**budgets), latency_model,
                     fake_accuracy)


# -- operators -------------------------------------------------------------------------------

def _population(space, n, seed=0):
    genes = space.genes()
    distributions = {name: CategoricalDistribution(choices) for name, choices in genes.items()}
    # values on a line x + y = 1: no parent dominates another, so tournaments pick both
    trials = [create_trial(params=space.encode(space.sample(seed + i)), distributions=distributions,
                           values=[i / max(1, n - 1), 1 - i / max(1, n - 1)]) for i in range(n)]
    return distributions, trials


def test_crossover_takes_macro_and_each_stage_whole_from_one_parent() -> None:
    space = get_space("cifar")
    distributions, parents = _population(space, 2)
    study = optuna.create_study(directions=["minimize", "minimize"])
    variation = HierarchicalVariation(crossover_prob=1.0, macro_mutation_prob=0,
                                      stage_mutation_prob=0, block_mutation_prob=0, seed=1)
    groups = {gene_group(name) for name in distributions}
    mixed_children = 0
    for _ in range(20):
        child = variation(study, distributions, parents)
        sources = set()
        for group in groups:
            names = [n for n in distributions if gene_group(n) == group]
            from_first = all(child[n] == parents[0].params[n] for n in names)
            from_second = all(child[n] == parents[1].params[n] for n in names)
            assert from_first or from_second, group
            sources.add(0 if from_first else 1)
        mixed_children += len(sources) == 2
        assert space.contains(space.decode(child))  # every child is an arch of the space
    assert mixed_children > 0  # children do mix their parents


def test_mutation_moves_ordered_genes_one_step() -> None:
    space = get_space("cifar")
    distributions, parents = _population(space, 1)
    study = optuna.create_study(directions=["minimize", "minimize"])
    variation = HierarchicalVariation(crossover_prob=0, macro_mutation_prob=1.0,
                                      stage_mutation_prob=0, block_mutation_prob=0, seed=2)
    child = variation(study, distributions, parents)
    for name in ("macro.width_mult", "macro.depth_mult"):
        choices = list(distributions[name].choices)
        step = abs(choices.index(child[name]) - choices.index(parents[0].params[name]))
        assert step == 1
    assert all(child[n] == parents[0].params[n] for n in distributions if not n.startswith("macro."))


def test_hypervolume_of_known_fronts() -> None:
    assert hypervolume(np.array([[1.0, 1.0]]), [2, 2]) == pytest.approx(1.0)
    assert hypervolume(np.array([[0.0, 1.0], [1.0, 0.0]]), [2, 2]) == pytest.approx(3.0)
    cube = hypervolume(np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), [2, 2, 2])
    assert cube == pytest.approx(4 + 1)  # 2x2x1 slab plus a 1x1x1 cube
    assert hypervolume(np.array([[3.0, 3.0]]), [2, 2]) == 0.0
    mask = non_dominated(np.array([[1, 2], [2, 1], [2, 2], [1, 2]]))
    assert mask.tolist() == [True, True, False, False]
    assert knee_index(np.array([[0.0, 1.0], [0.2, 0.2], [1.0, 0.0]])) == 1


# -- evaluator ---------------------------------------------------------------------------------

def test_over_budget_archs_never_reach_the_accuracy_estimate(latency_model) -> None:
    # the budget is the median of the table's own predictions: the main job may have
    # re-measured the table on this host, so no fixed number of milliseconds is safe
    space = get_space("cifar")
    archs = [space.sample(i) for i in range(40)]
    budget = float(np.median([latency_model.predict(arch) for arch in archs]))
    calls = []
    evaluator = Evaluator(("accuracy", "latency"), Budgets(max_latency_ms=budget), latency_model,
                          lambda arch: calls.append(arch) or 0.5)
    results = [evaluator.evaluate(arch) for arch in archs]
    feasible = [r for r in results if r.feasible]
    assert 0 < len(feasible) < 40
    assert len(calls) == len(feasible) == evaluator.accuracy_calls
    assert all(r.metrics["latency"] <= budget for r in feasible)


def test_an_arch_is_evaluated_once(latency_model) -> None:
    evaluator = make_evaluator(latency_model)
    arch = get_space("cifar").sample(5)
    first = evaluator.evaluate(arch)
    assert evaluator.evaluate(get_space("cifar").sample(5)) is first
    assert evaluator.accuracy_calls == 1


def test_unreachable_budgets_are_reported_before_searching(latency_model) -> None:
    # the expectation comes from the table in use, never from how fast some host is
    fastest = smallest_achievable(get_space("cifar"), make_evaluator(latency_model))["latency"]
    tight = fastest / 10
    evaluator = make_evaluator(latency_model, max_latency_ms=tight, max_params=1000)
    expected = (rf"--max-latency-ms {re.escape(f'{tight:g}')} \(smallest in space 'cifar': "
                rf"{re.escape(f'{fastest:.4g}')}\).*--max-params 1000")
    with pytest.raises(SearchError, match=expected):
        check_budgets_reachable(get_space("cifar"), evaluator)
    smallest = smallest_achievable(get_space("cifar"), evaluator, samples=200)
    check_budgets_reachable(get_space("cifar"), make_evaluator(
        latency_model, max_latency_ms=2 * smallest["latency"]))


def test_missing_estimators_are_named() -> None:
    with pytest.raises(SearchError, match="--device"):
        Evaluator(("latency",))
    with pytest.raises(SearchError, match="--supernet"):
        Evaluator(("accuracy", "macs"))
    with pytest.raises(SearchError, match="choose distinct names"):
        Evaluator(("flops",))


# -- the search --------------------------------------------------------------------------------

def _run(tmp_path, latency_model, strategy="nsga2", trials=40, seed=0, name="s", **budgets):
    evaluator = make_evaluator(latency_model, **budgets)
    study = run_search(get_space("cifar"), evaluator,
                       SearchConfig(strategy=strategy, trials=trials, population=10, seed=seed),
                       storage=f"sqlite:///{tmp_path / (name + '.db')}", study_name=name)
    return study, evaluator


def test_search_completes_exactly_the_trials_asked_and_the_front_is_feasible(tmp_path, latency_model) -> None:
    study, evaluator = _run(tmp_path, latency_model, max_latency_ms=0.6)
    trials = completed(study)
    assert len(trials) == 40
    pareto = front(trials, evaluator.objectives)
    assert pareto and all(t.user_attrs["metrics"]["latency"] <= 0.6 for t in pareto)
    assert evaluator.accuracy_calls == len({t.user_attrs["arch"] for t in trials
                                            if t.user_attrs["feasible"]})


def test_seeded_searches_are_reproducible(tmp_path, latency_model) -> None:
    a, _ = _run(tmp_path, latency_model, name="a", seed=3, trials=25)
    b, _ = _run(tmp_path, latency_model, name="b", seed=3, trials=25)
    assert [t.user_attrs["arch"] for t in completed(a)] == [t.user_attrs["arch"] for t in completed(b)]


def test_resume_continues_a_stopped_study(tmp_path, latency_model) -> None:
    first, _ = _run(tmp_path, latency_model, name="r", trials=15)
    before = [t.user_attrs["arch"] for t in completed(first)]
    evaluator = make_evaluator(latency_model)
    study = run_search(get_space("cifar"), evaluator,
                       SearchConfig(trials=15, population=10), storage=f"sqlite:///{tmp_path / 'r.db'}",
                       study_name="r", resume=True)
    assert [t.user_attrs["arch"] for t in completed(study)] == before  # nothing left to do
    assert evaluator.accuracy_calls == 0


@pytest.mark.parametrize("kind", ["fresh", "retried"])
def test_a_trial_orphaned_before_its_first_heartbeat_does_not_hold_the_budget(
        tmp_path, latency_model, monkeypatch, kind) -> None:
    """A worker killed between taking a trial and its first heartbeat leaves it running for
    ever (Optuna fails only trials that beat once); the others must not wait for it. The
    taken trial may be a fresh one or the retry of a failed one, which carries the failed
    trial's user attributes (a four-worker PostgreSQL search hung on one in local runs)."""
    from edgenas.search import study_store

    url = f"sqlite:///{tmp_path / 'o.db'}"
    _run(tmp_path, latency_model, name="o", trials=10)
    study = optuna.load_study(study_name="o", storage=url)
    if kind == "retried":  # as Optuna's retry callback re-queues a stale trial
        failed = completed(study)[-1]
        study.add_trial(create_trial(state=TrialState.WAITING, params=failed.params,
                                     distributions=failed.distributions,
                                     user_attrs=failed.user_attrs,
                                     system_attrs={"retry_history": [failed.number]}))
    taken = study.ask()  # and its worker killed at once
    assert ("arch" in taken.user_attrs) == (kind == "retried")
    monkeypatch.setattr(study_store, "ORPHAN_S", 0.5)
    wait_until(lambda: study_store.orphaned(study.trials[taken.number], datetime.datetime.now()),
               "the taken trial to count as orphaned")
    study = run_search(get_space("cifar"), make_evaluator(latency_model),
                       SearchConfig(trials=15, population=10), storage=url, study_name="o",
                       resume=True, timeout_s=HANG_S)
    assert len(completed(study)) == 15


def test_a_trial_pruned_for_the_budget_is_finished_before_its_worker_waits(
        tmp_path, latency_model, monkeypatch) -> None:
    """A worker whose trial finds the budget taken waits before its next one. It waited
    inside the objective, its pruned trial still running, and every peer counted that trial
    as one that might complete: three workers held each other off the last trial of a
    four-worker search for minutes (211 s in CI; past 300 s in one of three local runs)."""
    from edgenas.search import engine

    url = f"sqlite:///{tmp_path / 'w.db'}"
    _run(tmp_path, latency_model, name="w", trials=10)
    study = optuna.load_study(study_name="w", storage=url)
    states_while_waiting: list[list[TrialState]] = []
    monkeypatch.setattr(engine.time, "sleep", lambda seconds: states_while_waiting.append(
        [t.state for t in study.get_trials(deepcopy=False)]))
    wait = engine.BudgetWait()
    config = SearchConfig(trials=10, population=10)
    objective = engine.make_objective(get_space("cifar"), make_evaluator(latency_model),
                                      config, wait=wait)
    study.optimize(objective, n_trials=2, callbacks=[wait])
    assert len(states_while_waiting) == 2  # one wait per pruned trial
    assert all(TrialState.RUNNING not in states for states in states_while_waiting)
    assert [t.state for t in study.get_trials()][-2:] == [TrialState.PRUNED] * 2
    assert not wait.numbers


def test_a_result_half_written_by_a_killed_worker_is_scored_again(tmp_path, latency_model) -> None:
    """A worker killed between writing an arch's metrics and its feasibility left a failed
    trial that a peer took for a finished result, and the peer crashed on the missing key
    (a four-worker PostgreSQL search, in local runs)."""
    space = get_space("cifar")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    _run(tmp_path, latency_model, name="h", trials=10)
    study = optuna.load_study(study_name="h", storage=url)
    seen = {t.user_attrs["arch"] for t in completed(study)}
    arch = next(a for a in (space.sample(900 + i) for i in range(50)) if a.to_json() not in seen)
    distributions = {name: CategoricalDistribution(choices) for name, choices in space.genes().items()}
    study.add_trial(create_trial(state=TrialState.FAIL, params=space.encode(arch),
                                 distributions=distributions,
                                 user_attrs={"arch": arch.to_json(), "metrics": {"accuracy": 0.5},
                                             "constraints": []}))
    study.enqueue_trial(space.encode(arch))
    evaluator = make_evaluator(latency_model)
    study = run_search(space, evaluator, SearchConfig(trials=11, population=10), storage=url,
                       study_name="h", resume=True, timeout_s=HANG_S)
    again = [t for t in completed(study) if t.user_attrs["arch"] == arch.to_json()]
    assert len(again) == 1 and "repeat_of" not in again[0].user_attrs
    assert evaluator.accuracy_calls == 1 and "feasible" in again[0].user_attrs


def test_a_trial_marked_alive_has_beaten_so_its_death_is_noticed(tmp_path) -> None:
    """The objective's first act beats once: Optuna's own first beat comes from a thread that
    races the objective, and a marked trial without a beat would be neither stale nor
    orphaned, ever."""
    from optuna.storages import fail_stale_trials

    from edgenas.search.study_store import ALIVE, mark_alive

    storage = open_storage(f"sqlite:///{tmp_path / 'b.db'}", heartbeat_s=1)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    mark_alive(trial)  # then the worker is killed: no heartbeat thread ever ran
    assert study.trials[0].user_attrs[ALIVE] == trial.number
    time.sleep(4.2)  # past the grace period of three heartbeats (SQLite keeps whole seconds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)
    assert study.trials[0].state == TrialState.FAIL


@pytest.mark.parametrize("strategy", ["nsga2-flat", "weighted-sum", "random"])
def test_baselines_run_on_the_same_evaluator(tmp_path, latency_model, strategy) -> None:
    study, evaluator = _run(tmp_path, latency_model, strategy=strategy, name=strategy, trials=25)
    assert len(completed(study)) == 25
    assert front(completed(study), evaluator.objectives)


def test_search_and_pareto_commands_write_and_read_a_run(tmp_path, capsys,
                                                         tables_from_another_cpu) -> None:
    out = tmp_path / "run"
    code = main(["search", "--device", "host-cpu", "--objectives", "latency,memory,macs",
                 "--trials", "24", "--population", "8", "--max-latency-ms", "0.9",
                 "--out", str(out), "--profiles-dir", str(tables_from_another_cpu),
                 "--allow-stale"])
    assert code == 0
    for name in ("front.json", "front.csv", "pareto.png", "pareto.html", "hypervolume.json", "study.db"):
        assert (out / name).exists(), name
    summary = json.loads((out / "front.json").read_text())
    assert summary["trials"] == 24 and summary["front"]
    capsys.readouterr()
    assert main(["pareto", str(out)]) == 0
    assert "Pareto-optimal archs of 24 trials" in capsys.readouterr().out
    assert main(["pareto", str(out), "--pick", "best", "--max-latency-ms", "0.0001"]) == 2
    assert "fastest takes" in capsys.readouterr().err
    assert main(["pareto", str(out), "--pick", "knee"]) == 0
    get_space("cifar").validate(__import__("edgenas").Arch.from_json(capsys.readouterr().out))


WORKER = """
import hashlib, sys, time
sys.path.insert(0, {tests!r})
import logging
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.basicConfig(level=logging.INFO, format="%(asctime)s worker " + sys.argv[1] + " %(message)s")
from test_search import make_evaluator, fake_accuracy, LUT_FILE
from edgenas import get_space
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import load_lut
from edgenas.search.engine import SearchConfig, run_search
from edgenas.search.study_store import open_storage

def logged_fake_accuracy(arch):
    time.sleep(0.15)
    value = fake_accuracy(arch)
    with open({log!r}, "a") as log:
        log.write(sys.argv[1] + " " + hashlib.sha1(arch.to_json().encode()).hexdigest() + "\\n")
    return value

evaluator = make_evaluator(LatencyModel(load_lut(LUT_FILE)))
evaluator.accuracy_fn = logged_fake_accuracy
run_search(get_space("cifar"), evaluator, SearchConfig(strategy="nsga2", trials={trials},
           population=8, seed=int(sys.argv[1])), storage=open_storage({url!r}, heartbeat_s=1),
           study_name={study!r})
"""


def test_two_workers_share_a_postgres_study_and_survive_a_kill_9(postgres, tmp_path) -> None:
    trials = 30
    log = tmp_path / "evaluations.log"
    script = WORKER.format(tests=str(Path(__file__).parent), log=str(log), trials=trials,
                           url=postgres, study="shared")
    workers = [subprocess.Popen([sys.executable, "-c", script, str(seed)]) for seed in (1, 2)]
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 3,
               "3 archs scored by the two workers")
    os.kill(workers[0].pid, signal.SIGKILL)
    assert workers[1].wait(timeout=240) == 0
    workers[0].wait()
    study = optuna.load_study(study_name="shared", storage=postgres)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == trials
    # no arch was evaluated twice, except the one the killed worker (seed 1) may have been
    # scoring at the moment of SIGKILL, before it could report it
    evaluated = [line.split() for line in log.read_text().splitlines()]
    repeats = len(evaluated) - len({arch for _, arch in evaluated})
    survivor = [arch for worker, arch in evaluated if worker == "2"]
    assert len(survivor) == len(set(survivor))
    assert repeats <= 1
    fresh = [t for t in done if "repeat_of" not in t.user_attrs]
    assert len({t.user_attrs["arch"] for t in fresh}) == len(fresh)


def trial_table(url: str, study_name: str) -> str:
    """Every trial of a study as one line each (state, attributes, heartbeat), for the
    captured output of a failed multi-worker test: a hang is a trial someone waits on."""
    import sqlalchemy

    study = optuna.load_study(study_name=study_name, storage=url)
    with sqlalchemy.create_engine(url).connect() as db:
        beats = dict(db.execute(sqlalchemy.text(
            "SELECT trial_id, heartbeat FROM trial_heartbeats")).all())
    return "\n".join(
        f"#{t.number} {t.state.name} start={t.datetime_start} "
        f"beat={beats.get(t._trial_id)} user={sorted(t.user_attrs)} "
        f"alive={t.user_attrs.get('alive')} retry={t.system_attrs.get('retry_history')}"
        for t in study.get_trials(deepcopy=False))


def test_four_workers_one_killed_and_one_restarted_finish_exactly(postgres, tmp_path) -> None:
    trials = 40
    log = tmp_path / "evaluations.log"
    script = WORKER.format(tests=str(Path(__file__).parent), log=str(log), trials=trials,
                           url=postgres, study="four")
    errors = {seed: tmp_path / f"worker{seed}.err" for seed in range(1, 6)}

    def start(seed: int) -> subprocess.Popen:
        with errors[seed].open("w") as err:
            return subprocess.Popen([sys.executable, "-c", script, str(seed)], stderr=err)

    def evaluated() -> list[list[str]]:
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    workers = {seed: start(seed) for seed in (1, 2, 3, 4)}
    wait_until(lambda: len(evaluated()) >= 8, "8 archs scored by the four workers")
    os.kill(workers[1].pid, signal.SIGKILL)          # one killed mid-search
    workers[1].wait()
    os.kill(workers[2].pid, signal.SIGTERM)          # one stopped, then started again
    workers[2].wait()
    workers[5] = start(5)
    deadline = time.time() + 300
    while time.time() < deadline and any(workers[s].poll() is None for s in (3, 4, 5)):
        time.sleep(0.5)
    codes = {seed: workers[seed].poll() for seed in (3, 4, 5)}
    if codes != {3: 0, 4: 0, 5: 0}:  # what everyone waited on, in the captured output
        print(trial_table(postgres, "four"))
        for seed, path in errors.items():
            print(f"--- worker {seed} stderr ---\n{path.read_text()}")
        for seed in (3, 4, 5):
            if workers[seed].poll() is None:
                workers[seed].kill()
    assert codes == {3: 0, 4: 0, 5: 0}, "a worker failed or hung: see the trials and stderr"
    study = optuna.load_study(study_name="four", storage=postgres)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == trials
    # a stopped worker may have been scoring one arch when it went: at most one repeat each
    records = evaluated()
    assert len(records) - len({arch for _, arch in records}) <= 2
    fresh = [t for t in done if "repeat_of" not in t.user_attrs]
    assert len({t.user_attrs["arch"] for t in fresh}) == len(fresh)


def test_postgres_restarted_mid_search_two_workers_finish_exactly(postgres_server,
                                                                   tmp_path) -> None:
    """The database restarts (every connection dropped) while two workers search: both
    reconnect and the study ends with exactly the requested trials, no arch twice."""
    trials = 30
    log = tmp_path / "evaluations.log"
    script = WORKER.format(tests=str(Path(__file__).parent), log=str(log), trials=trials,
                           url=postgres_server.url, study="restarted")
    workers = [subprocess.Popen([sys.executable, "-c", script, str(seed)],
                                stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 6,
               "6 archs scored by the two workers")
    postgres_server.restart()
    outputs = [worker.communicate(timeout=300)[1] for worker in workers]
    for seed, out in zip((1, 2), outputs):  # whole, in the captured output of a failure
        print(f"--- worker {seed} stderr ---\n{out}")
    assert [worker.returncode for worker in workers] == [0, 0], "a worker failed: see its stderr"
    assert any("lost the study storage" in out for out in outputs)  # the restart was felt
    study = optuna.load_study(study_name="restarted", storage=postgres_server.url)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == trials
    fresh = [t for t in done if "repeat_of" not in t.user_attrs]
    assert len({t.user_attrs["arch"] for t in fresh}) == len(fresh)
    # an arch being scored when the connection dropped may be scored again: one per worker
    records = [line.split() for line in log.read_text().splitlines()]
    assert len(records) - len({arch for _, arch in records}) <= 2


SEARCH_ONCE = """
import sys
sys.path.insert(0, {tests!r})
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.storages import InMemoryStorage
from test_search import make_evaluator, LUT_FILE
from edgenas import get_space
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import load_lut
from edgenas.search.engine import SearchConfig, run_search
from edgenas.search.work_queue import completed

evaluator = make_evaluator(LatencyModel(load_lut(LUT_FILE)))
study = run_search(get_space("cifar"), evaluator, SearchConfig(strategy={strategy!r}, trials=30,
                   population=6, seed=3), storage=InMemoryStorage())
print("\\n".join(t.user_attrs["arch"] for t in completed(study)))
"""


@pytest.mark.parametrize("strategy", ["nsga2", "nsga2-flat"])
def test_a_seeded_search_is_the_same_in_every_process(strategy) -> None:
    """Python hashes strings differently in each process; the hierarchical crossover once
    drew its random numbers in a set's order, so one seed searched differently in another
    process (and a resumed search proposed other archs than an uninterrupted one)."""
    script = SEARCH_ONCE.format(tests=str(Path(__file__).parent), strategy=strategy)
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": str(hash_seed)}, timeout=300)
            for hash_seed in (1, 2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout.splitlines()) == 30


def test_a_lost_connection_is_waited_out_then_reported(monkeypatch) -> None:
    """The retry both searches use (run_search, and the trained search's workers): a lost
    connection sleeps and returns, any other error is raised as it is, and a storage gone
    longer than RECONNECT_S is a SearchError saying that finished trials are stored."""
    import sqlalchemy.exc

    from edgenas.search import study_store

    monkeypatch.setattr(study_store.time, "sleep", lambda s: None)
    lost = optuna.exceptions.StorageInternalError("commit failed")
    lost.__cause__ = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed"))
    watch = study_store.Reconnect()
    watch.lost(lost)  # returns: the caller tries again
    with pytest.raises(ValueError, match="bad data"):
        watch.lost(ValueError("bad data"))
    monkeypatch.setattr(study_store, "RECONNECT_S", -1)
    with pytest.raises(SearchError, match="unreachable .*every finished trial is stored"):
        watch.lost(lost)
    watch.ok()
    monkeypatch.setattr(study_store, "RECONNECT_S", 120)
    watch.lost(lost)  # a new loss after progress waits anew
    # cut off long enough for a peer to fail our trial as stale: what Optuna then raises
    # (an assertion over "Cannot tell a FAIL trial", or a write to a finished trial) is
    # retried too, with a new trial
    taken = AssertionError("Should not reach.")
    taken.__context__ = ValueError("Cannot tell a FAIL trial.")
    watch.lost(taken)
    watch.lost(optuna.exceptions.UpdateFinishedTrialError("Trial#3 has already finished"))
    with pytest.raises(ValueError, match="Cannot tell with state"):
        watch.lost(ValueError("Cannot tell with state RUNNING."))
