"""What a latency table records of a timing: typed values inside, dicts only in the file.

A unit's timing (`Timing`) holds the agent's statistics and, when a load guard timed it,
the raw time and the references around it (`LoadRecord`) that let it be expressed at any
level of load later (`edgenas.profile.level`). A whole network timed end to end
(`TimedNetwork`) keeps each round's median and one such record per round. The values are
frozen: a table expressed at another level gets new records, so a timing held elsewhere
(a search's model, a report) never changes under it.

``to_dict`` writes the keys the file has always had (an absent one stays absent), the
known ones in the order the ONNX Runtime agent and the profiler write them, and keys this
module does not know (another agent's, a newer edgenas's) are kept in ``extra`` and
written back, so reading a table and writing it again loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Mapping

import numpy as np

from edgenas.errors import ProfileError

#: The statistics of a timing, in the agent's order; the median is what predictions use,
#: and a level rescales them all alike.
STATISTICS = ("median_ms", "p10_ms", "p90_ms", "min_ms", "mean_ms")
#: What a timing records to be expressed at any level later: its raw median, the mean of
#: its neighbouring references, its chunk's median reference and the table's yardstick.
RECORD = ("raw_median_ms", "neighbour_reference_ms", "chunk_reference_ms", "yardstick_ms")
#: What the profiler adds to a unit it did not time (`predicted`, with the regressor's
#: ``log_std``) or took from another device's table (`transferred`).
MARKS = ("predicted", "log_std", "transferred")
_FIX = "re-run 'edgenas profile DEVICE --space SPACE' to measure it anew"


def _number(data: Mapping[str, Any], key: str, where: str, optional: bool = True
            ) -> float | None:
    """``data[key]`` as the file has it (an int stays an int, so it is written back as
    read); None when absent and ``optional``."""
    value = data.get(key)
    if value is None and optional and key not in data:
        return None
    if not isinstance(value, (int, float)):
        raise ProfileError(f"{where}.{key}: {value!r} is not a number; {_FIX}")
    return value


def _optional_number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    """Like `_number`, but a recorded null is read as absent (a reference that was not
    there when the timing was taken)."""
    return None if data.get(key) is None else _number(data, key, where)


def _present(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The pairs whose value is set: an absent key stays absent in the file."""
    return {key: value for key, value in pairs if value is not None}


@dataclass(frozen=True)
class LoadRecord:
    """A timing's raw median and the references around it: enough to express it at any
    level of load (`edgenas.profile.level.factor`) without timing it again. A reference
    may be missing (a hand-made or older record); the levels that need it then cannot
    say. A network's round record may hold more (``extra``: schema 1 copied the round's
    statistics into it), written back as read."""

    raw_median_ms: float
    neighbour_reference_ms: float | None = None
    chunk_reference_ms: float | None = None
    yardstick_ms: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        known = {key: getattr(self, key) for key in RECORD
                 if key == "raw_median_ms" or getattr(self, key) is not None}
        return {**known, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "LoadRecord":
        if not isinstance(data, Mapping):
            raise ProfileError(f"{where}: expected an object with {', '.join(RECORD)}; {_FIX}")
        raw = _number(data, "raw_median_ms", where, optional=False)
        assert raw is not None
        return cls(raw, *(_optional_number(data, key, where) for key in RECORD[1:]),
                   extra={key: value for key, value in data.items() if key not in RECORD})


@dataclass(frozen=True)
class Timing:
    """One timing of a unit (a table entry) or of a network: the agent's statistics,
    how the profiler came by it when it did not time it (``predicted``, ``transferred``),
    the load record a guarded timing keeps, and any keys the agent sent that this module
    does not know (``extra``, written back as read)."""

    median_ms: float
    p10_ms: float | None = None
    p90_ms: float | None = None
    min_ms: float | None = None
    mean_ms: float | None = None
    spread: float | None = None
    n: int | None = None
    predicted: bool | None = None
    log_std: float | None = None
    transferred: bool | None = None
    record: LoadRecord | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def scaled(self, ratio: float) -> "Timing":
        """This timing with every statistic times ``ratio`` (the record is the raw one and
        stays as it is)."""
        return replace(self, **{key: getattr(self, key) * ratio for key in STATISTICS
                                if getattr(self, key) is not None})

    def to_dict(self) -> dict[str, Any]:
        known = _present((key, getattr(self, key))
                         for key in (*STATISTICS, "spread", "n", *MARKS))
        return {**known, **self.extra, **(self.record.to_dict() if self.record else {})}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Timing":
        if not isinstance(data, Mapping) or not isinstance(data.get("median_ms"), (int, float)):
            raise ProfileError(f"{where}: needs a numeric median_ms; {_FIX}")
        numbers = {key: _number(data, key, where)
                   for key in (*STATISTICS, "spread", "n", "log_std")}
        marks = {key: data.get(key) for key in ("predicted", "transferred")}
        for key, mark in marks.items():
            if mark is not None and not isinstance(mark, bool):
                raise ProfileError(f"{where}.{key}: {mark!r} is not true or false; {_FIX}")
        record = LoadRecord.from_dict({key: data[key] for key in RECORD if key in data}, where) \
            if "raw_median_ms" in data else None
        known = {*STATISTICS, "spread", "n", *MARKS, *(RECORD if record else ())}
        return cls(**numbers, **marks, record=record,  # type: ignore[arg-type]
                   extra={key: value for key, value in data.items() if key not in known})


@dataclass(frozen=True)
class TimedNetwork:
    """A whole network timed end to end in interleaved rounds: its arch (canonical JSON,
    the key it is found by), each round's median (``rounds``), their median
    (``measured_ms``), the first round's spread, one load record per guarded round
    (``timed``), and keys this module does not know (``extra``). Tables written before
    rounds were kept hold only ``measured_ms`` (``rounds`` empty)."""

    arch: str
    measured_ms: float
    spread: float | None = None
    rounds: tuple[float, ...] = ()
    timed: tuple[LoadRecord, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_round(self, timing: Timing) -> "TimedNetwork":
        """This network with one more round, timed as ``timing``: the rounds' median is
        its time, the first round's spread its spread."""
        rounds = (*self.rounds, timing.median_ms)
        timed = self.timed if timing.record is None else (*self.timed, timing.record)
        return replace(self, rounds=rounds, timed=timed, measured_ms=float(np.median(rounds)),
                       spread=self.spread or timing.spread)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arch": self.arch, "measured_ms": self.measured_ms}
        if self.spread is not None:  # every agent gives one; hand-made tables may not
            out["spread"] = self.spread
        if self.rounds:
            out["rounds"] = list(self.rounds)
        if self.timed:
            out["timed"] = [record.to_dict() for record in self.timed]
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "TimedNetwork":
        if not isinstance(data, Mapping) or not isinstance(data.get("arch"), str):
            raise ProfileError(f"{where}: needs the network's arch (its JSON string); {_FIX}")
        measured = _number(data, "measured_ms", where, optional=False)
        assert measured is not None
        rounds, timed = data.get("rounds") or [], data.get("timed") or []
        if not isinstance(rounds, list) or not all(isinstance(r, (int, float)) for r in rounds):
            raise ProfileError(f"{where}.rounds: expected a list of times in ms; {_FIX}")
        if not isinstance(timed, list):
            raise ProfileError(f"{where}.timed: expected a list of load records; {_FIX}")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(data["arch"], measured, _optional_number(data, "spread", where),
                   tuple(rounds),
                   tuple(LoadRecord.from_dict(r, f"{where}.timed[{i}]")
                         for i, r in enumerate(timed)),
                   {key: value for key, value in data.items() if key not in known})

