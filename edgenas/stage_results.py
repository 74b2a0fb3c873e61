"""What each stage of the main job hands the stages after it, as typed values.

`edgenas.pipeline` stores every finished stage's result in ``stages/<name>.json`` so that a
re-run goes on from the first unfinished stage. The stages decide on these values by field
(``state.search.chosen["knee"].arch``), and the dicts exist only where a result is written
to or read from its file (``to_dict`` / ``from_dict``), in the same keys as before, so a run
directory of an earlier edgenas resumes as it did. Records that are themselves the rows of
another file (a front arch as ``front.json`` lists it, a trained network as
``assessment.json`` does) are kept as those rows, reached through the named fields the
pipeline uses.

A stored result that does not read as its stage's value (hand-edited, or of another
edgenas) raises `StageResultError`; the pipeline then runs that stage again rather than
going on with half of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from edgenas.errors import EdgenasError
from edgenas.space.arch import Arch


#: A per-pick result's type.
T = TypeVar("T")


class StageResultError(EdgenasError):
    """A stored stage result that is not what its stage writes."""


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
           default: Any = ...) -> Any:
    """``data[key]`` if it is a ``kind``; ``default`` where the key is missing and one is
    given (older results lack some keys); an error naming the field otherwise."""
    if key not in data and default is not ...:
        return default
    value = data.get(key)
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise StageResultError(f"{where}: {key}: expected {names}, got {value!r}")
    return value


def _object(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise StageResultError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class TableResult:
    """The device's latency table, as the table stage left it (trusted, refitted or
    measured anew), with its validation report and the check that decided."""

    path: Path
    validation: dict[str, Any] | None
    check: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "validation": self.validation, "check": self.check}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "TableResult":
        data = _object(data, where)
        return cls(Path(_field(data, "path", str, where)),
                   _field(data, "validation", (dict, type(None)), where),
                   _field(data, "check", (dict, type(None)), where))


@dataclass(frozen=True)
class SupernetResult:
    """The supernet's accuracy at its extremes, or why none was trained."""

    skipped: str | None = None
    val_accuracy_largest: float | None = None
    val_accuracy_smallest: float | None = None
    split: Any = None

    def to_dict(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped}
        return {"val_accuracy_largest": self.val_accuracy_largest,
                "val_accuracy_smallest": self.val_accuracy_smallest, "split": self.split}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "SupernetResult":
        data = _object(data, where)
        if "skipped" in data:
            return cls(skipped=_field(data, "skipped", str, where))
        number = (int, float, type(None))
        return cls(None, _field(data, "val_accuracy_largest", number, where),
                   _field(data, "val_accuracy_smallest", number, where), data.get("split"))


@dataclass(frozen=True)
class Pick:
    """A front arch the main job ships, under the rule that chose it; ``row`` is its record
    as ``front.json`` lists it (objectives, costs, the search's and the measured latency)."""

    row: dict[str, Any]

    @property
    def arch(self) -> Arch:
        return Arch.from_dict(self.row["arch"])

    @property
    def trial(self) -> int:
        return int(self.row["trial"])

    @property
    def accuracy(self) -> float:
        return float(self.row["accuracy"])

    @property
    def run_dir(self) -> Path | None:
        """Where the search trained it with the main job's recipe (None: it was not)."""
        return Path(self.row["run_dir"]) if self.row.get("run_dir") else None

    @property
    def predicted_by_search_ms(self) -> float | None:
        """The latency the search used (a front of an older edgenas records it as
        ``latency`` only)."""
        return self.row.get("predicted_latency_ms", self.row.get("latency"))

    @property
    def measured_front_ms(self) -> float | None:
        """The front's measurement on the device, before export (None: not measured)."""
        return self.row.get("measured_latency_ms")

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Pick":
        data = _object(data, where)
        _field(data, "arch", dict, where)
        _field(data, "trial", int, where)
        _field(data, "accuracy", (int, float), where)
        return cls(dict(data))


