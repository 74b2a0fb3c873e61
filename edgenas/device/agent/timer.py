"""Device-side timing agent: times ONNX models (ONNX Runtime, OpenVINO) or TensorRT engines.

This file runs *on the device*. It imports only the standard library, numpy and the
runtime, never torch or edgenas, so it is copied as it is to a Jetson, a board or a
phone-attached host and started with the device's own Python:

    python3 timer.py fingerprint [--runtime onnxruntime|tensorrt|openvino] [--device CPU]
    python3 timer.py time --runtime onnxruntime --threads 1 --warmup 10 --repeats 50 \
        --min-time-ms 40 --max-time-ms 300 model1.onnx model2.onnx ...
    python3 timer.py build --runtime tensorrt|openvino model.onnx --out model.engine|model.xml

`time` prints one JSON object per model on its own line as soon as it is measured, so
the host can store results while the run goes on and a broken connection loses at most
one model. Statistics are robust (median, p10/p90): devices are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from typing import Any, Callable

try:
    import numpy as np
except ImportError:  # main() names what is missing in one line, instead of a traceback
    np = None  # type: ignore[assignment]

SCHEMA_VERSION = 1


# -- statistics ----------------------------------------------------------------------------

def summarize(samples_ms: list[float]) -> dict[str, float]:
    """Median, p10, p90, min, mean, relative spread ((p90 - p10) / median) and count."""
    values = np.asarray(samples_ms, dtype=np.float64)
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return {"median_ms": float(median), "p10_ms": float(p10), "p90_ms": float(p90),
            "min_ms": float(values.min()),
            "mean_ms": float(values.mean()), "spread": float((p90 - p10) / median) if median else 0.0,
            "n": int(values.size)}


#: Warm-up runs last at least this long as well as ``--warmup`` calls: a tiny model's ten
#: calls take well under a millisecond, too short for caches and clocks to settle.
WARMUP_MS = 10.0


#: With a time cap, a slow model still gets this many warm-up and timed calls.
MIN_WARMUP_CAPPED, MIN_TIMED_CAPPED = 3, 10


def measure(run: Callable[[], Any], warmup: int, repeats: int, min_time_ms: float,
            max_time_ms: float = 0.0, self_timed: bool = False) -> list[float]:
    """Per-call times in ms: at least ``repeats`` calls and ``min_time_ms`` in total; wall
    times, or with ``self_timed`` what ``run`` returns (a GPU call timed by CUDA events).

    ``max_time_ms`` (0: none) caps the warm-up and the timed calls each, once a slow model
    has had a few of each: fifty calls of a 25 ms network take 1.3 s and repeat what ten
    already tell, while the table-fitting networks of a large space must fit a time budget.
    """
    started = time.perf_counter()
    calls = 0
    while calls < warmup or (time.perf_counter() - started) * 1e3 < WARMUP_MS:
        run()
        calls += 1
        if calls >= 100 * max(warmup, 1) or (
                max_time_ms and calls >= MIN_WARMUP_CAPPED
                and (time.perf_counter() - started) * 1e3 >= max_time_ms):
            break
    samples: list[float] = []
    total = 0.0
    clock = time.perf_counter_ns
    while len(samples) < repeats or total < min_time_ms:
        start = clock()
        reported = run()
        elapsed = float(reported) if self_timed else (clock() - start) / 1e6
        samples.append(elapsed)
        total += elapsed
        if len(samples) >= 100 * repeats or (
                max_time_ms and total >= max_time_ms and len(samples) >= MIN_TIMED_CAPPED):
            break
    return samples


# -- ONNX Runtime --------------------------------------------------------------------------

def _ort_dtype(type_name: str) -> Any:
    return {"tensor(float)": np.float32, "tensor(float16)": np.float16,
            "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}.get(type_name, np.float32)


def ort_runner(path: str, threads: int, providers: list[str]) -> Callable[[], Any]:
    """A zero-argument callable that runs one inference of the model at ``path``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=providers)
    feeds = {}
    rng = np.random.default_rng(0)
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        feeds[inp.name] = rng.standard_normal(shape).astype(_ort_dtype(inp.type))
    names = [out.name for out in session.get_outputs()]
    return lambda: session.run(names, feeds)


# -- OpenVINO ------------------------------------------------------------------------------

