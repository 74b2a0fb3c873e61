"""The front is measured on its device: `edgenas search` times every front arch, refits the
table on them, ranks on measured latency and keeps no arch whose measurement breaks the
budget; a device lost half-way keeps what it timed.

The device is scripted (`scripted_device`): the table is measured under one cost model,
then the device charges a per-call cost the table never saw, so the search's predictions
are wrong by a known amount wherever it picks, on any host at any speed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edgenas.cli import main
from edgenas.device.descriptor import get_device
from edgenas.profile.correction import MIN_FIT
from edgenas.profile.lut import FRONT, SEARCH_BIASED, load_lut, lut_path, save_lut
from edgenas.profile.profiler import (MIN_SEARCH_BIASED, profile, search_biased_archs,
                                      unfinished, validation_report)
from edgenas.profile.residual import (BANDWIDTH, PRIOR_WEIGHT, cross_validated, fit_residual,
                                      residual_factor)
from edgenas.search.measured_front import MAX_ROUND_SPREAD, ROUNDS, spread
from edgenas.space import SPACES, Arch, get_space
from scripted_device import CostModel, ScriptedDevice, scripted_device
from tiny_space import tiny_space

#: Where the table was measured: work only.
TABLE_COST = CostModel(per_call_ms=0.0)
#: The device at search time: every model pays 0.2 ms more per call (a runtime's fixed cost
#: the table lacks). The load guard's reference pays it too, so times at the table's level
#: come out scaled down: the cheap archs a search likes are predicted too fast, large ones
#: too slow, as when a device's fixed costs differ from the table's.
DEVICE_COST = CostModel(per_call_ms=0.2)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """A profiles folder with a tiny-space table measured on the scripted device."""
    profiles = tmp_path_factory.mktemp("profiles")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setitem(SPACES, "tiny", tiny_space)
        scripted_device(monkeypatch, TABLE_COST)
        lut = profile(get_device("host-cpu"), tiny_space(), calibrate=20, validate=0)
    save_lut(lut, lut_path(profiles, "host-cpu", "tiny"))
    return profiles


@pytest.fixture
def device(table, tmp_path, monkeypatch) -> tuple[ScriptedDevice, Path]:
    """The scripted device with its changed costs, and a copy of the table to search on."""
    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    profiles = tmp_path / "profiles"
    save_lut(load_lut(lut_path(table, "host-cpu", "tiny")), lut_path(profiles, "host-cpu", "tiny"))
    return scripted_device(monkeypatch, DEVICE_COST), profiles


def search(profiles: Path, out: Path, *extra: str) -> int:
    return main(["search", "--space", "tiny", "--device", "host-cpu", "--estimator", "params",
                 "--trials", "40", "--population", "10", "--profiles-dir", str(profiles),
                 "--out", str(out), *extra])


def front_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "front.json").read_text())


def test_every_front_arch_is_timed_and_its_row_says_predicted_and_measured(
        device, tmp_path) -> None:
    scripted, profiles = device
    assert search(profiles, tmp_path / "run") == 0
    summary = front_of(tmp_path / "run")
    assert summary["front_measurement"]["status"] == "measured"
    assert summary["front"]
    for row in summary["front"]:
        assert row["latency_basis"] == "measured"
        assert row["latency"] == row["measured_latency_ms"]
        assert len(row["measured_latency_rounds_ms"]) >= ROUNDS
        assert row["predicted_latency_ms"] > 0
    header = (tmp_path / "run" / "front.csv").read_text().splitlines()[0].split(",")
    assert {"predicted_latency_ms", "measured_latency_ms", "measured_latency_spread"} <= set(header)


def test_the_refitted_table_predicts_the_picks_it_mispredicted(device, tmp_path, capsys) -> None:
    scripted, profiles = device
    assert search(profiles, tmp_path / "run") == 0
    report = front_of(tmp_path / "run")["front_measurement"]["devices"]["host-cpu"]
    before, after = report["search_prediction_on_front"], report["refitted_table_on_front"]
    assert before["within_10pct"] <= 0.2 and abs(before["median_bias_pct"]) > 20
    assert after["within_10pct"] >= 0.75
    # archs timed after the refit (next to the front, never fitted on) are closer too
    held = report["refitted_table_on_held_out"]
    assert held["n"] > 0
    assert abs(held["median_bias_pct"]) < abs(report["search_prediction_on_held_out"]
                                                ["median_bias_pct"])
    # the table itself learnt them: saved with the front archs among its fitting networks
    lut = load_lut(lut_path(profiles, "host-cpu", "tiny"))
    assert len(lut.networks[FRONT]) == report["front_archs_timed"]
    assert unfinished(lut, tiny_space()) == []
    assert "front measured on host-cpu" in capsys.readouterr().out


def test_pareto_and_picks_use_the_measured_latency_and_say_so(device, tmp_path, capsys) -> None:
    scripted, profiles = device
    assert search(profiles, tmp_path / "run") == 0
    capsys.readouterr()
    assert main(["pareto", str(tmp_path / "run"), "--pick", "fastest", "--json"]) == 0
    captured = capsys.readouterr()
    fastest = json.loads(captured.out)
    rows = front_of(tmp_path / "run")["front"]
    assert fastest["latency"] == min(r["measured_latency_ms"] for r in rows)
    assert "measured on host-cpu" in captured.err
    assert main(["pareto", str(tmp_path / "run")]) == 0
    assert "measured on host-cpu" in capsys.readouterr().out


def test_an_arch_whose_measurement_breaks_the_budget_is_never_on_the_front(
        device, tmp_path) -> None:
    scripted, profiles = device
    # a budget between the prediction and the measurement of the most underpredicted arch
    assert search(profiles, tmp_path / "probe") == 0
    rows = front_of(tmp_path / "probe")["front"]
    worst = max(rows, key=lambda r: r["measured_latency_ms"] / r["predicted_latency_ms"])
    assert worst["measured_latency_ms"] > 1.2 * worst["predicted_latency_ms"]
    budget = (worst["measured_latency_ms"] + worst["predicted_latency_ms"]) / 2
    assert search(profiles, tmp_path / "run", "--max-latency-ms", f"{budget:.5f}") == 0
    summary = front_of(tmp_path / "run")
    measurement = summary["front_measurement"]
    assert measurement["status"] == "measured" and measurement["over_budget"]
    assert all(r["latency"] <= budget for r in summary["front"])


def test_an_arch_whose_rounds_stay_apart_is_reported_with_its_spread_but_not_fitted_on(
        device, tmp_path) -> None:
    """A table refitted on a timing taken through a busy spell learns that spell: an arch
    still unsteady after its extra rounds keeps its measured latency and spread on the
    front, and stays out of the table's fitting networks."""
    scripted, profiles = device
    scripted.noise = 0.08  # each timing within +-8 %: some archs' rounds disagree, some not
    assert search(profiles, tmp_path / "run") == 0
    rows = front_of(tmp_path / "run")["front"]
    assert any(r["measured_latency_spread"] > MAX_ROUND_SPREAD for r in rows), \
        "the noise must leave some front arch unsteady for this test to mean anything"
    assert all(len(r["measured_latency_rounds_ms"]) > ROUNDS for r in rows
               if r["measured_latency_spread"] > MAX_ROUND_SPREAD)  # timed again first
    fitted = load_lut(lut_path(profiles, "host-cpu", "tiny")).networks.get(FRONT) or []
    assert all(spread(item.rounds) <= MAX_ROUND_SPREAD for item in fitted)
    assert fitted, "and some steady, so that the table still learns where the search went"
    timed = json.loads((tmp_path / "run" / "front-timing" / "host-cpu.json").read_text())
    noisy = [i for i in timed["front"] if spread(i["rounds"]) > MAX_ROUND_SPREAD]
    assert noisy and not {i["arch"] for i in noisy} & {i.arch for i in fitted}


