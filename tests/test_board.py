"""The emulated arm64 board (`scripts/emulated-board.sh up`): a second device, for real.

An aarch64 Debian root run by qemu-user, with its own sshd, Python 3.11 and ONNX Runtime
aarch64 wheels. Everything here is real but the speed: the board's latencies are the
emulator's. CI starts the board; on a machine without it these tests skip and say how to
start it (EDGENAS_REQUIRE_SERVICES=1 makes that a failure).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from conftest import skip_or_fail
from edgenas.cli import main
from edgenas.device.descriptor import Device, get_device
from edgenas.device.session import DeviceSession
from edgenas.export.bundle import export_bundle
from edgenas.nn.model import build_model
from edgenas.profile.onnx_graph import network_model
from tiny_space import tiny_space

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTOR = ROOT / "devices" / "arm64-emulated.toml"


@pytest.fixture(scope="module")
def board() -> Device:
    """The board's descriptor, once it answers over SSH as an aarch64 machine."""
    if not DESCRIPTOR.exists():
        skip_or_fail("the emulated arm64 board is not up (no devices/arm64-emulated.toml): "
                     "run 'sudo scripts/emulated-board.sh up'")
    device = get_device(str(DESCRIPTOR))
    probe = subprocess.run(["ssh", "-F", device.connection.ssh_config, "-o", "BatchMode=yes",
                            "-o", "ConnectTimeout=10", device.connection.host, "uname", "-m"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if probe.stdout.strip() != "aarch64":
        skip_or_fail(f"the emulated arm64 board does not answer ({probe.stderr.strip()[-200:]}); "
                     "run 'sudo scripts/emulated-board.sh up'")
    return device


def test_the_board_is_an_aarch64_machine_with_its_own_python_and_runtime(board) -> None:
    with DeviceSession(board) as session:
        fingerprint = session.fingerprint()
    assert fingerprint["machine"] == "aarch64" and fingerprint["python"].startswith("3.11")
    assert fingerprint["onnxruntime"] and int(fingerprint["numpy"].split(".")[0]) >= 2


def test_networks_are_timed_on_the_board_over_ssh_through_the_agent(board) -> None:
    space = tiny_space()
    archs = [space.sample(seed) for seed in range(2)]
    results: list[dict] = []
    with DeviceSession(board) as session, tempfile.TemporaryDirectory() as folder:
        files = []
        for i, arch in enumerate(archs):
            files.append(Path(folder) / f"net{i}.onnx")
            onnx.save(network_model(arch), files[-1])
        session.time_models(files, results.append)
    assert [r["model"] for r in results] == ["net0.onnx", "net1.onnx"]
    assert all(r["median_ms"] > 0 and r["n"] >= board.timing.repeats for r in results)


def test_a_bundle_deploys_to_the_board_and_its_runner_classifies_an_image_there(
        board, tmp_path, capsys) -> None:
    arch = tiny_space().sample(0)
    torch.manual_seed(0)
    inputs = torch.randn(8, 3, arch.resolution, arch.resolution).numpy()
    labels = [f"class{i}" for i in range(10)]
    export_bundle(arch, build_model(arch).eval(), tmp_path / "bundle", val_inputs=inputs,
                  val_labels=np.zeros(8, np.int64), calibration=inputs,
                  preprocess={"resolution": arch.resolution, "channels": 3,
                              "mean": [0.5] * 3, "std": [0.25] * 3},
                  labels=labels, formats=("onnx",))
    image = tmp_path / "image.npy"
    np.save(image, np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8))
    assert main(["deploy", str(tmp_path / "bundle"), "--device", str(DESCRIPTOR),
                 "--rounds", "2", "--classify", str(image)]) == 0
    printed = capsys.readouterr().out
    assert "the median of 2 rounds" in printed
    answer = printed.split("run.py on")[1].splitlines()[1:]
    assert len(answer) == 5 and all(line.split()[1] in labels for line in answer)
    report = (tmp_path / "bundle" / "deploy" / "arm64-emulated.json").read_text()
    assert '"machine": "aarch64"' in report