#: The inference precision each descriptor precision pins. Left to itself OpenVINO runs the
#: fastest precision the device has (bf16 on CPUs with AVX512_BF16 or AMX, f16 on GPUs): a
#: different network from the one a table is built for. An int8 (QDQ) graph carries its own
#: quantisation; what it leaves in float runs in f32.
OPENVINO_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "f32"}
#: OpenVINO devices that dispatch to the ones named after a colon (AUTO:GPU,CPU).
OPENVINO_VIRTUAL = ("AUTO", "HETERO", "MULTI", "BATCH")


def openvino_unavailable(device: str) -> dict[str, Any] | None:
    """None when OpenVINO lists ``device`` ("GPU" stands for GPU.0, GPU.1, ...), else the
    devices it does list, for the host to name in one line: compiling for an absent device
    fails with a page about plugin libraries instead."""
    import openvino as ov

    available = list(ov.Core().available_devices)
    kind, _, targets = device.partition(":")
    wanted = [t for t in targets.split(",") if t] if kind in OPENVINO_VIRTUAL else [device]
    absent = [name for name in wanted
              if not any(a == name or a.startswith(name + ".") for a in available)]
    if not absent:
        return None
    return {"unavailable": absent[0], "available": available, "openvino": ov.__version__}


def openvino_properties(core: Any, device: str, threads: int, precision: str) -> dict[str, Any]:
    """compile_model's properties: the latency hint (one stream, one request at a time, as
    an application calls it), the pinned inference precision and the threads. A property
    the device does not take is left out (INFERENCE_NUM_THREADS is the CPU's): the
    fingerprint reads back what the compiled model runs with."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    wanted = {hints.performance_mode(): hints.PerformanceMode.LATENCY,
              hints.inference_precision(): getattr(ov.Type, OPENVINO_PRECISION[precision]),
              props.inference_num_threads(): threads}
    try:
        supported = set(core.get_property(device.partition(":")[0],
                                          props.supported_properties()))
    except RuntimeError:  # a virtual device that cannot say: pass everything on
        return wanted
    return {key: value for key, value in wanted.items() if key in supported}


def openvino_compiled(path: Any, device: str, threads: int, precision: str) -> Any:
    """``path`` (ONNX, an IR .xml, or an ``ov.Model``) compiled for ``device`` with the
    pinned properties (`openvino_properties`)."""
    import openvino as ov

    core = ov.Core()
    return core.compile_model(path, device, openvino_properties(core, device, threads, precision))


def openvino_runner(path: str, device: str, threads: int, precision: str) -> Callable[[], Any]:
    """A zero-argument callable that runs one inference of the model at ``path``."""
    import openvino as ov

    compiled = openvino_compiled(path, device, threads, precision)
    request = compiled.create_infer_request()
    rng = np.random.default_rng(0)
    for index, port in enumerate(compiled.inputs):
        shape = [d.get_length() if d.is_static else 1 for d in port.get_partial_shape()]
        data = rng.standard_normal(shape).astype(port.get_element_type().to_dtype())
        request.set_input_tensor(index, ov.Tensor(data))
    # outputs shared, not copied: the call is the runtime's, as ORT's session.run is
    return lambda: request.infer(share_outputs=True)


def openvino_error(err: BaseException) -> str:
    """OpenVINO's message on one line, without its trail of source locations."""
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [line for line in lines
            if line and not line.startswith(("Exception from src/", "Check '"))]
    return f"{type(err).__name__}: {' '.join(kept or lines)}"


def openvino_write_ir(onnx_path: str, out: str) -> None:
    """Write ``onnx_path`` as OpenVINO IR (``out`` .xml and its .bin). Weights stay as
    exported (save_model would halve them to FP16 by default): the precision is the
    descriptor's, pinned when the IR is compiled."""
    import openvino as ov

    ov.save_model(ov.Core().read_model(onnx_path), out, compress_to_fp16=False)


