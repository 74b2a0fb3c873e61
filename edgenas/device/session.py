"""A working session on a device: connect once, run setup, fingerprint, time models.

ONNX Runtime, OpenVINO and TensorRT devices run the stand-alone agent (`agent/timer.py`,
copied over on first use); adb devices run ONNX Runtime's own ``onnxruntime_perf_test``.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import sys
from pathlib import Path
from typing import Any, Callable

from edgenas.device.agent import timer
from edgenas.device.connectors import Connector, LocalConnector, connect
from edgenas.device.descriptor import Device
from edgenas.errors import DeviceError

AGENT = Path(__file__).parent / "agent" / "timer.py"
log = logging.getLogger(__name__)
ResultHandler = Callable[[dict[str, Any]], None]


class DeviceSession:
    """Use as a context manager; ``time_models`` streams one result dict per model."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.connector: Connector = connect(device.connection)
        self._agent: str | None = None
        try:
            for command in device.setup:
                log.info("%s: setup: %s", device.name, command)
                self.connector.run_setup(command)
        except Exception:
            self.connector.close()
            raise

    def __enter__(self) -> "DeviceSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.connector.close()

    @property
    def local(self) -> bool:
        return isinstance(self.connector, LocalConnector)

    @property
    def python(self) -> str:
        """The device's Python; locally, the interpreter edgenas itself runs in."""
        return self.device.connection.python or (sys.executable if self.local else "python3")

    def agent_path(self) -> str:
        if self._agent is None:
            self._agent = str(AGENT) if self.local else self.connector.push(AGENT, "timer.py")
        return self._agent

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the device and its runtime (compared against latency tables)."""
        if self.device.connection.kind == "adb":
            out = {key: self.connector.run(["getprop", prop]).strip() for key, prop in (
                ("model", "ro.product.model"), ("board", "ro.board.platform"),
                ("android", "ro.build.version.release"), ("abi", "ro.product.cpu.abi"))}
            out["perf_test"] = self.device.runtime.perf_test
            return out
        text = self.run_agent(["fingerprint", "--runtime", self.device.runtime.name,
                               *openvino_args(self.device, precision=True)])
        try:
            return json.loads(text.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            raise DeviceError(f"{self.device.name}: the timing agent printed no fingerprint: "
                              f"{text[-500:]!r}") from None

    def time_models(self, files: list[Path], on_result: ResultHandler) -> None:
        """Time local model files on the device; results arrive as they are measured."""
        if not files:
            return
        if self.device.connection.kind == "adb":
            self._time_with_perf_test(files, on_result)
            return
        if self.local:
            paths = [str(f) for f in files]
        else:
            folder = self.connector.push(files[0].parent, files[0].parent.name)
            paths = [f"{folder}/{f.name}" for f in files]
        self.time_paths(paths, on_result)

    def time_paths(self, paths: list[str], on_result: ResultHandler) -> None:
        """Time models (ONNX files or TensorRT engines) that are already on the device."""
        if self.device.connection.kind == "adb":
            for path in paths:
                on_result({"model": Path(path).name, **self._perf_test(path)})
            return
        runtime, timing = self.device.runtime, self.device.timing
        argv = [self.python, self.agent_path(), "time",
                "--runtime", runtime.name, "--threads", str(runtime.threads),
                "--providers", ",".join(runtime.providers), "--precision", runtime.precision,
                "--workspace-mb", str(runtime.workspace_mb), "--warmup", str(timing.warmup),
                "--repeats", str(timing.repeats), "--min-time-ms", str(timing.min_time_ms),
                "--max-time-ms", str(timing.max_time_ms),
                *openvino_args(self.device), *paths]

        def handle(line: str) -> None:
            if line.startswith("{"):
                on_result(json.loads(line))

        self.run_agent(argv[2:], handle)

    def run_agent(self, args: list[str], on_line: Callable[[str], None] | None = None) -> str:
        """Run the timing agent with ``args``; a device whose Python lacks a package the
        agent needs, or an OpenVINO device the runtime does not list, fails with one line
        naming the device, what is missing and the fix."""
        missing: dict[str, Any] = {}

        def handle(line: str) -> None:
            if line.startswith(('{"missing"', '{"unavailable"')):
                missing.update(json.loads(line))
            elif on_line is not None:
                on_line(line)

        try:
            return self.connector.run([self.python, self.agent_path(), *args], handle)
        except DeviceError:
            if missing:
                raise DeviceError(agent_problem_message(self.device, missing)) from None
            raise

    def _time_with_perf_test(self, files: list[Path], on_result: ResultHandler) -> None:
        runtime = self.device.runtime
        if not runtime.perf_test:
            raise DeviceError(f"{self.device.source}: runtime.perf_test: missing; give the "
                              "path of onnxruntime_perf_test on the phone")
        for file in files:
            remote = self.connector.push(file, file.name)
            on_result({"model": file.name, **self._perf_test(remote)})

    def _perf_test(self, remote: str) -> dict[str, Any]:
        runtime, timing = self.device.runtime, self.device.timing
        text = self.connector.run([runtime.perf_test, "-e", "cpu", "-x", str(runtime.threads),
                                   "-r", str(timing.repeats), "-m", "times", remote])
        return parse_perf_test(text)


def openvino_args(device: Device, precision: bool = False) -> list[str]:
    """The agent's OpenVINO arguments (none for other runtimes): the device, and for a
    fingerprint the precision whose hint it reads back (`time` is given it anyway)."""
    if device.runtime.name != "openvino":
        return []
    return ["--device", device.runtime.device or "CPU",
            *(["--precision", device.runtime.precision] if precision else [])]


def check_local_runtime(device: Device) -> None:
    """In this process, what the agent checks before it times: the runtime imports and
    OpenVINO lists the device (a local table's fingerprint is taken in-process)."""
    missing = timer.missing_packages(device.runtime.name)
    if missing:
        raise DeviceError(agent_problem_message(device, {
            "missing": missing, "python": sys.executable, "machine": platform.machine(),
            "python_version": ".".join(map(str, sys.version_info[:2]))}))
    if device.runtime.name == "openvino":
        unavailable = timer.openvino_unavailable(device.runtime.device or "CPU")
        if unavailable:
            raise DeviceError(agent_problem_message(device, unavailable))


#: Runtimes edgenas installs as an extra (pip install 'edgenas[openvino]').
EXTRAS = ("openvino", "tensorrt")


def agent_problem_message(device: Device, problem: dict[str, Any]) -> str:
    """One line for what the agent reported instead of timing: a missing package
    (`missing_packages_message`) or an OpenVINO device the runtime does not list."""
    if "unavailable" in problem:
        version = str(problem.get("openvino", "")).split("-")[0]
        return (f"{device.name}: OpenVINO {version} on the device lists no "
                f"{problem['unavailable']!r} device; it has: "
                f"{', '.join(problem['available']) or 'none'} (runtime.device of "
                f"{device.source or 'the descriptor'}, --openvino-device of 'device init', "
                "must name one of them)")
    return missing_packages_message(device, problem)


def missing_packages_message(device: Device, missing: dict[str, Any]) -> str:
    """How to install what the agent lacks. edgenas's own Python (a local device with no
    python of its own) installs from the registry, the runtime's extra named; a device's
    Python is provisioned offline: wheels for *its* platform, downloaded on a machine that
    reaches the registry (a host wheel of another ISA would not run there)."""
    names = " ".join(missing["missing"])
    if device.connection.kind == "local" and not device.connection.python:
        runtime = device.runtime.name
        also = (f" (or pip install 'edgenas[{runtime}]')"
                if runtime in EXTRAS and runtime in missing["missing"] else "")
        return (f"{device.name}: this Python ({sys.executable}) lacks {names}; install it "
                f"with '{sys.executable} -m pip install {names}'{also}")
    machine, version = missing.get("machine", "?"), missing.get("python_version", "3")
    python = missing.get("python", device.connection.python or "python3")
    platform_tag = {"aarch64": "manylinux_2_28_aarch64", "x86_64": "manylinux_2_28_x86_64",
                    "armv7l": "manylinux_2_31_armv7l"}.get(machine, f"<a wheel tag for {machine}>")
    return (f"{device.name}: the device's Python ({python}, {machine}, Python {version}) lacks "
            f"{names}; install it there, e.g. offline: 'pip download --only-binary=:all: "
            f"--platform {platform_tag} --python-version {version} -d wheels {names}' on a "
            f"machine with the registry, copy wheels/ to the device, then '{python} -m pip "
            f"install --no-index --find-links wheels {names}' on it")


def parse_perf_test(text: str) -> dict[str, Any]:
    """Statistics from onnxruntime_perf_test's report (average, P50/P90, in ms)."""
    def grab(pattern: str) -> float | None:
        match = re.search(pattern, text)
        return float(match.group(1)) if match else None

    average = grab(r"Average inference time cost:\s*([0-9.eE+-]+)\s*ms")
    if average is None:
        return {"error": f"no 'Average inference time cost' in perf test output: {text[-300:]!r}"}
    p50 = grab(r"P50 Latency:\s*([0-9.eE+-]+)\s*s")
    p90 = grab(r"P90 Latency:\s*([0-9.eE+-]+)\s*s")
    p10 = grab(r"P10 Latency:\s*([0-9.eE+-]+)\s*s")
    median = p50 * 1e3 if p50 is not None else average
    stats = {"median_ms": median, "mean_ms": average,
             "p90_ms": p90 * 1e3 if p90 is not None else median,
             "p10_ms": p10 * 1e3 if p10 is not None else median,
             "n": int(grab(r"Total inference requests:\s*([0-9]+)") or 0)}
    stats["spread"] = (stats["p90_ms"] - stats["p10_ms"]) / median if median else 0.0
    return stats
