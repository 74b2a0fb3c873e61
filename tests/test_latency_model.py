"""The latency model beyond the unit sum: whole-network boosted trees, and the load guard that
keeps a busy spell of a shared host out of the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import pytest

from edgenas.profile.boosted import FEATURES, BoostedModel, fit_boosted
from edgenas.profile.latency import LatencyModel, arch_features, fit_correction, unit_sum
from edgenas.profile.lut import load_lut, save_lut
from edgenas.profile.profiler import LoadGuard, Progress, fit_on, time_batch
from edgenas.space.arch import Arch
from edgenas.space import get_space

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
    items = [i for label in ("calibration", "validation") for i in lut.networks.get(label, [])]
    archs = [Arch.from_json(i["arch"]) for i in items]
    assert len(archs) >= 60
    # a device on which networks with a 28-pixel input are 1.5x what their units say
    measured = [unit_sum(lut, a)[0] * (1.5 if a.resolution == 28 else 1.0) for a in archs]
    fit_on(lut, archs, measured)
    lut.correction["form"] = "boosted"  # whatever the cross-validation chose: store the trees
    lut.correction["boosted"] = fit_boosted(
        np.array([arch_features(lut, a) for a in archs]), np.array(measured))
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

    stored: dict[str, dict[str, float]] = {}
    steps: list[int] = []
    guard = LoadGuard(_reference(), every=5)
    time_batch(_Session(load), _models(15), stored.__setitem__,  # type: ignore[arg-type]
               chunk=15, checkpoint=lambda: None, progress=Progress(advance=steps.append),
               guard=guard)
    assert steps == [15]  # a scaled batch arrives whole: one step, not fifteen at one instant
    assert guard.reference_ms == pytest.approx(1.0)
    truth = {f"k{i}": 0.1 * (1 + i) for i in range(15)}
    assert {k: v["median_ms"] for k, v in stored.items()} == pytest.approx(truth)
    assert any(v["raw_median_ms"] > 1.4 * truth[k] for k, v in stored.items())
    assert guard.summary()["load_p90"] == pytest.approx(1.5)


def test_a_model_between_a_quiet_and_a_busy_reference_is_scaled_by_their_mean() -> None:
    stored: dict[str, dict[str, float]] = {}
    # order after the burst: ref0 (1.0), k0, k1, ref1 (2.0)
    guard = LoadGuard(_reference(), every=2)
    time_batch(_Session(lambda call: 2.0 if call >= 23 else 1.0), _models(2),
               stored.__setitem__, chunk=2, checkpoint=lambda: None,  # type: ignore[arg-type]
               progress=Progress(), guard=guard)
    assert stored["k0"]["reference_ms"] == pytest.approx(1.5)
    assert stored["k0"]["median_ms"] == pytest.approx(0.1 / 1.5)
    assert stored["k1"]["median_ms"] == pytest.approx(0.2 / 1.5)


def test_timings_against_a_table_use_its_reference_level_and_a_new_table_measures_one() -> None:
    """The host ran the reference at 1.25 ms in one 10-minute stretch and 1.83 ms in the
    next: a benchmark or resumed profile must scale to the table's level, not its own."""
    from edgenas.device.descriptor import get_device
    from edgenas.profile.profiler import load_guard

    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    device = get_device("host-cpu")
    lut.timing.pop("protocol", None)
    assert load_guard(device, get_space("cifar"), lut).reference_ms is None  # type: ignore[union-attr]
    lut.timing["protocol"] = {"reference_ms": 1.83}
    assert load_guard(device, get_space("cifar"), lut).reference_ms == 1.83  # type: ignore[union-attr]
    assert load_guard(device, get_space("cifar")).reference_ms is None  # type: ignore[union-attr]


def _input_size(model: Any) -> int:
    return model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value


