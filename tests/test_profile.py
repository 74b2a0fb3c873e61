"""Profiling: unit enumeration, the device-side agent, tables, resume, staleness, prediction."""

from __future__ import annotations

import ast
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import (COMMITTED, acting_after_each_rename, copy_tables_current_here,
                      fingerprint_here, random_archs, tiny_space)
from edgenas import get_space
from edgenas.cli import main
from edgenas.profile.latency import LatencyModel, accuracy_metrics
from edgenas.profile.ranking import kendall_tau
from edgenas.device.agent import timer
from edgenas.device.descriptor import Device, get_device
from edgenas.errors import ProfileError
from edgenas.profile.keys import space_units, unit_key
from edgenas.profile.lut import load_lut, lut_path, open_lut, save_lut, stale_reasons
from edgenas.profile.onnx_graph import network_model, unit_model
from edgenas.profile.profiler import profile
from edgenas.profile.records import TimedNetwork
from edgenas.progress import StageProgress
from edgenas.space.arch import Arch
from edgenas.space.plan import sites

ROOT = Path(__file__).resolve().parents[1]

AGENT = Path(timer.__file__)


def fast_device(**timing: float):
    """host-cpu with few repeats, so tests spend milliseconds per model."""
    device = get_device("host-cpu")
    settings = {"warmup": 1, "repeats": 5, "min_time_ms": 1.0, **timing}
    return replace(device, timing=replace(device.timing, **settings))


def _site_keys(arch) -> set[str]:
    return {unit_key(s.unit, s.height) for s in sites(arch) if s.unit.layers or s.unit.shortcut}


def test_enumerated_units_are_exactly_those_the_archs_of_a_small_space_use() -> None:
    space = tiny_space()
    genes = space.genes()
    used: set[str] = set()
    for values in itertools.product(*genes.values()):
        used |= _site_keys(space.decode(dict(zip(genes, values))))
    assert set(space_units(space)) == used


def test_enumerated_units_cover_random_cifar_archs() -> None:
    keys = space_units(get_space("cifar"))
    assert 5000 < len(keys) < 10000  # profiling the space must stay a matter of minutes
    for arch in random_archs("cifar", 300, seed=40):
        assert _site_keys(arch) <= set(keys)


def test_unit_and_network_graphs_are_valid_onnx_that_runs() -> None:
    arch = get_space("cifar").sample(3)
    for site in sites(arch)[:6]:
        onnx.checker.check_model(unit_model(site.unit, site.height), full_check=True)
    model = network_model(arch)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": np.zeros((1, 3, arch.resolution, arch.resolution), np.float32)})
    assert out[0].shape == (1, 10)
    convs = sum(node.op_type == "Conv" for node in model.graph.node)
    import torch

    from edgenas import build_model

    assert convs == sum(isinstance(m, torch.nn.Conv2d) for m in build_model(arch).modules())


