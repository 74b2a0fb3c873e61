"""Device descriptors, `edgenas devices` / `device init`, and the adb path (stand-in)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import tiny_space
from edgenas.cli import main
from edgenas.device.descriptor import (Connection, get_device, list_devices, load_device_file)
from edgenas.device.session import parse_perf_test
from edgenas.errors import DeviceError
from edgenas.profile.keys import space_units
from edgenas.profile.profiler import profile

SHIPPED = {"host-cpu", "jetson-orin-nano", "jetson-agx-orin", "raspberry-pi-5", "android-phone",
           "ov-cpu"}


def test_shipped_descriptors_all_load() -> None:
    devices = {d.name: d for d in list_devices()}
    assert SHIPPED <= set(devices)
    assert devices["host-cpu"].connection.kind == "local"
    assert devices["jetson-orin-nano"].runtime.name == "tensorrt"
    assert devices["jetson-orin-nano"].runtime.precision == "fp16"
    assert devices["android-phone"].connection.kind == "adb"


@pytest.mark.parametrize("text, message", [
    ('name = "x"\n[runtime]\nname = "tflite"\n', r"runtime\.name: 'tflite' not in \('onnxruntime', 'tensorrt', 'openvino'\)"),
    ('name = "x"\n[connection]\nkind = "ssh"\n', r"connection\.host: missing"),
    ('name = "x"\n[runtime]\nthreads = "4"\n', r"runtime\.threads: expected int, got '4'"),
    ('name = "x"\n[timing]\nrepeat = 5\n', r"timing\.repeat: unknown field"),
    ('[runtime]\nname = "onnxruntime"\n', r"name: missing"),
    ('name = "x"\n[runtime\n', r"not valid TOML"),
    ('name = "x"\n[runtime]\nname = "openvino"\ndevice = ""\n', r"runtime\.device: empty"),
    ('name = "x"\n[runtime]\ndevice = "GPU"\n', r"runtime\.device: 'GPU': only OpenVINO"),
    ('name = "x"\n[runtime]\nprecision = "bf16"\n', r"runtime\.precision: 'bf16' is an OpenVINO"),
])
def test_malformed_descriptor_names_file_field_and_allowed_values(tmp_path, text, message) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DeviceError, match=rf"^{path}: .*{message}|^{path}: {message}"):
        load_device_file(path)


def test_device_init_writes_a_descriptor_that_loads(tmp_path, capsys) -> None:
    code = main(["device", "init", "my-orin", "--ssh", "nvidia@10.0.0.7", "--runtime", "tensorrt",
                 "--precision", "fp16", "--dir", str(tmp_path)])
    assert code == 0
    device = load_device_file(tmp_path / "my-orin.toml")
    assert (device.connection.kind, device.connection.user, device.connection.host) == \
        ("ssh", "nvidia", "10.0.0.7")
    assert (device.runtime.name, device.runtime.precision) == ("tensorrt", "fp16")
    assert main(["device", "init", "my-orin", "--dir", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err


def test_devices_lists_the_shipped_descriptors(capsys) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SHIPPED)


def test_unknown_device_lists_known_ones() -> None:
    with pytest.raises(DeviceError, match="unknown device 'pixel'; known: .*host-cpu"):
        get_device("pixel")


def test_perf_test_report_is_parsed() -> None:
    report = """Session creation time cost: 0.0123 s
Total inference requests: 50
Average inference time cost: 1.25 ms
P50 Latency: 0.00121 s
P90 Latency: 0.00140 s
"""
    stats = parse_perf_test(report)
    assert stats["median_ms"] == pytest.approx(1.21) and stats["p90_ms"] == pytest.approx(1.40)
    assert stats["mean_ms"] == 1.25 and stats["n"] == 50
    assert "error" in parse_perf_test("Segmentation fault")


def test_adb_path_profiles_through_a_stand_in_adb(tmp_path, monkeypatch) -> None:
    """Plumbing only: tests/fake_adb.py plays adb and onnxruntime_perf_test (no phone here)."""
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "phone"))
    adb = tmp_path / "adb"
    adb.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).parent / "fake_adb.py"}" "$@"\n')
    adb.chmod(0o755)
    device = get_device("android-phone")
    device = replace(device, connection=replace(device.connection, adb=str(adb)),
                     timing=replace(device.timing, repeats=5))
    lut = profile(device, tiny_space(), calibrate=0)
    assert set(lut.entries) == set(space_units(tiny_space()))
    assert lut.fingerprint["model"] == "Fake Phone"
    assert any((tmp_path / "phone" / "data/local/tmp/edgenas").iterdir())


FAKE_TRTEXEC = """#!/bin/sh
# stand-in for NVIDIA's trtexec: writes an 'engine' and prints trtexec's timing summary line
for arg in "$@"; do
  case "$arg" in --saveEngine=*) echo fake-engine > "${arg#--saveEngine=}";; esac
done
echo "[11/28/2026-12:00:00] [I] GPU Compute Time: min = 0.41 ms, max = 0.93 ms, mean = 0.52 ms, median = 0.5 ms, percentile(90%) = 0.61 ms, percentile(95%) = 0.7 ms, percentile(99%) = 0.88 ms"
"""


def test_trtexec_fallback_builds_and_times_when_the_python_bindings_are_missing(tmp_path) -> None:
    """Plumbing only, with a stand-in trtexec: no NVIDIA GPU or TensorRT here."""
    import importlib.util
    import json
    import os
    import subprocess

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT Python bindings are installed: the fallback is not used")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "trtexec").write_text(FAKE_TRTEXEC)
    (bin_dir / "trtexec").chmod(0o755)
    agent = Path(__file__).resolve().parents[1] / "edgenas" / "device" / "agent" / "timer.py"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    built = subprocess.run([sys.executable, str(agent), "build", str(model), "--out",
                            str(tmp_path / "m.engine"), "--precision", "fp16"],
                           capture_output=True, text=True, check=True, env=env)
    assert json.loads(built.stdout)["builder"] == "trtexec"
    timed = subprocess.run([sys.executable, str(agent), "time", "--runtime", "tensorrt",
                            str(tmp_path / "m.engine")], capture_output=True, text=True,
                           check=True, env=env)
    stats = json.loads(timed.stdout)
    assert stats["median_ms"] == 0.5 and stats["p90_ms"] == 0.61 and stats["via"] == "trtexec"
