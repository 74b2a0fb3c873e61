"""The latency lookup table file: what was measured, where, with what, and how well.

``profiles/<device>/<space>.json`` holds the device fingerprint and runtime settings it was
measured with, the space name and hash, one entry per unit key with robust statistics,
the whole networks timed to fit and to validate the latency model, and the validation
metrics. Files are versioned and written atomically.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from edgenas.device.agent import timer
from edgenas.device.descriptor import Device
from edgenas.device.session import check_local_runtime
from edgenas.errors import NoTableError, ProfileError
from edgenas.jsonio import read_json, write_json_atomic
from edgenas.profile.records import TimedNetwork, Timing
from edgenas.space import SPACES, get_space
from edgenas.space.presets import spaces_holding
from edgenas.space.search_space import SearchSpace

if TYPE_CHECKING:
    from edgenas.space.arch import Arch

#: 2 (2026-12-07): one name per concept. Schema 1 files are read and upgraded in memory
#: (`upgrade_schema_1`) and written back as 2 the next time they are saved.
SCHEMA_VERSION = 2
#: Fingerprint fields that change latency; hostname and Python version do not.
FINGERPRINT_FIELDS = ("machine", "cpu", "cpu_count", "onnxruntime", "tensorrt", "l4t",
                      "nvpmodel", "model", "board", "android", "perf_test", "openvino",
                      "openvino_device_name", "openvino_precision")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: What a table's timed networks are for (keys of `LUT.networks`): the table-fitting stream
#: of random and cheap archs, the held-out ones it is judged on, and the archs searches put on their
#: fronts, timed on the device afterwards (`edgenas.search.measured_front`).
FITTING, VALIDATION, FRONT = "fitting", "validation", "front"
#: Held-out networks from where searches go rather than from the whole space: archs of its
#: cheap corner (`edgenas.profile.cheap_archs`, `edgenas.profile.profiler.search_biased_archs`).
SEARCH_BIASED = "search_biased"
#: The networks the correction is fitted on: the table-fitting stream covers the space and
#: its cheap corner, front archs the region a search actually went to.
FITTED_ON = (FITTING, FRONT)
#: A table's models by format (`Runtime.model_format`), in words.
FORMAT_NAMES = {"onnx": "FP32", "fp16": "FP16", "int8": "INT8 (QDQ)"}


def fitting_networks(lut: "LUT") -> list[TimedNetwork]:
    """The timed networks the table's correction is fitted on (`FITTED_ON`)."""
    return [item for label in FITTED_ON for item in lut.networks.get(label) or []]


#: Schema 1's names, for `upgrade_schema_1`: "calibration" also meant INT8 calibration, and
#: "reference_ms" meant the table's yardstick in its protocol but the neighbouring reference
#: rounds' mean in a timing record.
RENAMED_IN_2 = {"networks": {"calibration": FITTING},
                "protocol": {"reference_ms": "yardstick_ms", "level_agreement": "level_scores"},
                "record": {"reference_ms": "neighbour_reference_ms"}}


