"""A device's precision is part of its table: its units and networks are timed in the model
it ships (the exporter's INT8 quantisation, its FP16 conversion), a table of another
precision is refused, and deploy runs the same model.

Real ONNX Runtime and real quantisation throughout; where the time must be exact the device
is scripted (`scripted_device`), and the real host's profile only has to complete.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgenas.cli import main
from edgenas.deploy.deploy import model_for
from edgenas.device.descriptor import Device, Runtime, Timing, load_device_file, parse_device
from edgenas.errors import DeviceError, ProfileError
from edgenas.export.bundle import MODEL_FILES
from edgenas.profile.keys import space_units, unit_roles
from edgenas.profile.lut import LUT, load_lut, lut_path, open_lut, save_lut, stale_reasons
from edgenas.profile.measure import measure_latency
from edgenas.profile.onnx_graph import network_model, unit_model
from edgenas.profile.precision import (TIMING_RECIPE, DeviceModels, describe, device_model,
                                       fp16_note)
from edgenas.profile.profiler import profile
from edgenas.profile.timing import load_guard
from edgenas.space import SPACES
from scripted_device import CostModel, scripted_device
from tiny_space import tiny_space

QDQ = {"QuantizeLinear", "DequantizeLinear"}


def host(precision: str = "fp32", **runtime: object) -> Device:
    """This machine, running ONNX Runtime at ``precision``."""
    return parse_device({"name": f"host-{precision}",
                         "runtime": {"precision": precision, **runtime}}, "test")


def ops(model: onnx.ModelProto) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


def run_once(model: onnx.ModelProto) -> np.ndarray:
    """One inference of ``model`` in ONNX Runtime on a float32 input of its shape."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in feed.shape]
    return session.run(None, {feed.name: np.ones(shape, np.float32)})[0]


def block_unit() -> tuple:
    units, roles = space_units(tiny_space()), unit_roles(tiny_space())
    key = next(k for k in units if roles[k] == "block" and "conv1s1" in k)
    return units[key]


def test_an_int8_unit_model_has_quantize_and_dequantize_nodes_and_runs_in_onnx_runtime() -> None:
    model = device_model(host("int8"), unit_model(*block_unit()))
    assert QDQ <= set(ops(model))
    assert np.isfinite(run_once(model)).all()


