"""OpenVINO devices: the agent's runner with its pinned properties, `device init`, the
profiler and deploy on them, and the one-line errors for a missing runtime or device.

The real runtime where it is installed (CI installs the `openvino` extra); without it the
tests that need it skip and say so. The missing-package tests hide OpenVINO behind a module
that raises ImportError, so they run either way.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgenas import get_space
from edgenas.cli import main
from edgenas.device.agent import timer
from edgenas.device.descriptor import get_device, load_device_file
from edgenas.device.session import DeviceSession
from edgenas.errors import DeviceError, ProfileError
from edgenas.profile.lut import LUT, stale_reasons
from edgenas.profile.onnx_graph import network_model, unit_model
from edgenas.profile.timing import time_batch
from edgenas.progress import StageProgress
from edgenas.space.plan import sites
from test_deploy import ARCH, untrained_bundle

ROOT = Path(__file__).resolve().parents[1]
AGENT = Path(timer.__file__)
HAVE_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(
    not HAVE_OPENVINO, reason="OpenVINO not installed (pip install -e '.[openvino]')")


def fast_ov_device(**runtime: object):
    """The shipped ov-cpu descriptor with few repeats, so tests spend milliseconds a model."""
    device = get_device("ov-cpu")
    return replace(device, runtime=replace(device.runtime, **runtime),
                   timing=replace(device.timing, warmup=1, repeats=5, min_time_ms=1.0))


def absent_device() -> str:
    """An OpenVINO device this machine does not have (NPU on most)."""
    import openvino as ov

    available = ov.Core().available_devices
    return next(name for name in ("NPU", "GPU", "GPU.7")
                if not any(a == name or a.startswith(name + ".") for a in available))


def uncompilable_model() -> onnx.ModelProto:
    """A model with an operator no runtime knows: OpenVINO cannot convert it."""
    node = helper.make_node("FooBar", ["input"], ["output"], domain="edgenas.test")
    graph = helper.make_graph(
        [node], "uncompilable", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid("edgenas.test", 1)])


def hidden_openvino(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python cannot import openvino, installed or not."""
    shadow = tmp_path / "shadow" / "openvino"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('openvino hidden by the test')\n")
    return {**os.environ, "PYTHONPATH": f"{shadow.parent}{os.pathsep}{ROOT}"}


# -- the agent ---------------------------------------------------------------------------------

def test_agent_loads_openvino_only_inside_the_functions_that_use_it() -> None:
    """An ONNX Runtime board never needs OpenVINO: the agent imports it where it times with
    it, as it does onnxruntime and tensorrt (test_profile checks the whole list)."""
    tree = ast.parse(AGENT.read_text())
    top_level = {alias.name.split(".")[0] for node in tree.body
                 if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in (node.names if isinstance(node, ast.Import)
                               else [ast.alias(node.module or "")])}
    assert not top_level & {"openvino", "onnxruntime", "tensorrt"}