def openvino_fingerprint(device: str, precision: str) -> dict[str, Any]:
    """OpenVINO's version, the device's full name and capabilities, and the inference
    precision a compiled model reports under the pinned hint (a CPU that gains bf16 or a
    runtime that changes its defaults makes a table stale)."""
    import openvino as ov
    import openvino.properties.device as device_props
    import openvino.properties.hint as hints

    try:
        from openvino import opset8 as ops
    except ImportError:  # OpenVINO 2024 keeps the opsets under openvino.runtime
        from openvino.runtime import opset8 as ops  # type: ignore[no-redef]

    core = ov.Core()
    out: dict[str, Any] = {"openvino": ov.__version__, "openvino_device": device}
    for key, prop in (("openvino_device_name", device_props.full_name()),
                      ("openvino_capabilities", device_props.capabilities())):
        try:
            out[key] = core.get_property(device, prop)
        except RuntimeError:
            out[key] = None
    probe = ops.parameter([1, 8, 8, 8], ov.Type.f32)
    model = ov.Model([ops.relu(probe)], [probe], "edgenas-fingerprint")
    compiled = openvino_compiled(model, device, 1, precision)
    try:
        out["openvino_precision"] = compiled.get_property(
            hints.inference_precision()).get_type_name()
    except RuntimeError:
        out["openvino_precision"] = None
    return out


# -- TensorRT ------------------------------------------------------------------------------

def trt_runner(path: str, precision: str, workspace_mb: int) -> Callable[[], Any]:
    """Build (from .onnx) or load (.engine) a TensorRT engine; time with CUDA events.

    Written against the TensorRT 10 Python API and cuda-python; it needs an NVIDIA GPU and
    has not been run on the machines edgenas is developed on.
    """
    import tensorrt as trt
    from cuda import cudart  # cuda-python, shipped with JetPack / pip install cuda-python

    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if path.endswith(".onnx"):
        engine_bytes = build_trt_engine(path, precision, workspace_mb, logger)
    else:
        with open(path, "rb") as handle:
            engine_bytes = handle.read()
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    context = engine.create_execution_context()
    _, stream = cudart.cudaStreamCreate()
    buffers = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = [d if d > 0 else 1 for d in engine.get_tensor_shape(name)]
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            context.set_input_shape(name, shape)
        size = int(np.prod(shape)) * np.dtype(trt.nptype(engine.get_tensor_dtype(name))).itemsize
        _, pointer = cudart.cudaMalloc(size)
        context.set_tensor_address(name, pointer)
        buffers.append(pointer)
    _, start = cudart.cudaEventCreate()
    _, stop = cudart.cudaEventCreate()

    def run() -> float:
        cudart.cudaEventRecord(start, stream)
        context.execute_async_v3(stream)
        cudart.cudaEventRecord(stop, stream)
        cudart.cudaEventSynchronize(stop)
        return cudart.cudaEventElapsedTime(start, stop)[1]

    run.buffers = buffers  # type: ignore[attr-defined]  # keep allocations alive
    return run


def build_trt_engine(onnx_path: str, precision: str, workspace_mb: int, logger: Any = None,
                     timing_cache: str | None = None) -> bytes:
    """Serialised TensorRT engine for an ONNX file; parser errors name the failing node."""
    import tensorrt as trt

    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as handle:
        if not parser.parse(handle.read()):
            errors = [parser.get_error(i) for i in range(parser.num_errors)]
            detail = "; ".join(f"node {e.node()} ({e.node_name()}): {e.desc()}" for e in errors)
            raise RuntimeError(f"TensorRT could not parse {onnx_path}: {detail}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # the QDQ nodes in the model carry the scales
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = list(tensor.shape)
        fixed = [d if d > 0 else 1 for d in shape]
        maximum = [d if d > 0 else 32 for d in shape]
        profile.set_shape(tensor.name, fixed, fixed, maximum)
    config.add_optimization_profile(profile)
    cache = None
    if timing_cache:
        blob = open(timing_cache, "rb").read() if os.path.exists(timing_cache) else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path}")
    if cache is not None and timing_cache:
        with open(timing_cache, "wb") as handle:
            handle.write(memoryview(cache.serialize()))
    return bytes(serialized)


# -- trtexec fallback ------------------------------------------------------------------------

