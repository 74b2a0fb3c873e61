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
    """Times models by a script: ``load(attempt)`` slows everything of that attempt down."""

    def __init__(self, load: Callable[[int], float]) -> None:
        self.load, self.attempt = load, 0

    def time_models(self, files: list[Path], handle: Callable[[dict[str, Any]], None]) -> None:
        factor = self.load(self.attempt)
        self.attempt += 1
        for file in files:
            base = 1.0 if file.name.startswith("ref") else 0.1 * (1 + int(file.stem[1:]))
            handle({"model": file.name, "median_ms": base * factor})


def _models(n: int) -> dict[str, onnx.ModelProto]:
    graph = onnx.helper.make_graph([], "empty", [], [])
    return {f"k{i}": onnx.helper.make_model(graph) for i in range(n)}


def test_a_chunk_timed_under_load_is_timed_again() -> None:
    stored: dict[str, float] = {}
    guard = LoadGuard(onnx.helper.make_model(onnx.helper.make_graph([], "ref", [], [])))
    session = _Session(lambda attempt: [1.0, 1.4, 1.02][attempt])  # a busy spell, then quiet
    for _ in range(2):  # chunk 1 quiet; chunk 2 loaded, timed again quiet
        time_batch(session, _models(3), lambda k, s: stored.__setitem__(k, s["median_ms"]),  # type: ignore[arg-type]
                   chunk=3, checkpoint=lambda: None, progress=Progress(), guard=guard)
    assert guard.chunks == 2 and guard.retimed == 1 and guard.kept_loaded == 0
    assert stored == pytest.approx({"k0": 0.102, "k1": 0.204, "k2": 0.306})


def test_a_chunk_loaded_every_time_keeps_its_least_loaded_attempt() -> None:
    stored: dict[str, float] = {}
    guard = LoadGuard(onnx.helper.make_model(onnx.helper.make_graph([], "ref", [], [])),
                      retries=2)
    session = _Session(lambda attempt: [1.0, 1.5, 1.3, 1.4][attempt])
    for _ in range(2):
        time_batch(session, _models(2), lambda k, s: stored.__setitem__(k, s["median_ms"]),  # type: ignore[arg-type]
                   chunk=2, checkpoint=lambda: None, progress=Progress(), guard=guard)
    assert guard.retimed == 2 and guard.kept_loaded == 1
    assert stored == pytest.approx({"k0": 0.13, "k1": 0.26})
    assert guard.summary()["reference_ms"] == pytest.approx(1.0)
