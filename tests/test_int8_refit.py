"""The INT8 exporter refits its float classifier to FP32's logits: what that changes in the
model (weights, not the graph), that it brings INT8 closer to FP32, and when it is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edgenas.errors import ExportError
from edgenas.export.int8 import RECIPE, refit_classifier, to_int8
from edgenas.export.onnx_export import export_onnx, run_onnx


def _model(bias: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 5, bias=bias)).eval()


def _int8(tmp_path: Path, bias: bool) -> tuple[Path, Path, np.ndarray]:
    images = np.random.default_rng(0).normal(size=(256, 3, 8, 8)).astype(np.float32)
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "int8.onnx"
    export_onnx(_model(bias), 8, fp32)
    to_int8(fp32, int8, images[:64], replace(RECIPE, refit_classifier=False))
    return fp32, int8, images


def _ops(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_the_refit_brings_the_int8_logits_closer_to_fp32_and_leaves_the_graph_alone(
        tmp_path: Path) -> None:
    fp32, int8, images = _int8(tmp_path, True)
    reference = run_onnx(fp32, images)
    before, ops = run_onnx(int8, images), _ops(int8)
    refit_classifier(int8, images, reference)
    after = run_onnx(int8, images)
    assert _ops(int8) == ops  # the same nodes: a latency table timed this very graph
    assert np.mean((after - reference) ** 2) < 0.9 * np.mean((before - reference) ** 2)
    assert not list(tmp_path.glob("*.probe.onnx"))


def test_a_strong_ridge_keeps_the_trained_classifier(tmp_path: Path) -> None:
    fp32, int8, images = _int8(tmp_path, True)
    before = run_onnx(int8, images)
    refit_classifier(int8, images, run_onnx(fp32, images), ridge=1e9)
    np.testing.assert_allclose(run_onnx(int8, images), before, atol=1e-4)


def test_a_classifier_without_a_bias_is_refused_by_name(tmp_path: Path) -> None:
    fp32, int8, images = _int8(tmp_path, False)  # exported as MatMul, not Gemm
    with pytest.raises(ExportError, match="no float classifier with a bias.*refit_classifier=False"):
        refit_classifier(int8, images, run_onnx(fp32, images))


def test_the_exporter_s_recipe_refits_and_a_recipe_can_leave_it_out(tmp_path: Path) -> None:
    fp32, plain, images = _int8(tmp_path, True)
    refitted = tmp_path / "refitted.onnx"
    to_int8(fp32, refitted, images[:64], RECIPE)  # the exporter's: refit on its calibration
    reference = run_onnx(fp32, images[64:])  # images it never saw
    error = {path.name: np.mean((run_onnx(path, images[64:]) - reference) ** 2)
             for path in (plain, refitted)}
    assert error["refitted.onnx"] < error["int8.onnx"]
    assert _ops(refitted) == _ops(plain)


def test_a_graph_of_one_batch_size_is_refitted_in_batches_of_that_size(tmp_path: Path) -> None:
    """The profiler's graphs have batch 1 (`edgenas.profile.onnx_graph`)."""
    torch.manual_seed(0)
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "int8.onnx"
    torch.onnx.export(_model(True), (torch.zeros(1, 3, 8, 8),), str(fp32), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["logits"])
    images = np.random.default_rng(0).normal(size=(40, 3, 8, 8)).astype(np.float32)
    to_int8(fp32, int8, images, RECIPE)  # the exporter's recipe refits: no error
    assert np.isfinite(run_onnx(int8, images[:1], batch=1)).all()
