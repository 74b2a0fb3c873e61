"""Export verification where it fails: FP32 parity with PyTorch, FP16/INT8 agreement with FP32.

Each failure is triggered by a real network that really disagrees, and each number the
exporter reports is recomputed here with ONNX Runtime directly.
"""

from __future__ import annotations

import copy
import json
import logging
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgenas import get_space
from edgenas.data.augment import prepare_batch
from edgenas.export.bundle import export_bundle, load_bundle
from edgenas.export.fp16 import to_fp16
from edgenas.export.int8 import RECIPE, to_int8
from edgenas.export.onnx_export import ExportError, FormatRejected, export_onnx
from edgenas.nn.model import build_model
from edgenas.train.rundata import prepare_data

ARCH = get_space("cifar").sample(7)  # its head is 1x1 conv, batch norm, ReLU


@pytest.fixture(scope="module")
def probe():
    """ARCH with its random convolutions and a ridge-regression classifier fitted in closed
    form on their features of the training digits: ~97 % on the held-out digits, with
    decided (not near-tied) predictions, in seconds instead of a training loop."""
    torch.manual_seed(0)
    data = prepare_data("digits", 10, val_fraction=0.35)
    model = build_model(ARCH).eval()

    def inputs(index):
        return prepare_batch(data.data.images[index], data.normalize, False, ARCH.resolution)

    with torch.no_grad():
        features = torch.flatten(model.classifier.pool(model.units(inputs(data.split.train))), 1)
        features = features.double()
        mean, std = features.mean(0), features.std(0) + 1e-6
        design = torch.cat([(features - mean) / std, torch.ones(len(features), 1).double()], 1)
        targets = torch.nn.functional.one_hot(data.data.labels[data.split.train], 10).double()
        solved = torch.linalg.solve(design.T @ design + torch.eye(design.shape[1]).double(),
                                    design.T @ targets)
        linear = model.classifier.linear
        linear.weight.copy_((solved[:-1] / std[:, None]).T.float())
        linear.bias.copy_((solved[-1] - (mean / std) @ solved[:-1]).float())
    val = data.split.val
    return {"model": model, "val": inputs(val).numpy(), "labels": data.data.labels[val].numpy(),
            "calibration": inputs(data.split.train[:128]).numpy(),
            "preprocess": {"resolution": ARCH.resolution, "channels": 3,
                           "mean": list(data.normalize.mean), "std": list(data.normalize.std)},
            "classes": list(data.data.classes)}


def _export(probe, model, out, formats, drop_rejected=False):
    return export_bundle(ARCH, model, out, val_inputs=probe["val"], val_labels=probe["labels"],
                         calibration=probe["calibration"], preprocess=probe["preprocess"],
                         labels=probe["classes"], formats=formats, drop_rejected=drop_rejected)