def test_a_device_lost_half_way_keeps_its_timings_and_the_rerun_times_only_the_rest(
        device, tmp_path, capsys) -> None:
    scripted, profiles = device
    out = tmp_path / "run"
    started = scripted.timed
    scripted.lost_when = lambda: scripted.timed >= started + 25  # mid-way through the rounds
    assert search(profiles, out) == 2
    assert "run the same command again" in capsys.readouterr().err
    kept = json.loads((out / "front-timing" / "host-cpu.json").read_text())
    timed_first = {item["arch"]: list(item["rounds"]) for item in kept["front"]}
    assert any(timed_first.values())  # the lost run kept what the device finished
    assert "measured_latency_ms" not in (out / "front.json").read_text()  # as searched
    scripted.lost_when = None
    scripted.kinds = []
    assert search(profiles, out) == 0
    rows = front_of(out)["front"]
    assert rows and all(r["latency_basis"] == "measured" for r in rows)
    final = json.loads((out / "front-timing" / "host-cpu.json").read_text())
    by_arch = {item["arch"]: item["rounds"] for item in final["front"]}
    for arch, rounds in timed_first.items():  # nothing finished was timed again
        assert by_arch[arch][:len(rounds)] == rounds
        assert len(by_arch[arch]) >= ROUNDS
    # the scripted device times alike each time, so equal rounds do not show a retiming:
    # the rerun timed exactly the rounds the checkpoint lacked
    rounds_in_all = sum(len(item["rounds"]) for kind in ("front", "held_out")
                        for item in final[kind])
    kept_rounds = sum(len(item["rounds"]) for kind in ("front", "held_out")
                      for item in kept.get(kind) or [])
    assert scripted.kinds.count("network") == rounds_in_all - kept_rounds


def test_an_unreachable_device_keeps_predictions_and_says_so(device, tmp_path, capsys) -> None:
    scripted, profiles = device
    scripted.lost_when = lambda: True
    assert search(profiles, tmp_path / "run") == 0
    summary = front_of(tmp_path / "run")
    assert summary["front_measurement"]["status"] == "unreachable"
    assert all("measured_latency_ms" not in r for r in summary["front"])
    assert "not measured" in capsys.readouterr().out
    # asked for explicitly, the same is an error
    assert search(profiles, tmp_path / "run2", "--measure-front") == 2


def test_no_measure_front_keeps_the_search_s_predictions(device, tmp_path) -> None:
    scripted, profiles = device
    assert search(profiles, tmp_path / "run", "--no-measure-front") == 0
    summary = front_of(tmp_path / "run")
    assert summary["front_measurement"] == {"status": "not measured",
                                            "reason": "--no-measure-front"}
    assert not [k for k in scripted.kinds if k == "network"]


def test_spread_is_the_range_of_rounds_over_their_median() -> None:
    assert spread([1.0, 1.0, 1.0]) == 0.0
    assert spread([0.9, 1.0, 1.2]) == pytest.approx(0.3)
    assert spread([1.0, 1.0 + MAX_ROUND_SPREAD / 2]) < MAX_ROUND_SPREAD