def test_a_new_table_is_scaled_by_a_reference_of_its_own_space_an_old_one_keeps_cifars() -> None:
    """Load slows a 25 ms `imagenet` network less than a 1.5 ms `cifar` one: the reference
    must be the size of what it scales. A table that records no reference space was
    measured against `cifar`'s, and a resumed profile must keep using that one."""
    from edgenas.device.descriptor import get_device
    from edgenas.profile.profiler import load_guard, reference_network

    device = get_device("host-cpu")
    big, small = (_input_size(reference_network(get_space(s))) for s in ("imagenet", "cifar"))
    assert big > small
    fresh = load_guard(device, get_space("imagenet"))
    assert fresh is not None and fresh.space == "imagenet" and _input_size(fresh.reference) == big
    assert fresh.summary()["reference_space"] == "imagenet"
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    lut.space = "imagenet"
    lut.timing["protocol"] = {"reference_ms": 1.83}  # written before reference spaces
    old = load_guard(device, get_space("imagenet"), lut)
    assert old is not None and old.space == "cifar" and _input_size(old.reference) == small
    lut.timing["protocol"] = {"reference_ms": 24.0, "reference_space": "imagenet"}
    assert load_guard(device, get_space("imagenet"), lut).space == "imagenet"  # type: ignore[union-attr]


def _network(raw: list[float], local: list[float], chunk: list[float]) -> dict[str, Any]:
    """A table-fitting network's record: its rounds as timed and their references (the
    table's yardstick is 1 ms), its rounds at the default level (neighbours)."""
    timed = [{"raw_median_ms": r, "reference_ms": n, "chunk_reference_ms": c, "yardstick_ms": 1.0}
             for r, n, c in zip(raw, local, chunk)]
    rounds = [r / n for r, n in zip(raw, local)]
    return {"arch": "{}", "rounds": rounds, "measured_ms": float(np.median(rounds)),
            "timed": timed}


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
    assert choose([{"arch": "{}", "rounds": [1.0, 1.1], "measured_ms": 1.05}]) == ("neighbours", {})


def test_a_chosen_level_expresses_every_unit_and_network_by_it_and_refits() -> None:
    from edgenas.profile.profiler import set_level

    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    key = next(iter(lut.entries))
    lut.entries = {key: {"median_ms": 0.5, "p10_ms": 0.45, "raw_median_ms": 1.0,
                         "reference_ms": 2.0, "chunk_reference_ms": 1.0, "yardstick_ms": 1.0}}
    rng = np.random.default_rng(1)
    lut.networks = {"calibration": [_network([t, t], list(j), [1.0, 1.0]) for t, j in
                                    zip(rng.uniform(0.5, 3, 30), rng.uniform(0.8, 1.25, (30, 2)))]}
    guard = LoadGuard(_reference(), reference_ms=1.0)
    set_level(lut, guard)
    assert guard.level == "chunk" and lut.correction is None
    assert lut.entries[key]["median_ms"] == pytest.approx(1.0)  # raw x 1 ms / 1 ms
    assert lut.entries[key]["p10_ms"] == pytest.approx(0.9)
    item = lut.networks["calibration"][0]
    assert item["rounds"] == pytest.approx([t["raw_median_ms"] for t in item["timed"]])
    assert guard.summary()["level"] == "chunk" and guard.summary()["level_agreement"]


def test_at_the_chunk_level_a_model_is_scaled_by_its_chunks_median_reference() -> None:
    stored: dict[str, dict[str, float]] = {}
    # after the burst: ref0 (1.0), k0, k1, ref1 (2.0), k2, k3, ref2 (2.0): chunk median 2.0
    guard = LoadGuard(_reference(), every=2, level="chunk")
    time_batch(_Session(lambda call: 2.0 if call >= 23 else 1.0), _models(4),
               stored.__setitem__, chunk=4, checkpoint=lambda: None,  # type: ignore[arg-type]
               progress=Progress(), guard=guard)
    assert stored["k0"]["chunk_reference_ms"] == pytest.approx(2.0)
    assert stored["k0"]["median_ms"] == pytest.approx(0.1 / 2.0)
    assert stored["k0"]["reference_ms"] == pytest.approx(1.5)  # kept for the other levels
