"""Device descriptors: one TOML file per device, under `devices/`.

A descriptor says how to reach the device (connection), what runs the network there
(runtime) and how to time it (timing). Everything a latency table depends on is here, so
a table can be checked against the descriptor it was measured with.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from edgenas.errors import DeviceError
from edgenas.resources import shipped_devices_dir

CONNECTIONS = ("local", "ssh", "adb")
RUNTIMES = ("onnxruntime", "tensorrt", "openvino")
PRECISIONS = ("fp32", "fp16", "int8", "bf16")
#: bf16 is an OpenVINO inference precision (CPUs with AVX512_BF16 or AMX); the other
#: runtimes take their precision from the model file or the engine build.
BF16_RUNTIMES = ("openvino",)
#: ONNX Runtime providers that run an INT8 (QDQ) model's convolutions in float between its
#: Quantize/DequantizeLinear nodes: timing int8 there times no INT8 kernel a device ships.
FLOAT_ONLY_INT8_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Connection:
    """How to reach the device. ``host`` may be an alias from ``~/.ssh/config``."""

    kind: str = "local"
    host: str = ""
    user: str = ""
    port: int = 0
    serial: str = ""
    python: str = ""  # Python on the device: "" = python3 remotely, edgenas's own locally
    workdir: str = ""
    ssh_config: str = ""  # an ssh_config file to use instead of ~/.ssh/config (-F)
    adb: str = "adb"


@dataclass(frozen=True)
class Runtime:
    """What runs the network on the device, with every setting that changes its speed."""

    name: str = "onnxruntime"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int = 1
    precision: str = "fp32"
    workspace_mb: int = 1024
    perf_test: str = ""  # adb: path of onnxruntime_perf_test on the phone
    device: str = ""  # openvino: the OpenVINO device (CPU, GPU, GPU.1, NPU, AUTO:GPU,CPU)

    @property
    def model_format(self) -> str:
        """Which exported model this runtime runs (a key of the bundle's ``MODEL_FILES``),
        in a profile as on deploy: ``int8`` the QDQ graph on every runtime (TensorRT and
        OpenVINO read its scales); ``fp16`` the FP16 graph on ONNX Runtime (TensorRT and
        OpenVINO build FP16 from the FP32 graph); else the FP32 graph, ``onnx``."""
        if self.precision == "int8":
            return "int8"
        return "fp16" if self.precision == "fp16" and self.name == "onnxruntime" else "onnx"


@dataclass(frozen=True)
class Timing:
    """How hard to look: warm-up runs, minimum repeats and minimum measuring time; and
    the most a slow model's warm-up and timed calls may each take (0: no cap)."""

    warmup: int = 10
    repeats: int = 50
    min_time_ms: float = 40.0
    max_time_ms: float = 300.0


@dataclass(frozen=True)
class Device:
    """A device descriptor (see module docstring)."""

    name: str
    connection: Connection = field(default_factory=Connection)
    runtime: Runtime = field(default_factory=Runtime)
    timing: Timing = field(default_factory=Timing)
    setup: tuple[str, ...] = ()
    notes: str = ""
    source: str = ""

    def runtime_settings(self) -> dict[str, Any]:
        """The settings a latency table must share with the device to stay valid."""
        settings = asdict(self.runtime)
        settings["providers"] = list(self.runtime.providers)
        settings.pop("perf_test")
        if self.runtime.name == "onnxruntime":
            settings.pop("workspace_mb")
        if self.runtime.name == "openvino":
            # OpenVINO takes neither providers nor a TensorRT workspace
            settings.pop("providers")
            settings.pop("workspace_mb")
        else:
            settings.pop("device")  # tables measured before OpenVINO have no such field
        return settings

    def to_toml(self) -> str:
        """The descriptor as TOML text (what `edgenas device init` writes)."""
        lines = [f"name = {_toml(self.name)}"]
        if self.notes:
            lines.append(f"notes = {_toml(self.notes)}")
        if self.setup:
            lines.append(f"setup = {_toml(list(self.setup))}")
        for section, value in (("connection", self.connection), ("runtime", self.runtime),
                               ("timing", self.timing)):
            lines.append(f"\n[{section}]")
            for key, item in asdict(value).items():
                if value is self.runtime and self.runtime.name == "openvino" and key in (
                        "providers", "workspace_mb"):
                    continue  # settings OpenVINO does not read would only mislead
                if item not in ("", 0, "adb", "python3") or key in ("threads", "kind", "name"):
                    lines.append(f"{key} = {_toml(item)}")
        return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# -- parsing -------------------------------------------------------------------------------

class _Reader:
    """Reads typed fields from a TOML table, with errors naming file and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, path: str, message: str) -> DeviceError:
        return DeviceError(f"{self.source}: {path}: {message}")

    def table(self, data: Mapping[str, Any], name: str, allowed: set[str]) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, Mapping):
            raise self.error(name, "expected a table ([" + name + "])")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.error(f"{name}.{unknown[0]}", f"unknown field; expected one of {sorted(allowed)}")
        return value

    def get(self, data: Mapping[str, Any], path: str, kind: type | tuple[type, ...],
            default: Any, choices: tuple[Any, ...] | None = None) -> Any:
        key = path.rsplit(".", 1)[-1]
        value = data.get(key, default)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = "/".join(k.__name__ for k in kinds)
            raise self.error(path, f"expected {names}, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(path, f"{value!r} not in {choices}")
        return value


def _check_remote_fields(read: _Reader, connection: Connection) -> None:
    """Fields that reach ssh/adb as arguments: a value starting with '-' would be read as an
    option (``host = "-oProxyCommand=..."`` runs a local command), and whitespace or control
    characters are never part of a real host, user or serial."""
    for field in ("host", "user", "serial"):
        value = getattr(connection, field)
        if value.startswith("-"):
            raise read.error(f"connection.{field}", f"{value!r} starts with '-', which ssh and "
                                                     "adb would read as an option; give the "
                                                     f"{field} itself")
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise read.error(f"connection.{field}", f"{value!r} contains whitespace or control "
                                                     "characters")
    workdir = connection.workdir
    if any(not ch.isprintable() for ch in workdir):
        raise read.error("connection.workdir", f"{workdir!r} contains control characters "
                                               "(a newline, a tab); choose a plain folder name")
    if connection.kind in ("ssh", "adb") and workdir and not workdir.startswith("/"):
        raise read.error("connection.workdir", f"{workdir!r} must be an absolute path on the "
                                               "device (e.g. /tmp/edgenas)")


def parse_device(data: Mapping[str, Any], source: str) -> Device:
    """Validate a parsed TOML document into a `Device`."""
    read = _Reader(source)
    unknown = sorted(set(data) - {"name", "connection", "runtime", "timing", "setup", "notes"})
    if unknown:
        raise read.error(unknown[0], "unknown field; expected name, notes, setup, "
                                     "[connection], [runtime], [timing]")
    name = read.get(data, "name", str, None) if "name" in data else None
    if name is None:
        raise read.error("name", "missing; every descriptor needs a name")
    if not NAME_PATTERN.match(name):
        raise read.error("name", f"{name!r} must be letters, digits, '.', '_' or '-'")
    conn = read.table(data, "connection", {f for f in Connection.__dataclass_fields__})
    kind = read.get(conn, "connection.kind", str, "local", CONNECTIONS)
    connection = Connection(
        kind=kind,
        host=read.get(conn, "connection.host", str, ""),
        user=read.get(conn, "connection.user", str, ""),
        port=read.get(conn, "connection.port", int, 0),
        serial=read.get(conn, "connection.serial", str, ""),
        python=read.get(conn, "connection.python", str, ""),
        workdir=read.get(conn, "connection.workdir", str, ""),
        ssh_config=read.get(conn, "connection.ssh_config", str, ""),
        adb=read.get(conn, "connection.adb", str, "adb"),
    )
    _check_remote_fields(read, connection)
    if kind == "ssh" and not connection.host:
        raise read.error("connection.host", "missing; an ssh device needs a host "
                                            "(a name, an address or an ~/.ssh/config alias)")
    if not 0 <= connection.port < 65536:
        raise read.error("connection.port", f"{connection.port} not in 0..65535")
    rt = read.table(data, "runtime", {f for f in Runtime.__dataclass_fields__})
    providers = read.get(rt, "runtime.providers", list, ["CPUExecutionProvider"])
    if not all(isinstance(provider, str) for provider in providers):
        raise read.error("runtime.providers", f"expected a list of provider names, got "
                                              f"{providers!r}")
    runtime_name = read.get(rt, "runtime.name", str, "onnxruntime", RUNTIMES)
    runtime = Runtime(
        name=runtime_name,
        providers=tuple(providers),
        threads=read.get(rt, "runtime.threads", int, 1),
        precision=read.get(rt, "runtime.precision", str, "fp32", PRECISIONS),
        workspace_mb=read.get(rt, "runtime.workspace_mb", int, 1024),
        perf_test=read.get(rt, "runtime.perf_test", str, ""),
        device=read.get(rt, "runtime.device", str, "CPU" if runtime_name == "openvino" else ""),
    )
    if runtime.threads < 1:
        raise read.error("runtime.threads", f"{runtime.threads} must be >= 1")
    if runtime.name == "openvino" and not runtime.device.strip():
        raise read.error("runtime.device", "empty; name the OpenVINO device (CPU, GPU or NPU)")
    if runtime.name != "openvino" and runtime.device:
        raise read.error("runtime.device", f"{runtime.device!r}: only OpenVINO devices name a "
                                           "device; ONNX Runtime picks one with providers")
    if runtime.precision == "bf16" and runtime.name not in BF16_RUNTIMES:
        raise read.error("runtime.precision", f"'bf16' is an OpenVINO inference precision; "
                                              f"{runtime.name} runs fp32, fp16 or int8")
    float_only = [p for p in runtime.providers[:1] if p in FLOAT_ONLY_INT8_PROVIDERS]
    if runtime.precision == "int8" and runtime.name == "onnxruntime" and float_only:
        raise read.error("runtime.precision", f"{name}: ONNX Runtime's {float_only[0]} runs an "
                                              "INT8 (QDQ) model's convolutions in float; for "
                                              "int8 put TensorrtExecutionProvider first, use "
                                              "runtime tensorrt, or run fp16 or fp32 there")
    if kind == "adb" and runtime.name != "onnxruntime":
        raise read.error("runtime.name", "adb devices run ONNX Runtime's perf test; "
                                         "use name = \"onnxruntime\"")
    tm = read.table(data, "timing", {f for f in Timing.__dataclass_fields__})
    timing = Timing(
        warmup=read.get(tm, "timing.warmup", int, 10),
        repeats=read.get(tm, "timing.repeats", int, 50),
        min_time_ms=float(read.get(tm, "timing.min_time_ms", (int, float), 40.0)),
        max_time_ms=float(read.get(tm, "timing.max_time_ms", (int, float), 300.0)),
    )
    if timing.repeats < 5 or timing.warmup < 0:
        raise read.error("timing.repeats", "need repeats >= 5 and warmup >= 0 for robust statistics")
    if not math.isfinite(timing.max_time_ms) or (
            timing.max_time_ms and timing.max_time_ms < timing.min_time_ms):
        raise read.error("timing.max_time_ms", f"{timing.max_time_ms} is below min_time_ms "
                                               f"{timing.min_time_ms}; raise it, or 0 for no cap")
    setup = read.get(data, "setup", list, [])
    if not all(isinstance(cmd, str) for cmd in setup):
        raise read.error("setup", "expected a list of command strings")
    return Device(name, connection, runtime, timing, tuple(setup),
                  read.get(data, "notes", str, ""), source)


def load_device_file(path: str | os.PathLike[str]) -> Device:
    """Read and validate one descriptor file."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as err:
        raise DeviceError(f"{source}: cannot read device descriptor ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise DeviceError(f"{source}: not valid TOML ({err})") from None
    return parse_device(data, source)


def device_dirs() -> list[Path]:
    """Where descriptors are looked up: ./devices, then the ones edgenas ships."""
    dirs = [Path.cwd() / "devices", shipped_devices_dir()]
    unique: list[Path] = []
    for folder in dirs:
        if folder.is_dir() and folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    return unique


def list_devices() -> list[Device]:
    """Every descriptor found, first match per name wins (./devices overrides)."""
    found: dict[str, Device] = {}
    for folder in device_dirs():
        for path in sorted(folder.glob("*.toml")):
            device = load_device_file(path)
            found.setdefault(device.name, device)
    return sorted(found.values(), key=lambda d: d.name)


def get_device(spec: str) -> Device:
    """A device by name (``devices/<name>.toml``) or by descriptor path."""
    if spec.endswith(".toml") or os.sep in spec:
        return load_device_file(spec)
    for folder in device_dirs():
        path = folder / f"{spec}.toml"
        if path.exists():
            return load_device_file(path)
    names = sorted(p.stem for folder in device_dirs() for p in folder.glob("*.toml"))
    raise DeviceError(f"unknown device {spec!r}; known: {', '.join(names) or 'none'} "
                      "(create one with 'edgenas device init NAME ...')")