def _logits(path, inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def _pytorch(model, inputs):
    with torch.no_grad():
        return model(torch.from_numpy(inputs)).numpy()


def _agreement(reference, other):
    return float(np.mean(reference.argmax(1) == other.argmax(1)))


def _recorded(metrics, fmt):
    """A format's recorded agreement, to compare with one recomputed here: equal up to an
    image or two (ONNX Runtime may sum in another order for another batch size)."""
    return pytest.approx(metrics["verification"][fmt]["top1_agreement_with_fp32"], abs=0.004)


def _outlier_channel(model, factor=1000.0):
    """The same function with one head channel ``factor`` times larger, the classifier's
    weights for it ``factor`` times smaller (ReLU commutes with positive scaling).

    Exact in real arithmetic, but activations are quantised per tensor: that channel sets
    the scale and the others fall below one INT8 step, the channel-range imbalance that
    cross-layer equalisation exists to remove."""
    model = copy.deepcopy(model)
    conv_bn_act = model.units[-1].layers[0]
    assert isinstance(conv_bn_act[2], torch.nn.ReLU)
    with torch.no_grad():
        conv_bn_act[1].weight[0] *= factor
        conv_bn_act[1].bias[0] *= factor
        model.classifier.linear.weight[:, 0] /= factor
    return model


def _near_tied(model, scale=1e-3, offset=100.0):
    """The same top-1 decisions with logits ``scale`` times closer on top of ``offset``:
    FP32 resolves their gaps (~1e-3), FP16 (spacing 0.06 at 100) rounds them into ties."""
    model = copy.deepcopy(model)
    linear = model.classifier.linear
    with torch.no_grad():
        linear.weight *= scale
        linear.bias.mul_(scale).add_(offset)
    return model


class _BatchCentred(torch.nn.Module):
    """Subtracts the batch's mean pixel read as a Python float: ONNX export traces it as
    the constant of the example batch (zeros), so ONNX Runtime never subtracts it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x - float(x.mean()))


def test_fp32_that_differs_from_pytorch_is_an_error_and_keeps_the_old_bundle(probe, tmp_path) -> None:
    out = tmp_path / "bundle"
    _export(probe, probe["model"], out, ("onnx",))
    before = (out / "manifest.json").read_bytes()
    diverging = _BatchCentred(probe["model"]).eval()
    with pytest.raises(ExportError, match="ONNX Runtime differs from PyTorch") as raised:
        _export(probe, diverging, out, ("onnx",))
    export_onnx(diverging, ARCH.resolution, tmp_path / "alone.onnx")
    inputs = probe["val"][:256]  # what the exporter compares
    diff = float(np.abs(_logits(tmp_path / "alone.onnx", inputs) - _pytorch(diverging, inputs)).max())
    assert diff > 1e-4
    reported = float(re.search(r"differs from PyTorch by (\S+) ", str(raised.value)).group(1))
    assert reported == pytest.approx(diff, rel=1e-2)
    assert (out / "manifest.json").read_bytes() == before and load_bundle(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.onnx", "bundle"]


def test_int8_that_disagrees_is_left_out_and_the_bundle_says_why(probe, tmp_path, caplog) -> None:
    model = _outlier_channel(probe["model"])
    out = tmp_path / "bundle"
    with caplog.at_level(logging.WARNING, logger="edgenas.export.bundle"):
        metrics = _export(probe, model, out, ("onnx", "fp16", "int8"), drop_rejected=True)
    assert metrics["formats"] == ["onnx", "fp16"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert not (out / "model.int8.onnx").exists() and not list(out.glob("*.pre.onnx"))
    assert "model.int8.onnx" not in load_bundle(out)["manifest"]["files"]
    assert json.loads((out / "metrics.json").read_text()) == metrics
    int8 = metrics["verification"]["int8"]
    assert re.fullmatch(r"int8: top-1 agreement with FP32 is \S+ % on 629 images "
                        r"\(needs >= 99 %\)", int8["rejected"])
    assert "int8 left out of the bundle" in caplog.text and int8["rejected"] in caplog.text
    # FP32 still holds the trained function, and the shipped FP16 agrees with it
    inputs = probe["val"]
    reference = _logits(out / "model.onnx", inputs)
    assert np.abs(reference[:256] - _pytorch(model, inputs[:256])).max() <= 1e-4
    assert _agreement(reference, _pytorch(probe["model"], inputs)) >= 0.99
    fp16 = _agreement(reference, _logits(out / "model.fp16.onnx", inputs))
    assert fp16 >= 0.99 and fp16 == _recorded(metrics, "fp16")
    # the rejected INT8 model, made again outside the exporter, disagrees as recorded
    to_int8(out / "model.onnx", tmp_path / "int8.onnx", probe["calibration"], RECIPE)
    agreement = _agreement(reference, _logits(tmp_path / "int8.onnx", inputs))
    assert agreement < 0.5 and agreement == _recorded(metrics, "int8")


def test_a_rejected_format_fails_the_whole_export_unless_dropping_is_asked_for(probe, tmp_path) -> None:
    with pytest.raises(FormatRejected, match="int8: top-1 agreement with FP32") as raised:
        _export(probe, _outlier_channel(probe["model"]), tmp_path / "bundle", ("onnx", "int8"))
    assert raised.value.format == "int8"
    assert list(tmp_path.iterdir()) == []


def test_fp16_that_disagrees_is_left_out_and_fp32_ships(probe, tmp_path) -> None:
    model = _near_tied(probe["model"])
    out = tmp_path / "bundle"
    metrics = _export(probe, model, out, ("onnx", "fp16"), drop_rejected=True)
    assert metrics["formats"] == ["onnx"]
    assert sorted(p.name for p in out.glob("*.onnx")) == ["model.onnx"]
    assert metrics["verification"]["fp16"]["rejected"].startswith("fp16: top-1 agreement")
    inputs = probe["val"]
    reference = _logits(out / "model.onnx", inputs)
    assert np.abs(reference[:256] - _pytorch(model, inputs[:256])).max() <= 1e-4
    assert _agreement(reference, _pytorch(probe["model"], inputs)) >= 0.99
    to_fp16(out / "model.onnx", tmp_path / "fp16.onnx")
    agreement = _agreement(reference, _logits(tmp_path / "fp16.onnx", inputs))
    assert agreement < 0.9 and agreement == _recorded(metrics, "fp16")
