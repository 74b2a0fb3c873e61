"""Export bundles (verified ONNX / FP16 / INT8) and deploying them to devices."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from edgenas import get_space
from edgenas.cli import main
from edgenas.data.augment import prepare_batch
from edgenas.deploy.deploy import deploy
from edgenas.device.descriptor import Connection, get_device
from edgenas.errors import EdgenasError
from edgenas.export.bundle import export_bundle, load_bundle
from edgenas.export.onnx_export import ExportError
from edgenas.nn.model import build_model
from edgenas.train.rundata import prepare_data

ARCH = get_space("cifar").sample(7)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A cifar-space arch trained on the embedded digits (real images) to ~95 % accuracy.

    Trained well enough that its predictions are confident: agreement checks on a barely
    trained network measure coin flips between near-tied classes, not the export.
    """
    torch.manual_seed(0)
    data = prepare_data("digits", 10, val_fraction=0.35)
    model = build_model(ARCH)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    epochs = 16
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    train = data.split.train
    for _ in range(epochs):
        order = train[torch.randperm(len(train))]
        for i in range(0, len(order), 64):
            index = order[i:i + 64]
            inputs = prepare_batch(data.data.images[index], data.normalize, True, ARCH.resolution)
            loss = torch.nn.functional.cross_entropy(model(inputs), data.data.labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    return model.eval(), data


def _inputs(data, index):
    return prepare_batch(data.data.images[index], data.normalize, False, ARCH.resolution).numpy()


#: what the bundle fixture records as its predicted latency on host-cpu
PREDICTED = {"host-cpu": {"ms": 0.5, "lut": "profiles/host-cpu/cifar.json",
                          "lut_updated": "2026-12-01T00:00:00+00:00"}}


def _export(trained, out, formats=("onnx", "fp16", "int8")):
    model, data = trained
    val = data.split.val
    return export_bundle(ARCH, model, out, val_inputs=_inputs(data, val),
                         val_labels=data.data.labels[val].numpy(),
                         calibration=_inputs(data, data.split.train[:512]),
                         preprocess={"resolution": ARCH.resolution, "channels": 3,
                                     "mean": list(data.normalize.mean), "std": list(data.normalize.std)},
                         labels=list(data.data.classes), formats=formats,
                         predicted_latency=PREDICTED)


def _ort_logits(path, inputs):
    """Logits from ONNX Runtime directly, all images in one run (not the exporter's code)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    return out, _export(trained, out)


def test_bundle_holds_verified_models_and_metadata(bundle, trained) -> None:
    out, metrics = bundle
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx", "arch.json", "metrics.json",
                 "preprocess.json", "labels.txt", "run.py", "manifest.json"):
        assert (out / name).exists(), name
    assert metrics["formats"] == ["onnx", "fp16", "int8"]
    # the reported numbers, measured again here with ONNX Runtime and PyTorch
    model, data = trained
    inputs = _inputs(data, data.split.val)
    reference = _ort_logits(out / "model.onnx", inputs)
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs[:256])).numpy()
    diff = float(np.abs(reference[:256] - expected).max())
    v = metrics["verification"]
    assert diff <= 1e-4 and v["onnx"]["max_abs_diff_vs_pytorch"] == pytest.approx(diff, abs=1e-6)
    labels = data.data.labels[data.split.val].numpy()
    assert v["onnx"]["accuracy"] == pytest.approx(float(np.mean(reference.argmax(1) == labels)),
                                                  abs=0.004)
    for fmt in ("fp16", "int8"):
        logits = _ort_logits(out / f"model.{fmt}.onnx", inputs)
        agreement = float(np.mean(logits.argmax(1) == reference.argmax(1)))
        assert agreement >= 0.99 and len(inputs) == v[fmt]["images"] >= 500
        # equal up to an image (ONNX Runtime may sum in another order for another batch)
        assert v[fmt]["top1_agreement_with_fp32"] == pytest.approx(agreement, abs=0.004)
    assert metrics["accuracy"]["top1"] > 0.5  # trained on real digits, scored on held-out ones
    loaded = load_bundle(out)
    assert loaded["arch"] == ARCH
    import onnx

    model = onnx.load(str(out / "model.onnx"))
    assert model.opset_import[0].version >= 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_int8_metadata_names_the_layers_left_in_float(bundle) -> None:
    """The nodes the recipe kept in float are named, and are really float in the INT8 model:
    their weights are plain initializers, not DequantizeLinear outputs."""
    import onnx

    out, metrics = bundle
    int8 = metrics["verification"]["int8"]
    assert int8["recipe"]["float_roles"] == ["stem", "classifier"]
    graph = onnx.load(str(out / "model.int8.onnx")).graph
    initializers = {i.name for i in graph.initializer}
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    nodes = {n.name: n for n in graph.node}
    kept = [nodes[name] for name in int8["nodes_in_float"]]
    assert sorted(n.op_type for n in kept) == ["Conv", "Gemm"]
    assert all(n.input[1] in initializers for n in kept)
    quantised = [n for n in graph.node if n.op_type == "Conv" and n.name not in int8["nodes_in_float"]]
    assert quantised and all(n.input[1] in dequantized for n in quantised)


def test_a_failed_verification_is_an_error(trained, tmp_path) -> None:
    model, data = trained
    with pytest.raises(ExportError, match="at least 500"):
        export_bundle(ARCH, model, tmp_path, val_inputs=_inputs(data, data.split.val[:100]),
                      val_labels=np.zeros(100, np.int64), calibration=_inputs(data, data.split.train[:64]),
                      preprocess={}, labels=[], formats=("onnx", "int8"))


def test_tampered_or_escaping_bundles_are_refused(bundle, tmp_path) -> None:
    out, _ = bundle
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy)
    (copy / "labels.txt").write_text("cat\n")
    with pytest.raises(EdgenasError, match="labels.txt does not match its manifest hash"):
        load_bundle(copy)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    shutil.copytree(out, tmp_path / "escape")
    (tmp_path / "escape" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgenasError, match="points outside the bundle"):
        load_bundle(tmp_path / "escape")


def test_standalone_runner_needs_only_numpy_and_onnxruntime(bundle, trained, tmp_path) -> None:
    out, _ = bundle
    _, data = trained
    index = int(data.split.val[0])
    image = data.data.images[index].permute(1, 2, 0).numpy()
    np.save(tmp_path / "digit.npy", image)
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "digit.png")
    code = "import sys, runpy; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    for name in ("digit.npy", "digit.png"):
        result = subprocess.run([sys.executable, "-c", code, str(out / "run.py"), str(tmp_path / name),
                                 "--top", "1"], capture_output=True, text=True, check=True)
        assert result.stdout.split()[1] in data.data.classes


def test_deploy_benchmarks_locally_and_compares_with_the_prediction(bundle, tmp_path) -> None:
    out, _ = bundle
    metrics = json.loads((out / "metrics.json").read_text())
    device = get_device("host-cpu")
    report = deploy(out, replace(device, timing=replace(device.timing, repeats=20, min_time_ms=5)))
    assert report["latency_ms"]["median_ms"] > 0 and report["model"] == "model.onnx"
    assert (out / "deploy" / "host-cpu.json").exists()
    assert metrics["predicted_latency_ms"] == PREDICTED
    measured = report["latency_ms"]["median_ms"]
    assert report["predicted_ms"] == 0.5
    assert report["prediction_error"] == pytest.approx((0.5 - measured) / measured)


def test_deploy_over_ssh(bundle, sshd, tmp_path) -> None:
    out, _ = bundle
    device = get_device("host-cpu")
    device = replace(device, name="loopback-ssh",
                     connection=Connection(kind="ssh", host=sshd.alias, ssh_config=str(sshd.config),
                                           python=sys.executable, workdir=str(tmp_path / "remote")),
                     timing=replace(device.timing, repeats=10, min_time_ms=2))
    report = deploy(out, device)
    assert report["latency_ms"]["n"] >= 10
    assert (tmp_path / "remote" / "bundle" / "model.onnx").exists()  # it really travelled
    # only the verified model travels, as a plain file, whatever else lies in the bundle
    assert sorted(p.name for p in (tmp_path / "remote" / "bundle").iterdir()) == ["model.onnx"]


def _copy_bundle(out: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(out, to, ignore=shutil.ignore_patterns("deploy"))
    return to


def test_crafted_bundles_cannot_reach_outside_their_folder(bundle, tmp_path) -> None:
    """Bundles come from elsewhere: entries naming absolute paths or links out of the folder
    are refused, and deploying never writes through a link or a hard link."""
    import hashlib
    import os

    out, _ = bundle
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep")
    absolute = _copy_bundle(out, tmp_path / "absolute")
    manifest = json.loads((absolute / "manifest.json").read_text())
    manifest["files"][str(victim)] = hashlib.sha256(b"keep").hexdigest()
    (absolute / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgenasError, match="points outside the bundle"):
        load_bundle(absolute)
    linked = _copy_bundle(out, tmp_path / "linked")  # the model: a link to a file outside
    (outside / "model.onnx").write_bytes((linked / "model.onnx").read_bytes())
    (linked / "model.onnx").unlink()
    (linked / "model.onnx").symlink_to(outside / "model.onnx")
    with pytest.raises(EdgenasError, match="points outside the bundle"):
        load_bundle(linked)
    device = get_device("host-cpu")
    device = replace(device, timing=replace(device.timing, repeats=5, min_time_ms=1))
    redirected = _copy_bundle(out, tmp_path / "redirected")  # deploy/ links elsewhere
    (redirected / "deploy").symlink_to(outside, target_is_directory=True)
    with pytest.raises(EdgenasError, match="not a folder of the bundle"):
        deploy(redirected, device)
    hard = _copy_bundle(out, tmp_path / "hard")  # the report's path hard-links a file outside
    (hard / "deploy").mkdir()
    os.link(victim, hard / "deploy" / "host-cpu.json")
    deploy(hard, device)
    assert victim.read_text() == "keep" and sorted(p.name for p in outside.iterdir()) == [
        "model.onnx", "victim.txt"]
    assert json.loads((hard / "deploy" / "host-cpu.json").read_text())["device"] == "host-cpu"


def test_int8_device_runs_the_quantised_model(bundle) -> None:
    out, _ = bundle
    device = get_device("host-cpu")
    device = replace(device, runtime=replace(device.runtime, precision="int8"),
                     timing=replace(device.timing, repeats=10, min_time_ms=2))
    assert deploy(out, device)["model"] == "model.int8.onnx"


def test_export_command_from_a_search_run_with_predictions(tmp_path, capsys,
                                                           tables_current_here) -> None:
    # export records predictions from tables that hold on this host only, so the test gets
    # one that does, whichever host measured the committed one
    run, profiles = tmp_path / "run", tables_current_here
    assert main(["search", "--device", "host-cpu", "--objectives", "latency,memory",
                 "--trials", "12", "--population", "6", "--out", str(run),
                 "--profiles-dir", str(profiles)]) == 0
    assert main(["export", str(run), "--pick", "knee", "--formats", "onnx", "--out",
                 str(tmp_path / "b"), "--profiles-dir", str(profiles)]) == 0
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    prediction = metrics["predicted_latency_ms"]["host-cpu"]
    assert prediction["lut"] == str(profiles / "host-cpu" / "cifar.json") and prediction["ms"] > 0
    assert main(["export", str(run), "--pick", "knee", "--out", str(tmp_path / "c")]) == 2
    assert "pass --weights" in capsys.readouterr().err


def test_tensorrt_engine_build_and_timing(bundle) -> None:
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (needs an NVIDIA GPU host or a Jetson)")
    out, _ = bundle
    from edgenas.device.agent.timer import build_trt_engine

    engine = build_trt_engine(str(out / "model.onnx"), "fp16", 512)
    assert len(engine) > 0 and trt.__version__


def test_export_takes_weights_from_supernet_and_standalone_runs(tmp_path) -> None:
    from edgenas.export_arch import export_arch
    from edgenas.train.loop import TrainConfig
    from edgenas.train.standalone import train_arch
    from edgenas.train.supernet_training import train_supernet
    from edgenas.train.weights import trained_model

    config = TrainConfig(epochs=1, batch_size=32, limit=160, val_fraction=0.2)
    train_supernet(get_space("cifar"), "digits", tmp_path / "supernet", config)
    from_supernet = export_arch(ARCH, tmp_path / "b1", ("onnx",), str(tmp_path / "supernet"))
    assert "supernet run" in from_supernet["weights"]
    # the ONNX model holds the subnet's weights: compared here with the subnet in PyTorch
    model, run_data, _ = trained_model(ARCH, tmp_path / "supernet")
    inputs = prepare_batch(run_data.data.images[run_data.split.val], run_data.normalize, False,
                           ARCH.resolution)
    with torch.no_grad():
        expected = model(inputs).numpy()
    diff = float(np.abs(_ort_logits(tmp_path / "b1" / "model.onnx", inputs.numpy()) - expected).max())
    assert diff <= 1e-4 and from_supernet["verification"]["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4
    train_arch(ARCH, "digits", tmp_path / "alone", config)
    alone = export_arch(ARCH, tmp_path / "b2", ("onnx",), str(tmp_path / "alone"))
    assert "stand-alone" in alone["weights"]
    with pytest.raises(EdgenasError, match="trained another arch"):
        export_arch(get_space("cifar").sample(99), tmp_path / "b3", ("onnx",), str(tmp_path / "alone"))


@pytest.mark.parametrize("images", [70, 20])
def test_int8_calibration_takes_any_number_of_images(tmp_path, images) -> None:
    """A small training set leaves a ragged last calibration batch (70 = 2 x 32 + 6), which
    ONNX Runtime's histogram calibrator cannot stack; fewer than one batch is one batch."""
    from edgenas.export.int8 import to_int8
    from edgenas.export.onnx_export import export_onnx, run_onnx

    torch.manual_seed(0)
    export_onnx(build_model(ARCH), ARCH.resolution, tmp_path / "model.onnx")
    inputs = np.random.default_rng(0).normal(size=(images, 3, ARCH.resolution, ARCH.resolution))
    to_int8(tmp_path / "model.onnx", tmp_path / "int8.onnx", inputs.astype(np.float32))
    assert run_onnx(tmp_path / "int8.onnx", inputs[:4].astype(np.float32)).shape == (4, 10)
