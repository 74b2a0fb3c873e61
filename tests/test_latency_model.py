"""The latency model beyond the unit sum: whole-network boosted trees, and the load guard that
keeps a busy spell of a shared host out of the table; and the model held to its claims on a
scripted device, whose times come from a known cost model (`scripted_device`): held-out
accuracy, each correction form recovering the cost model it can represent, and a table
built in a slow stretch brought back to the device's level."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import pytest

from edgenas.device.descriptor import get_device
from edgenas.errors import ProfileError
from edgenas.profile.boosted import FEATURES, UNIT_KINDS, BoostedModel, fit_boosted
from edgenas.profile.drift import MAX_BIAS, MIN_TAU, check_drift
from edgenas.profile.correction import (CORRECTIONS, IDENTITY, fit_correction, form_of,
                                        predict_corrected)
from edgenas.profile.latency import (LatencyModel, boosted_features, kind_sums, unit_rows,
                                     unit_sum)
from edgenas.profile.lut import LUT, load_lut, save_lut
from edgenas.profile.profiler import fit_on, profile
from edgenas.profile.records import LoadRecord, TimedNetwork, Timing
from edgenas.profile.ranking import kendall_tau
from edgenas.profile.timing import LoadGuard, time_batch
from edgenas.progress import StageProgress
from edgenas.space.arch import Arch
from edgenas.space import get_space
from scripted_device import CostModel, ScriptedDevice, scripted_device
from tiny_space import tiny_space

ROOT = Path(__file__).resolve().parents[1]


def test_the_stored_trees_predict_what_the_fitted_model_predicts() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, len(FEATURES)))
    y = np.exp(0.3 * x[:, 0] + 0.2 * (x[:, 3] > 0) + 0.05 * rng.normal(size=120))
    stored = fit_boosted(x, y)
    reference = GradientBoostingRegressor(n_estimators=300, max_depth=2, learning_rate=0.05,
                                          subsample=0.8, random_state=0).fit(x, np.log(y))
    fresh = rng.normal(size=(40, len(FEATURES)))
    assert BoostedModel(stored).predict(fresh) == pytest.approx(
        np.exp(reference.predict(fresh)), rel=1e-9)


def test_whole_network_trees_are_chosen_where_units_do_not_add_up() -> None:
    """Networks of one kind run 1.6x their unit sum, the others at it: no line through the
    sum can say which is which; the trees see it in the features and win out of sample."""
    rng = np.random.default_rng(2)
    n = 120
    sums = rng.uniform(0.3, 3.0, n)
    units = rng.integers(8, 30, n).astype(float)
    features = rng.normal(size=(n, len(FEATURES)))
    features[:, FEATURES.index("log_unit_sum_ms")] = np.log(sums)
    slow = features[:, 5] > 0.3
    measured = sums * np.where(slow, 1.6, 1.0) * rng.uniform(0.98, 1.02, n)
    fitted = fit_correction(sums, units, measured, features=features)
    assert fitted["form"] == "boosted"
    assert fitted["cv"]["boosted"]["within_10pct"] >= 0.8
    assert fitted["cv"]["boosted"]["within_10pct"] > fitted["cv"]["linear"]["within_10pct"] + 0.3
    few = fit_correction(sums[:30], units[:30], measured[:30], features=features[:30])
    assert "boosted" not in few["cv"], "30 networks are too few to fit trees on"


def test_a_table_with_trees_predicts_the_same_after_saving(tmp_path: Path) -> None:
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    items = [i for label in ("fitting", "validation") for i in lut.networks.get(label, [])]
    archs = [Arch.from_json(i.arch) for i in items]
    assert len(archs) >= 60
    # a device on which networks with a 28-pixel input are 1.5x what their units say
    measured = [unit_sum(lut, a)[0] * (1.5 if a.resolution == 28 else 1.0) for a in archs]
    fit_on(lut, archs, measured)
    lut.correction["form"] = "boosted"  # whatever the cross-validation chose: store the trees
    lut.correction["boosted"] = fit_boosted(
        np.array([boosted_features(lut, a) for a in archs]), np.array(measured))
    before = [LatencyModel(lut).predict(a) for a in archs[:10]]
    save_lut(lut, tmp_path / "cifar.json")
    after = [LatencyModel(load_lut(tmp_path / "cifar.json")).predict(a) for a in archs[:10]]
    assert after == pytest.approx(before, rel=1e-12)
    assert all(p > 0 for p in after)


class _Session:
    """Times models by a script: the host's load rises over time, by ``load(call)`` for the
    n-th model timed; a model's true time is 0.1 ms x (1 + its number), the reference's 1 ms."""

    def __init__(self, load: Callable[[int], float]) -> None:
        self.load, self.calls = load, 0
        self.device = type("D", (), {"name": "scripted"})()

    def time_models(self, files: list[Path], handle: Callable[[dict[str, Any]], None]) -> None:
        for file in files:
            base = 1.0 if file.name.startswith("ref") else 0.1 * (1 + int(file.stem[1:]))
            handle({"model": file.name, "median_ms": base * self.load(self.calls)})
            self.calls += 1


def _models(n: int) -> dict[str, onnx.ModelProto]:
    graph = onnx.helper.make_graph([], "empty", [], [])
    return {f"k{i}": onnx.helper.make_model(graph) for i in range(n)}


def _reference() -> onnx.ModelProto:
    return onnx.helper.make_model(onnx.helper.make_graph([], "ref", [], []))


def test_times_under_a_busy_spell_are_scaled_back_to_the_uncontended_level() -> None:
    """The host turns 1.5x slower after the reference burst, for the whole chunk: the models
    come out at their uncontended times, their neighbouring references slowed alike."""
    def load(call: int) -> float:  # 20 reference timings first (the burst), then the chunk
        return 1.5 if call >= 20 else 1.0

    stored: dict[str, Timing] = {}
    steps: list[int] = []
    guard = LoadGuard(_reference(), every=5)
    time_batch(_Session(load), _models(15), stored.__setitem__,  # type: ignore[arg-type]
               chunk=15, checkpoint=lambda: None, progress=StageProgress(advance=steps.append),
               guard=guard)
    assert steps == [15]  # a scaled batch arrives whole: one step, not fifteen at one instant
    assert guard.yardstick_ms == pytest.approx(1.0)
    truth = {f"k{i}": 0.1 * (1 + i) for i in range(15)}
    assert {k: v.median_ms for k, v in stored.items()} == pytest.approx(truth)
    assert any(_record(v).raw_median_ms > 1.4 * truth[k] for k, v in stored.items())
    assert guard.summary()["load_p90"] == pytest.approx(1.5)


def test_a_model_between_a_quiet_and_a_busy_reference_is_scaled_by_their_mean() -> None:
    stored: dict[str, Timing] = {}
    # order after the burst: ref0 (1.0), k0, k1, ref1 (2.0)
    guard = LoadGuard(_reference(), every=2)
    time_batch(_Session(lambda call: 2.0 if call >= 23 else 1.0), _models(2),
               stored.__setitem__, chunk=2, checkpoint=lambda: None,  # type: ignore[arg-type]
               progress=StageProgress(), guard=guard)
    assert _record(stored["k0"]).neighbour_reference_ms == pytest.approx(1.5)
    assert stored["k0"].median_ms == pytest.approx(0.1 / 1.5)
    assert stored["k1"].median_ms == pytest.approx(0.2 / 1.5)


def test_timings_against_a_table_use_its_reference_level_and_a_new_table_measures_one() -> None:
    """The host ran the reference at 1.25 ms in one 10-minute stretch and 1.83 ms in the
    next: a benchmark or resumed profile must scale to the table's level, not its own."""
    from edgenas.device.descriptor import get_device
    from edgenas.profile.timing import load_guard

    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    device = get_device("host-cpu")
    lut.timing.pop("protocol", None)
    assert load_guard(device, get_space("cifar"), lut).yardstick_ms is None  # type: ignore[union-attr]
    lut.timing["protocol"] = {"yardstick_ms": 1.83}
    assert load_guard(device, get_space("cifar"), lut).yardstick_ms == 1.83  # type: ignore[union-attr]
    assert load_guard(device, get_space("cifar")).yardstick_ms is None  # type: ignore[union-attr]