def have_trt_python() -> bool:
    """Whether the TensorRT Python bindings import (else trtexec is the fallback)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def trtexec_path() -> str:
    """trtexec on PATH or where JetPack installs it; error if neither."""
    import shutil

    found = shutil.which("trtexec") or next(
        (p for p in ("/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")
         if os.path.exists(p)), None)
    if found is None:
        raise RuntimeError("neither the TensorRT Python bindings nor trtexec were found on "
                           "this device; install TensorRT (JetPack ships both)")
    return found


def trtexec_build(onnx_path: str, out: str, precision: str, workspace_mb: int,
                  timing_cache: str | None) -> None:
    """Build an engine with trtexec (same settings as the Python builder)."""
    import subprocess

    argv = [trtexec_path(), f"--onnx={onnx_path}", f"--saveEngine={out}",
            f"--memPoolSize=workspace:{workspace_mb}M", "--skipInference"]
    argv += {"fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}.get(precision, [])
    if timing_cache:
        argv.append(f"--timingCacheFile={timing_cache}")
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"trtexec failed to build {onnx_path}: {result.stdout[-1500:]}{result.stderr[-500:]}")


def trtexec_time(engine: str, warmup: int, repeats: int) -> dict[str, float]:
    """Time an engine with trtexec; statistics from its 'GPU Compute Time' line (ms)."""
    import re
    import subprocess

    result = subprocess.run([trtexec_path(), f"--loadEngine={engine}", f"--iterations={repeats}",
                             f"--warmUp={max(warmup, 1) * 10}", "--duration=0"],
                            capture_output=True, text=True)
    line = next((l for l in result.stdout.splitlines() if "GPU Compute Time" in l), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"trtexec could not time {engine}: {result.stdout[-1500:]}")
    stats = {k: float(v) for k, v in re.findall(r"(min|max|mean|median|percentile\(90%\)|"
                                                r"percentile\(99%\)) = ([0-9.]+) ms", line)}
    median = stats["median"]
    p90 = stats.get("percentile(90%)", stats["max"])
    return {"median_ms": median, "p10_ms": stats["min"], "p90_ms": p90, "mean_ms": stats["mean"],
            "spread": (p90 - stats["min"]) / median if median else 0.0, "n": repeats,
            "via": "trtexec"}


# -- fingerprint ---------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo, else platform)."""
    info = _read("/proc/cpuinfo") or ""
    for line in info.splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("model name", "hardware", "processor") and ":" in line:
            value = line.split(":", 1)[1].strip()
            if value and not value.isdigit():
                return value
    return platform.processor() or platform.machine()