def test_validate_also_judges_the_table_where_searches_pick(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    scripted_device(monkeypatch, DEVICE_COST)
    lut = profile(get_device("host-cpu"), tiny_space(), calibrate=20, validate=10)
    biased = lut.validation["search_biased"]
    assert biased["n"] == MIN_SEARCH_BIASED and biased["noise_floor"]["n"] == MIN_SEARCH_BIASED
    timed = [item.arch for item in lut.networks[SEARCH_BIASED]]
    assert timed == [arch.to_json() for arch in search_biased_archs(tiny_space(), MIN_SEARCH_BIASED)]
    assert len(set(timed)) == MIN_SEARCH_BIASED  # the tiny space's corner repeats archs
    # the random held-out set is reported as before, beside it
    assert lut.validation["n"] == 10 and lut.networks["validation"]
    # a table judged on another search-biased set (the cheapest tenth of a random pool,
    # before 2026-12-08) is judged on this one when it is profiled again
    earlier = [replace(item, arch=arch.to_json())
               for item, arch in zip(lut.networks[SEARCH_BIASED],
                                     (tiny_space().sample(900 + i) for i in range(30)))]
    lut.networks[SEARCH_BIASED] = earlier
    lut = profile(get_device("host-cpu"), tiny_space(), lut, calibrate=20, validate=10)
    assert [item.arch for item in lut.networks[SEARCH_BIASED]] == timed
    assert lut.validation["search_biased"]["n"] == MIN_SEARCH_BIASED


def test_a_refit_without_validate_rejudges_the_stored_held_out_networks(monkeypatch) -> None:
    """A table refitted on its next profile (one measured before the cheap archs joined the
    table-fitting stream does) must not keep the report of the correction it replaced."""
    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    scripted_device(monkeypatch, DEVICE_COST)
    lut = profile(get_device("host-cpu"), tiny_space(), calibrate=20, validate=10)
    lut.validation = {**lut.validation, "within_10pct": -1.0,
                      "search_biased": {**lut.validation["search_biased"], "within_10pct": -1.0}}
    lut.correction = {**lut.correction, "networks": 0}  # fitted on other networks
    lut = profile(get_device("host-cpu"), tiny_space(), lut, calibrate=20)
    assert lut.validation["within_10pct"] == validation_report(lut, 10)["within_10pct"] >= 0
    assert lut.validation["search_biased"]["within_10pct"] >= 0


def test_a_residual_is_kept_where_it_predicts_left_out_archs_better() -> None:
    predicted = [0.10, 0.11, 0.12, 0.13, 0.14, 0.15]
    # the cheap end runs 30 % slower than the table says, and evenly so: a residual learns it
    slower = [1.3 * p for p in predicted]
    assert cross_validated(predicted, slower)["keep"] == 1.0
    model = fit_residual(predicted, slower)
    assert residual_factor(model, 0.125) == pytest.approx(1.3, rel=0.05)
    assert residual_factor(model, 5.0) == pytest.approx(1.0, abs=1e-6)  # far away: untouched
    # timing noise around a right prediction: a residual would only fit the noise
    noisy = [p * f for p, f in zip(predicted, (1.06, 0.94, 1.05, 0.95, 1.07, 0.93))]
    assert cross_validated(predicted, noisy)["keep"] == 0.0


def test_the_residual_s_cross_validation_reports_mean_log_errors_with_and_without_it() -> None:
    predicted = [0.10, 0.11, 0.12, 0.13, 0.14, 0.15]
    scores = cross_validated(predicted, [1.3 * p for p in predicted])
    # every arch is off by the same 30 %: that is the mean |log error| without a residual
    assert scores["without"] == pytest.approx(math.log(1.3))
    assert 0 < scores["with"] < scores["without"] / 5
    # two archs are enough to leave one out
    two = cross_validated([0.10, 0.11], [0.13, 0.143])
    assert two["keep"] == 1.0 and two["without"] == pytest.approx(math.log(1.3))
    # a residual that predicts no better than none (here: both exact) is not kept
    assert cross_validated(predicted, predicted) == {"with": 0.0, "without": 0.0, "keep": 0.0}


def test_a_measured_arch_weighs_on_a_prediction_by_a_gaussian_of_their_log_distance() -> None:
    model = fit_residual([0.1], [0.13])  # one arch, 30 % slower than predicted
    for bandwidths in (0.0, 2.0, -1.0):
        weight = math.exp(-0.5 * bandwidths ** 2)  # against PRIOR_WEIGHT's "no change"
        expected = math.exp(weight * math.log(1.3) / (PRIOR_WEIGHT + weight))
        at = 0.1 * math.exp(bandwidths * BANDWIDTH)
        assert residual_factor(model, at) == pytest.approx(expected, rel=1e-12)
    # a prediction of no time (a network without units) stays as it is
    assert residual_factor(model, 0.0) == 1.0


def test_a_residual_leaves_out_archs_without_a_positive_prediction_and_time() -> None:
    assert len(fit_residual([0.1, 0.0, 0.2], [0.12, 0.1, 0.0])["points"]) == 1
    # one usable arch cannot be left out: no residual, and no error to report
    scores = cross_validated([0.1, 0.1, 0.0], [0.13, 0.0, 0.1])
    assert math.isnan(scores["with"]) and math.isnan(scores["without"])
    assert scores["keep"] == 0.0 and set(scores) == {"with", "without", "keep"}


# -- the front's rules on trials written down (no search, no device: milliseconds) -------------

class _Table:
    """A latency model that predicts ``ms`` for every arch, at ``anchor`` times the table's
    yardstick level (what `LatencyModel.anchor` is)."""

    def __init__(self, ms: float, anchor: float = 1.0) -> None:
        self.ms, self.anchor = ms, anchor

    def predict(self, arch: Arch) -> float:
        return self.ms


def _trial(number: int, arch: Arch, accuracy: float, latency: float) -> Any:
    return _trial_of(arch, {"accuracy": accuracy, "latency": latency})


def _trial_of(arch: Arch, metrics: dict[str, float]) -> Any:
    """A finished, feasible trial of ``arch`` with ``metrics`` as its values."""
    import optuna
    from optuna.distributions import FloatDistribution

    return optuna.trial.create_trial(
        params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
        values=list(metrics.values()),
        user_attrs={"arch": arch.to_json(), "feasible": True, "metrics": metrics})


def _ranked_by(models: dict[str, Any], timed: list[Any], refitted: bool,
               budget: float | None, trials: list[Any]) -> list[Any]:
    from edgenas.search.measured_front import Target, Timings, _ranked

    target = Target("latency", get_device("host-cpu"), None)  # type: ignore[arg-type]
    timings = {"latency": Timings(Path("unused.json"), "host-cpu", front=timed)}
    return _ranked(trials, [target], timings, models, {"latency": refitted}, budget)


def test_a_measured_arch_ranks_on_the_median_of_its_rounds_and_others_on_the_refitted_table(
        ) -> None:
    """The rows a front is ranked on: a timed arch's latency is the median of its rounds
    (at the search's anchor), with the search's prediction, the rounds and their spread
    beside it; an arch not timed is predicted by the refitted table, or keeps the search's
    prediction when the table was not refitted; the trials themselves are left as they were."""
    from edgenas.profile.records import TimedNetwork
    from edgenas.search.measured_front import MEASURED, PREDICTED, REFITTED

    space = tiny_space()
    timed_arch, other = space.sample(1), space.sample(2)
    trials = [_trial(0, timed_arch, 0.9, 1.0), _trial(1, other, 0.8, 2.0)]
    timed = [TimedNetwork(timed_arch.to_json(), 1.5, None, (1.2, 1.5, 1.6))]
    ranked = _ranked_by({"latency": _Table(3.0, anchor=2.0)}, timed, True, None, trials)
    first, second = (t.user_attrs for t in ranked)
    assert first["metrics"]["latency"] == pytest.approx(3.0)  # 2 x the median 1.5
    assert first["measured_latency_rounds_ms"] == pytest.approx([2.4, 3.0, 3.2])
    assert first["measured_latency_ms"] == pytest.approx(3.0)
    assert first["measured_latency_spread"] == pytest.approx(0.8 / 3.0)
    assert (first["predicted_latency_ms"], first["latency_basis"]) == (1.0, MEASURED)
    assert (second["metrics"]["latency"], second["latency_basis"]) == (3.0, REFITTED)
    assert second["predicted_latency_ms"] == 2.0
    assert trials[0].user_attrs["metrics"]["latency"] == 1.0  # the search's record unchanged
    unrefitted = _ranked_by({"latency": _Table(3.0)}, timed, False, None, trials)[1].user_attrs
    assert (unrefitted["metrics"]["latency"], unrefitted["latency_basis"]) == (2.0, PREDICTED)


def test_an_arch_over_the_budget_is_infeasible_and_only_a_measured_one_is_reported_over_it(
        ) -> None:
    """Over the latency budget, measured or predicted by the refitted table, an arch leaves
    the front (infeasible); only a measurement marks it over budget as measured. At the
    budget exactly it stays."""
    from edgenas.profile.records import TimedNetwork

    space = tiny_space()
    a, b, c = space.sample(1), space.sample(2), space.sample(3)
    trials = [_trial(0, a, 0.9, 1.0), _trial(1, b, 0.8, 1.0), _trial(2, c, 0.7, 1.0)]
    timed = [TimedNetwork(a.to_json(), 2.0, None, (2.0, 2.0, 2.0)),
             TimedNetwork(c.to_json(), 1.5, None, (1.5, 1.5, 1.5))]
    ranked = [t.user_attrs for t in _ranked_by({"latency": _Table(1.6)}, timed, True, 1.5,
                                               trials)]
    assert (ranked[0]["feasible"], ranked[0].get("over_budget_measured")) == (False, True)
    assert (ranked[1]["feasible"], ranked[1].get("over_budget_measured")) == (False, None)
    assert (ranked[2]["feasible"], ranked[2].get("over_budget_measured")) == (True, None)
    within = _ranked_by({"latency": _Table(1.4)}, timed[1:], True, 1.5, trials)
    assert [t.user_attrs["feasible"] for t in within] == [True, True, True]
    at_the_edge = _ranked_by({"latency": _Table(1.5)}, timed[1:], True, 1.5, trials)
    assert [t.user_attrs["feasible"] for t in at_the_edge] == [True, True, True]


def test_the_held_out_archs_are_the_next_layers_nearest_the_front_first() -> None:
    """After the last refit, archs next to the (timed) front are timed and kept out of the
    table: the next Pareto layer first, then the one after, never an infeasible or already
    timed arch, at most HELD_OUT of them."""
    from edgenas.search.measured_front import HELD_OUT, _second_layer

    space = get_space("cifar")  # 30 distinct archs (the tiny space has fewer)
    archs = [space.sample(i) for i in range(30)]
    # layer k holds the archs with accuracy 1 - k/10 at latency 1 + k (points on a line of
    # slope -1 within a layer: none dominates another)
    trials = []
    for i, arch in enumerate(archs[:24]):
        layer, place = divmod(i, 4)
        trials.append(_trial(i, arch, 0.9 - 0.1 * layer - 0.01 * place,
                             1.0 + layer - 0.01 * place))
    trials[5].user_attrs["feasible"] = False  # a second-layer arch over a budget
    # the front was timed (it joined the table), and one arch of the second layer too
    timed = {archs[i].to_json() for i in (0, 1, 2, 3, 6)}
    chosen = _second_layer(trials, ("accuracy", "latency"), timed)
    second = {archs[i].to_json() for i in (4, 7)}
    third = {archs[i].to_json() for i in range(8, 12)}
    assert len(chosen) == 2 + 4 + (HELD_OUT - 6)
    assert set(chosen[:2]) == second and set(chosen[2:6]) == third
    assert archs[0].to_json() not in chosen  # the front itself


def test_a_refit_keeps_earlier_front_archs_and_fits_on_rounds_that_agree_within_10_pct(
        table, caplog) -> None:
    """The front archs join the table's fitting networks, those an earlier search measured
    stay, and the correction is refitted on all of them; an arch whose rounds spread exactly
    10 % still agrees (10, 10, 11 ms: a spread of 0.1 exactly), one spread wider is left out
    and the log says so; the table keeps no checkpoint-only keys of a timed network."""
    from edgenas.profile.records import TimedNetwork
    from edgenas.search.measured_front import Target, Timings, _refit

    lut = load_lut(lut_path(table, "host-cpu", "tiny"))
    space = tiny_space()
    earlier, steady, unsteady = (space.sample(i).to_json() for i in (101, 102, 103))
    assert len({earlier, steady, unsteady}) == 3
    lut.networks[FRONT] = [TimedNetwork(earlier, 5.0, None, (5.0, 5.0, 5.0))]
    timings = Timings(Path("unused.json"), "host-cpu", front=[
        TimedNetwork(steady, 10.0, None, (10.0, 10.0, 11.0), extra={"note": "checkpoint"}),
        TimedNetwork(unsteady, 10.0, None, (10.0, 10.0, 11.5))])
    assert spread((10.0, 10.0, 11.0)) == MAX_ROUND_SPREAD
    fitting = len(lut.networks["fitting"])
    with pytest.MonkeyPatch.context() as monkeypatch, caplog.at_level("INFO"):
        monkeypatch.setitem(SPACES, "tiny", tiny_space)
        _refit(Target("latency", get_device("host-cpu"), lut), timings)
        assert {item.arch for item in lut.networks[FRONT]} == {earlier, steady}
        assert all(item.extra == {} for item in lut.networks[FRONT])
        assert lut.correction["networks"] == fitting + 2
        assert ("host-cpu: 1 front arch(s) whose rounds disagree by more than 10 % are not "
                "fitted on") in caplog.text
        caplog.clear()
        _refit(Target("latency", get_device("host-cpu"), lut), Timings(
            Path("unused.json"), "host-cpu", front=timings.front[:1]))
        assert "are not fitted on" not in caplog.text


def test_a_refit_that_cannot_refit_the_correction_says_why(table, caplog) -> None:
    """A transferred table keeps its correction (it maps another device's units), but not
    the residual an earlier refit left, and says so; a table without table-fitting networks
    cannot refit one and warns with the reason. Neither fails the search."""
    from edgenas.profile.records import TimedNetwork
    from edgenas.search.measured_front import Target, Timings, _refit

    front = [TimedNetwork(tiny_space().sample(101).to_json(), 10.0, None, (10.0, 10.0, 10.0))]
    transferred = load_lut(lut_path(table, "host-cpu", "tiny"))
    transferred.transfer = {"source": "another-device"}
    kept = dict(transferred.correction)
    # the residual an earlier refit left is never carried into the next one
    transferred.correction = {**kept, "residual": {"stale": True}}
    unfitted = load_lut(lut_path(table, "host-cpu", "tiny"))
    unfitted.networks["fitting"] = []
    with pytest.MonkeyPatch.context() as monkeypatch, caplog.at_level("INFO"):
        monkeypatch.setitem(SPACES, "tiny", tiny_space)
        _refit(Target("latency", get_device("host-cpu"), transferred),
               Timings(Path("unused.json"), "host-cpu", front=front))
        assert {k: v for k, v in transferred.correction.items() if k != "residual"} == kept
        assert "stale" not in (transferred.correction.get("residual") or {})
        assert ("host-cpu: a transferred table; its correction is kept, the front's "
                "residual fitted on top of it") in caplog.text
        _refit(Target("latency", get_device("host-cpu"), unfitted),
               Timings(Path("unused.json"), "host-cpu", front=front))
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == ["host-cpu: the correction is not refitted (need at least "
                       f"{MIN_FIT} timed networks to fit the correction, got 1)"]


def test_a_front_checkpoint_that_is_not_one_is_refused_naming_the_file_and_the_field(
        tmp_path) -> None:
    """A hand-edited or foreign checkpoint in front-timing/ is one error that names the
    file, the field and the fix, never a half-read resume."""
    from edgenas.errors import EdgenasError, ProfileError
    from edgenas.search.measured_front import SCHEMA_VERSION, Timings

    path = tmp_path / "host-cpu.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "device": "host-cpu",
                                "front": "x"}))
    with pytest.raises(EdgenasError) as err:
        Timings.load(path, "host-cpu")
    assert str(err.value) == (f"{path}: front: expected a list of timed networks; delete it "
                              "to time the front again")
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "device": "host-cpu",
                                "front": [], "held_out": [{"measured_ms": 1.0}]}))
    with pytest.raises(ProfileError, match=rf"^{path}: held_out\[0\]: needs the network's arch"):
        Timings.load(path, "host-cpu")
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "device": "host-cpu",
                                "held_out_chosen": [1]}))
    with pytest.raises(EdgenasError) as err:
        Timings.load(path, "host-cpu")
    assert str(err.value) == (f"{path}: held_out_chosen: expected a list of arch JSON strings; "
                              "delete it to time the front again")