@needs_openvino
def test_the_agents_openvino_runner_times_real_models_from_a_copy(tmp_path) -> None:
    agent = tmp_path / "timer.py"
    shutil.copy(AGENT, agent)
    site = sites(ARCH)[1]
    onnx.save(unit_model(site.unit, site.height), tmp_path / "unit.onnx")
    onnx.save(network_model(ARCH), tmp_path / "net.onnx")
    onnx.save(uncompilable_model(), tmp_path / "bad.onnx")
    out = subprocess.run([sys.executable, str(agent), "time", "--runtime", "openvino",
                          "--device", "CPU", "--repeats", "5", "--warmup", "1",
                          "--min-time-ms", "1", *(str(tmp_path / f"{name}.onnx")
                                                  for name in ("unit", "bad", "net"))],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    unit, bad, net = [json.loads(line) for line in out.stdout.splitlines()]
    for good, name in ((unit, "unit.onnx"), (net, "net.onnx")):
        assert good["model"] == name and good["n"] >= 5
        assert 0 < good["p10_ms"] <= good["median_ms"] <= good["p90_ms"]
    # the bad model is named, on one line, without OpenVINO's trail of source files; the
    # model after it was still timed
    assert bad["model"] == "bad.onnx" and "FooBar" in bad["error"]
    assert "\n" not in bad["error"] and "Exception from src" not in bad["error"]


@needs_openvino
def test_the_precision_hint_reaches_compile_model(tmp_path) -> None:
    """OpenVINO runs bf16 on CPUs that have it unless told: the compiled model must report
    f32 for an fp32 descriptor, whatever the CPU's default, with the latency hint and the
    descriptor's threads."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    path = tmp_path / "net.onnx"
    onnx.save(network_model(ARCH), path)
    compiled = timer.openvino_compiled(str(path), "CPU", 1, "fp32")
    assert compiled.get_property(hints.inference_precision()) == ov.Type.f32
    assert str(compiled.get_property(hints.performance_mode())).endswith("LATENCY")
    assert int(compiled.get_property(props.inference_num_threads())) == 1
    fingerprint = timer.fingerprint("openvino", "CPU", "fp32")
    assert fingerprint["openvino_precision"] == "f32"
    assert fingerprint["openvino"] == ov.__version__ and fingerprint["openvino_device_name"]


def test_a_table_timed_at_another_openvino_precision_is_stale() -> None:
    device = get_device("ov-cpu")
    space = get_space("cifar")
    measured = {"machine": "x86_64", "cpu": "AMD EPYC", "openvino": "2026.4.1",
                "openvino_device_name": "AMD EPYC", "openvino_precision": "bf16"}
    lut = LUT.new(device, space, measured)
    reasons = stale_reasons(lut, device, space, {**measured, "openvino_precision": "f32"})
    assert reasons == ["fingerprint.openvino_precision: table has 'bf16', device has 'f32'"]


# -- descriptors and device init -------------------------------------------------------------

@needs_openvino
def test_device_init_openvino_writes_a_descriptor_that_loads(tmp_path, capsys) -> None:
    assert main(["device", "init", "my-ov", "--runtime", "openvino", "--dir", str(tmp_path)]) == 0
    device = load_device_file(tmp_path / "my-ov.toml")
    assert (device.runtime.name, device.runtime.device, device.runtime.precision,
            device.runtime.threads) == ("openvino", "CPU", "fp32", 1)
    assert device.runtime_settings() == {"name": "openvino", "threads": 1, "precision": "fp32",
                                         "device": "CPU"}
    # a remote one is not checked here: its OpenVINO is checked when a session reaches it
    assert main(["device", "init", "edge-box", "--runtime", "openvino", "--ssh", "me@edge-box",
                 "--openvino-device", "NPU", "--precision", "fp16", "--dir", str(tmp_path)]) == 0
    remote = load_device_file(tmp_path / "edge-box.toml")
    assert (remote.connection.host, remote.runtime.device, remote.runtime.precision) == \
        ("edge-box", "NPU", "fp16")


def test_the_shipped_ov_cpu_descriptor_pins_f32_on_one_thread() -> None:
    device = get_device("ov-cpu")
    assert (device.connection.kind, device.runtime.name, device.runtime.device,
            device.runtime.precision, device.runtime.threads) == \
        ("local", "openvino", "CPU", "fp32", 1)


@needs_openvino
def test_an_openvino_device_the_runtime_does_not_list_is_one_line_naming_those_it_has(
        tmp_path, capsys) -> None:
    import openvino as ov

    absent = absent_device()
    available = ", ".join(ov.Core().available_devices)
    device = fast_ov_device(device=absent)
    with DeviceSession(device) as session, pytest.raises(DeviceError) as raised:
        session.fingerprint()  # the agent, as on a remote device
    message = str(raised.value)
    assert message.startswith(f"ov-cpu: OpenVINO ") and f"lists no {absent!r} device" in message
    assert f"it has: {available}" in message and "\n" not in message
    # device init says so before it writes anything, and profile before it times anything
    assert main(["device", "init", "npu-box", "--runtime", "openvino", "--openvino-device",
                 absent, "--dir", str(tmp_path)]) == 2
    assert f"it has: {available}" in capsys.readouterr().err
    assert not (tmp_path / "npu-box.toml").exists()
    descriptor = tmp_path / "npu-box.toml"
    descriptor.write_text(f'name = "npu-box"\n[runtime]\nname = "openvino"\ndevice = "{absent}"\n')
    assert main(["profile", str(descriptor), "--space", "cifar",
                 "--profiles-dir", str(tmp_path / "profiles")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"it has: {available}" in err
    assert not (tmp_path / "profiles" / "npu-box" / "cifar.json").exists()


@pytest.mark.parametrize("command", [
    ["profile", "ov-cpu", "--space", "cifar"],                       # the agent's check
    ["device", "init", "my-ov", "--runtime", "openvino", "--dir", "devices"],  # in-process
])
def test_without_openvino_the_error_is_one_line_naming_the_install_command(
        tmp_path, command) -> None:
    result = subprocess.run([sys.executable, "-m", "edgenas.cli", *command,
                             *(["--profiles-dir", "profiles"] if command[0] == "profile" else [])],
                            capture_output=True, text=True, cwd=tmp_path,
                            env=hidden_openvino(tmp_path))
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip()
    assert "\n" not in error and "Traceback" not in error, result.stderr
    device = command[2] if command[0] == "device" else "ov-cpu"
    assert error.startswith(f"edgenas: error: {device}: ")
    assert "lacks openvino" in error and "-m pip install openvino" in error
    assert "edgenas[openvino]" in error
    assert not (tmp_path / "profiles" / "ov-cpu" / "cifar.json").exists()
    assert not (tmp_path / "devices" / "my-ov.toml").exists()


# -- profile and deploy --------------------------------------------------------------------------

@needs_openvino
def test_a_model_openvino_cannot_compile_is_named_and_the_rest_are_kept() -> None:
    site = sites(ARCH)[1]
    models = {"good-unit": unit_model(site.unit, site.height), "bad-unit": uncompilable_model(),
              "next-unit": unit_model(sites(ARCH)[2].unit, sites(ARCH)[2].height)}
    stored: dict[str, dict] = {}
    checkpoints = []
    with DeviceSession(fast_ov_device()) as session, pytest.raises(ProfileError) as raised:
        time_batch(session, models, stored.__setitem__, chunk=2,
                   checkpoint=lambda: checkpoints.append(set(stored)), progress=StageProgress())
    message = str(raised.value)
    assert message.startswith("1 model(s) failed on ov-cpu; first: bad-unit: ")
    assert "FooBar" in message and "\n" not in message
    assert set(stored) == {"good-unit", "next-unit"} and checkpoints[-1] == set(stored)


@pytest.fixture(scope="module")
def fp32_bundle(tmp_path_factory) -> Path:
    """An (untrained) FP32 bundle predicting 1 ms on ov-cpu."""
    return untrained_bundle(tmp_path_factory.mktemp("bundle"), "ov-cpu", 1.0)


@needs_openvino
def test_deploy_on_openvino_writes_ir_on_the_device_and_times_it(fp32_bundle, capsys) -> None:
    from edgenas.deploy.deploy import deploy

    report = deploy(fp32_bundle, fast_ov_device(), rounds=2)
    assert report["model"] == "model.onnx" and report["ir"]["builder"] == "openvino"
    assert report["latency_ms"]["median_ms"] > 0 and "prediction_error" in report
    assert report["fingerprint"]["openvino_precision"] == "f32"
    xml, weights = (fp32_bundle / "deploy" / f"ov-cpu{suffix}" for suffix in (".xml", ".bin"))
    assert xml.exists() and weights.exists()
    # the IR keeps the exported FP32 weights (save_model would halve them by default)
    initializers = onnx.load(fp32_bundle / "model.onnx").graph.initializer
    onnx_weights = sum(np.prod(t.dims) for t in initializers)
    assert weights.stat().st_size >= 4 * onnx_weights * 0.99


@needs_openvino
def test_deploy_on_openvino_over_ssh_fetches_the_ir_written_there(fp32_bundle, sshd,
                                                                   tmp_path) -> None:
    from edgenas.deploy.deploy import deploy
    from edgenas.device.descriptor import Connection

    device = replace(fast_ov_device(), name="ov-over-ssh",
                     connection=Connection(kind="ssh", host=sshd.alias,
                                           ssh_config=str(sshd.config), python=sys.executable,
                                           workdir=str(tmp_path / "remote")))
    report = deploy(fp32_bundle, device, rounds=2)
    assert report["ir"]["ir"] == "ov-over-ssh.xml" and report["latency_ms"]["median_ms"] > 0
    written = tmp_path / "remote" / "bundle" / "deploy"
    for suffix in (".xml", ".bin"):  # written on the device, fetched into the bundle
        fetched = fp32_bundle / "deploy" / f"ov-over-ssh{suffix}"
        assert fetched.read_bytes() == (written / f"ov-over-ssh{suffix}").read_bytes()


def test_a_bundle_whose_run_py_predates_openvino_says_to_export_again(tmp_path,
                                                                     monkeypatch) -> None:
    """A bundle exported before run.py read OpenVINO: classify says so before it copies
    anything to the device."""
    from edgenas.deploy.deploy import classify_on_device
    from edgenas.errors import EdgenasError
    from edgenas.export import bundle as bundle_module

    old_runner = tmp_path / "old-run.py"
    old_runner.write_text("import onnxruntime  # an ONNX Runtime-only run.py\n")
    monkeypatch.setattr(bundle_module, "RUNNER", old_runner)
    out = untrained_bundle(tmp_path / "bundle", "ov-cpu", 1.0)
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((ARCH.resolution, ARCH.resolution, 3), np.uint8))
    with pytest.raises(EdgenasError, match=r"exported before run\.py read OpenVINO\); export "
                                           "the bundle again"):
        classify_on_device(out, fast_ov_device(), image)
@needs_openvino
def test_deploy_classify_runs_the_bundles_run_py_with_openvino(fp32_bundle, tmp_path) -> None:
    from edgenas.deploy.deploy import classify_on_device

    image = tmp_path / "image.npy"
    np.save(image, np.full((ARCH.resolution, ARCH.resolution, 3), 128, np.uint8))
    answer = classify_on_device(fp32_bundle, fast_ov_device(), image, top=3).splitlines()
    assert len(answer) == 3 and all(line.split()[1].startswith("class-") for line in answer)