def upgrade_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema 1 table's dict in schema 2's names (a new dict; the values are shared)."""
    def renamed(record: Any, names: dict[str, str]) -> Any:
        if not isinstance(record, dict):
            return record
        return {names.get(key, key): value for key, value in record.items()}

    def network(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        timed = item.get("timed")  # one timing record per round
        return {**item, "timed": [renamed(r, RENAMED_IN_2["record"]) for r in timed]
                } if isinstance(timed, list) else item

    out = {**data, "schema_version": 2}
    timing = data.get("timing")
    if isinstance(timing, dict) and isinstance(timing.get("protocol"), dict):
        out["timing"] = {**timing, "protocol": renamed(timing["protocol"],
                                                       RENAMED_IN_2["protocol"])}
    if isinstance(data.get("entries"), dict):
        out["entries"] = {key: renamed(stats, RENAMED_IN_2["record"])
                          for key, stats in data["entries"].items()}
    if isinstance(data.get("networks"), dict):
        out["networks"] = {RENAMED_IN_2["networks"].get(label, label):
                           [network(item) for item in items] if isinstance(items, list) else items
                           for label, items in data["networks"].items()}
    return out


@dataclass
class LUT:
    """A latency table in memory (mutable: profiling fills it in as it goes)."""

    device: str
    space: str
    space_hash: str
    runtime: dict[str, Any]
    timing: dict[str, Any]
    fingerprint: dict[str, Any]
    #: one timing per unit key
    entries: dict[str, Timing] = field(default_factory=dict)
    #: whole networks timed end to end, by what they are for (`FITTING`, `VALIDATION`,
    #: `FRONT`, `SEARCH_BIASED`)
    networks: dict[str, list[TimedNetwork]] = field(default_factory=dict)
    correction: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    #: a sampled table (a space too large to time unit by unit): how many entries were
    #: timed and predicted, and the unit regressor's cross-validated accuracy
    sampling: dict[str, Any] | None = None
    #: a transferred table (`edgenas.profile.transfer`): its source table, the networks
    #: timed on this device, and how a MACs-only fit did on the same held-out networks
    transfer: dict[str, Any] | None = None

    @classmethod
    def new(cls, device: Device, space: SearchSpace, fingerprint: dict[str, Any]) -> "LUT":
        return cls(device.name, space.name, space.space_hash(), device.runtime_settings(),
                   {**asdict(device.timing),
                    "models": {"format": device.runtime.model_format}}, fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "device": self.device, "space": self.space,
                "space_hash": self.space_hash, "runtime": self.runtime, "timing": self.timing,
                "fingerprint": self.fingerprint, "created": self.created, "updated": self.updated,
                "correction": self.correction, "validation": self.validation,
                "networks": {label: [item.to_dict() for item in items]
                             for label, items in self.networks.items()},
                "sampling": self.sampling, "transfer": self.transfer,
                "entries": {key: entry.to_dict() for key, entry in self.entries.items()}}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "LUT":
        if not isinstance(data, dict):
            raise ProfileError(f"{source}: expected a JSON object")
        version = data.get("schema_version")
        if version == 1:
            data, version = upgrade_schema_1(data), SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise ProfileError(f"{source}: schema_version: {version!r} is not supported "
                               f"(this edgenas reads 1 and {SCHEMA_VERSION}); "
                               "re-run 'edgenas profile'")
        required = {"device": str, "space": str, "space_hash": str, "runtime": dict,
                    "timing": dict, "fingerprint": dict, "entries": dict}
        for name, kind in required.items():
            if not isinstance(data.get(name), kind):
                raise ProfileError(f"{source}: {name}: missing or not a {kind.__name__}")
        entries = {key: Timing.from_dict(stats, f"{source}: entries[{key!r}]")
                   for key, stats in data["entries"].items()}
        return cls(data["device"], data["space"], data["space_hash"], data["runtime"],
                   data["timing"], data["fingerprint"], entries,
                   networks_from_dict(data.get("networks") or {}, source), data.get("correction"),
                   data.get("validation"), data.get("created", now()), data.get("updated", now()),
                   data.get("sampling"), data.get("transfer"))


def networks_from_dict(data: Any, source: str) -> dict[str, list[TimedNetwork]]:
    """A table's timed networks from its file (``data``: its ``networks`` object), each list
    by what it is for; also how a benchmark reads the networks a run saved."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: networks: expected an object of lists by what they are "
                           "for (fitting, validation, ...); re-run 'edgenas profile'")
    out = {}
    for label, items in data.items():
        if not isinstance(items, list):
            raise ProfileError(f"{source}: networks.{label}: expected a list of timed "
                               "networks; re-run 'edgenas profile'")
        out[label] = [TimedNetwork.from_dict(item, f"{source}: networks.{label}[{i}]")
                      for i, item in enumerate(items)]
    return out


def lut_path(profiles_dir: str | os.PathLike[str], device: str, space: str) -> Path:
    """Where a device's table for a space lives."""
    return Path(profiles_dir) / device / f"{space}.json"