def test_the_front_report_recounts_each_prediction_against_the_measured_rounds() -> None:
    """What `front_measurement` says per device, recounted by hand on three archs: the
    search's prediction and the refitted table's, on the front archs and on the held-out
    ones, and the predictions noted for archs timed after a refit (never seen by a fit),
    all against the measured times at the search's anchor; an arch of an older checkpoint
    with no noted prediction counts as timed before a refit."""
    from edgenas.profile.records import TimedNetwork
    from edgenas.search.measured_front import Target, Timings, _report

    space = get_space("cifar")
    a, b, c = (space.sample(i) for i in (1, 2, 3))
    trials = [_trial(0, a, 0.9, 1.0), _trial(1, b, 0.8, 2.0), _trial(2, c, 0.7, 4.0)]
    refined = _Table(1.5, anchor=2.0)
    refined.correction = {"form": "linear", "networks": 23, "other": 1}  # type: ignore[attr-defined]
    state = Timings(Path("unused.json"), "host-cpu",
                    front=[TimedNetwork(a.to_json(), 1.0, None, (1.0, 1.0, 1.0)),
                           TimedNetwork(b.to_json(), 2.0, None, (1.8, 2.0, 2.3))],
                    held_out=[TimedNetwork(c.to_json(), 1.0, None, (1.0, 1.0, 1.0))],
                    predicted_when_timed={b.to_json(): [0.5, 1.0], c.to_json(): [1.25, 1.0],
                                          a.to_json(): [9.0, 0.0]})
    report = _report(trials, Target("latency", get_device("host-cpu"), None),  # type: ignore[arg-type]
                     state, refined)  # type: ignore[arg-type]

    def errors(pairs: list[tuple[float, float]]) -> list[float]:
        return [pytest.approx(100 * (p - m) / m) for p, m in pairs]

    # measured at the anchor: a 2.0, b 4.0, c 2.0
    assert (report["front_archs_timed"], report["held_out_archs_timed"]) == (2, 1)
    assert report["search_prediction_on_front"]["errors_pct"] == errors([(1.0, 2.0), (2.0, 4.0)])
    assert report["refitted_table_on_front"]["errors_pct"] == errors([(1.5, 2.0), (1.5, 4.0)])
    assert report["timed_after_a_refit"]["errors_pct"] == errors([(1.0, 4.0), (2.5, 2.0)])
    assert report["search_prediction_on_held_out"]["errors_pct"] == errors([(4.0, 2.0)])
    assert report["refitted_table_on_held_out"]["errors_pct"] == errors([(1.5, 2.0)])
    assert report["timed_after_a_refit"]["n"] == 2
    assert report["correction"] == {"form": "linear", "networks": 23}
    assert report["unsteady_archs"] == 1  # b: (2.3 - 1.8) / 2.0 = 25 %
    exactly = Timings(Path("unused.json"), "host-cpu",
                      front=[TimedNetwork(a.to_json(), 10.0, None, (10.0, 10.0, 11.0))])
    assert _report(trials, Target("latency", get_device("host-cpu"), None),  # type: ignore[arg-type]
                   exactly, refined)["unsteady_archs"] == 0  # type: ignore[arg-type]
    state.predicted_when_timed.pop(b.to_json())  # an older checkpoint: nothing noted
    after = _report(trials, Target("latency", get_device("host-cpu"), None),  # type: ignore[arg-type]
                    state, refined)["timed_after_a_refit"]  # type: ignore[arg-type]
    assert after["errors_pct"] == errors([(2.5, 2.0)])


