"""`edgenas deploy`: measured against predicted, judged beyond the measurement's own spread.

The timings come from a scripted agent (a stand-in for the device's Python that prints the
round times it is given), so each side of the drift threshold is shown exactly; the real
agent's timing is covered by test_export and test_ssh.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgenas import get_space
from edgenas.cli import main
from edgenas.device.descriptor import get_device
from edgenas.device.session import DeviceSession
from edgenas.errors import DeviceError
from edgenas.export.bundle import export_bundle
from edgenas.nn.model import build_model

ARCH = get_space("cifar").sample(3)
PREDICTED_MS = 1.0

SCRIPTED_AGENT = """#!{python}
# A scripted timing agent: each model's median is the next value of $SCRIPTED_ROUNDS_MS.
import json, os, sys
args = sys.argv[2:]
if args[0] == "fingerprint":
    print(json.dumps({{"machine": "scripted", "cpu": "scripted"}}))
    sys.exit(0)
times = json.loads(os.environ["SCRIPTED_ROUNDS_MS"])
models = [a for a in args[1:] if a.endswith(".onnx")]
for model, ms in zip(models, times):
    print(json.dumps({{"model": os.path.basename(model), "median_ms": ms, "p10_ms": ms,
                      "p90_ms": ms, "min_ms": ms, "mean_ms": ms, "spread": 0.0, "n": 10}}))