def test_an_int8_unit_model_is_the_same_each_time_it_is_made() -> None:
    # its calibration inputs are seeded: a unit quantised again (a second profile, a
    # re-measure) is timed with the same scales, so its time is comparable
    graph = unit_model(*block_unit())
    first, again = (device_model(host("int8"), graph) for _ in range(2))
    weights = [{t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
               for m in (first, again)]
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_a_record_of_converted_models_is_made_when_missing_and_adds_each_later_conversion() -> None:
    # a table written before tables recorded their models: the first conversion says what
    # they are, as a new table's record would, and counts itself
    made = DeviceModels(host("int8"), {name: lambda: unit_model(*block_unit())
                                       for name in ("first", "second")})
    assert QDQ <= set(ops(made["first"]))
    lut = LUT("host-int8", "tiny", "h", {}, {}, {})
    first = made.seconds
    made.record(lut)
    models = lut.timing["models"]
    assert (models["format"], models["precision"], models["converted"]) == ("int8", "int8", 1)
    assert models["quantization"]["per_channel"] and models["convert_s"] == round(first, 3)
    made.record(lut)  # nothing converted since: nothing added
    before = dict(lut.timing["models"])
    assert before["converted"] == 1 and before["convert_s"] > 0
    started = time.perf_counter()
    made["second"]
    elapsed = time.perf_counter() - started
    seconds = made.seconds
    assert 0 < seconds <= elapsed  # the later conversion's time alone
    made.record(lut)  # a later conversion adds to the record
    assert lut.timing["models"]["converted"] == 2
    assert lut.timing["models"]["convert_s"] == round(before["convert_s"] + seconds, 3)


def test_device_models_convert_only_what_the_device_does_not_run_as_built_and_keep_them(
        monkeypatch) -> None:
    """An FP32 device runs the graphs as built: nothing is converted or counted. Another
    precision's models are made once and kept (the default: networks are timed in several
    rounds), and the conversion time adds up over every model made (a clock that moves 1 s
    per reading here)."""
    graphs = {name: (lambda: unit_model(*block_unit())) for name in ("a", "b")}
    fp32 = DeviceModels(host("fp32"), graphs)
    assert ops(fp32["a"]) == ops(unit_model(*block_unit())) and fp32.made == 0
    assert fp32.seconds == 0.0
    clock = iter(range(100))
    monkeypatch.setattr("edgenas.profile.precision.time",
                        SimpleNamespace(perf_counter=lambda: next(clock)))
    int8 = DeviceModels(host("int8"), graphs)
    first = int8["a"]
    assert int8["a"] is first and int8.made == 1
    int8["b"]
    assert int8.made == 2 and int8.seconds == 2.0


def test_a_block_unit_is_quantised_whole_and_a_stem_unit_keeps_its_convolution_in_float(
        ) -> None:
    """The recipe keeps a network's stem in float, not every unit's first convolution."""
    units, roles = space_units(tiny_space()), unit_roles(tiny_space())
    stem = next(key for key in units if roles[key] == "stem")
    block = device_model(host("int8"), unit_model(*block_unit()))
    quantised = {node.input[1] for node in block.graph.node if node.op_type == "Conv"}
    dequantised = {node.output[0] for node in block.graph.node
                   if node.op_type == "DequantizeLinear"}
    assert quantised <= dequantised  # every convolution's weights come out of a DQ node
    assert not QDQ & set(ops(device_model(host("int8"), unit_model(*units[stem], role="stem"))))


def test_an_int8_network_keeps_stem_and_classifier_in_float_as_exported() -> None:
    model = device_model(host("int8"), network_model(tiny_space().sample(3)))
    produced_by = {out: node for node in model.graph.node for out in node.output}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    gemm = next(node for node in model.graph.node if node.op_type == "Gemm")
    assert convs[0].input[1] not in produced_by  # float weights: an initializer
    assert all(produced_by[c.input[1]].op_type == "DequantizeLinear" for c in convs[1:])
    assert gemm.input[1] not in produced_by
    assert np.isfinite(run_once(model)).all()


def test_fp16_models_are_float16_with_float32_inputs_and_outputs() -> None:
    model = device_model(host("fp16"), network_model(tiny_space().sample(3)))
    weights = [w for w in model.graph.initializer if len(w.dims) == 4]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert run_once(model).dtype == np.float32


def test_fp32_devices_time_the_graph_itself() -> None:
    graph = network_model(tiny_space().sample(3))
    assert device_model(host("fp32"), graph) is graph


@pytest.mark.parametrize("runtime,precision,fmt", [
    ({}, "fp32", "onnx"), ({}, "fp16", "fp16"), ({}, "int8", "int8"),
    ({"name": "tensorrt"}, "fp16", "onnx"), ({"name": "tensorrt"}, "int8", "int8"),
    ({"name": "openvino"}, "fp16", "onnx"), ({"name": "openvino"}, "int8", "int8"),
])
def test_the_profile_times_the_bundle_file_deploy_runs(runtime, precision, fmt) -> None:
    device = host(precision, **runtime)
    assert device.runtime.model_format == fmt
    assert model_for(device, {name: "" for name in MODEL_FILES.values()}) == MODEL_FILES[fmt]


def test_the_load_guards_reference_is_timed_in_the_devices_precision() -> None:
    assert QDQ <= set(ops(load_guard(host("int8"), tiny_space()).reference))
    assert not QDQ & set(ops(load_guard(host("fp32"), tiny_space()).reference))


def test_a_table_of_one_precision_is_refused_for_another(tmp_path) -> None:
    space, fp32, int8 = tiny_space(), host("fp32"), host("int8")
    int8 = replace(int8, name=fp32.name)  # the same device, now running INT8
    lut = LUT.new(fp32, space, {})
    assert stale_reasons(lut, fp32, space) == []
    reasons = stale_reasons(lut, int8, space)
    assert any(r.startswith("runtime.precision: table has 'fp32'") for r in reasons)
    assert any("table timed the FP32 model, device runs the INT8 (QDQ) one" in r
               for r in reasons)
    assert stale_reasons(LUT.new(int8, space, {}), int8, space) == []
    path = lut_path(tmp_path / "profiles", fp32.name, space.name)
    save_lut(lut, path)
    with pytest.raises(ProfileError, match="runtime.precision"):
        open_lut(int8, space, tmp_path / "profiles")


def test_an_int8_table_timed_on_the_fp32_graph_is_stale_for_its_own_device() -> None:
    """Tables written before precision reached the models timed the FP32 graph."""
    space, int8 = tiny_space(), host("int8")
    lut = LUT.new(int8, space, {})
    lut.timing.pop("models")
    assert stale_reasons(lut, int8, space) == [
        "models: table timed the FP32 model, device runs the INT8 (QDQ) one"]


FAKE_AGENT = """#!{python}
import json, os, sys
import onnx
models = [arg for arg in sys.argv[1:] if arg.endswith(".onnx")]
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[2:], "ops": [
        sorted({{node.op_type for node in onnx.load(m).graph.node}}) for m in models]}}) + "\\n")
for m in models:
    print(json.dumps({{"model": os.path.basename(m), "median_ms": 1.0}}), flush=True)
"""


def test_the_precision_reaches_the_agents_command_line_with_the_int8_models(tmp_path) -> None:
    """The device's Python is a stand-in that records how the agent was called and what
    it was given: quantisation happens on the host, the agent times files."""
    log = tmp_path / "agent.jsonl"
    python = tmp_path / "python"
    python.write_text(FAKE_AGENT.format(python=sys.executable, log=str(log)))
    python.chmod(0o755)
    device = parse_device({"name": "stand-in", "connection": {"python": str(python)},
                           "runtime": {"precision": "int8"}}, "test")
    assert measure_latency(device, {"a": tiny_space().sample(1)}) == {"a": 1.0}
    call = json.loads(log.read_text().splitlines()[-1])
    assert call["argv"][:1] == ["time"]
    assert call["argv"][call["argv"].index("--precision") + 1] == "int8"
    assert all(QDQ <= set(model_ops) for model_ops in call["ops"])


def test_an_int8_profile_on_a_scripted_device_times_int8_models_and_records_them(
        monkeypatch) -> None:
    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    seen: list[set[str]] = []
    scripted = scripted_device(monkeypatch, CostModel(per_call_ms=0.05))
    timed = scripted.time

    def time(file: Path) -> float:
        seen.append(set(ops(onnx.load(str(file)))))
        return timed(file)

    monkeypatch.setattr(scripted, "time", time)
    lut = profile(host("int8"), tiny_space(), calibrate=4, max_units=12)
    assert lut.runtime["precision"] == "int8"
    models = lut.timing["models"]
    assert (models["format"], models["precision"]) == ("int8", "int8")
    assert models["quantization"]["per_channel"] and models["converted"] >= 12 + 4
    assert models["convert_s"] > 0
    # every model timed but the float stem units was quantised, the reference included
    quantised = [QDQ <= kinds for kinds in seen]
    assert sum(quantised) >= len(seen) - 2 and all(quantised[:20])


@pytest.mark.parametrize("fingerprint,noted", [({"machine": "x86_64"}, True),
                                              ({"machine": "aarch64"}, False),
                                              ({"abi": "arm64-v8a"}, False)])  # a phone
def test_fp16_on_a_cpu_provider_without_fp16_kernels_says_so(fingerprint, noted) -> None:
    machine = next(iter(fingerprint.values()))
    note = fp16_note(host("fp16"), fingerprint)
    assert (note is not None) == noted
    if noted:
        assert "casts to float" in note and machine in note
    assert fp16_note(host("int8"), fingerprint) is None


def test_the_fp16_note_looks_at_the_provider_that_runs_first_and_names_the_cpu() -> None:
    """ONNX Runtime runs a model on the first provider that takes it: a CPU provider first
    (another behind it) still casts FP16 to float; a GPU provider first does not. Without a
    machine in the fingerprint the note says 'this CPU'."""
    behind = host("fp16", providers=["CPUExecutionProvider", "XnnpackExecutionProvider"])
    assert "no FP16 kernels on x86_64" in fp16_note(behind, {"machine": "x86_64"})
    gpu_first = host("fp16", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert fp16_note(gpu_first, {"machine": "x86_64"}) is None
    assert fp16_note(host("fp16"), {}) == (
        "ONNX Runtime's CPUExecutionProvider has no FP16 kernels on this CPU: it runs the FP16 "
        "model through casts to float, and these times are that")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_a_table_records_how_its_models_were_made(precision) -> None:
    """What a table says of its models, read whole: the format staleness compares, the
    precision, and for INT8 the timing recipe (the exporter's, on random calibration
    inputs), for FP16 the conversion and, on a CPU without FP16 kernels, the note."""
    recorded = describe(host(precision), {"machine": "x86_64"})
    expected: dict[str, object] = {"format": {"fp32": "onnx"}.get(precision, precision),
                                   "precision": precision}
    if precision == "int8":
        expected["quantization"] = {**TIMING_RECIPE.to_dict(),
                                    "calibration_inputs": "random normal, per model",
                                    "how": "edgenas.export.int8.to_int8, static QDQ, as exported"}
    if precision == "fp16":
        expected["conversion"] = ("edgenas.export.fp16.fp16_model, as exported "
                                  "(FP32 inputs/outputs)")
        expected["note"] = fp16_note(host("fp16"), {"machine": "x86_64"})
    assert recorded == expected


def test_an_fp16_profile_warns_and_notes_it_in_the_table(monkeypatch, caplog) -> None:
    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    scripted = scripted_device(monkeypatch, CostModel())
    monkeypatch.setattr("scripted_device.timer.fingerprint",
                        lambda *args: {"machine": "x86_64", "cpu": "test"})
    with caplog.at_level(logging.WARNING):
        lut = profile(host("fp16"), tiny_space(), calibrate=0, max_units=8)
    assert "casts to float" in lut.timing["models"]["note"]
    assert any("casts to float" in record.getMessage() for record in caplog.records)
    assert scripted.timed > 0


@pytest.mark.parametrize("where", [[], ["--ssh", "pi@10.0.0.9"], ["--adb", "R5CX"]])
def test_device_init_precision_int8_writes_a_descriptor_that_loads(tmp_path, where) -> None:
    python = ["--python", sys.executable] if not where else []  # no runtime check remotely
    assert main(["device", "init", "board", *where, *python, "--precision", "int8",
                 "--dir", str(tmp_path)]) == 0
    device = load_device_file(tmp_path / "board.toml")
    assert (device.runtime.name, device.runtime.precision) == ("onnxruntime", "int8")
    assert device.runtime.model_format == "int8"


def test_int8_on_a_provider_that_computes_it_in_float_is_refused_in_one_line(tmp_path,
                                                                              capsys) -> None:
    assert main(["device", "init", "gpu-box", "--providers", "CUDAExecutionProvider",
                 "--precision", "int8", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "gpu-box" in err and "CUDAExecutionProvider" in err
    assert "TensorrtExecutionProvider" in err and "fp16" in err
    assert not (tmp_path / "gpu-box.toml").exists()
    assert main(["device", "init", "gpu-box", "--providers", "CUDAExecutionProvider",
                 "--precision", "fp16", "--dir", str(tmp_path)]) == 0


def test_an_int8_profile_of_the_tiny_space_on_this_host_completes_and_is_marked_int8(
        tmp_path) -> None:
    """Real ONNX Runtime timing real INT8 models; nothing here depends on how fast."""
    device = replace(host("int8"), timing=Timing(warmup=1, repeats=5, min_time_ms=1.0,
                                                 max_time_ms=5.0))
    lut = profile(device, tiny_space(), calibrate=4, max_units=16)
    path = lut_path(tmp_path / "profiles", device.name, "tiny")
    save_lut(lut, path)
    table = load_lut(path)
    assert table.runtime["precision"] == "int8" and table.timing["models"]["format"] == "int8"
    assert sum(not e.predicted for e in table.entries.values()) == 16
    assert len(table.networks["fitting"]) == 4
    assert table.timing["protocol"]["yardstick_ms"] > 0
    assert stale_reasons(table, device, tiny_space()) == []
    assert stale_reasons(table, replace(device, runtime=Runtime()), tiny_space())


# -- export and deploy agree on the precision ---------------------------------------------

TIMING_AGENT = """#!{python}
# A stand-in for the device's Python: every model it is asked to time takes 2 ms.
import json, os, sys
args = sys.argv[2:]
if args[0] == "fingerprint":
    print(json.dumps({{"machine": "scripted", "cpu": "scripted"}}))
    sys.exit(0)
for model in [a for a in args[1:] if a.endswith(".onnx")]:
    print(json.dumps({{"model": os.path.basename(model), "median_ms": 2.0, "p10_ms": 2.0,
                      "p90_ms": 2.0, "min_ms": 2.0, "mean_ms": 2.0, "spread": 0.0, "n": 10}}))
"""


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory) -> Path:
    """An untrained bundle exported with an agreement bar no format can pass: FP16 is left
    out, INT8 ships all the same (the device runs it); its predictions say which table."""
    import torch

    from edgenas.export import onnx_export
    from edgenas.export.bundle import export_bundle
    from edgenas.nn.model import build_model

    arch = tiny_space().sample(3)
    torch.manual_seed(0)
    inputs = torch.randn(500, 3, arch.resolution, arch.resolution).numpy()
    out = tmp_path_factory.mktemp("bundle") / "pick"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(onnx_export, "AGREEMENT_REQUIRED", 1.01)
        export_bundle(arch, build_model(arch).eval(), out, val_inputs=inputs,
                      val_labels=np.zeros(500, np.int64), calibration=inputs[:32],
                      preprocess={"resolution": arch.resolution, "channels": 3},
                      labels=[f"class-{i}" for i in range(10)], drop_rejected=True,
                      keep=("int8",),
                      predicted_latency={
                          "int8-board": {"ms": 2.2, "lut": "t", "lut_updated": "t",
                                         "precision": "int8"},
                          "relabelled-board": {"ms": 1.0, "lut": "t", "lut_updated": "t",
                                               "precision": "fp32"}})
    return out


def test_the_format_the_device_runs_ships_below_the_bar_and_says_so(int8_bundle) -> None:
    from edgenas.export.bundle import describe_check, load_bundle, precision_checks

    metrics = load_bundle(int8_bundle)["metrics"]
    assert metrics["formats"] == ["onnx", "int8"]
    checks = precision_checks(metrics)
    assert checks["int8"]["shipped"] and "below_bar" in checks["int8"]
    assert not checks["fp16"]["shipped"] and "rejected" in checks["fp16"]
    assert checks["int8"]["fp32_accuracy"] == metrics["verification"]["onnx"]["accuracy"]
    words = describe_check("int8", checks["int8"])
    assert words.startswith("INT8: top-1 agreement with FP32 ") and "FP32 " in words
    assert words.endswith("shipped below the bar")


def _stand_in(tmp_path: Path, name: str) -> None:
    agent = tmp_path / "agent"
    agent.write_text(TIMING_AGENT.format(python=sys.executable))
    agent.chmod(0o755)
    (tmp_path / "devices").mkdir(exist_ok=True)
    (tmp_path / "devices" / f"{name}.toml").write_text(
        f'name = "{name}"\n[connection]\npython = "{agent}"\n[runtime]\nprecision = "int8"\n')


def test_deploy_on_an_int8_device_times_the_int8_model_against_the_int8_table(
        int8_bundle, tmp_path, monkeypatch, capsys) -> None:
    _stand_in(tmp_path, "int8-board")
    monkeypatch.chdir(tmp_path)
    assert main(["deploy", str(int8_bundle), "--device", "int8-board", "--rounds", "3"]) == 0
    report = json.loads((int8_bundle / "deploy" / "int8-board.json").read_text())
    assert report["model"] == "model.int8.onnx"
    assert report["predicted_ms"] == 2.2 and report["prediction_error"] == pytest.approx(0.1)
    assert "model.int8.onnx 2.0000 ms" in capsys.readouterr().out


def test_deploy_does_not_compare_a_prediction_from_a_table_of_another_precision(
        int8_bundle, tmp_path, monkeypatch, capsys) -> None:
    _stand_in(tmp_path, "relabelled-board")
    monkeypatch.chdir(tmp_path)
    assert main(["deploy", str(int8_bundle), "--device", "relabelled-board",
                 "--rounds", "3"]) == 0
    report = json.loads((int8_bundle / "deploy" / "relabelled-board.json").read_text())
    assert "predicted_ms" not in report and "fp32 table" in report["prediction_note"]
    assert "fp32 table; the device runs int8" in capsys.readouterr().out


def test_pareto_shows_each_exported_picks_int8_agreement_and_accuracy(int8_bundle,
                                                                      capsys) -> None:
    from edgenas.commands.search import _print_exports
    from edgenas.export.bundle import load_bundle, precision_checks
    from edgenas.search.results import load_exports, write_exports

    run = int8_bundle.parent / "search"
    metrics = load_bundle(int8_bundle)["metrics"]
    write_exports(run, {"knee": {"bundle": str(int8_bundle), "formats": metrics["formats"],
                                 "precision_checks": precision_checks(metrics)}})
    _print_exports(load_exports(run))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("knee: ") and printed[0].endswith("(onnx, int8)")
    assert any(line.startswith("  INT8: top-1 agreement with FP32") for line in printed)
    assert load_exports(run / "elsewhere") == {}


def test_plain_export_keeps_the_precision_the_searched_device_runs(tmp_path, monkeypatch) -> None:
    """`edgenas export RUN --pick knee` after a search on an INT8 device ships the INT8 model
    below the bar, as the main job does; after an FP32 search, or for another device, it
    keeps nothing and a failing INT8 fails the export as before."""
    from edgenas.commands.deploy import device_formats
    from edgenas.search.results import SCHEMA_VERSION

    _stand_in(tmp_path, "int8-board")
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "front.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "device": "int8-board", "front": []}))
    assert device_formats(str(run), None) == ("int8",)
    assert device_formats(str(run), "host-cpu") == ()
    (run / "front.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "device": "host-cpu,int8-board", "front": []}))
    assert device_formats(str(run), None) == ("int8",)
    (run / "front.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "device": "host-cpu", "front": []}))
    assert device_formats(str(run), None) == ()
    assert device_formats("an-arch.json", "int8-board") == ("int8",)