def test_agent_imports_only_stdlib_numpy_and_runtimes() -> None:
    allowed = {"__future__", "argparse", "importlib", "json", "os", "platform", "re", "shutil",
               "subprocess", "sys", "time", "typing", "numpy", "onnxruntime", "tensorrt", "cuda",
               "openvino"}
    tree = ast.parse(AGENT.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= allowed, imported - allowed


def test_agent_runs_standalone_from_a_copy_and_streams_json(tmp_path) -> None:
    agent = tmp_path / "timer.py"
    shutil.copy(AGENT, agent)
    model = tmp_path / "m.onnx"
    arch = get_space("cifar").sample(1)
    onnx.save(unit_model(sites(arch)[1].unit, sites(arch)[1].height), model)
    code = ("import runpy, sys; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-I", "-c", code, str(agent), "time", "--repeats", "5",
                          "--warmup", "1", "--min-time-ms", "1", str(model), str(tmp_path / "x.onnx")],
                         capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    good, bad = [json.loads(line) for line in out.stdout.splitlines()]
    assert good["model"] == "m.onnx" and good["n"] >= 5 and good["p10_ms"] <= good["median_ms"] <= good["p90_ms"]
    assert bad["model"] == "x.onnx" and "error" in bad
    fp = subprocess.run([sys.executable, "-I", str(agent), "fingerprint"], capture_output=True,
                        text=True, check=True, cwd=tmp_path, env=env)
    assert json.loads(fp.stdout)["onnxruntime"] == ort.__version__


def test_summary_statistics_are_robust_to_outliers() -> None:
    stats = timer.summarize([1.0] * 18 + [50.0, 80.0])
    assert stats["median_ms"] == 1.0 and stats["n"] == 20 and stats["p10_ms"] == 1.0


def test_a_slow_model_is_timed_for_max_time_ms_not_fifty_calls() -> None:
    """Fifty calls of a 25 ms network repeat what ten tell; a cap lets a large space's
    table-fitting networks fit its budget. A fast model is timed as before."""
    calls = []

    def slow() -> None:  # sleeps never end early, so the count does not depend on the host
        calls.append(1)
        time.sleep(0.005)

    samples = timer.measure(slow, warmup=10, repeats=50, min_time_ms=10.0, max_time_ms=30.0)
    assert len(samples) == timer.MIN_TIMED_CAPPED
    assert timer.MIN_WARMUP_CAPPED <= len(calls) - len(samples) <= 10
    uncapped = timer.measure(slow, warmup=2, repeats=12, min_time_ms=10.0, max_time_ms=0.0)
    assert len(uncapped) == 12
    fast = timer.measure(lambda: None, warmup=10, repeats=50, min_time_ms=0.0, max_time_ms=30.0)
    assert len(fast) >= 50
    gpu = timer.measure(lambda: 5.0, warmup=10, repeats=50, min_time_ms=10.0,  # CUDA events
                        max_time_ms=30.0, self_timed=True)
    assert gpu == [5.0] * timer.MIN_TIMED_CAPPED


def test_kendall_tau_and_accuracy_metrics() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    metrics = accuracy_metrics([1.0, 1.08, 0.8, 2.0], [1.0, 1.0, 1.0, 2.0])
    assert metrics["within_10pct"] == 0.75 and metrics["within_5pct"] == 0.5
    assert metrics["median_bias_pct"] == pytest.approx(0.0)
    assert accuracy_metrics([0.9, 1.8], [1.0, 2.0])["median_bias_pct"] == pytest.approx(-10.0)


@pytest.fixture(scope="module")
def tiny_lut(tmp_path_factory):
    """A complete, calibrated and validated table of the tiny space on host-cpu."""
    path = tmp_path_factory.mktemp("profiles") / "host-cpu" / "tiny.json"
    lut = profile(fast_device(), tiny_space(), calibrate=8, validate=6,
                  checkpoint=lambda table: save_lut(table, path))
    return lut, path


def test_profile_measures_every_unit_and_records_where(tiny_lut) -> None:
    lut, path = tiny_lut
    on_disk = load_lut(path)
    assert set(on_disk.entries) == set(space_units(tiny_space()))
    assert on_disk.space_hash == tiny_space().space_hash()
    assert on_disk.runtime["threads"] == 1 and on_disk.fingerprint["onnxruntime"] == ort.__version__
    assert len(on_disk.networks["fitting"]) == 8 and on_disk.correction["networks"] == 8
    # the share it reports is its own prediction of each held-out network it stores against
    # that network's stored time (the unit times themselves are held to a scripted device's
    # exact ones below)
    model = LatencyModel(on_disk)
    within = [abs(model.predict(Arch.from_json(item.arch)) / item.measured_ms - 1) <= 0.10
              for item in on_disk.networks["validation"]]
    assert on_disk.validation["n"] == len(within) == 6
    assert on_disk.validation["within_10pct"] == pytest.approx(sum(within) / 6)


def test_the_validation_printout_puts_accuracy_beside_the_floor_and_the_bias(tiny_lut, capsys
                                                                             ) -> None:
    """A user must see whether the method or the machine is the limit, and whether the
    table sits at another level of load than the device (a bias) or is merely noisy."""
    from edgenas.commands.devices import _print_validation

    report = dict(tiny_lut[0].validation)
    report["median_bias_pct"] = -11.0
    _print_validation(report)
    out = capsys.readouterr().out
    assert "noise floor" in out and "median bias    -11.0 %" in out and "too fast" in out
    # the search-biased set is named as it was drawn: the cheap corner since 2026-12-08,
    # the cheapest tenth of a random pool before
    report["search_biased"] = {**report["search_biased"], "measured": "2026-12-08T01:31:36+00:00"}
    _print_validation(report)
    assert "archs from the space's cheap corner (where searches pick): " in capsys.readouterr().out
    report["search_biased"]["measured"] = "2026-12-07T21:37:00+00:00"
    _print_validation(report)
    out = capsys.readouterr().out
    assert "the cheapest tenth by MACs of a random pool" in out and "cheap corner)" in out
    del report["median_bias_pct"], report["search_biased"]  # a table validated before both
    _print_validation(report)
    assert "median bias" not in capsys.readouterr().out


def test_the_held_out_share_and_the_noise_floor_are_counted_from_the_stored_timings(
        monkeypatch) -> None:
    """On a scripted device with a seeded 12 % jitter (so that some networks fall either
    side of each bound), the table's held-out shares within 5 and 10 % are its own
    predictions against the stored times of those networks, and its noise floor's shares
    are those of networks whose two stored rounds agree within 5 and 10 %: recounted here."""
    from scripted_device import CostModel, scripted_device

    device = scripted_device(monkeypatch, CostModel(per_call_ms=0.05))
    device.noise = 0.12
    lut = profile(fast_device(), tiny_space(), calibrate=8, validate=12,
                  progress=StageProgress())
    model = LatencyModel(lut)
    items = lut.networks["validation"]
    errors = [abs(model.predict(Arch.from_json(item.arch)) / item.measured_ms - 1)
              for item in items]
    gaps = [abs(a - b) / min(a, b) for a, b in (item.rounds[:2] for item in items)]
    floor = lut.validation["noise_floor"]
    assert lut.validation["n"] == floor["n"] == len(items) == 12
    for share in (5, 10):
        assert lut.validation[f"within_{share}pct"] == pytest.approx(
            sum(e <= share / 100 for e in errors) / 12)
        assert floor[f"within_{share}pct"] == pytest.approx(
            sum(g <= share / 100 for g in gaps) / 12)
    # the jitter puts networks on both sides of each bound: the counts are tested, not 0 or 1
    assert 0 < sum(e <= 0.05 for e in errors) < sum(e <= 0.10 for e in errors) < 12
    assert 0 < sum(g <= 0.05 for g in gaps) < sum(g <= 0.10 for g in gaps) < 12


def test_prediction_tracks_measurement(monkeypatch) -> None:
    """On a device whose times follow a known cost model (a per-call cost besides the
    work: `scripted_device`), a table fitted on 8 networks predicts 200 archs of the space
    within 1 % of the time the device gives the whole network where their unit sums lie in
    the fitted range, and within 10 % below it (there the correction keeps its ratio at the
    range's edge instead of extrapolating its line)."""
    from edgenas.profile.latency import unit_sum
    from scripted_device import CostModel, scripted_device

    device = scripted_device(monkeypatch, CostModel(per_call_ms=0.05))
    lut = profile(fast_device(), tiny_space(), calibrate=8, progress=StageProgress())
    model = LatencyModel(lut)
    archs = [tiny_space().sample(seed) for seed in range(200)]
    error = np.array([abs(model.predict(a) / device.cost(network_model(a)) - 1) for a in archs])
    inside = np.array([unit_sum(lut, a)[0] >= lut.correction["min_sum_ms"] for a in archs])
    assert inside.mean() > 0.9
    assert error[inside].max() < 0.01 and error.max() < 0.10


def test_arch_outside_the_table_is_refused_with_the_unit_named(tiny_lut) -> None:
    lut, _ = tiny_lut
    with pytest.raises(ProfileError, match="has no entry for unit '@32"):
        LatencyModel(lut).predict(get_space("cifar").sample(0))


def test_a_rerun_measures_nothing_that_is_already_there(tiny_lut) -> None:
    lut, _ = tiny_lut
    counted = []
    progress = StageProgress(start=lambda stage, total: counted.append((stage, total)))
    profile(fast_device(), tiny_space(), lut, calibrate=8, validate=6, progress=progress)
    assert counted == []


def test_revalidate_times_the_held_out_networks_again(tiny_lut) -> None:
    lut, _ = tiny_lut
    counted = []
    progress = StageProgress(start=lambda stage, total: counted.append((stage, total)))
    profile(fast_device(), tiny_space(), lut, calibrate=8, validate=6, revalidate=True,
            progress=progress)
    assert counted == [("validation networks", 12),  # two interleaved rounds of six
                       ("search_biased networks", 2 * len(lut.networks["search_biased"]))]
    assert len(lut.networks["validation"]) == 6 and lut.validation["n"] == 6
    assert all(len(item.rounds) == 2 for item in lut.networks["validation"])
    floor = lut.validation["noise_floor"]
    rounds = [item.rounds[:2] for item in lut.networks["validation"]]
    assert floor["n"] == 6
    for share in (5, 10):  # networks whose two rounds agree within it, counted here
        agree = sum(abs(a - b) <= share / 100 * min(a, b) for a, b in rounds)
        assert floor[f"within_{share}pct"] == pytest.approx(agree / 6)


def test_a_table_off_by_a_uniform_factor_is_caught_and_recalibrated(monkeypatch) -> None:
    """A table that predicts 2.5x too fast, as on another host of the same kind (same
    fingerprint) that is 2.5x slower: the drift check must say so in seconds, and a
    recalibration must repair it without re-timing units. The device is scripted
    (`scripted_device`), so both checks see the table's error and not the host's speed of
    the moment."""
    from copy import deepcopy

    from edgenas.profile.drift import check_drift
    from edgenas.profile.latency import unit_sum
    from edgenas.space.arch import Arch
    from scripted_device import CostModel, scripted_device

    device = scripted_device(monkeypatch, CostModel(per_call_ms=0.05))
    lut = profile(fast_device(), tiny_space(), calibrate=8, validate=6, progress=StageProgress())
    ratio = np.median([item.measured_ms / unit_sum(lut, Arch.from_json(item.arch))[0]
                       for item in lut.networks["validation"]])  # what the check re-times
    # whatever form was chosen, the table now predicts 2.5x too fast
    lut.correction = {"form": "scale", "intercept_ms": 0.0, "scale": ratio / 2.5,
                      "per_unit_ms": 0.0, "networks": 8}
    check = check_drift(fast_device(), lut, count=6)
    assert not check["trusted"] and check["n"] == 6
    assert check["median_ratio_measured_to_predicted"] == pytest.approx(2.5, rel=0.05)
    entries, timed_before = deepcopy(lut.entries), device.timed
    counted = []
    progress = StageProgress(start=lambda stage, total: counted.append((stage, total)))
    profile(fast_device(), tiny_space(), lut, calibrate=8, validate=6, recalibrate=True,
            progress=progress)
    assert counted[:2] == [("fitting networks", 16), ("validation networks", 12)]  # 2 rounds
    assert "unit" not in device.kinds[timed_before:] and lut.entries == entries
    # the refitted table predicts the networks it was refitted on, and the 2.5x is gone
    model = LatencyModel(lut)
    refit = np.median([item.measured_ms / model.predict(Arch.from_json(item.arch))
                       for item in lut.networks["fitting"]])
    assert refit == pytest.approx(1.0, abs=0.01)
    after = check_drift(fast_device(), lut, count=6)
    assert after["trusted"] and after["median_ratio_measured_to_predicted"] == pytest.approx(
        1.0, abs=0.01)


def test_kill_9_mid_profile_keeps_finished_work_and_a_rerun_completes(tmp_path, monkeypatch
                                                                      ) -> None:
    """The profile kills itself (SIGKILL) the moment its checkpoint holds two chunks of
    units, so the kill lands at that state on any host; a re-run times only the rest. The
    device is scripted (`scripted_device`) in both runs: this is about the table on disk."""
    from scripted_device import scripted_device

    path = tmp_path / "tiny.json"
    code = f"""
import pytest
from conftest import tiny_space
from scripted_device import scripted_device
from test_profile import fast_device
from edgenas.profile.lut import save_lut
from edgenas.profile.profiler import profile
scripted_device(pytest.MonkeyPatch())
profile(fast_device(), tiny_space(), calibrate=0, chunk=3,
        checkpoint=lambda t: save_lut(t, {str(path)!r}))
"""
    after_rename = f"""
import json
if path == Path({str(path)!r}) and len(json.loads(path.read_text())["entries"]) >= 6:
    os.kill(os.getpid(), signal.SIGKILL)
"""
    killed = subprocess.run(acting_after_each_rename(code, after_rename), capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    partial = load_lut(path)  # atomic writes: the file is whole
    total = len(space_units(tiny_space()))
    assert len(partial.entries) == 6
    scripted_device(monkeypatch)
    measured = []
    progress = StageProgress(start=lambda stage, n: measured.append((stage, n)))
    done = profile(fast_device(), tiny_space(), load_lut(path), calibrate=0, progress=progress)
    assert measured == [("units", total - 6)]
    assert len(done.entries) == total
    assert all(done.entries[key] == stats for key, stats in partial.entries.items())  # kept
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_table_for_other_runtime_settings_is_refused_unless_allowed(tiny_lut, tmp_path) -> None:
    lut, _ = tiny_lut
    device = get_device("host-cpu")
    save_lut(lut, lut_path(tmp_path, "host-cpu", "tiny"))
    assert open_lut(device, tiny_space(), tmp_path)  # matches: fine
    two_threads = replace(device, runtime=replace(device.runtime, threads=2))
    with pytest.raises(ProfileError, match=r"stale: runtime.threads: table has 1, device has 2"):
        open_lut(two_threads, tiny_space(), tmp_path)
    assert open_lut(two_threads, tiny_space(), tmp_path, allow_stale=True)


def test_table_from_another_machine_or_runtime_version_is_stale(tiny_lut) -> None:
    lut, _ = tiny_lut
    device = get_device("host-cpu")
    fingerprint = dict(lut.fingerprint, onnxruntime="0.0.1", cpu="Other CPU")
    reasons = stale_reasons(lut, device, tiny_space(), fingerprint)
    assert any("fingerprint.onnxruntime" in r for r in reasons)
    assert any("fingerprint.cpu" in r for r in reasons)
    other_space = replace(tiny_space(), kernels=(3,))
    assert any("space 'tiny' changed" in r for r in stale_reasons(lut, device, other_space))


def test_a_committed_table_whose_device_has_no_descriptor_here_is_copied_as_committed(
        tmp_path, monkeypatch) -> None:
    """`pytest` on a fresh clone: profiles/arm64-emulated/ is committed while its descriptor
    is written by `emulated-board.sh up` and git-ignored. The tests' copy of the
    tables as current on this host keeps such a table as committed; it failed every test
    that asked for the copy."""
    monkeypatch.chdir(tmp_path)  # no ./devices: the board's descriptor is absent, as in a clone
    committed = {"cpu": "the committed table's"}
    assert fingerprint_here("a-board-that-is-not-up", committed) == committed
    copied = copy_tables_current_here(tmp_path / "profiles")
    tables = sorted(str(p.relative_to(COMMITTED)) for p in COMMITTED.rglob("*.json"))
    assert sorted(str(p.relative_to(copied)) for p in copied.rglob("*.json")) == tables
    assert load_lut(copied / "host-cpu" / "cifar.json").fingerprint == timer.fingerprint(
        "onnxruntime")


def test_arch_count_with_device_adds_predicted_latency(tiny_lut, tmp_path, capsys, monkeypatch) -> None:
    lut, _ = tiny_lut
    from edgenas.space import SPACES

    monkeypatch.setitem(SPACES, "tiny", tiny_space)  # a preset name for the test space
    save_lut(lut, lut_path(tmp_path, "host-cpu", "tiny"))
    arch_file = tmp_path / "a.json"
    arch = tiny_space().sample(4)
    arch_file.write_text(arch.to_json())
    assert main(["arch", "count", str(arch_file), "--device", "host-cpu", "--json",
                 "--profiles-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["latency_ms"] == pytest.approx(LatencyModel(lut).predict(arch))
    assert main(["arch", "count", str(arch_file), "--device", "host-cpu",
                 "--profiles-dir", str(tmp_path / "none")]) == 2
    assert "no latency table" in capsys.readouterr().err


def test_the_noise_floor_counts_networks_whose_two_rounds_agree() -> None:
    from edgenas.profile.timing import noise_floor

    def timed(*rounds: float) -> TimedNetwork:
        return TimedNetwork("{}", rounds[0], rounds=rounds)

    items = [timed(1.0, 1.04), timed(1.0, 0.93), timed(2.0, 2.6),
             timed(3.0)]  # the last was timed once: not part of the floor
    floor = noise_floor(items)
    assert floor["n"] == 3
    assert floor["within_5pct"] == pytest.approx(1 / 3)
    assert floor["within_10pct"] == pytest.approx(2 / 3)
    assert noise_floor([timed(1.0)]) is None


def test_the_correction_is_never_a_line_that_loses_to_the_plain_sum() -> None:
    from edgenas.profile.correction import fit_correction

    rng = np.random.default_rng(0)
    sums = rng.uniform(0.2, 2.0, 60)
    units = rng.integers(8, 30, 60).astype(float)
    # networks take what their units add up to (+-3 % noise), four were timed in a slow
    # spell (1.8x): whatever is chosen must do at least as well as the plain sum
    measured = sums * rng.uniform(0.97, 1.03, 60)
    measured[:4] *= 1.8
    fitted = fit_correction(sums, units, measured)
    chosen, plain = fitted["cv"][fitted["form"]], fitted["cv"]["none"]
    assert chosen["mean_abs_pct_error"] <= plain["mean_abs_pct_error"]
    assert plain["within_10pct"] >= 0.9
    assert 0.9 < fitted["scale"] < 1.1 and abs(fitted["intercept_ms"]) < 0.05
    # a fixed per-call cost paid once per unit timed alone, once per network: the per-unit
    # term must be found, and it must beat the plain sum out of sample
    measured = sums - 0.01 * units + 0.02
    fitted = fit_correction(sums, units, measured)
    assert fitted["form"] in ("scale+per_unit", "linear")
    assert fitted["per_unit_ms"] == pytest.approx(-0.01, abs=1e-6)
    assert (fitted["cv"][fitted["form"]]["mean_abs_pct_error"]
            < fitted["cv"]["none"]["mean_abs_pct_error"])


def test_a_network_smaller_than_every_fitted_one_is_never_predicted_negative() -> None:
    """A line with a negative intercept crosses zero below the timed networks; CI found a
    re-measured table predicting -0.01 ms for the space's leanest arch."""
    from edgenas.profile.boosted import UNIT_KINDS
    from edgenas.profile.correction import fit_correction, predict_corrected

    rng = np.random.default_rng(1)
    sums = rng.uniform(1.0, 3.0, 40)
    units = rng.integers(10, 30, 40).astype(float)
    measured = 0.95 * sums - 0.004 * units - 0.07  # the committed table's kind of line
    fitted = fit_correction(sums, units, measured)
    assert fitted["intercept_ms"] < 0 and fitted["min_sum_ms"] == pytest.approx(sums.min())
    conv = UNIT_KINDS.index("conv")
    kinds = np.zeros((3, len(UNIT_KINDS)))
    kinds[:, conv] = [0.02, 0.5 * sums.min(), sums.min()]
    predicted = predict_corrected(fitted, kinds, np.array([6.0, 6.0, 6.0]))
    assert (predicted > 0).all()
    # below the edge a network is scaled up to it along its own mix (units too) and keeps
    # the ratio to the unit sum that the line gives there
    scaled = fitted["intercept_ms"] + fitted["scale"] * sums.min() + fitted["per_unit_ms"] * 12
    assert predicted[1] == pytest.approx(scaled / 2, rel=1e-9)
    # inside the fitted range the line is applied as fitted
    inside = np.zeros((1, len(UNIT_KINDS)))
    inside[0, conv] = 2.0
    line = fitted["intercept_ms"] + fitted["scale"] * 2.0 + fitted["per_unit_ms"] * 20
    assert predict_corrected(fitted, inside, np.array([20.0]))[0] == pytest.approx(line)
    # a table without a recorded edge still never predicts a time at or below zero
    legacy = {k: v for k, v in fitted.items() if k != "min_sum_ms"}
    assert (predict_corrected(legacy, kinds, np.array([6.0, 6.0, 6.0])) > 0).all()


def test_a_space_too_large_to_time_is_sampled_and_the_rest_predicted(tmp_path, monkeypatch
                                                                     ) -> None:
    from scripted_device import scripted_device
    from tiny_space import tiny_space as small_space  # ~800 units, ~100 kinds of unit

    device = scripted_device(monkeypatch)  # exact times, so the guesses can be judged
    space, budget = small_space(), 200
    path = tmp_path / "host-cpu" / "tiny.json"
    lut = profile(fast_device(), space, calibrate=8, max_units=budget,
                  checkpoint=lambda table: save_lut(table, path))
    units = space_units(space)
    keys = set(units)
    assert set(lut.entries) == keys  # every unit has an entry: a search never meets a hole
    predicted = {k for k, e in lut.entries.items() if e.predicted}
    assert len(keys) - len(predicted) == budget == lut.sampling["measured"]
    assert all(lut.entries[k].log_std is not None for k in predicted)
    # a timed unit holds the device's time; a predicted one is within 20 % of it about as
    # often as the regressor's cross-validation on the timed ones says (78 % against 77 %)
    truth = {k: device.cost(unit_model(*units[k])) for k in keys}
    assert all(lut.entries[k].median_ms == truth[k] for k in keys - predicted)
    guessed = np.mean([abs(lut.entries[k].median_ms / truth[k] - 1) <= 0.20
                       for k in predicted])
    assert lut.sampling["cross_validated"]["within_20pct"] == pytest.approx(guessed, abs=0.05)
    # the kinds of unit are all covered before any kind is timed twice
    from edgenas.profile.sampling import structure

    timed_kinds = {structure(k) for k in keys - predicted}
    assert timed_kinds == {structure(k) for k in keys}
    assert load_lut(path).sampling["predicted"] == len(predicted)
    LatencyModel(lut).predict(space.sample(3))
    # a later run without a budget times exactly the predicted units, and nothing else
    counted = []
    progress = StageProgress(start=lambda stage, total: counted.append((stage, total)))
    profile(fast_device(), space, lut, calibrate=8, progress=progress)
    assert counted == [("units", len(predicted))]
    assert not any(e.predicted for e in lut.entries.values()) and lut.sampling is None


def test_a_tensorrt_device_is_profiled_within_a_time_budget_by_default() -> None:
    """Every unit is an engine build of seconds on a Jetson: the `cifar` space whole would
    take hours, so unless told otherwise its first chunk decides whether to sample."""
    import argparse

    from edgenas.commands.devices import TENSORRT_BUDGET_MIN, _time_budget_s

    args = argparse.Namespace(max_units=None, time_budget=None)
    jetson = get_device("jetson-orin-nano")
    assert jetson.runtime.name == "tensorrt"
    assert _time_budget_s(args, get_space("cifar"), jetson) == 60 * TENSORRT_BUDGET_MIN
    assert _time_budget_s(args, get_space("cifar"), get_device("host-cpu")) is None
    assert _time_budget_s(argparse.Namespace(max_units=None, time_budget=2.0),
                          get_space("cifar"), jetson) == 120.0


class _SlowSession:
    """Times every model as 1 ms after ``seconds`` of wall time: a device whose networks
    are slow to time, as an `imagenet` network is (about 2 s here)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.device = Device("scripted")

    def time_models(self, files, handle) -> None:
        for file in files:
            time.sleep(self.seconds)
            handle({"model": file.name, "median_ms": 1.0})


def test_a_budget_caps_the_table_fitting_networks_and_every_one_gets_all_rounds(
        monkeypatch) -> None:
    from edgenas.profile import profiler

    monkeypatch.setattr(profiler, "MIN_NETWORKS", 4)
    lut = load_lut(ROOT / "profiles" / "host-cpu" / "cifar.json")
    lut.networks = {}
    archs = [get_space("cifar").sample(profiler.FITTING_SEED + i) for i in range(60)]
    profiler.time_networks(_SlowSession(0.02), lut, "fitting", archs, 100,  # type: ignore[arg-type]
                            lambda table: None, StageProgress(), rounds=2, budget_s=0.5)
    timed = lut.networks["fitting"]
    assert 4 <= len(timed) < 60  # 0.5 s fits about 12 networks of two 0.02 s timings
    assert all(len(item.rounds) == 2 for item in timed)


def test_a_budgeted_profile_times_a_pilot_then_the_networks_then_units(tmp_path) -> None:
    """The pilot chunk's rate prints the whole space's estimate before anything long (on a
    Jetson, before the networks' engine builds); the networks come out of the same budget."""
    from tiny_space import tiny_space as small_space

    stages: list[str] = []
    progress = StageProgress(start=lambda stage, total: stages.append(stage))
    lut = profile(fast_device(), small_space(), calibrate=8, time_budget_s=3.0,
                  progress=progress)
    assert stages[:2] == ["units (pilot)", "fitting networks"]
    assert len(lut.networks["fitting"]) == 8 and lut.correction is not None


@pytest.mark.parametrize("flag,calibrate", [("--fitting-networks", 1), ("--calibrate", 3)])
def test_too_few_table_fitting_networks_are_refused_before_any_timing(
        flag: str, calibrate: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # it used to be refused by the fit, after every unit had been timed; --calibrate is the
    # option's old name, kept for scripts
    assert main(["profile", "host-cpu", "--space", "cifar", flag, str(calibrate),
                 "--profiles-dir", str(tmp_path)]) == 2
    assert f"--fitting-networks {calibrate}: 0 (unit sums, no correction) or at least 4" in \
        capsys.readouterr().err
    assert not (tmp_path / "host-cpu" / "cifar.json").exists()