"""


def untrained_bundle(out: Path, device: str, predicted_ms: float, lut: str = "scripted") -> Path:
    """An untrained FP32 bundle of ARCH whose metrics predict ``predicted_ms`` on ``device``
    (from table ``lut``; its labels ``class-0`` to ``class-9``)."""
    torch.manual_seed(0)
    inputs = torch.randn(8, 3, ARCH.resolution, ARCH.resolution).numpy()
    export_bundle(ARCH, build_model(ARCH).eval(), out, val_inputs=inputs,
                  val_labels=torch.zeros(8, dtype=torch.int64).numpy(), calibration=inputs,
                  preprocess={"resolution": ARCH.resolution, "channels": 3,
                              "mean": [0.5] * 3, "std": [0.25] * 3},
                  labels=[f"class-{i}" for i in range(10)], formats=("onnx",),
                  predicted_latency={device: {"ms": predicted_ms, "lut": lut,
                                              "lut_updated": "scripted"}})
    return out


@pytest.fixture(scope="module")
def predicted_bundle(tmp_path_factory) -> Path:
    """An (untrained, FP32) bundle whose metrics predict PREDICTED_MS on `scripted-timer`."""
    return untrained_bundle(tmp_path_factory.mktemp("bundle"), "scripted-timer", PREDICTED_MS)


@pytest.fixture
def scripted_timer(tmp_path, monkeypatch) -> None:
    """A device `scripted-timer` in ./devices whose 'Python' is the scripted agent."""
    agent = tmp_path / "scripted_agent"
    agent.write_text(SCRIPTED_AGENT.format(python=sys.executable))
    agent.chmod(0o755)
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "scripted-timer.toml").write_text(
        f'name = "scripted-timer"\n[connection]\nkind = "local"\npython = "{agent}"\n')
    monkeypatch.chdir(tmp_path)


def _deploy(bundle: Path, rounds_ms: list[float], monkeypatch, capsys,
            rounds: int | None = None) -> dict:
    """Deploy ``bundle`` on `scripted-timer`, which times its models at ``rounds_ms`` in
    order (``rounds``: how many of them are the model's rounds; all by default)."""
    monkeypatch.setenv("SCRIPTED_ROUNDS_MS", json.dumps(rounds_ms))
    assert main(["deploy", str(bundle), "--device", "scripted-timer",
                 "--rounds", str(rounds or len(rounds_ms))]) == 0
    printed = capsys.readouterr().out
    report = json.loads((bundle / "deploy" / "scripted-timer.json").read_text())
    report["printed"] = printed
    return report


@pytest.mark.parametrize("rounds_ms", [[0.95, 0.97, 1.0, 1.02, 0.99], [0.91] * 5, [1.11] * 5])
def test_a_prediction_within_10_percent_of_a_round_is_not_drifting(
        predicted_bundle, scripted_timer, monkeypatch, capsys, rounds_ms) -> None:
    report = _deploy(predicted_bundle, rounds_ms, monkeypatch, capsys)
    assert report["lut_drifting"] is False
    assert report["latency_ms"]["rounds_ms"] == rounds_ms
    assert "the table holds" in report["printed"]


@pytest.mark.parametrize("rounds_ms, sign", [([0.90] * 5, +1), ([0.80, 0.81, 0.82, 0.80, 0.81], +1),
                                             ([1.12] * 5, -1), ([1.25, 1.3, 1.28, 1.3, 1.27], -1)])
def test_a_prediction_further_than_10_percent_from_every_round_is_drifting(
        predicted_bundle, scripted_timer, monkeypatch, capsys, rounds_ms, sign) -> None:
    report = _deploy(predicted_bundle, rounds_ms, monkeypatch, capsys)
    assert report["lut_drifting"] is True
    median = sorted(rounds_ms)[len(rounds_ms) // 2]
    assert report["prediction_error"] == pytest.approx((PREDICTED_MS - median) / median)
    assert (report["prediction_error"] > 0) == (sign > 0)  # + : the table predicts too slow
    assert "drifting" in report["printed"]


def test_a_spread_that_reaches_the_prediction_is_not_called_drift(
        predicted_bundle, scripted_timer, monkeypatch, capsys) -> None:
    # the median round is 18 % faster than predicted, but one round lies within 10 %: the
    # measurement itself does not tell the table is off
    report = _deploy(predicted_bundle, [0.80, 0.80, 0.82, 0.93, 0.95], monkeypatch, capsys)
    assert report["prediction_error"] == pytest.approx(1.0 / 0.82 - 1)
    assert report["lut_drifting"] is False
    assert report["latency_ms"]["round_spread"] == pytest.approx((0.95 - 0.80) / 0.82)
    assert "spread 18.3 %" in report["printed"]


def test_a_device_python_without_the_runtime_is_one_line_naming_the_package(tmp_path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    device = get_device("host-cpu")
    from dataclasses import replace

    device = replace(device, name="bare-board",
                     connection=replace(device.connection, python=str(bare / "bin" / "python")))
    with DeviceSession(device) as session, pytest.raises(DeviceError) as raised:
        session.fingerprint()
    message = str(raised.value)
    assert message.startswith("bare-board: the device's Python")
    assert "lacks numpy onnxruntime" in message and "--no-index --find-links" in message
    assert "\n" not in message and "Traceback" not in message


# -- the load check: the table's reference network timed between the rounds -------------------

YARDSTICK_MS = 2.0


def _tabled_bundle(tmp_path: Path, predicted_ms: float, anchor: float | None = None) -> Path:
    """A bundle predicting ``predicted_ms`` on `scripted-timer` from a table that is here
    (its yardstick `YARDSTICK_MS`; re-anchored by ``anchor`` when given)."""
    from edgenas.profile.lut import LUT, save_lut

    lut = LUT.new(get_device("scripted-timer"), get_space("cifar"), {"machine": "scripted"})
    lut.timing["protocol"] = {"reference_space": "cifar", "yardstick_ms": YARDSTICK_MS,
                              "level": "neighbours"}
    if anchor is not None:
        lut.timing["anchor"] = {"ratio": anchor}
    table = tmp_path / "profiles" / "scripted-timer" / "cifar.json"
    table.parent.mkdir(parents=True)
    save_lut(lut, table)
    return untrained_bundle(tmp_path / "bundle", "scripted-timer", predicted_ms, str(table))


def _interleaved(references_ms: list[float], rounds_ms: list[float]) -> list[float]:
    """The order deploy times in: a reference before, between and after the rounds."""
    return [t for pair in zip(references_ms, rounds_ms) for t in pair] + [references_ms[-1]]


def test_a_busy_device_is_not_called_a_drifting_table(scripted_timer, tmp_path, monkeypatch,
                                                      capsys) -> None:
    # the device runs 20 % slow (so does the reference network beside the model): the raw
    # time misses the prediction by 17 %, the table at its own level is exact
    bundle = _tabled_bundle(tmp_path, PREDICTED_MS)
    report = _deploy(bundle, _interleaved([2.4] * 6, [1.2] * 5), monkeypatch, capsys, 5)
    assert report["latency_ms"]["rounds_ms"] == [1.2] * 5
    assert report["prediction_error"] == pytest.approx(1.0 / 1.2 - 1)
    load = report["load"]
    assert load["ratio"] == pytest.approx(1.2)
    assert load["rounds_at_table_level_ms"] == pytest.approx([1.0] * 5)
    assert load["prediction_error_at_table_level"] == pytest.approx(0.0)
    assert report["lut_drifting"] is False
    assert "1.20x its yardstick" in report["printed"] and "the table holds" in report["printed"]


def test_a_quiet_device_slower_than_predicted_is_a_drifting_table(scripted_timer, tmp_path,
                                                                   monkeypatch, capsys) -> None:
    bundle = _tabled_bundle(tmp_path, PREDICTED_MS)
    references = [2.0, 2.0, 2.1, 2.0, 1.9, 2.0]
    report = _deploy(bundle, _interleaved(references, [1.25] * 5), monkeypatch, capsys, 5)
    load = report["load"]
    assert load["references_ms"] == references
    # each round scaled by the mean of the references either side of it
    expected = [1.25 * 2.0 / ((a + b) / 2) for a, b in zip(references, references[1:])]
    assert load["rounds_at_table_level_ms"] == pytest.approx(expected)
    assert report["lut_drifting"] is True and "drifting" in report["printed"]


def test_a_reanchored_prediction_is_judged_at_the_tables_yardstick(scripted_timer, tmp_path,
                                                                   monkeypatch, capsys) -> None:
    # re-anchored at 1.1x: the bundle predicts 1.1 ms, the device still runs at 1.1x
    bundle = _tabled_bundle(tmp_path, 1.1, anchor=1.1)
    report = _deploy(bundle, _interleaved([2.2] * 6, [1.1] * 5), monkeypatch, capsys, 5)
    assert report["prediction_error"] == pytest.approx(0.0)
    assert report["load"]["prediction_error_at_table_level"] == pytest.approx(0.0)
    assert report["lut_drifting"] is False


def test_without_the_predicting_table_the_rounds_are_judged_as_timed(
        predicted_bundle, scripted_timer, monkeypatch, capsys) -> None:
    report = _deploy(predicted_bundle, [1.2] * 5, monkeypatch, capsys)
    assert "load" not in report and report["lut_drifting"] is True


def test_the_main_jobs_summary_shows_a_busy_deploy_at_the_tables_level() -> None:
    from edgenas.commands.run import LOAD_SHOWN, summary_lines

    pick = {"name": "knee", "accuracy_exported": 0.9, "macs": 3e6, "predicted_ms": 0.094,
            "measured_ms": 0.079, "bundle": "b", "formats": ["onnx"]}
    busy = {**pick, "load_ratio": 1 + 2 * LOAD_SHOWN, "measured_at_table_level_ms": 0.0712}
    quiet = {**pick, "load_ratio": 1 + LOAD_SHOWN / 2, "measured_at_table_level_ms": 0.077}
    lines = {name: summary_lines({"models": [m], "baselines": []}, "host-cpu")[0]
             for name, m in (("busy", busy), ("quiet", quiet), ("unknown", pick))}
    assert "(device at 1.10x its table's yardstick: 0.071 ms at the table's level)" in lines["busy"]
    assert "yardstick" not in lines["quiet"] and "yardstick" not in lines["unknown"]
    assert all("measured 0.079 ms on host-cpu" in line for line in lines.values())