def _input_size(model: Any) -> int:
    return model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value


def test_a_new_table_is_scaled_by_a_reference_of_its_own_space_an_old_one_keeps_cifars() -> None:
    """Load slows a 25 ms `imagenet` network less than a 1.5 ms `cifar` one: the reference
    must be the size of what it scales. A table that records no reference space was
    measured against `cifar`'s, and a resumed profile must keep using that one."""
    from edgenas.device.descriptor import get_device
    from edgenas.profile.timing import load_guard, reference_network

    device = get_device("host-cpu")
    big, small = (_input_size(reference_network(get_space(s))) for s in ("imagenet", "cifar"))
    assert big > small
    fresh = load_guard(device, get_space("imagenet"))
    assert fresh is not None and fresh.space == "imagenet" and _input_size(fresh.reference) == big
    assert fresh.summary()["reference_space"] == "imagenet"
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    lut.space = "imagenet"
    lut.timing["protocol"] = {"yardstick_ms": 1.83}  # written before reference spaces
    old = load_guard(device, get_space("imagenet"), lut)
    assert old is not None and old.space == "cifar" and _input_size(old.reference) == small
    lut.timing["protocol"] = {"yardstick_ms": 24.0, "reference_space": "imagenet"}
    assert load_guard(device, get_space("imagenet"), lut).space == "imagenet"  # type: ignore[union-attr]


def _network(raw: list[float], local: list[float], chunk: list[float]) -> TimedNetwork:
    """A table-fitting network's record: its rounds as timed and their references (the
    table's yardstick is 1 ms), its rounds at the default level (neighbours)."""
    timed = tuple(LoadRecord(r, n, c, 1.0) for r, n, c in zip(raw, local, chunk))
    rounds = tuple(r / n for r, n in zip(raw, local))
    return TimedNetwork("{}", float(np.median(rounds)), rounds=rounds, timed=timed)


def _record(timing: Timing) -> LoadRecord:
    """The load record of a guarded timing (which every guarded timing has)."""
    assert timing.record is not None
    return timing.record


def test_the_level_is_the_one_under_which_repeated_rounds_agree() -> None:
    """Two stretches seen on host F: the host twice as slow in the second round with the
    references slowed alike (scaling repairs it), and steady networks beside references
    that jitter on their own (scaling only adds the jitter)."""
    from edgenas.profile.level import choose

    rng = np.random.default_rng(0)
    true = rng.uniform(0.5, 3.0, 40)
    shifted = [_network([t, 2 * t], [1.0, 2.0], [1.0, 2.0]) for t in true]
    assert choose(shifted)[0] == "neighbours"
    jitter = rng.uniform(0.8, 1.25, (40, 2))
    steady = [_network([t, t], list(j), [1.0, 1.0]) for t, j in zip(true, jitter)]
    level, scores = choose(steady)
    assert level == "chunk" and scores["none"]["median_gap_pct"] == 0.0
    slow_jitter = [_network([t, 2 * t], list(j), [1.0, 2.0]) for t, j in zip(true, jitter)]
    assert choose(slow_jitter)[0] == "chunk"  # the shift without the jitter
    assert choose([TimedNetwork("{}", 1.05, rounds=(1.0, 1.1))]) == ("neighbours", {})


def test_a_chosen_level_expresses_every_unit_and_network_by_it_and_refits() -> None:
    from edgenas.profile.timing import set_level

    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    key = next(iter(lut.entries))
    lut.entries = {key: Timing(0.5, p10_ms=0.45, record=LoadRecord(1.0, 2.0, 1.0, 1.0))}
    rng = np.random.default_rng(1)
    lut.networks = {"fitting": [_network([t, t], list(j), [1.0, 1.0]) for t, j in
                                    zip(rng.uniform(0.5, 3, 30), rng.uniform(0.8, 1.25, (30, 2)))]}
    guard = LoadGuard(_reference(), yardstick_ms=1.0)
    set_level(lut, guard)
    assert guard.level == "chunk" and lut.correction is None
    assert lut.entries[key].median_ms == pytest.approx(1.0)  # raw x 1 ms / 1 ms
    assert lut.entries[key].p10_ms == pytest.approx(0.9)
    item = lut.networks["fitting"][0]
    assert item.rounds == pytest.approx([t.raw_median_ms for t in item.timed])
    assert guard.summary()["level"] == "chunk" and guard.summary()["level_scores"]


def test_at_the_chunk_level_a_model_is_scaled_by_its_chunks_median_reference() -> None:
    stored: dict[str, Timing] = {}
    # after the burst: ref0 (1.0), k0, k1, ref1 (2.0), k2, k3, ref2 (2.0): chunk median 2.0
    guard = LoadGuard(_reference(), every=2, level="chunk")
    time_batch(_Session(lambda call: 2.0 if call >= 23 else 1.0), _models(4),
               stored.__setitem__, chunk=4, checkpoint=lambda: None,  # type: ignore[arg-type]
               progress=StageProgress(), guard=guard)
    assert _record(stored["k0"]).chunk_reference_ms == pytest.approx(2.0)
    assert stored["k0"].median_ms == pytest.approx(0.1 / 2.0)
    assert _record(stored["k0"]).neighbour_reference_ms == pytest.approx(1.5)  # kept for the other levels


# -- held to a device of known costs ------------------------------------------------------------

#: A device with a fixed cost per call besides the work: every separately timed unit pays
#: it, a whole network pays it once (the runtime's per-call cost, DESIGN.md).
PER_CALL = CostModel(per_call_ms=0.05)


def _scripted_profile(calibrate: int = 60, validate: int = 60,
                      checkpoint: Callable[[LUT], None] = lambda lut: None) -> LUT:
    """The tiny space (772 units) profiled on whatever scripted device is installed (with
    60 table-fitting networks, as the main job, the boosted trees are a candidate too)."""
    return profile(get_device("host-cpu"), tiny_space(), calibrate=calibrate, validate=validate,
                   checkpoint=checkpoint, progress=StageProgress())


@pytest.mark.parametrize("noise, within, share", [(0.0, 0.01, 1.0), (0.03, 0.10, 0.95)],
                         ids=["noise-free: 100 % within 1 %", "3 % jitter: 95 % within 10 %"])
def test_a_table_predicts_held_out_networks_of_a_device_with_a_per_call_cost(
        monkeypatch, noise: float, within: float, share: float) -> None:
    """Noise-free, every held-out network within +-1 %; with every timing jittered by up to
    +-3 %, at least 95 % within +-10 %. The plain sum, which counts the per-call cost once
    per unit, gets none of them within +-10 %."""
    device = scripted_device(monkeypatch, PER_CALL)
    device.noise = noise
    lut = _scripted_profile()
    report = lut.validation
    assert report["n"] == 60 and report["uncorrected_within_10pct"] == 0.0
    predicted = [LatencyModel(lut).predict(Arch.from_json(item.arch))
                 for item in lut.networks["validation"]]
    error = np.abs(np.array(predicted) / [i.measured_ms for i in lut.networks["validation"]] - 1)
    assert np.mean(error <= within) >= share
    assert abs(report["median_bias_pct"]) < 100 * within


