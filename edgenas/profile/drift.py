"""Is a latency table still true on the device today?

A fingerprint catches a new runtime or CPU model, not a host of the same kind that is
slower, a different power mode, or a busier machine. Timing a few of the table's held-out
networks again takes seconds and answers the question before a search trusts the table.
"""

from __future__ import annotations

import statistics
from typing import Any

from edgenas.cost.latency import LatencyModel, accuracy_metrics
from edgenas.device.descriptor import Device
from edgenas.errors import ProfileError
from edgenas.profile.lut import LUT
from edgenas.space.arch import Arch

#: A table is trusted when at least this share of re-timed networks is within +-10 %.
TRUSTED_WITHIN_10PCT = 0.8


def check_drift(device: Device, lut: LUT, count: int = 10) -> dict[str, Any]:
    """Time ``count`` of the table's held-out (else calibration) networks again now.

    Gives the usual accuracy metrics of the table's predictions against the fresh times,
    the median measured/predicted ratio, and ``trusted``.
    """
    from edgenas.assess import measure_latency

    items = (lut.networks.get("validation") or lut.networks.get("calibration") or [])[:count]
    if not items:
        raise ProfileError(f"latency table {lut.device}/{lut.space} has no timed networks to "
                           f"check; run 'edgenas profile {lut.device} --validate 20'")
    archs = {f"n{i}": Arch.from_json(item["arch"]) for i, item in enumerate(items)}
    measured = measure_latency(device, archs)
    model = LatencyModel(lut)
    predicted = [model.predict(arch) for arch in archs.values()]
    fresh = [measured[name] for name in archs]
    report = accuracy_metrics(predicted, fresh)
    report["median_ratio_measured_to_predicted"] = statistics.median(
        m / p for m, p in zip(fresh, predicted))
    report["trusted"] = report["within_10pct"] >= TRUSTED_WITHIN_10PCT
    return report
