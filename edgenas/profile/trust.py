"""Whether a stored latency table can be used on the device now, and what repairs it.

One policy, used by the main job before it searches and by `edgenas profile --check`:

* a table that is missing, stale (another fingerprint or runtime) or unreadable is
  measured anew within a time budget (a covering sample of units, the rest predicted);
* one that an interrupted run left unfinished is resumed: only what it lacks is timed;
* otherwise a few of its held-out networks are timed again (`edgenas.profile.drift`): it
  is trusted while their median measured/predicted stays within 10 % of 1 and their order
  holds (Kendall tau);
* a table that is off is recalibrated: its table-fitting networks are timed again and its
  correction refitted, the units kept;
* and measured anew only when, after that, its held-out share within +-10 % fell more
  than `MAX_VALIDATION_LOSS` below what it had where it was measured, or this host's noise
  floor if lower: a table cannot beat the floor, and re-timing thousands of units on a host
  whose own rounds disagree would cost minutes and buy nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenas.device.descriptor import Device
from edgenas.errors import ProfileError
from edgenas.locking import folder_lock
from edgenas.profile.drift import MAX_VALIDATION_LOSS, check_drift
from edgenas.profile.lut import LUT, load_lut, lut_path, open_lut, save_lut
from edgenas.profile.profiler import profile, unfinished
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)

#: Networks timed to fit and to judge a table this policy measures or recalibrates: the
#: defaults of 'edgenas profile' (150 table-fitting networks, 50 held out) took 400
#: network timings, about 90 s on a 2-core host.
CALIBRATE, VALIDATE = 60, 30
#: What the policy did with the stored table.
TRUSTED, UNCHECKED, RECALIBRATED, MEASURED, RESUMED = (
    "trusted", "used unchecked", "recalibrated", "measured anew", "resumed")


@dataclass
class TableDecision:
    """The table to use, what was done to it, and the drift check of the stored one (None
    when it was not checked)."""

    lut: LUT
    action: str
    check: dict[str, Any] | None
    path: Path


def refit_holds(refitted: float, recorded: float, floor: float) -> bool:
    """Whether a refitted table is kept: its held-out share within +-10 % (``refitted``)
    is at most `MAX_VALIDATION_LOSS` below the lower of the share it had where it was
    measured (``recorded``) and this host's noise floor (``floor``)."""
    return refitted >= min(recorded, floor) - MAX_VALIDATION_LOSS


def trusted_table(device: Device, space: SearchSpace, profiles_dir: str | Path,
                  table_minutes: float = 1.5, check: bool = True) -> TableDecision:
    """The device's table for ``space``, made fit to use now (the module's policy), saved
    under ``profiles_dir``; ``check`` False trusts a complete table without timing."""
    path = lut_path(profiles_dir, device.name, space.name)
    with folder_lock(path.parent, f"profiling of {space.name}", name=f".{space.name}.lock"):
        return _decide(device, space, Path(profiles_dir), path, table_minutes, check)


def _decide(device: Device, space: SearchSpace, profiles_dir: Path, path: Path,
            table_minutes: float, check: bool) -> TableDecision:

    def save(table: LUT) -> None:
        save_lut(table, path)

    def measure_anew(existing: LUT | None, action: str, max_units: int | None = None,
                     drift: dict[str, Any] | None = None) -> TableDecision:
        # a sample of units, the rest predicted, a smaller held-out set ('edgenas profile'
        # times every unit of a space this size); ``max_units`` instead: the units a
        # finished sample timed, so that resuming times no more
        lut = profile(device, space, existing, checkpoint=save, calibrate=CALIBRATE,
                      validate=VALIDATE, max_units=max_units,
                      time_budget_s=None if max_units is not None else 60 * table_minutes)
        save(lut)
        return TableDecision(lut, action, drift, path)

    try:
        lut = open_lut(device, space, profiles_dir)
    except ProfileError as err:
        log.info("profiling %s for space %s (%s)", device.name, space.name, err)
        return measure_anew(load_lut(path) if path.exists() else None, MEASURED)
    left = unfinished(lut, space)
    if left:  # a run killed while it measured: its checkpoints are kept, the rest is timed
        log.warning("%s: resuming the table an interrupted run left (%s)", path,
                    "; ".join(left))
        return measure_anew(lut, RESUMED, lut.sampling["measured"] if lut.sampling else None)
    if not check:
        return TableDecision(lut, UNCHECKED, None, path)
    drift = check_drift(device, lut)
    if drift["trusted"]:
        return TableDecision(lut, TRUSTED, drift, path)
    log.warning("%s: the table is off on this host (median measured/predicted %.2f, "
                "Kendall tau %.2f over %d re-timed networks); re-timing its table-fitting "
                "networks and refitting the correction", device.name,
                drift["median_ratio_measured_to_predicted"], drift["kendall_tau"], drift["n"])
    recorded = (lut.validation or {}).get("within_10pct", 1.0)
    lut = profile(device, space, lut, checkpoint=save, calibrate=CALIBRATE,
                  validate=VALIDATE, recalibrate=True)
    save(lut)
    floor = (lut.validation.get("noise_floor") or {}).get("within_10pct", 1.0)
    if not refit_holds(lut.validation["within_10pct"], recorded, floor):
        log.warning("%s: %.0f %% of held-out networks within +-10 %% after refitting (the table "
                    "had %.0f %% where it was measured, this host's noise floor is %.0f %%); "
                    "measuring the table anew", device.name,
                    100 * lut.validation["within_10pct"], 100 * recorded, 100 * floor)
        return measure_anew(None, MEASURED, drift=drift)
    return TableDecision(lut, RECALIBRATED, drift, path)