@pytest.fixture(scope="module")
def work_table() -> LUT:
    """A table of the tiny space's units on a device without a per-call cost: each entry is
    its unit's work, which whole networks add up exactly."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        scripted_device(monkeypatch, CostModel())
        return _scripted_profile(calibrate=0, validate=0)


@pytest.fixture(scope="module")
def networks(work_table) -> dict[str, np.ndarray]:
    """Per-kind unit sums (ms) and unit counts, unit sums and unit counts of 150 tiny-space
    networks."""
    archs = [tiny_space().sample(seed) for seed in range(150)]
    kinds, units = zip(*(kind_sums(work_table, arch) for arch in archs))
    counts = np.zeros((len(archs), len(UNIT_KINDS)))
    for row, arch in enumerate(archs):
        for kind, _, _ in unit_rows(work_table, arch):
            counts[row, kind] += 1
    return {"kinds": np.array(kinds), "sums": np.array(kinds).sum(axis=1), "counts": counts,
            "units": np.array(units, dtype=np.float64)}


def _fit(networks: dict[str, np.ndarray], measured: np.ndarray, form: str) -> dict[str, Any]:
    return fit_correction(networks["sums"], networks["units"], measured,
                          kinds=networks["kinds"], only=[form])


def test_the_plain_sum_is_exact_where_units_add_up_to_networks(networks) -> None:
    fitted = fit_correction(networks["sums"], networks["units"], networks["sums"],
                            kinds=networks["kinds"])
    assert fitted["cv"]["none"]["mean_abs_pct_error"] == pytest.approx(0.0, abs=1e-9)
    assert fitted["cv"][fitted["form"]]["mean_abs_pct_error"] == pytest.approx(0.0, abs=1e-6)


def test_the_linear_form_recovers_a_per_call_cost_within_1pct(networks) -> None:
    """Each unit timed alone pays the 0.05 ms call; the network pays it once: network =
    0.05 + sum - 0.05 x units. The cross-validated choice is the form that says so."""
    per_call = 0.05
    kinds = networks["kinds"] + per_call * networks["counts"]  # what the units time at
    measured = networks["sums"] + per_call
    fitted = fit_correction(kinds.sum(axis=1), networks["units"], measured, kinds=kinds)
    assert fitted["form"] == "linear"
    assert fitted["intercept_ms"] == pytest.approx(per_call, rel=0.01)
    assert fitted["scale"] == pytest.approx(1.0, rel=0.01)
    assert fitted["per_unit_ms"] == pytest.approx(-per_call, rel=0.01)
    assert fitted["cv"]["linear"]["mean_abs_pct_error"] < 0.01
    assert fitted["cv"]["none"]["within_10pct"] == 0.0


def test_the_scale_form_recovers_a_network_level_factor_within_1pct(networks) -> None:
    fitted = _fit(networks, 0.8 * networks["sums"], "scale")  # networks fuse: 0.8x the sum
    assert fitted["scale"] == pytest.approx(0.8, rel=0.01)
    assert fitted["intercept_ms"] == 0.0 and fitted["per_unit_ms"] == 0.0


def test_the_scale_and_per_unit_form_recovers_both_within_1pct(networks) -> None:
    measured = 0.9 * networks["sums"] - 0.002 * networks["units"]
    assert measured.min() > 0
    fitted = _fit(networks, measured, "scale+per_unit")
    assert fitted["scale"] == pytest.approx(0.9, rel=0.01)
    assert fitted["per_unit_ms"] == pytest.approx(-0.002, rel=0.01)


def test_the_per_kind_form_recovers_each_kinds_factor_within_5pct(networks) -> None:
    """mbconv units run 0.7x and dwsep units 1.2x their isolated time inside a network. The
    form pulls each factor gently towards 1 (a kind few networks hold keeps its table time),
    so the recovery is within a few per cent, not exact; kinds no network holds stay at 1."""
    truth = dict.fromkeys(UNIT_KINDS, 1.0) | {"mbconv": 0.7, "dwsep": 1.2}
    measured = networks["kinds"] @ np.array([truth[k] for k in UNIT_KINDS])
    fitted = _fit(networks, measured, "per_kind")
    assert fitted["kind_scale"] == pytest.approx(truth, rel=0.05)
    assert fitted["kind_scale"]["mbconv"] == pytest.approx(0.7, rel=0.01)
    assert fitted["cv"]["per_kind"]["within_5pct"] == 1.0


def test_the_log_ratio_form_recovers_a_network_level_factor_exactly(networks) -> None:
    fitted = _fit(networks, 0.8 * networks["sums"], "log_ratio")["log_ratio"]
    assert fitted["intercept"] == pytest.approx(np.log(0.8), abs=1e-9)
    assert all(abs(w) < 1e-9 for w in fitted["weights"].values())
    predicted = predict_corrected({"log_ratio": fitted}, networks["kinds"], networks["units"])
    assert predicted == pytest.approx(0.8 * networks["sums"], rel=1e-9)


def test_the_log_ratio_form_follows_a_kinds_share_within_10pct(networks) -> None:
    """Networks run faster the larger their share of mbconv time (exp(-0.3 x share)): the
    ridge shrinks the weight (so the fit is not exact), but it has the sign of the truth and
    every held-out network stays within +-10 %, where the plain sum has fewer than half."""
    share = networks["kinds"][:, UNIT_KINDS.index("mbconv")] / networks["sums"]
    measured = networks["sums"] * np.exp(-0.3 * share)
    fitted = _fit(networks, measured, "log_ratio")
    assert -0.3 < fitted["log_ratio"]["weights"]["share_mbconv"] < 0
    assert fitted["cv"]["log_ratio"]["within_10pct"] == 1.0
    assert _fit(networks, measured, "none")["cv"]["none"]["within_10pct"] < 0.5


def _slow_between(device: ScriptedDevice, start: Callable[[LUT], bool],
                  end: Callable[[LUT], bool]) -> Callable[[LUT], None]:
    """A checkpoint that makes ``device`` 1.3x slower (its reference network too) from the
    first checkpoint at which ``start(table)`` holds until one at which ``end(table)``
    holds: a slow stretch of a shared host, placed by what the profile has done."""
    def checkpoint(lut: LUT) -> None:
        if end(lut):
            device.load = 1.0
        elif start(lut):
            device.load = 1.3
    return checkpoint


def test_a_slow_stretch_within_a_build_is_scaled_out_at_the_level_chosen(monkeypatch) -> None:
    """The host turns 1.3x slower after 300 units and back to normal after the first round
    of the table-fitting networks: as timed, the two rounds of every network are 30 % apart,
    so the table takes the level at which they agree (scaled by the reference timed beside
    them), and the units timed in the stretch come out at the device's normal level."""
    device = scripted_device(monkeypatch, PER_CALL)
    lut = _scripted_profile(calibrate=40, checkpoint=_slow_between(
        device, start=lambda lut: len(lut.entries) >= 300,
        end=lambda lut: bool(lut.networks.get("fitting"))))
    protocol = lut.timing["protocol"]
    assert protocol["level"] != "none"
    assert protocol["level_scores"]["none"]["median_gap_pct"] == pytest.approx(30, abs=1)
    slowed = [e for e in lut.entries.values() if _record(e).raw_median_ms > 1.2 * e.median_ms]
    assert len(slowed) == 772 - 300  # the stretch's units: timed slow, stored at the normal level
    assert abs(lut.validation["median_bias_pct"]) < 1 and lut.validation["within_10pct"] == 1.0