def test_a_front_checkpoint_reads_back_what_it_saved_and_says_when(tmp_path, monkeypatch) -> None:
    """A resumed run must see what the lost one timed, and what the table predicted for each
    arch when its timing began (else the report would count an arch timed before the refit
    as timed after it); the file says when it was last written. A missing one is empty; one
    of another device is refused."""
    from edgenas.errors import EdgenasError
    from edgenas.profile.records import TimedNetwork
    from edgenas.search import measured_front
    from edgenas.search.measured_front import SCHEMA_VERSION, Timings

    monkeypatch.setattr(measured_front, "now", lambda: "2026-12-07T12:00:00+00:00")
    space = tiny_space()
    a, b = space.sample(1).to_json(), space.sample(2).to_json()
    path = tmp_path / "front-timing" / "host-cpu.json"
    assert Timings.load(path, "host-cpu") == Timings(path, "host-cpu")
    state = Timings(path, "host-cpu", front=[TimedNetwork(a, 1.0, 0.02, (1.0, 1.1, 0.9))],
                    held_out=[TimedNetwork(b, 2.0, None, (2.0, 2.0, 2.0))],
                    predicted_when_timed={a: [0.8, 0.0], b: [2.2, 1.0]}, held_out_chosen=[b])
    state.save()
    data = json.loads(path.read_text())
    assert (data["schema_version"], data["device"]) == (SCHEMA_VERSION, "host-cpu")
    assert data["updated"] == "2026-12-07T12:00:00+00:00"
    assert data["predicted_when_timed"] == {a: [0.8, 0.0], b: [2.2, 1.0]}
    assert data["held_out_chosen"] == [b]
    assert Timings.load(path, "host-cpu") == state
    with pytest.raises(EdgenasError, match=r"not this device's front timings \(device "
                                           r"'host-cpu'\); delete it"):
        Timings.load(path, "jetson")
    folder = tmp_path / "not-a-file.json"
    folder.mkdir()
    with pytest.raises(EdgenasError) as err:
        Timings.load(folder, "host-cpu")
    assert str(err.value) == (f"{folder}: cannot read (Is a directory); delete it to time the "
                              "front again")


