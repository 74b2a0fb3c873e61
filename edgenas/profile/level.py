"""Levels of load: how a timing is brought to the table's level, and which level a table uses.

The timing protocol (`edgenas.profile.timing`) keeps, for every timing, what it was
measured as and the reference timings around it; this module turns those into a time at
a level. A shared host's speed moves in two ways. Slowly, over minutes, which dividing by
a reference network timed alongside repairs; and from one timing to the next, which no
reference can repair, since its own timings jitter as much and independently (scaling
by them can make repeated timings agree less, not more; docs/notebook/results-log.md).
Which dominates changes with the stretch, so the table uses the level that makes its own
table-fitting networks' two rounds agree best (`choose`):

* ``neighbours``: scaled by the mean of the two reference timings around the model;
* ``chunk``: scaled by the median reference timing of its chunk (6 for 100 models): slow
  shifts without most of the jitter;
* ``none``: as timed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

import numpy as np

from edgenas.errors import ProfileError
from edgenas.profile.lut import LUT
from edgenas.profile.records import LoadRecord, TimedNetwork, Timing


@dataclass(frozen=True)
class Level:
    """One way of bringing a raw time to the table's level: by which reference its load
    record holds (``reference``, a field of `LoadRecord`), or as timed (None); the module's
    docstring says each in words."""

    name: str
    reference: str | None


#: The levels, in the order ties are broken in (`choose`).
LEVELS: dict[str, Level] = {level.name: level for level in (
    Level("neighbours", "neighbour_reference_ms"),
    Level("chunk", "chunk_reference_ms"),
    Level("none", None))}
#: Tables made before the choice existed were scaled by neighbouring references.
DEFAULT = "neighbours"


def level_named(name: Any, where: str = "timing.protocol.level") -> Level:
    """The level a table names; an unknown one (a hand-edited table) is an error, never
    another level silently."""
    if name not in LEVELS:
        raise ProfileError(f"{where}: {name!r} is not a level of load; use one of "
                           f"{', '.join(LEVELS)}, or re-run 'edgenas profile DEVICE "
                           "--recalibrate' to choose one by measurement")
    return LEVELS[name]


def factor(record: LoadRecord | None, level: str) -> float | None:
    """What multiplies a raw time to bring it to ``level``; None without the record."""
    key = level_named(level).reference
    if key is None:
        return 1.0
    reference = getattr(record, key) if record is not None else None
    yardstick = record.yardstick_ms if record is not None else None
    if not reference or not yardstick:
        return None
    return float(yardstick) / float(reference)


def value(record: LoadRecord | None, level: str) -> float | None:
    """A timing's median at ``level``; None without its raw time and references."""
    scale = factor(record, level)
    raw = record.raw_median_ms if record is not None else None
    return None if scale is None or not raw else raw * scale


def relevel(timing: Timing, level: str) -> Timing:
    """A unit's or network's timing expressed at ``level`` (from its record of the raw
    time and references; a timing without one is returned as it is)."""
    median = value(timing.record, level)
    if median is None:
        return timing
    return timing.scaled(median / timing.median_ms)


def round_times(item: TimedNetwork, level: str) -> list[float] | None:
    """A timed network's round medians at ``level``; None unless every round was recorded."""
    if not item.timed or len(item.timed) != len(item.rounds):
        return None
    values = [value(record, level) for record in item.timed]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def round_repeatability(items: Iterable[TimedNetwork], level: str) -> dict[str, Any] | None:
    """How well the first two rounds of the same networks agree at ``level``."""
    return pair_gaps([times[:2] for item in items
                      if (times := round_times(item, level)) is not None and len(times) >= 2])


def pair_gaps(pairs: list[list[float]]) -> dict[str, Any] | None:
    """How far two timings of the same networks are apart, each gap over the faster of the
    two (a perfect predictor of either would be judged against the other); None without
    pairs. The one statistic behind a level's score and a table's noise floor."""
    if not pairs:
        return None
    values = np.array(pairs, dtype=float)
    gap = np.abs(values[:, 0] - values[:, 1]) / values.min(axis=1)
    return {"n": int(len(values)), "median_gap_pct": float(100 * np.median(gap)),
            "within_10pct": float(np.mean(gap <= 0.10)),
            "within_5pct": float(np.mean(gap <= 0.05))}


def choose(items: list[TimedNetwork]) -> tuple[str, dict[str, Any]]:
    """The level whose rounds agree best (smallest median gap), and every level's record.
    Ties go to the earlier of `LEVELS`; without recorded rounds, `DEFAULT`."""
    scores = {level: round_repeatability(items, level) for level in LEVELS}
    known = {level: score for level, score in scores.items() if score is not None}
    if not known:
        return DEFAULT, {}
    order = list(LEVELS)
    best = min(known, key=lambda level: (known[level]["median_gap_pct"], order.index(level)))
    return best, known


def network_at(item: TimedNetwork, level: str) -> TimedNetwork:
    """A timed network with its rounds at ``level`` (as it is unless every round was
    recorded)."""
    times = round_times(item, level)
    if times is None:
        return item
    return replace(item, rounds=tuple(times), measured_ms=float(np.median(times)))


def express_at(lut: LUT, level: str) -> None:
    """Every unit and network of the table at ``level``, from its raw times and references
    (those timed without a record are left as they are); the table gets new records, the
    old ones are not changed, and the correction is not refitted."""
    lut.entries = {key: relevel(entry, level) for key, entry in lut.entries.items()}
    lut.networks = {label: [network_at(item, level) for item in items]
                    for label, items in lut.networks.items()}