def test_a_table_built_in_a_slow_stretch_is_re_anchored_by_a_recalibration(monkeypatch) -> None:
    """The device 1.3x slower for the whole build, its reference network too (the
    yardstick cannot see it), then normal: the table predicts 30 % too slow, the drift
    check says so, and a recalibration (a new yardstick, the table-fitting networks timed
    again) brings the median bias within 1 % without timing a unit again."""
    device = scripted_device(monkeypatch, PER_CALL)
    device.load = 1.3
    lut = _scripted_profile(calibrate=40, validate=20)
    entries = dict(lut.entries)
    device.load = 1.0
    drift = check_drift(get_device("host-cpu"), lut, count=20)
    assert not drift["trusted"] and drift["median_bias_pct"] == pytest.approx(30, abs=1)
    assert drift["median_ratio_measured_to_predicted"] < 1 - MAX_BIAS
    profile(get_device("host-cpu"), tiny_space(), lut, calibrate=40, validate=20,
            recalibrate=True, progress=StageProgress())
    assert lut.entries == entries
    assert abs(lut.validation["median_bias_pct"]) < 1 and lut.validation["within_10pct"] == 1.0
    again = check_drift(get_device("host-cpu"), lut, count=20)
    assert again["trusted"] and abs(again["median_bias_pct"]) < 1


def test_the_drift_check_times_the_held_out_networks_else_the_table_fitting_ones(monkeypatch
                                                                                ) -> None:
    scripted_device(monkeypatch, PER_CALL)
    lut = _scripted_profile(calibrate=8, validate=6)
    assert check_drift(get_device("host-cpu"), lut, count=20)["n"] == 6
    # a table without held-out networks is checked on those it was fitted on
    lut.networks["validation"] = []
    assert check_drift(get_device("host-cpu"), lut, count=20)["n"] == 8
    del lut.networks["validation"]
    assert check_drift(get_device("host-cpu"), lut, count=5)["n"] == 5
    lut.networks["fitting"] = []
    with pytest.raises(ProfileError, match="no timed networks to check; run 'edgenas profile "
                                           "host-cpu --validate 20'"):
        check_drift(get_device("host-cpu"), lut)


def _re_timed_as(monkeypatch: pytest.MonkeyPatch, order: tuple[int, ...], ratio: float
                 ) -> dict[str, Any]:
    """The drift check of a scripted table whose five first held-out networks are re-timed
    at exactly ``ratio`` times what the table predicts, in its order up to ``order``: the
    network the table ranks ``rank`` takes the time it predicts for the one it ranks
    ``order[rank]``. Exact times, so a test can stand just either side of a bound."""
    device = scripted_device(monkeypatch, PER_CALL)
    lut = _scripted_profile(calibrate=8, validate=6)
    model = LatencyModel(lut)
    predicted = [model.predict(Arch.from_json(item.arch))
                 for item in lut.networks["validation"][:5]]
    scripted_ms: list[float] = []
    cost = device.cost
    device.cost = lambda onnx_model: scripted_ms.append(cost(onnx_model)) or scripted_ms[-1]
    check_drift(get_device("host-cpu"), lut, count=5)  # what each network takes at load 1
    by_speed = sorted(range(5), key=predicted.__getitem__)
    wanted = [0.0] * 5
    for rank, other in enumerate(order):
        wanted[by_speed[rank]] = ratio * predicted[by_speed[other]]
    start = device.timed
    device.load = lambda timed: wanted[timed - start] / scripted_ms[timed - start]
    return check_drift(get_device("host-cpu"), lut, count=5)


def test_a_table_that_orders_the_re_timed_networks_at_exactly_min_tau_is_trusted(monkeypatch
                                                                                 ) -> None:
    """Trust asks for a Kendall tau of at least `MIN_TAU`: five held-out networks re-timed
    at the table's level, but in its order only up to a rotation of the three slowest (tau
    0.6), keep the table."""
    check = _re_timed_as(monkeypatch, (0, 1, 3, 4, 2), 1.0)  # tau(range(5), this) is 0.6
    assert check["kendall_tau"] == MIN_TAU
    assert check["median_ratio_measured_to_predicted"] == pytest.approx(1.0)
    assert check["trusted"]


def test_a_table_that_orders_the_re_timed_networks_just_below_min_tau_is_not_trusted(
        monkeypatch) -> None:
    """One more pair out of order than at `MIN_TAU` (tau 0.4), at the table's level: the
    order no longer holds, whatever the bias."""
    check = _re_timed_as(monkeypatch, (0, 3, 1, 4, 2), 1.0)  # 3 of 10 pairs discordant
    assert check["kendall_tau"] == pytest.approx(0.4) and check["kendall_tau"] < MIN_TAU
    assert check["median_ratio_measured_to_predicted"] == pytest.approx(1.0)
    assert not check["trusted"]


@pytest.mark.parametrize("ratio, trusted", [(1.09, True), (1.11, False), (0.91, True),
                                            (0.89, False)])
def test_a_table_is_trusted_while_its_median_ratio_stays_within_max_bias_of_1(
        monkeypatch, ratio: float, trusted: bool) -> None:
    """Re-timed in the table's own order (tau 1), a median measured/predicted just inside
    `MAX_BIAS` (10 %) of 1 keeps the table and one just outside does not, either side of 1."""
    check = _re_timed_as(monkeypatch, (0, 1, 2, 3, 4), ratio)
    assert check["kendall_tau"] == pytest.approx(1.0)
    assert check["median_ratio_measured_to_predicted"] == pytest.approx(ratio, rel=1e-9)
    assert check["trusted"] is trusted


# -- the model's smaller parts, number by number (issue 27: mutation testing) -------------------

def test_each_correction_is_described_in_its_own_terms() -> None:
    from edgenas.profile.correction import describe_correction

    line = {"intercept_ms": 0.05, "scale": 0.9, "per_unit_ms": -0.002}
    assert describe_correction(line) == "linear: +0.0500 ms + 0.900 x sum -0.00200 ms x units"
    assert describe_correction({**line, "form": "scale+per_unit", "intercept_ms": 0.0}) == \
        "scale+per_unit: +0.0000 ms + 0.900 x sum -0.00200 ms x units"
    per_kind = {"form": "per_kind", "intercept_ms": -0.01, "scale": 1.0, "per_unit_ms": 0.0,
                "kind_scale": {"conv": 1.2, "mbconv": 0.7}}
    assert describe_correction(per_kind) == \
        "per_kind: -0.0100 ms + per-kind scales (conv 1.20, mbconv 0.70)"
    log_ratio = {"form": "log_ratio", "intercept_ms": 0.0, "scale": 1.0, "per_unit_ms": 0.0,
                 "log_ratio": {"intercept": -0.2231, "weights": {}, "log_sum_range": [0, 1]}}
    assert describe_correction(log_ratio) == ("log_ratio: unit sum x exp(ridge over kind "
                                              "shares, log sum, log units), intercept -0.223")
    boosted = {"form": "boosted", "intercept_ms": 0.0, "scale": 1.0, "per_unit_ms": 0.0,
               "boosted": {"trees": [{}] * 300, "networks": 60}}
    assert describe_correction(boosted) == ("boosted: 300 boosted trees over whole-network "
                                            "features, fitted on 60 timed networks")


