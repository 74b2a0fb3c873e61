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

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from edgenas.errors import ProfileError
from edgenas.profile.lut import LUT


@dataclass(frozen=True)
class Level:
    """One way of bringing a raw time to the table's level: by which reference its timing
    record holds (``reference``, a key of `RECORD`), or as timed (None); the module's
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
#: The statistics a level rescales (the median is the one predictions use).
STATISTICS = ("median_ms", "p10_ms", "p90_ms", "min_ms", "mean_ms")
#: What a timing records to be expressed at any level later: its raw median, the mean of
#: its neighbouring references, its chunk's median reference and the table's yardstick.
RECORD = ("raw_median_ms", "neighbour_reference_ms", "chunk_reference_ms", "yardstick_ms")


def level_named(name: Any, where: str = "timing.protocol.level") -> Level:
    """The level a table names; an unknown one (a hand-edited table) is an error, never
    another level silently."""
    if name not in LEVELS:
        raise ProfileError(f"{where}: {name!r} is not a level of load; use one of "
                           f"{', '.join(LEVELS)}, or re-run 'edgenas profile DEVICE "
                           "--recalibrate' to choose one by measurement")
    return LEVELS[name]


def factor(timing: dict[str, Any], level: str) -> float | None:
    """What multiplies a raw time to bring it to ``level``; None without the record."""
    key = level_named(level).reference
    if key is None:
        return 1.0
    reference = timing.get(key)
    yardstick = timing.get("yardstick_ms")
    if not reference or not yardstick:
        return None
    return float(yardstick) / float(reference)


def value(timing: dict[str, Any], level: str) -> float | None:
    """A timing's median at ``level``; None without its raw time and references."""
    scale = factor(timing, level)
    raw = timing.get("raw_median_ms")
    return None if scale is None or not raw else raw * scale


def relevel(stats: dict[str, Any], level: str) -> None:
    """Express a unit's or network's statistics at ``level``, in place (from its record of
    the raw time and references; a timing without one is left as it is)."""
    median = value(stats, level)
    if median is None:
        return
    ratio = median / stats["median_ms"]
    for key in STATISTICS:
        if key in stats:
            stats[key] = stats[key] * ratio


def round_times(item: dict[str, Any], level: str) -> list[float] | None:
    """A timed network's round medians at ``level``; None unless every round was recorded."""
    timed = item.get("timed") or []
    if not timed or len(timed) != len(item.get("rounds", [])):
        return None
    values = [value(timing, level) for timing in timed]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def round_repeatability(items: Iterable[dict[str, Any]], level: str) -> dict[str, Any] | None:
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


def choose(items: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The level whose rounds agree best (smallest median gap), and every level's record.
    Ties go to the earlier of `LEVELS`; without recorded rounds, `DEFAULT`."""
    scores = {level: round_repeatability(items, level) for level in LEVELS}
    known = {level: score for level, score in scores.items() if score is not None}
    if not known:
        return DEFAULT, {}
    order = list(LEVELS)
    best = min(known, key=lambda level: (known[level]["median_gap_pct"], order.index(level)))
    return best, known


def express_at(lut: LUT, level: str) -> None:
    """Every unit and network of the table at ``level``, from its raw times and references
    (those timed without a record are left as they are); the correction is not refitted."""
    for entry in lut.entries.values():
        relevel(entry, level)
    for items in lut.networks.values():
        for item in items:
            times = round_times(item, level)
            if times is not None:
                item["rounds"], item["measured_ms"] = times, float(np.median(times))