def load_lut(path: str | os.PathLike[str]) -> LUT:
    """Read and validate a table; errors name the file and the field."""
    data = read_json(path, "measure a latency table with 'edgenas profile DEVICE --space SPACE'",
                     ProfileError)
    return LUT.from_dict(data, str(path))


def save_lut(lut: LUT, path: str | os.PathLike[str]) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    lut.updated = now()
    write_json_atomic(lut.to_dict(), Path(path))


def stale_reasons(lut: LUT, device: Device, space: SearchSpace,
                  fingerprint: dict[str, Any] | None = None) -> list[str]:
    """Why ``lut`` no longer describes ``device`` running ``space`` (empty: it does)."""
    reasons = []
    if lut.space_hash != space.space_hash():
        reasons.append(f"space {space.name!r} changed (hash {lut.space_hash} -> "
                       f"{space.space_hash()})")
    settings = device.runtime_settings()
    for key in sorted(set(settings) | set(lut.runtime)):
        if settings.get(key) != lut.runtime.get(key):
            reasons.append(f"runtime.{key}: table has {lut.runtime.get(key)!r}, device has "
                           f"{settings.get(key)!r}")
    timed = (lut.timing.get("models") or {}).get("format", "onnx")  # older tables: FP32
    if timed != device.runtime.model_format:
        reasons.append(f"models: table timed the {FORMAT_NAMES.get(timed, timed)} model, device "
                       f"runs the {FORMAT_NAMES[device.runtime.model_format]} one")
    if fingerprint is not None:
        for key in FINGERPRINT_FIELDS:
            if lut.fingerprint.get(key) != fingerprint.get(key):
                reasons.append(f"fingerprint.{key}: table has {lut.fingerprint.get(key)!r}, "
                               f"device has {fingerprint.get(key)!r}")
    return reasons


def local_fingerprint(device: Device) -> dict[str, Any] | None:
    """The fingerprint of a local device, computed in-process; None for remote devices."""
    if device.connection.kind != "local":
        return None
    check_local_runtime(device)  # one line naming the fix, not an ImportError
    return timer.fingerprint(device.runtime.name, device.runtime.device or "CPU",
                             device.runtime.precision)


def open_lut(device: Device, space: SearchSpace, profiles_dir: str | os.PathLike[str],
             allow_stale: bool = False) -> LUT:
    """The device's table for ``space``, refused with reasons if it no longer matches.

    A local device's fingerprint is checked too; a remote one's is checked when a
    session connects to it (profile, deploy).
    """
    path = lut_path(profiles_dir, device.name, space.name)
    lut = load_lut(path)
    reasons = stale_reasons(lut, device, space, local_fingerprint(device))
    if reasons and not allow_stale:
        raise ProfileError(f"{path} is stale: {'; '.join(reasons)}. Re-profile with "
                           f"'edgenas profile {device.name} --space {space.name}' (a stale table "
                           "is measured anew), or pass --allow-stale to use it anyway")
    return lut


def find_lut(device: Device, arch: "Arch", profiles_dir: str | os.PathLike[str],
             allow_stale: bool = False, holding: Sequence[SearchSpace] | None = None
             ) -> tuple[LUT, Path]:
    """The device's table for the preset space that holds ``arch`` (and its path);
    ``holding``: those spaces, when the caller asks for several devices."""
    candidates = [get_space(name) for name in sorted(SPACES)
                  if lut_path(profiles_dir, device.name, name).exists()]
    if not candidates:
        raise NoTableError(f"device {device.name!r} has no latency table in {profiles_dir}/; "
                           f"run 'edgenas profile {device.name} --space cifar' first")
    holding_names = {space.name for space in (spaces_holding(arch) if holding is None
                                              else holding)}
    for space in candidates:
        if space.name in holding_names:
            return (open_lut(device, space, profiles_dir, allow_stale),
                    lut_path(profiles_dir, device.name, space.name))
    raise ProfileError(f"the arch is in none of the spaces profiled for {device.name!r} "
                       f"({', '.join(s.name for s in candidates)}); latency is predicted for "
                       "archs of a profiled space")