def test_a_stored_correction_is_read_as_its_form_else_by_the_model_it_holds() -> None:
    # stored before every form was named: no "form", told by the model inside
    assert form_of({**IDENTITY, "boosted": {}}) is CORRECTIONS["boosted"]
    assert form_of({**IDENTITY, "log_ratio": {}}) is CORRECTIONS["log_ratio"]
    assert form_of({**IDENTITY, "kind_scale": {}}) is CORRECTIONS["per_kind"]
    assert form_of(dict(IDENTITY)) is CORRECTIONS["linear"]
    with pytest.raises(ProfileError, match=r"correction form 'cubic' is not one of \['none', "
                                           r"'scale', 'scale\+per_unit', 'linear', 'per_kind', "
                                           r"'log_ratio', 'boosted', 'padded_work'\]"):
        form_of({**IDENTITY, "form": "cubic"})


def test_the_tables_kendall_tau_is_tau_b_and_undefined_for_a_constant_side() -> None:
    import math

    from scipy import stats

    from edgenas.profile.ranking import kendall_tau

    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 40)
    b = a + rng.integers(0, 3, 40)  # ties on both sides
    assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert math.isnan(kendall_tau([1, 2, 3], [5, 5, 5]))
    assert math.isnan(kendall_tau([5, 5, 5], [1, 2, 3]))
    assert kendall_tau([1, 2], [3, 4]) == 1.0 and kendall_tau([1, 2], [4, 3]) == -1.0


def test_a_kendall_tau_of_fewer_than_two_values_is_undefined() -> None:
    assert np.isnan(kendall_tau([0.5], [0.7])) and np.isnan(kendall_tau([], []))


def test_accuracy_metrics_count_each_error_relative_to_the_measurement() -> None:
    import math

    from edgenas.profile.latency import accuracy_metrics

    # relative errors +8 %, -4 %, -20 %, +20 %
    metrics = accuracy_metrics([1.08, 0.96, 2.0, 3.6], [1.0, 1.0, 2.5, 3.0])
    assert metrics == pytest.approx({
        "n": 4, "within_5pct": 0.25, "within_10pct": 0.5, "median_bias_pct": 2.0,
        "rmse_ms": math.sqrt((0.08 ** 2 + 0.04 ** 2 + 0.5 ** 2 + 0.6 ** 2) / 4),
        "mean_abs_pct_error": 13.0, "max_abs_pct_error": 20.0,
        "kendall_tau": 5 / math.sqrt(6 * 5)})  # one pair tied in the measurements
    assert isinstance(metrics["n"], int)
    exactly = accuracy_metrics([21.0, 11.0], [20.0, 10.0])  # 5 % and 10 % count as within
    assert exactly["within_5pct"] == 0.5 and exactly["within_10pct"] == 1.0


def test_a_table_without_a_correction_predicts_the_plain_unit_sum() -> None:
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    lut.correction = None
    arch = get_space("cifar").sample(2)
    assert LatencyModel(lut).predict(arch) == pytest.approx(unit_sum(lut, arch)[0], rel=1e-12)


def test_a_line_fitted_before_its_edge_was_recorded_takes_the_smallest_calibration_sum() -> None:
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    sums = [unit_sum(lut, Arch.from_json(item.arch))[0]
            for item in lut.networks["fitting"]]
    lut.correction = {"form": "linear", "intercept_ms": -0.05, "scale": 1.0, "per_unit_ms": 0.0}
    model = LatencyModel(lut)
    assert model.correction["min_sum_ms"] == pytest.approx(min(sums), rel=1e-12)
    assert "min_sum_ms" not in lut.correction  # the table itself is left as it was
    arch = get_space("cifar").sample(2)
    kinds, units = kind_sums(lut, arch)
    assert model.predict(arch) == pytest.approx(
        predict_corrected(model.correction, kinds[None, :], np.array([units]))[0])
    recorded = {**lut.correction, "min_sum_ms": 0.123}
    lut.correction = recorded
    assert LatencyModel(lut).correction == recorded  # a recorded edge is kept


def test_a_prediction_on_a_device_comes_with_the_table_it_came_from(
        tables_from_another_cpu: Path) -> None:
    from edgenas.errors import EdgenasError
    from edgenas.profile.latency import predict_on_device

    device, arch = get_device("host-cpu"), get_space("cifar").sample(0)
    path = tables_from_another_cpu / "host-cpu" / "cifar.json"
    got = predict_on_device(device, arch, tables_from_another_cpu, allow_stale=True)
    assert got.path == path and got.lut.device == "host-cpu" and got.lut.space == "cifar"
    assert got.ms == pytest.approx(LatencyModel(load_lut(path)).predict(arch), rel=1e-12)
    with pytest.raises(EdgenasError, match="stale"):
        predict_on_device(device, arch, tables_from_another_cpu)


def _timing(raw: float, neighbours: float, chunk: float) -> LoadRecord:
    return LoadRecord(raw, neighbours, chunk, 1.0)


def _rounds(rounds: list[float], timed: list[LoadRecord] = []) -> TimedNetwork:
    """A network timed in ``rounds``, with a load record per round in ``timed``."""
    return TimedNetwork("{}", float(np.median(rounds)), rounds=tuple(rounds), timed=tuple(timed))


def test_a_timing_is_brought_to_each_level_by_its_own_record() -> None:
    from edgenas.profile.level import factor, value

    timing = _timing(2.0, 1.25, 2.0)
    assert [factor(timing, level) for level in ("neighbours", "chunk", "none")] == \
        pytest.approx([0.8, 0.5, 1.0])
    assert [value(timing, level) for level in ("neighbours", "chunk", "none")] == \
        pytest.approx([1.6, 1.0, 2.0])
    assert factor(LoadRecord(2.0), "chunk") is None  # no record: cannot say
    assert factor(replace(timing, neighbour_reference_ms=0.0), "neighbours") is None
    assert factor(replace(timing, yardstick_ms=None), "chunk") is None
    assert factor(replace(timing, neighbour_reference_ms=None), "chunk") == pytest.approx(0.5)
    assert value(LoadRecord(2.0), "neighbours") is None
    assert value(None, "none") is None  # no raw time


def test_relevelling_rescales_every_statistic_by_the_same_ratio() -> None:
    from edgenas.profile.level import relevel

    stats = Timing(1.6, 1.5, 1.8, 1.4, 1.65, extra={"calls": 7},
                   record=_timing(2.0, 1.25, 2.0))  # stored at the neighbours level
    at_chunk = relevel(stats, "chunk")  # 1.6 -> 1.0 ms: x 0.625
    assert [getattr(at_chunk, k) for k in ("median_ms", "p10_ms", "p90_ms", "min_ms",
                                            "mean_ms")] == \
        pytest.approx([1.0, 0.9375, 1.125, 0.875, 1.03125])
    assert at_chunk.extra["calls"] == 7 and _record(at_chunk).raw_median_ms == 2.0
    assert stats.median_ms == 1.6  # a new timing: the one it came from is as it was
    as_timed = relevel(stats, "none")  # 1.6 -> 2.0 ms: x 1.25
    assert as_timed.median_ms == pytest.approx(2.0) and as_timed.p10_ms == 1.875
    unrecorded = Timing(1.0, p10_ms=0.9)
    assert relevel(unrecorded, "chunk") == Timing(1.0, p10_ms=0.9)