def _fake_timing(monkeypatch, rounds_of) -> list[tuple[list[str], int, str]]:
    """`time_in_rounds` replaced by ``rounds_of(arch_json, n)`` -> the n rounds (of which
    an arch timed before keeps those it has); returns the calls."""
    from edgenas.profile.records import TimedNetwork
    from edgenas.search import measured_front

    calls: list[tuple[list[str], int, str]] = []

    def time_in_rounds(device, lut, archs, rounds, timed, checkpoint, label):
        calls.append(([a.to_json() for a in archs], rounds, label))
        before = {item.arch: item.rounds for item in timed}
        done = []
        for arch in archs:  # as the protocol does: only the rounds a checkpoint lacks
            have = list(before.get(arch.to_json(), ()))
            times = have + list(rounds_of(arch.to_json(), rounds))[len(have):]
            done.append(TimedNetwork(arch.to_json(), float(sorted(times)[len(times) // 2]),
                                     None, tuple(times)))
        checkpoint(done)
        return done

    monkeypatch.setattr(measured_front, "time_in_rounds", time_in_rounds)
    return calls


def test_archs_whose_rounds_disagree_are_timed_again_with_more_rounds_and_checkpointed(
        tmp_path, monkeypatch, caplog) -> None:
    """Only the archs whose rounds spread over 10 % are timed again, with 2 more rounds,
    and the log says how many; every timing reaches the checkpoint, replacing the arch's
    earlier one."""
    from edgenas.search.measured_front import EXTRA_ROUNDS, Target, Timings, _time

    space = tiny_space()
    steady, unsteady, edge = space.sample(1), space.sample(2), space.sample(4)
    assert len({steady.to_json(), unsteady.to_json(), edge.to_json()}) == 3
    rounds = {steady.to_json(): [1.0, 1.0, 1.05, 1.0, 1.0],
              unsteady.to_json(): [1.0, 1.3, 1.0, 1.0, 1.0],
              edge.to_json(): [10.0, 10.0, 11.0, 10.0, 10.0]}  # a spread of 10 % exactly
    calls = _fake_timing(monkeypatch, lambda arch, n: rounds[arch][:n])
    path = tmp_path / "host-cpu.json"
    state = Timings(path, "host-cpu")
    target = Target("latency", get_device("host-cpu"), None)  # type: ignore[arg-type]
    with caplog.at_level("INFO"):
        _time(target, [steady, unsteady, edge], state, "held_out")
    assert calls == [([steady.to_json(), unsteady.to_json(), edge.to_json()], ROUNDS,
                      "held_out"),
                     ([unsteady.to_json()], ROUNDS + EXTRA_ROUNDS, "held_out")]
    assert ("host-cpu: 1 arch(s) whose 3 rounds disagree by more than 10 %: 2 more rounds "
            "each") in caplog.text
    assert [(i.arch, len(i.rounds)) for i in state.held_out] == [
        (steady.to_json(), ROUNDS), (edge.to_json(), ROUNDS),
        (unsteady.to_json(), ROUNDS + EXTRA_ROUNDS)]
    assert Timings.load(path, "host-cpu").held_out == state.held_out and not state.front
    caplog.clear()
    calls.clear()
    _time(target, [steady], state, "front")
    assert calls == [([steady.to_json()], ROUNDS, "front")] and "more rounds" not in caplog.text


def test_the_spread_of_rounds_that_took_no_time_is_zero() -> None:
    assert spread([0.0, 0.0, 0.0]) == 0.0


def test_a_refit_fits_its_residual_at_the_table_s_yardstick_and_stamps_the_table(
        table, caplog, monkeypatch) -> None:
    """Timed front archs are at the table's yardstick, so the residual compares them with
    the table's own (unanchored) predictions: on a table re-anchored to twice its
    yardstick, archs measured where the table predicts them (within timing noise) need no
    residual, the log says why none was kept, and the refined model still predicts them at
    the anchor. Archs measured 30 % slower get a residual that records its
    cross-validation. Either way the table says when it was refitted."""
    from edgenas.profile.latency import LatencyModel
    from edgenas.profile.records import TimedNetwork
    from edgenas.search import measured_front
    from edgenas.search.measured_front import Target, Timings, _refit

    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    monkeypatch.setattr(measured_front, "now", lambda: "2026-12-07T12:00:00+00:00")
    space = tiny_space()
    archs = list({a.to_json(): a for a in (space.sample(200 + i) for i in range(12))}.values())[:6]
    assert len(archs) == 6

    def refit(factors: list[float]) -> tuple[Any, Any, list[float]]:
        lut = load_lut(lut_path(table, "host-cpu", "tiny"))
        lut.timing["anchor"] = {"ratio": 2.0}
        plain = LatencyModel(lut, anchored=False)
        measured = [f * plain.predict(a) for f, a in zip(factors, archs)]
        timings = Timings(Path("unused.json"), "host-cpu", front=[
            TimedNetwork(a.to_json(), m, None, (m, m, m)) for a, m in zip(archs, measured)])
        return lut, _refit(Target("latency", get_device("host-cpu"), lut), timings), measured

    with caplog.at_level("INFO"):
        lut, refined, measured = refit([1.06, 0.94, 1.05, 0.95, 1.07, 0.93])
    assert "residual" not in lut.correction
    assert refined.anchor == 2.0
    for arch, ms in zip(archs, measured):
        assert refined.predict(arch) == pytest.approx(2.0 * ms, rel=0.12)
    assert re.search(r"host-cpu: no residual near the front: it predicts the measured archs "
                     r"no better left out \(mean \|log error\| \d\.\d{3} with, \d\.\d{3} "
                     r"without\)", caplog.text)
    assert lut.updated == "2026-12-07T12:00:00+00:00"
    lut, refined, measured = refit([1.3] * 6)
    cv = lut.correction["residual"]["cv"]
    assert cv["keep"] == 1.0 and cv["with"] < cv["without"]
    for arch, ms in zip(archs, measured):
        assert refined.predict(arch) == pytest.approx(2.0 * ms, rel=0.12)


def _searched(lut: Any, n: int) -> tuple[list[Arch], list[Any]]:
    """``n`` distinct tiny-space archs as a search left them: accuracy seeded at random,
    latency as the table predicts it."""
    from edgenas.profile.latency import LatencyModel

    import numpy as np

    space, model = tiny_space(), LatencyModel(lut)
    archs = list({a.to_json(): a for a in (space.sample(300 + i) for i in range(3 * n))}.values())[:n]
    accuracy = np.random.default_rng(0).uniform(0.5, 0.9, size=n)
    return archs, [_trial(i, a, float(accuracy[i]), model.predict(a)) for i, a in enumerate(archs)]


def test_the_front_is_timed_refitted_on_and_its_neighbours_timed_out_of_the_table(
        table, tmp_path, monkeypatch, caplog) -> None:
    """The whole measurement on trials written down, the device replaced by one 1.5 x as
    slow as the table with a fixed cost per call: every arch of the final front is measured,
    ranked on its rounds and among the table's front networks; the archs next to it are
    timed after the refit and kept out of the table; each timing notes the prediction it
    is judged against. The same call again, on its checkpoint, times nothing."""
    from edgenas.profile.latency import LatencyModel
    from edgenas.search.engine import front
    from edgenas.search.measured_front import (HELD_OUT, MEASURED, REFITTED, Target, Timings,
                                               measure_front)

    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    lut = load_lut(lut_path(table, "host-cpu", "tiny"))
    plain = LatencyModel(lut, anchored=False)
    archs, trials = _searched(lut, 24)
    cost = {a.to_json(): 1.5 * plain.predict(a) + 0.05 for a in archs}
    calls = _fake_timing(monkeypatch, lambda arch, n: [cost[arch]] * n)
    target = Target("latency", get_device("host-cpu"), lut)
    objectives = ("accuracy", "latency")
    with caplog.at_level("INFO"):
        ranked, report = measure_front(tmp_path, trials, objectives, [target])
    assert (f"host-cpu: timing {len(calls[0][0])} front arch(s) as whole networks "
            f"({ROUNDS} rounds)") in [r.getMessage() for r in caplog.records]
    assert report["status"] == "measured" and report["rounds"] == ROUNDS
    assert report["max_latency_ms"] is None and report["over_budget"] == []
    assert report["protocol"] == ("whole networks in interleaved rounds with the table's load "
                                  "guard and level, median of rounds")
    on_front = front(ranked, objectives)
    assert on_front and all(t.user_attrs["latency_basis"] == MEASURED for t in on_front)
    for t in on_front:
        assert t.user_attrs["metrics"]["latency"] == pytest.approx(cost[t.user_attrs["arch"]])
    state = Timings.load(tmp_path / "front-timing" / "host-cpu.json", "host-cpu")
    timed_front = {item.arch for item in state.front}
    assert {t.user_attrs["arch"] for t in on_front} <= timed_front
    assert {item.arch for item in lut.networks[FRONT]} == timed_front
    assert [label for _, _, label in calls][-1] == "held_out"
    held = {item.arch for item in state.held_out}
    assert set(state.held_out_chosen) == held
    assert 0 < len(held) <= HELD_OUT and not held & timed_front
    assert all(state.predicted_when_timed[a][1] == 1.0 for a in held)
    first = set(calls[0][0])
    assert all(state.predicted_when_timed[a][1] == 0.0 for a in first)
    # the search's predictions are at the table's level; they were noted before the refit
    for a in first:
        assert state.predicted_when_timed[a][0] == pytest.approx(
            plain.predict(Arch.from_json(a)))
    device_report = report["devices"]["host-cpu"]
    assert device_report["front_archs_timed"] == len(timed_front)
    assert device_report["held_out_archs_timed"] == len(held)
    # again, on the same checkpoint: nothing is timed twice, the table is refitted once more
    calls.clear()
    again = load_lut(lut_path(table, "host-cpu", "tiny"))
    ranked_again, report_again = measure_front(
        tmp_path, trials, objectives, [Target("latency", get_device("host-cpu"), again)])
    assert calls == [] and report_again["status"] == "measured"
    assert {item.arch for item in again.networks[FRONT]} == timed_front
    assert ([t.user_attrs["arch"] for t in front(ranked_again, objectives)]
            == [t.user_attrs["arch"] for t in on_front])
    # every row as the first run left it: the untimed ones predicted by the refitted table
    assert any(t.user_attrs["latency_basis"] == REFITTED for t in ranked_again)
    assert [t.user_attrs for t in ranked_again] == [t.user_attrs for t in ranked]


def test_a_measured_front_over_the_budget_is_reported_and_a_part_timed_arch_timed_again(
        table, tmp_path, monkeypatch) -> None:
    """Under a latency budget the search's predictions meet but the device does not, the
    archs measured over it leave the front and are listed once each, with their
    measurement; an arch a lost run left with fewer rounds than the protocol's is timed to
    the full count, keeping the rounds it has."""
    from edgenas.profile.latency import LatencyModel
    from edgenas.profile.records import TimedNetwork
    from edgenas.search.engine import front
    from edgenas.search.measured_front import MEASURED, Timings, Target, measure_front

    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    lut = load_lut(lut_path(table, "host-cpu", "tiny"))
    plain = LatencyModel(lut, anchored=False)
    archs, trials = _searched(lut, 24)
    search_front = sorted(front(trials, ("accuracy", "latency")),
                          key=lambda t: t.user_attrs["metrics"]["latency"])
    # every arch of the search's front is predicted within the budget; the device runs
    # them as the table says, but one in the middle three times as slow: it breaks the budget
    budget = 1.01 * search_front[-1].user_attrs["metrics"]["latency"]
    slow = search_front[len(search_front) // 2].user_attrs["arch"]
    cost = {a.to_json(): (3.0 if a.to_json() == slow else 1.0) * plain.predict(a) for a in archs}
    calls = _fake_timing(monkeypatch, lambda arch, n: [cost[arch]] * n)
    ranked, report = measure_front(tmp_path / "budget", trials, ("accuracy", "latency"),
                                   [Target("latency", get_device("host-cpu"), lut)], budget)
    over = report["over_budget"]
    assert over and report["max_latency_ms"] == budget
    assert len({r["arch"] for r in over}) == len(over)
    for row in over:
        assert row["measured_latency_ms"] > budget
        assert row["trial"] == next(t.number for t in trials if t.user_attrs["arch"] == row["arch"])
    assert [r["arch"] for r in over] == [slow]
    # the budget ranks every pass: archs that replace one measured over it are timed too
    entrants = {a for names, _, label in calls if label == "front" for a in names} - {
        t.user_attrs["arch"] for t in search_front}
    assert entrants, "the slow arch must have hidden another for this test to mean anything"
    assert all(t.user_attrs["metrics"]["latency"] <= budget
               and t.user_attrs["latency_basis"] == MEASURED
               for t in front(ranked, ("accuracy", "latency")))
    # a lost run left one front arch (the most accurate: it stays on the front) with a
    # single round
    part = search_front[-1].user_attrs["arch"]
    Timings(tmp_path / "part" / "front-timing" / "host-cpu.json", "host-cpu",
            front=[TimedNetwork(part, cost[part], None, (1.01 * cost[part],))]).save()
    calls.clear()
    measure_front(tmp_path / "part", trials, ("accuracy", "latency"),
                  [Target("latency", get_device("host-cpu"),
                          load_lut(lut_path(table, "host-cpu", "tiny")))])
    assert part in calls[0][0]
    state = Timings.load(tmp_path / "part" / "front-timing" / "host-cpu.json", "host-cpu")
    assert {i.arch: i.rounds for i in state.front}[part] == pytest.approx(
        (1.01 * cost[part], *[cost[part]] * (ROUNDS - 1)))


def test_a_device_lost_before_or_during_the_front_s_timing(table, tmp_path, monkeypatch,
                                                             caplog) -> None:
    """Unreachable from the start, the front keeps the search's predictions and the report
    says why (an error when measuring was asked for); lost after some timings, the error
    says how many front archs are kept and that the same command times the rest."""
    from edgenas.errors import DeviceError
    from edgenas.search.engine import front
    from edgenas.search.measured_front import Target, measure_front

    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    lut = load_lut(lut_path(table, "host-cpu", "tiny"))
    archs, trials = _searched(lut, 24)
    objectives = ("accuracy", "latency")

    def unreachable(arch: str, n: int) -> list[float]:
        raise DeviceError("ssh board: failed with exit code 255")

    _fake_timing(monkeypatch, unreachable)
    target = Target("latency", get_device("host-cpu"), lut)
    with caplog.at_level("WARNING"):
        ranked, report = measure_front(tmp_path / "a", trials, objectives, [target])
    assert ranked is trials
    assert report == {"status": "unreachable", "reason": "ssh board: failed with exit code 255",
                      "devices": ["host-cpu"]}
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "the front is not measured: ssh board: failed with exit code 255; its latencies "
        "stay predictions"]
    with pytest.raises(DeviceError, match=r"^ssh board: failed with exit code 255; the front "
                       r"timings so far are kept \(\{'host-cpu': 0\}\): run the same command "
                       r"again to time the rest$"):
        measure_front(tmp_path / "b", trials, objectives, [target], required=True)
    timed: list[str] = []

    def lost_at_the_neighbours(arch: str, n: int) -> list[float]:
        if len(timed) >= len(front(trials, objectives)):
            raise DeviceError("lost")
        timed.append(arch)
        return [1.0] * n

    _fake_timing(monkeypatch, lost_at_the_neighbours)
    with pytest.raises(DeviceError, match=r"^lost; the front timings so far are kept "
                                          r"\(\{'host-cpu': \d+\}\)"):
        measure_front(tmp_path / "c", trials, objectives,
                      [Target("latency", get_device("host-cpu"), lut)])


def test_the_prediction_an_arch_is_judged_against_is_noted_at_the_table_s_yardstick_once(
        ) -> None:
    """Measured times are at the table's yardstick, so the prediction noted before timing
    is too (the model's prediction over its anchor), with whether a refit preceded it; an
    arch a lost run began keeps the note made then."""
    from edgenas.search.measured_front import Timings, _note_predictions

    space = tiny_space()
    a, b = space.sample(1).to_json(), space.sample(2).to_json()
    state = Timings(Path("unused.json"), "host-cpu")
    _note_predictions(state, _Table(3.0, anchor=2.0), [a], after_refit=False)  # type: ignore[arg-type]
    assert state.predicted_when_timed == {a: [1.5, 0.0]}
    _note_predictions(state, _Table(8.0, anchor=4.0), [a, b], after_refit=True)  # type: ignore[arg-type]
    assert state.predicted_when_timed == {a: [1.5, 0.0], b: [2.0, 1.0]}


def test_of_two_devices_one_already_timed_does_not_stop_the_other(table, tmp_path,
                                                                   monkeypatch) -> None:
    """A search for two devices measures its front on each; rerun after the second was
    lost, the first has nothing left to time and the second is timed all the same."""
    from edgenas.profile.latency import LatencyModel
    from edgenas.search.engine import front
    from edgenas.search.measured_front import MEASURED, Target, measure_front

    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    metrics = ("latency@host-cpu", "latency@ov-cpu")
    luts = {m: load_lut(lut_path(table, "host-cpu", "tiny")) for m in metrics}
    model = LatencyModel(luts[metrics[0]])
    archs, searched = _searched(luts[metrics[0]], 24)
    trials = [_trial_of(arch, {"accuracy": t.user_attrs["metrics"]["accuracy"],
                               metrics[0]: model.predict(arch),
                               metrics[1]: 2 * model.predict(arch)})
              for t, arch in zip(searched, archs)]
    objectives = ("accuracy", *metrics)
    targets = [Target(metrics[0], get_device("host-cpu"), luts[metrics[0]]),
               Target(metrics[1], get_device("ov-cpu"), luts[metrics[1]])]
    plain = LatencyModel(luts[metrics[0]], anchored=False)
    cost = {a.to_json(): plain.predict(a) for a in archs}  # both run as the table says
    calls = _fake_timing(monkeypatch, lambda arch, n: [cost[arch]] * n)
    measure_front(tmp_path, trials, objectives, targets[:1])  # the first device only
    assert calls
    calls.clear()
    ranked, report = measure_front(tmp_path, trials, objectives, targets)
    assert calls and set(report["devices"]) == {"host-cpu", "ov-cpu"}
    assert report["devices"]["ov-cpu"]["front_archs_timed"] > 0
    assert luts[metrics[1]].networks.get(FRONT)  # its table learnt from them
    assert all(t.user_attrs["latency_basis@ov-cpu"] == MEASURED
               for t in front(ranked, objectives))


def test_the_search_s_results_say_whether_and_how_its_front_was_measured(
        table, tmp_path, monkeypatch) -> None:
    """front.json says why a front was not measured (--no-measure-front, no device table,
    an unreachable device) and otherwise carries the measurement under the search's latency
    budget, its rows ranked on it; a device that must be measured and cannot be is an error
    raised after the search's own results are written."""
    from edgenas.errors import DeviceError
    from edgenas.profile.latency import LatencyModel
    from edgenas.search.measured_front import (Target, latency_targets,
                                               write_measured_results)

    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    lut = load_lut(lut_path(table, "host-cpu", "tiny"))
    plain = LatencyModel(lut, anchored=False)
    archs, trials = _searched(lut, 24)
    cost = {a.to_json(): plain.predict(a) for a in archs}
    calls = _fake_timing(monkeypatch, lambda arch, n: [cost[arch]] * n)
    objectives = ("accuracy", "latency")
    target = Target("latency", get_device("host-cpu"), lut)

    def written(run: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        (tmp_path / run).mkdir()
        summary = write_measured_results(tmp_path / run, trials, objectives, 10, *args, **kwargs)
        assert front_of(tmp_path / run)["front_measurement"] == summary["front_measurement"]
        return summary["front_measurement"]

    assert written("off", {"budgets": {}}, [target], measure=False) == {
        "status": "not measured", "reason": "--no-measure-front"}
    assert written("none", {"budgets": {}}, []) == {"status": "not measured",
                                                     "reason": "no device table"}
    assert calls == []
    budget = max(cost.values())
    measured = written("on", {"budgets": {"max_latency_ms": budget}}, [target])
    assert measured["status"] == "measured" and measured["max_latency_ms"] == budget
    rows = front_of(tmp_path / "on")["front"]
    assert rows and all(r["latency_basis"] == "measured" for r in rows)

    def unreachable(arch: str, n: int) -> list[float]:
        raise DeviceError("gone")

    _fake_timing(monkeypatch, unreachable)
    assert written("lost", {}, [target])["status"] == "unreachable"
    (tmp_path / "must").mkdir()
    with pytest.raises(DeviceError, match="^gone; the front timings so far are kept"):
        write_measured_results(tmp_path / "must", trials, objectives, 10, {}, [target],
                               measure=True)
    assert "measured_latency_ms" not in (tmp_path / "must" / "front.json").read_text()
    # a refined table is saved where the device's table lives, or kept in memory
    models = {"latency@host-cpu": LatencyModel(lut), "latency@ov-cpu": LatencyModel(lut)}
    devices = {"latency@host-cpu": get_device("host-cpu"), "latency@ov-cpu": get_device("ov-cpu")}
    saved = latency_targets(models, devices, tmp_path / "profiles")
    assert [(t.metric, t.device.name, t.lut_path) for t in saved] == [
        ("latency@host-cpu", "host-cpu", lut_path(tmp_path / "profiles", "host-cpu", "tiny")),
        ("latency@ov-cpu", "ov-cpu", lut_path(tmp_path / "profiles", "host-cpu", "tiny"))]
    assert all(t.lut is lut for t in saved)
    assert [t.lut_path for t in latency_targets(models, devices, None)] == [None, None]


def test_a_search_without_a_feasible_arch_times_nothing_and_leaves_the_table_alone(
        table, tmp_path, monkeypatch) -> None:
    from edgenas.search.measured_front import Target, measure_front

    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    lut = load_lut(lut_path(table, "host-cpu", "tiny"))
    before = lut.to_dict()
    archs, trials = _searched(lut, 6)
    for t in trials:
        t.user_attrs["feasible"] = False
    calls = _fake_timing(monkeypatch, lambda arch, n: [1.0] * n)
    ranked, report = measure_front(tmp_path, trials, ("accuracy", "latency"),
                                   [Target("latency", get_device("host-cpu"), lut)])
    assert calls == [] and report["devices"]["host-cpu"]["front_archs_timed"] == 0
    assert lut.to_dict() == before