def fingerprint(runtime: str, device: str = "CPU", precision: str = "fp32") -> dict[str, Any]:
    """What identifies this device and software stack for a latency table (``device`` and
    ``precision``: OpenVINO's)."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "hostname": platform.node(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if runtime == "onnxruntime":
        import onnxruntime as ort

        out["onnxruntime"] = ort.__version__
        out["providers"] = ort.get_available_providers()
    elif runtime == "tensorrt":
        import tensorrt as trt

        out["tensorrt"] = trt.__version__
    elif runtime == "openvino":
        out.update(openvino_fingerprint(device, precision))
    tegra = _read("/etc/nv_tegra_release")
    if tegra:
        out["l4t"] = tegra.splitlines()[0]
    power = _read("/etc/nvpmodel.conf")
    if power is not None:
        mode = _read("/var/lib/nvpmodel/status")
        out["nvpmodel"] = mode or "unknown"
    gpu = _read("/proc/driver/nvidia/gpus")
    if gpu is not None:
        out["gpu"] = "nvidia"
    return out


# -- command line --------------------------------------------------------------------------

#: Exit status when the device's Python lacks a package the agent needs.
MISSING_EXIT = 3
#: Exit status when OpenVINO does not list the device the descriptor names.
UNAVAILABLE_EXIT = 4
RUNTIMES = ["onnxruntime", "tensorrt", "openvino"]
PRECISIONS = ["fp32", "fp16", "int8", "bf16"]


def missing_packages(runtime: str) -> list[str]:
    """The packages this command needs that the device's Python cannot import. A package
    that is there but fails to import (a wheel for another platform, a missing library)
    counts as missing: installing it again is the fix. TensorRT is not listed: without its
    Python bindings the agent falls back to ``trtexec``."""
    needed = ["numpy"] + ([runtime] if runtime in ("onnxruntime", "openvino") else [])
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def pin_to_one_core() -> None:
    """Keep a one-thread timing process on one core: a migration between cores costs cold
    caches in the middle of a measurement. The highest-numbered allowed core is taken, as
    core 0 usually serves the most interrupts. Where the OS cannot pin, nothing changes."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="edgenas device-side timing agent")
    commands = parser.add_subparsers(dest="command", required=True)
    fp = commands.add_parser("fingerprint")
    fp.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES)
    fp.add_argument("--device", default="CPU", help="openvino: the OpenVINO device")
    fp.add_argument("--precision", default="fp32", choices=PRECISIONS)
    tm = commands.add_parser("time")
    tm.add_argument("models", nargs="+")
    tm.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES)
    tm.add_argument("--device", default="CPU", help="openvino: the OpenVINO device")
    tm.add_argument("--threads", type=int, default=1)
    tm.add_argument("--providers", default="CPUExecutionProvider")
    tm.add_argument("--precision", default="fp32", choices=PRECISIONS)
    tm.add_argument("--workspace-mb", type=int, default=1024)
    tm.add_argument("--warmup", type=int, default=10)
    tm.add_argument("--repeats", type=int, default=50)
    tm.add_argument("--min-time-ms", type=float, default=40.0)
    tm.add_argument("--max-time-ms", type=float, default=0.0, help="0: no cap")
    bd = commands.add_parser("build", help="build a TensorRT engine, or write an OpenVINO IR, "
                                           "from ONNX, on this device")
    bd.add_argument("model")
    bd.add_argument("--out", required=True)
    bd.add_argument("--runtime", default="tensorrt", choices=["tensorrt", "openvino"])
    bd.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "int8"])
    bd.add_argument("--workspace-mb", type=int, default=1024)
    bd.add_argument("--timing-cache", default=None)
    args = parser.parse_args(argv)

    missing = missing_packages(args.runtime)
    if missing:
        # one JSON line the host turns into an error naming the device and the fix
        print(json.dumps({"missing": missing, "python": sys.executable,
                          "python_version": ".".join(map(str, sys.version_info[:2])),
                          "machine": platform.machine()}), flush=True)
        return MISSING_EXIT
    if args.runtime == "openvino" and args.command != "build":  # an IR is for any device
        unavailable = openvino_unavailable(args.device)
        if unavailable:  # one JSON line, as for a missing package: nothing is timed
            print(json.dumps(unavailable), flush=True)
            return UNAVAILABLE_EXIT
    if args.command == "build":
        start = time.perf_counter()
        if args.runtime == "openvino":
            openvino_write_ir(args.model, args.out)
            weights = args.out[: -len(".xml")] + ".bin" if args.out.endswith(".xml") else ""
            print(json.dumps({"ir": os.path.basename(args.out),
                              "bytes": os.path.getsize(args.out) + (
                                  os.path.getsize(weights) if os.path.exists(weights) else 0),
                              "build_seconds": time.perf_counter() - start,
                              "builder": "openvino"}))
            return 0
        if have_trt_python():
            engine = build_trt_engine(args.model, args.precision, args.workspace_mb,
                                      timing_cache=args.timing_cache)
            with open(args.out, "wb") as handle:
                handle.write(engine)
            builder = "tensorrt-python"
        else:
            trtexec_build(args.model, args.out, args.precision, args.workspace_mb,
                          args.timing_cache)
            builder = "trtexec"
        print(json.dumps({"engine": os.path.basename(args.out), "bytes": os.path.getsize(args.out),
                          "build_seconds": time.perf_counter() - start, "builder": builder}))
        return 0
    if args.command == "fingerprint":
        print(json.dumps(fingerprint(args.runtime, args.device, args.precision)))
        return 0
    if args.threads == 1 and (args.runtime == "onnxruntime" or
                              args.runtime == "openvino" and args.device == "CPU"):
        pin_to_one_core()
    for path in args.models:
        try:
            if args.runtime in ("onnxruntime", "openvino"):
                run = (ort_runner(path, args.threads, args.providers.split(","))
                       if args.runtime == "onnxruntime" else
                       openvino_runner(path, args.device, args.threads, args.precision))
                samples = measure(run, args.warmup, args.repeats, args.min_time_ms,
                                  args.max_time_ms)
            elif not have_trt_python():
                engine = path
                if path.endswith(".onnx"):
                    engine = path[: -len(".onnx")] + f".{args.precision}.engine"
                    trtexec_build(path, engine, args.precision, args.workspace_mb, None)
                print(json.dumps({"model": os.path.basename(path),
                                  **trtexec_time(engine, args.warmup, args.repeats)}), flush=True)
                continue
            else:
                gpu_run = trt_runner(path, args.precision, args.workspace_mb)
                samples = measure(gpu_run, args.warmup, args.repeats, args.min_time_ms,
                                  args.max_time_ms, self_timed=True)
            record = {"model": os.path.basename(path), **summarize(samples)}
        except Exception as err:  # report and go on: one bad model must not stop a profile
            record = {"model": os.path.basename(path),
                      "error": openvino_error(err) if args.runtime == "openvino"
                      else f"{type(err).__name__}: {err}"}
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