def test_round_times_need_a_record_for_every_round() -> None:
    from edgenas.profile.level import round_times

    timed = [_timing(1.0, 1.0, 2.0), _timing(1.5, 1.5, 2.0)]
    assert round_times(_rounds([1.0, 1.0], timed), "chunk") == pytest.approx([0.5, 0.75])
    assert round_times(_rounds([1.0, 1.0, 1.0], timed), "chunk") is None
    assert round_times(_rounds([1.0]), "chunk") is None
    assert round_times(_rounds([1.0, 1.0], [timed[0], LoadRecord(1.0)]), "chunk") is None


def test_the_repeatability_of_two_rounds_is_their_gap_over_the_faster() -> None:
    from edgenas.profile.level import round_repeatability

    def rounds(*raw: float) -> TimedNetwork:
        return _rounds(list(raw), [_timing(r, 1.0, 1.0) for r in raw])

    # gaps 4 %, 8 %, 20 % and 0 % (a third round is not compared); two networks left out
    items = [rounds(1.0, 1.04), rounds(1.08, 1.0), rounds(1.0, 1.2, 5.0), rounds(2.0, 2.0),
             rounds(1.0), _rounds([1.0, 2.0])]
    assert round_repeatability(items, "none") == pytest.approx(
        {"n": 4, "median_gap_pct": 6.0, "within_10pct": 0.75, "within_5pct": 0.5})
    # gaps of exactly 10 % and 5 %
    exactly = round_repeatability([rounds(10.0, 11.0), rounds(20.0, 21.0)], "none")
    assert exactly["within_10pct"] == 1.0 and exactly["within_5pct"] == 0.5
    assert round_repeatability(items[4:], "none") is None


def test_a_table_expressed_at_a_level_brings_units_and_networks_to_that_level() -> None:
    from edgenas.profile.level import express_at
    from edgenas.profile.lut import LUT

    # the neighbours' and the chunk's references disagree, so each level has its own time
    unit = Timing(2.0, record=_timing(2.0, 1.25, 2.0))
    network = TimedNetwork("{}", 3.0, rounds=(2.0, 4.0),
                           timed=(_timing(2.0, 1.25, 2.0), _timing(4.0, 2.5, 2.0)))
    lut = LUT("d", "s", "h", {}, {}, {}, entries={"u": unit}, networks={"validation": [network]})
    express_at(lut, "neighbours")
    assert lut.entries["u"].median_ms == pytest.approx(1.6)
    item = lut.networks["validation"][0]
    assert item.rounds == pytest.approx([1.6, 1.6]) and item.measured_ms == pytest.approx(1.6)
    express_at(lut, "chunk")
    assert lut.entries["u"].median_ms == pytest.approx(1.0)
    item = lut.networks["validation"][0]
    assert item.rounds == pytest.approx([1.0, 2.0]) and item.measured_ms == pytest.approx(1.5)
    assert unit.median_ms == 2.0 and network.rounds == (2.0, 4.0)  # new records, old kept


def test_a_tie_between_levels_goes_to_the_earlier_one() -> None:
    from edgenas.profile.level import choose

    steady = [_rounds([t, t], [_timing(t, 1.0, 1.0)] * 2) for t in (1.0, 2.0)]
    level, scores = choose(steady)
    assert level == "neighbours" and set(scores) == {"neighbours", "chunk", "none"}
    assert choose([_rounds([t, t], [LoadRecord(t)] * 2)
                   for t in (1.0, 2.0)]) == ("none", {"none": pytest.approx(
                       {"n": 2, "median_gap_pct": 0.0, "within_10pct": 1.0,
                        "within_5pct": 1.0})})


def test_the_correction_record_says_what_was_tried_on_how_many_networks() -> None:
    from edgenas.errors import ProfileError

    rng = np.random.default_rng(4)
    sums = rng.uniform(0.5, 2.0, 12)
    units = rng.integers(5, 20, 12).astype(np.float64)
    measured = 0.9 * sums + 0.01
    fitted = fit_correction(sums, units, measured, folds=5)
    assert fitted["networks"] == 12 and fitted["cv_folds"] == 5
    assert fitted["min_sum_ms"] == pytest.approx(sums.min())
    assert set(fitted["cv"]) == {"none", "scale", "scale+per_unit", "linear"}
    assert fitted["cv"][fitted["form"]]["mean_abs_pct_error"] == \
        min(score["mean_abs_pct_error"] for score in fitted["cv"].values())
    kinds = np.column_stack([0.3 * sums, 0.7 * sums, np.zeros((12, len(UNIT_KINDS) - 2))])
    assert set(fit_correction(sums, units, measured, kinds=kinds)["cv"]) == \
        {"none", "scale", "scale+per_unit", "linear", "per_kind", "log_ratio"}
    few = fit_correction(sums[:4], units[:4], measured[:4], folds=5)
    assert few["cv_folds"] == 4 and few["networks"] == 4  # one network per fold
    with pytest.raises(ProfileError, match="need at least 4 timed networks to fit the "
                                           "correction, got 3"):
        fit_correction(sums[:3], units[:3], measured[:3])
    with pytest.raises(ProfileError, match=r"none of the forms \['boosted'\] can be fitted "
                                           "on these networks"):
        fit_correction(sums, units, measured, only=["boosted"])


def test_the_correction_record_counts_a_network_exactly_at_a_bound_as_within_it() -> None:
    measured = np.array([10.0, 20.0, 40.0, 80.0])
    units = np.array([5.0, 5.0, 5.0, 5.0])
    # the plain sum 10 % over each (1 / 10 is exactly the double 0.1)
    ten = fit_correction([11.0, 22.0, 44.0, 88.0], units, measured, only=["none"])["cv"]["none"]
    assert ten["within_10pct"] == 1.0 and ten["within_5pct"] == 0.0
    five = fit_correction([10.5, 21.0, 42.0, 84.0], units, measured, only=["none"])
    assert five["cv"]["none"]["within_5pct"] == 1.0


def test_a_line_is_fitted_on_relative_error() -> None:
    """Twice as slow as its units at 1 ms, as fast at 10 ms: least squares on relative error
    gives scale sum(s/y) / sum((s/y)^2) = 1.2 (on absolute error it would be 1.01)."""
    sums, measured = np.array([1.0, 10.0, 1.0, 10.0]), np.array([2.0, 10.0, 2.0, 10.0])
    fitted = fit_correction(sums, np.full(4, 5.0), measured, only=["scale"])
    assert fitted["scale"] == pytest.approx(1.2)


def test_whole_network_features_fill_the_callers_cache_of_unit_costs() -> None:
    from edgenas.cost.count import unit_cost
    from edgenas.profile.keys import unit_key
    from edgenas.space.plan import sites

    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    arch, cache = get_space("cifar").sample(2), {}
    features = boosted_features(lut, arch, cache)
    timed = {unit_key(s.unit, s.height): unit_cost(s.unit, s.height) for s in sites(arch)
             if not s.unit.is_identity}
    assert cache == timed  # one counted cost per distinct timed unit, by its table key
    assert np.array_equal(boosted_features(lut, arch, cache), features)
    assert np.array_equal(boosted_features(lut, arch), features)