@dataclass(frozen=True)
class SearchResult:
    """The search's front (measured on the device), the picks the later stages ship, and
    the picks that were the same arch as an earlier one (exported once)."""

    trials: int
    hypervolume: float
    front: list[dict[str, Any]]
    chosen: dict[str, Pick]
    same_picks: dict[str, str] = field(default_factory=dict)
    front_measurement: dict[str, Any] | None = None
    surrogate: dict[str, Any] | None = None
    accuracy_source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "hypervolume": self.hypervolume, "front": self.front,
                "chosen": {name: pick.row for name, pick in self.chosen.items()},
                "same_picks": self.same_picks, "front_measurement": self.front_measurement,
                "surrogate": self.surrogate, "accuracy_source": self.accuracy_source}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "SearchResult":
        data = _object(data, where)
        chosen = _field(data, "chosen", dict, where)
        optional = (dict, type(None))
        return cls(_field(data, "trials", int, where),
                   _field(data, "hypervolume", (int, float), where),
                   _field(data, "front", list, where),
                   {name: Pick.from_dict(row, f"{where}: chosen.{name}")
                    for name, row in chosen.items()},
                   # results stored before these keys existed resume without them
                   _field(data, "same_picks", dict, where, {}),
                   _field(data, "front_measurement", optional, where, None),
                   _field(data, "surrogate", optional, where, None),
                   _field(data, "accuracy_source", optional, where, None))


@dataclass(frozen=True)
class TrainResult:
    """The picks and the baselines trained with one recipe: the recipe, and one record per
    network as ``standalone/assessment.json`` holds it."""

    recipe: dict[str, Any]
    networks: list[dict[str, Any]]

    def run_dirs(self) -> dict[str, str]:
        """Each network's training run folder, by name."""
        return {record["name"]: record["run_dir"] for record in self.networks}

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "networks": self.networks}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "TrainResult":
        data = _object(data, where)
        networks = _field(data, "networks", list, where)
        for i, record in enumerate(networks):
            record = _object(record, f"{where}: networks[{i}]")
            for key, kind in (("name", str), ("run_dir", str), ("val_accuracy", (int, float))):
                _field(record, key, kind, f"{where}: networks[{i}]")
        return cls(_field(data, "recipe", dict, where), networks)


@dataclass(frozen=True)
class ExportedPick:
    """A pick's bundle: the formats it holds, those left out and why, how the reduced
    precisions held against FP32, and the exported model's accuracy and costs."""

    bundle: Path
    formats: list[str]
    rejected: dict[str, Any]
    precision_checks: dict[str, Any]
    accuracy: float
    macs: int
    params: int
    memory_bytes_fp32: int

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": str(self.bundle), "formats": self.formats, "rejected": self.rejected,
                "precision_checks": self.precision_checks, "accuracy": self.accuracy,
                "macs": self.macs, "params": self.params,
                "memory_bytes_fp32": self.memory_bytes_fp32}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "ExportedPick":
        data = _object(data, where)
        return cls(Path(_field(data, "bundle", str, where)), _field(data, "formats", list, where),
                   _field(data, "rejected", dict, where, {}),
                   _field(data, "precision_checks", dict, where, {}),
                   _field(data, "accuracy", (int, float), where),
                   _field(data, "macs", int, where), _field(data, "params", int, where),
                   _field(data, "memory_bytes_fp32", int, where))


@dataclass(frozen=True)
class DeployedPick:
    """A pick timed on the device from its bundle: the table's prediction, the median of
    rounds as timed and at the table's level of load, and whether the table drifted."""

    predicted_ms: float | None
    measured_ms: float
    rounds_ms: list[float]
    lut_drifting: bool | None
    load_ratio: float | None = None
    measured_at_table_level_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"predicted_ms": self.predicted_ms, "measured_ms": self.measured_ms,
                "rounds_ms": self.rounds_ms, "lut_drifting": self.lut_drifting,
                "load_ratio": self.load_ratio,
                "measured_at_table_level_ms": self.measured_at_table_level_ms}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "DeployedPick":
        data = _object(data, where)
        number = (int, float)
        optional = (int, float, type(None))
        return cls(_field(data, "predicted_ms", optional, where),
                   _field(data, "measured_ms", number, where),
                   _field(data, "rounds_ms", list, where),
                   _field(data, "lut_drifting", (bool, type(None)), where, None),
                   _field(data, "load_ratio", optional, where, None),
                   _field(data, "measured_at_table_level_ms", optional, where, None))


def by_pick_to_dict(values: Mapping[str, ExportedPick | DeployedPick]) -> dict[str, Any]:
    """A per-pick stage result (export, deploy) as stored."""
    return {name: value.to_dict() for name, value in values.items()}


def by_pick_from_dict(read: Callable[[Any, str], T]) -> Callable[[Any, str], dict[str, T]]:
    """How a per-pick stage result (export, deploy) is read back: each pick's value by
    ``read`` (its type's ``from_dict``), errors naming the pick."""
    def load(data: Any, where: str) -> dict[str, T]:
        return {name: read(value, f"{where}: {name}")
                for name, value in _object(data, where).items()}
    return load
