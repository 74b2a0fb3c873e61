"""The INT8 recipe's own checks: a recipe is refused by the field that is wrong, before any
model is quantised; calibration batches are of one size; and the roles a recipe keeps in
float name exactly the layers that play them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from onnx import helper

from edgenas.errors import ExportError
from edgenas.export.int8 import RECIPE, Int8Recipe, _Calibration, role_nodes


@pytest.mark.parametrize(("change", "says"), [
    ({"calibration": "mean"}, r"Int8Recipe\.calibration: 'mean' not in \('percentile', "),
    ({"float_roles": ("stem", "head")}, r"Int8Recipe\.float_roles: \['head'\] not in \("),
    ({"percentile": 50.0}, r"Int8Recipe\.percentile: 50\.0, needs \(50, 100\]"),
    ({"percentile": 100.5}, r"Int8Recipe\.percentile: 100\.5, needs \(50, 100\]"),
    ({"calibration_images": 0}, r"Int8Recipe\.calibration_images: 0, needs at least 1$"),
])
def test_a_wrong_recipe_field_is_named_with_what_it_needs(change: dict, says: str) -> None:
    with pytest.raises(ExportError, match=says):
        replace(RECIPE, **change)


@pytest.mark.parametrize("change", [
    {"percentile": 50.5}, {"percentile": 100.0}, {"calibration_images": 1},
    {"float_roles": ("stem",)}, {"float_roles": ()}, {"calibration": "entropy"},
])
def test_the_edges_of_each_field_are_accepted(change: dict) -> None:
    assert getattr(replace(RECIPE, **change), next(iter(change))) == next(iter(change.values()))


def _batches(count: int, **batch: int) -> list[int]:
    reader = _Calibration(np.zeros((count, 3, 2, 2), np.float32), **batch)
    sizes = []
    while (item := reader.get_next()) is not None:
        sizes.append(len(item["input"]))
    return sizes


def test_calibration_batches_are_of_one_size_and_the_ragged_tail_is_left_out() -> None:
    # ONNX Runtime's histogram calibrators stack the batches: a shorter one would fail them
    assert _batches(70) == [32, 32]
    assert _batches(70, batch=10) == [10] * 7
    assert _batches(5) == [5]  # fewer images than a batch: one batch of them all
    assert _batches(1, batch=1) == [1]


def _graph(*ops: str):  # noqa: ANN202
    nodes = [helper.make_node(op, ["x"], ["y"], name=f"{op.lower()}{i}") for i, op in enumerate(ops)]
    return helper.make_model(helper.make_graph(nodes, "g", [], []))


def test_the_float_roles_name_the_first_convolution_and_every_classifier_layer() -> None:
    model = _graph("Conv", "Relu", "Conv", "MatMul", "Gemm")
    assert role_nodes(model, ("stem",)) == ["conv0"]
    assert role_nodes(model, ("classifier",)) == ["matmul3", "gemm4"]
    assert role_nodes(model, ("stem", "classifier")) == ["conv0", "matmul3", "gemm4"]
    assert role_nodes(model, ()) == []
    assert role_nodes(_graph("Relu", "Gemm"), ("stem", "classifier")) == ["gemm1"]


def _fp32(tmp_path):  # noqa: ANN001, ANN202
    from test_int8_refit import _model  # the refit's small model, with a bias to refit

    from edgenas.export.onnx_export import export_onnx

    path = tmp_path / "model.onnx"
    export_onnx(_model(bias=True), 8, path)
    images = np.random.default_rng(0).normal(size=(64, 3, 8, 8)).astype(np.float32)
    images[0, 0, 0, 0] = 40.0  # one outlier: min/max calibration stretches to it
    return path, images


def _quantised(path):  # noqa: ANN001, ANN202
    """A QDQ model's quantised activations, {tensor: (scale, zero point)}, and its quantised
    convolution weights, {initializer: (int8 values, scale)}."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    acts, weights = {}, {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            scale, zero = inits[node.input[1]], inits[node.input[2]]
            acts[node.input[0]] = (scale, zero)
        elif node.op_type == "DequantizeLinear" and node.input[0] in inits \
                and inits[node.input[0]].ndim == 4:
            weights[node.input[0]] = (inits[node.input[0]], inits[node.input[1]])
    return acts, weights


def test_the_int8_model_is_what_the_recipe_says(tmp_path, capsys) -> None:
    from edgenas.export.int8 import to_int8
    from edgenas.export.onnx_export import run_onnx

    fp32, images = _fp32(tmp_path)
    out = tmp_path / "int8.onnx"
    in_float = to_int8(fp32, out, images, RECIPE)
    assert capsys.readouterr().out == ""  # the calibrators' progress is not the user's
    acts, weights = _quantised(out)
    # symmetric int8 activations (TensorRT reads only those), QDQ around every quantised op
    assert acts and all(zero.dtype == np.int8 and not zero.any() for _, zero in acts.values())
    # per-channel weights of 7 bits: one scale per output channel, values within +-64
    assert len(weights) == 1  # the second convolution; the stem stays in float
    (values, scale), = weights.values()
    assert values.dtype == np.int8 and scale.shape == (16,) and np.abs(values).max() <= 64
    assert in_float == ["/0/Conv", "/6/Gemm"]
    # per-tensor and full-range weights when the recipe says so
    to_int8(fp32, out, images, replace(RECIPE, per_channel=False, reduce_range=False))
    (values, scale), = _quantised(out)[1].values()
    assert scale.shape == () and np.abs(values).max() > 64
    # asymmetric activations: the zero points move
    to_int8(fp32, out, images, replace(RECIPE, symmetric_activations=False))
    assert any(zero.any() for _, zero in _quantised(out)[0].values())
    # min/max calibration stretches the input's range to its one outlier; entropy runs
    to_int8(fp32, out, images, replace(RECIPE, calibration="minmax", float_roles=()))
    stretched = _quantised(out)[0]["input"][0]
    to_int8(fp32, out, images, replace(RECIPE, float_roles=(), percentile=99.9))
    assert stretched > 2 * _quantised(out)[0]["input"][0]
    to_int8(fp32, out, images, replace(RECIPE, calibration="entropy"))
    # without ONNX Runtime's pre-processing the graph is quantised as exported, and runs
    to_int8(fp32, out, images, replace(RECIPE, pre_process=False))
    assert run_onnx(out, images[:4]).shape == (4, 5)
    assert not list(tmp_path.glob("*.pre.onnx"))  # the intermediate graph is removed


def test_float_nodes_are_kept_in_float_and_an_unknown_one_is_named(tmp_path) -> None:
    from edgenas.export.int8 import to_int8

    fp32, images = _fp32(tmp_path)
    out = tmp_path / "int8.onnx"
    kept = to_int8(fp32, out, images, RECIPE, float_nodes=("/2/Conv",))
    assert kept == ["/0/Conv", "/6/Gemm", "/2/Conv"] and not _quantised(out)[1]
    with pytest.raises(ExportError, match=r"model\.onnx: float_nodes \['/9/Conv'\] are not "
                                          r"nodes of the pre-processed graph"):
        to_int8(fp32, out, images, RECIPE, float_nodes=("/2/Conv", "/9/Conv"))