def test_the_log_ratio_form_is_a_ridge_regression_on_shares_log_sum_and_log_units() -> None:
    """The fitted weights are scikit-learn's Ridge (penalty 0.1 x networks, intercept not
    penalised) on each kind's share of the unit sum, the log sum and the log unit count;
    the line terms stay neutral (0, 1, 0), as for every form that is not a line."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(7)
    n = 40
    kinds = np.zeros((n, len(UNIT_KINDS)))
    kinds[:, :4] = rng.uniform(0.1, 1.0, (n, 4))
    units = rng.integers(3, 30, n).astype(np.float64)
    total = kinds.sum(axis=1)
    measured = total * np.exp(0.2 + 0.4 * kinds[:, 1] / total - 0.1 * np.log(units)
                              + 0.05 * rng.normal(size=n))
    fitted = fit_correction(total, units, measured, kinds=kinds, only=["log_ratio"])
    features = np.column_stack([kinds / total[:, None], np.log(total), np.log(units)])
    ridge = Ridge(alpha=0.1 * n).fit(features, np.log(measured / total))
    model = fitted["log_ratio"]
    assert list(model["weights"].values()) == pytest.approx(ridge.coef_, abs=1e-9)
    assert model["intercept"] == pytest.approx(ridge.intercept_, abs=1e-9)
    assert model["log_sum_range"] == pytest.approx([np.log(total).min(), np.log(total).max()])
    assert (fitted["intercept_ms"], fitted["scale"], fitted["per_unit_ms"]) == (0.0, 1.0, 0.0)


def test_a_log_ratio_model_clips_the_log_sum_to_its_range_and_reads_missing_weights_as_0(
        ) -> None:
    conv = UNIT_KINDS.index("conv")
    kinds = np.zeros((4, len(UNIT_KINDS)))
    kinds[:, conv] = [np.e ** 0.5, np.e ** 3, 1.0, 0.0]  # log sums 0.5, 3 (clipped to 1), 0
    units = np.array([1.0, 1.0, 4.0, 0.0])
    model = {"intercept": 0.1, "weights": {"log_sum": 0.5, "log_units": 0.2},  # no shares:
             "log_sum_range": [0.0, 1.0]}                                       # weight 0
    predicted = predict_corrected({"log_ratio": model}, kinds, units)
    expected = kinds[:, conv] * np.exp(0.1 + 0.5 * np.array([0.5, 1.0, 0.0, 0.0])
                                       + 0.2 * np.log([1.0, 1.0, 4.0, 1.0]))
    assert predicted == pytest.approx(expected, rel=1e-12)
    assert predicted[3] == 0.0  # a network without timed units: 0 ms, not NaN


def test_a_per_kind_correction_keeps_a_kind_it_has_no_scale_for_at_its_table_time() -> None:
    kinds = np.zeros((2, len(UNIT_KINDS)))
    kinds[0, UNIT_KINDS.index("conv")] = 2.0
    kinds[1, UNIT_KINDS.index("dwsep")] = 2.0  # a kind the stored scales do not name
    coef = {"form": "per_kind", "intercept_ms": 0.1, "scale": 1.0, "per_unit_ms": 0.0,
            "kind_scale": {"conv": 1.5}}
    assert predict_corrected(coef, kinds, np.array([3.0, 3.0])) == pytest.approx([3.1, 2.1])


def test_unit_times_are_summed_per_kind_of_unit() -> None:
    """A block's units count as its op, the stem, pooling and head units as their role;
    skipped blocks have no unit. The sums add up to the plain unit sum."""
    from edgenas.profile.keys import unit_key
    from edgenas.space.plan import sites

    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    for seed in range(5):
        arch = get_space("cifar").sample(seed)
        expected = dict.fromkeys(UNIT_KINDS, 0.0)
        timed = [s for s in sites(arch) if not s.unit.is_identity]
        for site in timed:
            kind = site.block.op if site.block is not None else site.role
            expected[kind] += lut.entries[unit_key(site.unit, site.height)].median_ms
        kinds, units = kind_sums(lut, arch)
        assert dict(zip(UNIT_KINDS, kinds)) == pytest.approx(expected, rel=1e-12)
        assert units == len(timed) and unit_sum(lut, arch) == (pytest.approx(kinds.sum()), units)
        assert all(cost is None for _, _, cost in unit_rows(lut, arch))  # counted on request


def test_a_re_anchored_table_scales_every_prediction_by_its_anchor() -> None:
    from edgenas.profile.boosted import FEATURES

    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    arch = get_space("cifar").sample(1)
    lut.correction = {"form": "scale", "intercept_ms": 0.0, "scale": 0.5, "per_unit_ms": 0.0,
                      "min_sum_ms": 0.0}
    lut.timing["anchor"] = {"ratio": 1.5}
    plain = 0.5 * unit_sum(lut, arch)[0]
    assert LatencyModel(lut).predict(arch) == pytest.approx(1.5 * plain, rel=1e-12)
    assert LatencyModel(lut, anchored=False).predict(arch) == pytest.approx(plain, rel=1e-12)
    # whole-network trees: one leaf, so the trees say exp(init) = 2 ms whatever the arch
    leaf = {"feature": [-2], "threshold": [-2.0], "left": [-1], "right": [-1], "value": [0.0]}
    lut.correction = {"form": "boosted", "intercept_ms": 0.0, "scale": 1.0, "per_unit_ms": 0.0,
                      "boosted": {"features": list(FEATURES), "init": float(np.log(2.0)),
                                  "step": 0.05, "trees": [leaf], "networks": 60}}
    assert LatencyModel(lut).predict(arch) == pytest.approx(3.0, rel=1e-12)
    assert LatencyModel(lut, anchored=False).predict(arch) == pytest.approx(2.0, rel=1e-12)
    del lut.timing["anchor"]  # never re-anchored: the yardstick's level
    assert LatencyModel(lut).predict(arch) == pytest.approx(2.0, rel=1e-12)


def test_below_the_edge_only_a_line_with_a_negative_term_keeps_its_edge_ratio() -> None:
    """A line whose every term is a cost (>= 0; 0 counts) is applied as it is at any size;
    one with a negative term (a kind's scale too) scales a network below the smallest fitted
    sum up to it and keeps the ratio there; a table without a recorded edge has none. A
    network with no timed units gets the line at no units, or 0 where that is not positive."""
    conv, mbconv = UNIT_KINDS.index("conv"), UNIT_KINDS.index("mbconv")
    kinds = np.zeros((3, len(UNIT_KINDS)))
    kinds[0, conv] = 0.5   # below the edge (2 ms)
    kinds[1, conv] = 1.0   # below the edge
    units = np.array([1.0, 0.0, 0.0])
    costs = {"intercept_ms": 0.1, "scale": 1.0, "per_unit_ms": 0.0, "min_sum_ms": 2.0}
    assert predict_corrected(costs, kinds, units) == pytest.approx([0.6, 1.1, 0.1])
    negative_kind = {**costs, "kind_scale": {"conv": 1.2, "mbconv": -0.1}}
    # (0.1 + 1.2 x 0.5 x 4) / 4 and (0.1 + 1.2 x 1.0 x 2) / 2; no units: the intercept
    assert predict_corrected(negative_kind, kinds, units) == pytest.approx([0.625, 1.25, 0.1])
    negative = {"intercept_ms": -0.05, "scale": 1.2, "per_unit_ms": 0.0}  # no edge recorded
    assert predict_corrected(negative, kinds, units) == pytest.approx([0.55, 1.15, 0.0])
    assert predict_corrected({**negative, "min_sum_ms": 2.0}, kinds[:2], units[:2]) == \
        pytest.approx([0.5875, 1.175])
    kinds[2, mbconv] = 1.0  # a kind the line slows down below zero: the plain sum
    assert predict_corrected(negative_kind, kinds[2:], np.array([3.0]))[0] == 1.0


def test_a_line_that_predicts_exactly_no_time_gives_the_plain_sum() -> None:
    kinds = np.zeros((1, len(UNIT_KINDS)))
    kinds[0, UNIT_KINDS.index("conv")] = 1.0
    zero = {"intercept_ms": -1.0, "scale": 1.0, "per_unit_ms": 0.0}  # -1 + 1 x 1 ms
    assert predict_corrected(zero, kinds, np.array([4.0])).tolist() == [1.0]


def test_the_cross_validated_error_is_measured_on_networks_left_out_of_the_fit() -> None:
    """Five folds of a seeded order (numpy's default_rng(0)), by default: each network's
    error comes from the form fitted on the other folds."""
    rng = np.random.default_rng(8)
    sums = rng.uniform(0.5, 2.0, 12)
    measured = sums * rng.uniform(0.8, 1.2, 12)  # a scale that differs from fold to fold
    fitted = fit_correction(sums, np.full(12, 5.0), measured, only=["scale"])
    assert fitted["cv_folds"] == 5
    order = np.random.default_rng(0).permutation(12)
    predicted = np.empty(12)
    for fold in range(5):
        test = order[fold::5]
        train = np.setdiff1d(order, test)
        ratio = sums[train] / measured[train]  # least squares on relative error
        predicted[test] = ratio.sum() / (ratio ** 2).sum() * sums[test]
    error = np.abs(predicted - measured) / measured
    assert fitted["cv"]["scale"]["mean_abs_pct_error"] == pytest.approx(100 * error.mean())
    assert fitted["cv"]["scale"]["within_10pct"] == np.mean(error <= 0.10)


def test_times_given_as_integers_are_fitted_as_numbers() -> None:
    sums = [2.0, 3.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0]
    measured = [3, 4, 6, 5, 8, 9, 8, 11]  # whole microseconds, say
    as_ints = fit_correction(sums, [4] * 8, measured)
    assert as_ints == fit_correction(sums, [4.0] * 8, [float(m) for m in measured])


def test_whole_network_trees_are_a_candidate_from_60_timed_networks() -> None:
    rng = np.random.default_rng(9)
    sums = rng.uniform(0.5, 2.0, 60)
    features = rng.normal(size=(60, len(FEATURES)))
    fitted = fit_correction(sums, np.full(60, 5.0), 1.1 * sums, features=features,
                            only=["none", "boosted"])
    assert set(fitted["cv"]) == {"none", "boosted"}
    fewer = fit_correction(sums[:59], np.full(59, 5.0), 1.1 * sums[:59],
                           features=features[:59], only=["none", "boosted"])
    assert set(fewer["cv"]) == {"none"}


def test_a_schema_1_table_is_read_in_schema_2_names_and_predicts_the_same(tmp_path: Path
                                                                          ) -> None:
    """Schema 1 called the table-fitting networks "calibration" (also INT8's word) and used
    "reference_ms" for the table's yardstick and for a timing's neighbouring references.
    A committed schema 1 table must keep working: read, renamed, and written back as 2."""
    import json

    from edgenas.profile.lut import FITTING, SCHEMA_VERSION, upgrade_schema_1
    record = {"median_ms": 2.0, "raw_median_ms": 2.2, "reference_ms": 1.1,
              "chunk_reference_ms": 1.05, "yardstick_ms": 1.0}
    old = {"schema_version": 1, "device": "d", "space": "cifar", "space_hash": "h",
           "runtime": {}, "fingerprint": {},
           "timing": {"protocol": {"reference_ms": 1.0, "level": "chunk",
                                   "level_agreement": {"none": {"median_gap_pct": 3.0}}}},
           "entries": {"k0": dict(record)},
           "networks": {"calibration": [{"arch": "{}", "measured_ms": 2.0, "rounds": [2.0],
                                         "timed": [dict(record)]}],
                        "validation": [{"arch": "{}", "measured_ms": 2.0, "rounds": []}]}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(old))
    lut = load_lut(path)
    assert set(lut.networks) == {FITTING, "validation"} and FITTING == "fitting"
    assert lut.timing["protocol"]["yardstick_ms"] == 1.0
    assert lut.timing["protocol"]["level_scores"] == {"none": {"median_gap_pct": 3.0}}
    assert "reference_ms" not in lut.timing["protocol"]
    entry, timed = lut.entries["k0"], lut.networks[FITTING][0].timed[0]
    for stored in (_record(entry), timed):
        assert stored.neighbour_reference_ms == 1.1 and "reference_ms" not in stored.extra
        assert stored.chunk_reference_ms == 1.05
    assert "reference_ms" not in entry.extra
    assert entry.median_ms == 2.0 and timed.extra["median_ms"] == 2.0
    save_lut(lut, path)
    again = json.loads(path.read_text())
    assert again["schema_version"] == SCHEMA_VERSION == 2
    assert upgrade_schema_1(old)["networks"][FITTING] == again["networks"][FITTING]
    assert old["networks"]["calibration"][0]["timed"][0]["reference_ms"] == 1.1  # not mutated
    with pytest.raises(ProfileError, match="schema_version: 3 is not supported"):
        load_lut(path.with_name("t3.json")) if path.with_name("t3.json").write_text(
            json.dumps({**old, "schema_version": 3})) else None


def test_a_table_naming_an_unknown_level_is_refused_with_the_levels_there_are() -> None:
    """A hand-edited level must not be read as some other level (it was: anything but
    "none" or "neighbours" scaled by the chunk's reference)."""
    from edgenas.profile.level import LEVELS, factor
    from edgenas.profile.timing import load_guard
    timing = LoadRecord(2.0, 2.0, 4.0, 1.0)
    assert [factor(timing, name) for name in LEVELS] == [0.5, 0.25, 1.0]
    with pytest.raises(ProfileError) as refused:
        factor(timing, "chunks")
    assert str(refused.value) == (
        "timing.protocol.level: 'chunks' is not a level of load; use one of neighbours, "
        "chunk, none, or re-run 'edgenas profile DEVICE --recalibrate' to choose one by "
        "measurement")
    device, lut = get_device("host-cpu"), load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    lut.timing["protocol"] = {"yardstick_ms": 1.83, "level": "neigbours"}
    with pytest.raises(ProfileError, match="host-cpu's cifar table: timing.protocol.level: "
                                           "'neigbours' is not a level"):
        load_guard(device, get_space("cifar"), lut)


def test_a_table_s_front_residual_moves_predictions_near_the_archs_it_was_measured_on() -> None:
    """A measured front leaves its table a residual (`edgenas.profile.residual`): archs
    predicted near the measured ones are moved by the ratio measured there, so a prediction
    is the corrected sum times the residual's factor at that prediction, and far from every
    measured arch the factor fades to 1."""
    import copy

    from edgenas.profile.residual import fit_residual, residual_factor
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    # the table as profiled, without a residual of its own (the main job, run in this
    # checkout before the tests, may have measured a front and left one)
    lut.correction = {key: value for key, value in (lut.correction or IDENTITY).items()
                      if key != "residual"}
    space = get_space("cifar")
    archs = [space.sample(s) for s in range(4)]
    plain = LatencyModel(lut, anchored=False)
    base = [plain.predict(a) for a in archs]
    residual = fit_residual(base, [1.3 * b for b in base])  # the device ran them 30 % slower
    with_residual = copy.deepcopy(lut)
    with_residual.correction = {**lut.correction, "residual": residual}
    model = LatencyModel(with_residual, anchored=False)
    for arch, b in zip(archs, base):
        assert model.predict(arch) == pytest.approx(b * residual_factor(residual, b))
        assert b * 1.05 < model.predict(arch) < b * 1.3  # moved towards, held back by the prior
    far = min(base) / 1e3  # a prediction a thousand times smaller than any measured arch
    assert residual_factor(residual, far) == pytest.approx(1.0, abs=1e-6)
