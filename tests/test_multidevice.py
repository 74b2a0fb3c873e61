"""One search for several devices: a latency objective per device, each from its own table;
picks judged on the device they are for; a front plot per device.

Two host-cpu descriptors (1 and 2 ONNX Runtime threads). The second one's table is the
committed one-thread table with depth-wise units made 3x cheaper and the rest 0.6x: a
device that ranks archs differently, built without timing anything (no test may depend on
this host's speed).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgenas.cli import main
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import load_lut, save_lut
from edgenas.search.objectives import Evaluator, SearchError, latency_metric
from edgenas.search.pareto import FASTEST_LATENCY_TOLERANCE, non_dominated

ROOT = Path(__file__).resolve().parents[1]
LUT_FILE = ROOT / "profiles" / "host-cpu" / "cifar.json"
TWO_THREADS = """name = "host-cpu-2t"
notes = "host-cpu with two ONNX Runtime threads (test device)"
[connection]
kind = "local"
[runtime]
name = "onnxruntime"
providers = ["CPUExecutionProvider"]
threads = 2
precision = "fp32"
"""


@pytest.fixture()
def two_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the second descriptor and both tables."""
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "host-cpu-2t.toml").write_text(TWO_THREADS)
    profiles = tmp_path / "profiles"
    # both tables as plain unit sums: the second one's units are the first's scaled down,
    # so it is the faster device whatever correction the checkout's table carries (the
    # main job refits that table in place on a host where it is off)
    first = load_lut(LUT_FILE)
    first.correction = None
    save_lut(first, profiles / "host-cpu" / "cifar.json")
    lut = load_lut(LUT_FILE)
    lut.device = "host-cpu-2t"
    lut.runtime = {**lut.runtime, "threads": 2}
    lut.entries = {key: replace(entry, median_ms=entry.median_ms * (
        1 / 3 if "dw" in key or "mbconv" in key else 0.6)) for key, entry in lut.entries.items()}
    lut.correction = None
    save_lut(lut, profiles / "host-cpu-2t" / "cifar.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_device_is_its_own_objective(two_devices: Path) -> None:
    models = {name: LatencyModel(load_lut(two_devices / "profiles" / name / "cifar.json"))
              for name in ("host-cpu", "host-cpu-2t")}
    evaluator = Evaluator(("accuracy", *map(latency_metric, models), "memory"),
                          latency_models=models, accuracy_fn=lambda arch: 0.5)
    from edgenas import get_space

    arch = get_space("cifar").sample(3)
    metrics = evaluator.cheap_metrics(arch)
    for name, model in models.items():
        assert metrics[latency_metric(name)] == pytest.approx(model.predict(arch))
    assert metrics["latency@host-cpu-2t"] < metrics["latency@host-cpu"]
    with pytest.raises(SearchError, match="name each latency"):
        Evaluator(("accuracy", "latency"), latency_models=models, accuracy_fn=lambda a: 0.5)
    with pytest.raises(SearchError, match="latency@jetson"):
        Evaluator(("latency@jetson",), latency_models=models)


def test_search_over_two_devices_gives_one_front_for_both(two_devices: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    out = two_devices / "run"
    # the second table is the first one doctored by this test: timing the front against it
    # would measure the doctoring (the measured front is tested on a scripted device)
    main(["search", "--device", "host-cpu,host-cpu-2t", "--allow-stale", "--estimator",
          "macs", "--trials", "40", "--population", "10", "--out", str(out),
          "--no-measure-front"])
    summary = json.loads((out / "front.json").read_text())
    objectives = summary["objectives"]
    assert objectives == ["accuracy", "latency@host-cpu", "latency@host-cpu-2t", "memory"]
    points = np.array([[-r["accuracy"], r["latency@host-cpu"], r["latency@host-cpu-2t"],
                        r["memory"]] for r in summary["front"]])
    assert non_dominated(points).all()

    capsys.readouterr()
    for device in ("host-cpu", "host-cpu-2t"):
        main(["pareto", str(out), "--pick", "fastest", "--device", device, "--json"])
        chosen = json.loads(capsys.readouterr().out)
        key = latency_metric(device)
        # the rule: the most accurate arch within the tolerance of the lowest latency
        lowest = min(r[key] for r in summary["front"])
        tied = [r for r in summary["front"]
                if r[key] <= lowest * (1 + FASTEST_LATENCY_TOLERANCE)]
        assert chosen[key] <= lowest * (1 + FASTEST_LATENCY_TOLERANCE)
        assert chosen["accuracy"] == max(r["accuracy"] for r in tied)
    limit = sorted(r["latency@host-cpu-2t"] for r in summary["front"])[len(summary["front"]) // 2]
    main(["pareto", str(out), "--pick", "best", "--max-latency-ms", str(limit), "--device",
          "host-cpu-2t", "--json"])
    best = json.loads(capsys.readouterr().out)
    assert best["latency@host-cpu-2t"] <= limit
    # which device's latency the budget is on must be said
    assert main(["pareto", str(out), "--pick", "best", "--max-latency-ms", str(limit)]) != 0
    assert "host-cpu, host-cpu-2t" in capsys.readouterr().err
