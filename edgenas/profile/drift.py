"""Is a latency table still true on the device today?

A fingerprint catches a new runtime or CPU model, not a host of the same kind that is
slower, a different power mode, or a busier machine. Timing a few of the table's held-out
networks again takes seconds and answers the question before a search trusts the table.
"""

from __future__ import annotations

import statistics
from typing import Any

from edgenas.device.descriptor import Device
from edgenas.errors import ProfileError
from edgenas.profile.latency import LatencyModel, accuracy_metrics
from edgenas.profile.lut import LUT
from edgenas.profile.measure import measure_latency
from edgenas.space.arch import Arch

#: A table is trusted while the median of measured/predicted stays within this of 1 ...
MAX_BIAS = 0.10
#: ... and it still orders the re-timed networks (Kendall tau at least this).
MIN_TAU = 0.6
#: After a refit, a table whose held-out share within +-10 % fell by more than this below
#: what it had where it was measured (or below this host's noise floor, if that is lower)
#: is measured anew.
MAX_VALIDATION_LOSS = 0.15


def check_drift(device: Device, lut: LUT, count: int = 10) -> dict[str, Any]:
    """Time ``count`` of the table's held-out (else calibration) networks again now.

    Gives the usual accuracy metrics of the table's predictions against the fresh times,
    the median measured/predicted ratio, and ``trusted``. Trust is judged on bias and
    order rather than on the share within +-10 %: on a noisy host single networks move by
    several per cent between runs, which is no reason to measure a table anew, while a
    host that is uniformly slower shows as a median ratio far from 1.
    """
    items = (lut.networks.get("validation") or lut.networks.get("fitting") or [])[:count]
    if not items:
        raise ProfileError(f"latency table {lut.device}/{lut.space} has no timed networks to "
                           f"check; run 'edgenas profile {lut.device} --validate 20'")
    archs = {f"n{i}": Arch.from_json(item.arch) for i, item in enumerate(items)}
    measured = measure_latency(device, archs)  # as timed: a slower host must show
    model = LatencyModel(lut)
    predicted = [model.predict(arch) for arch in archs.values()]
    fresh = [measured[name] for name in archs]
    report = accuracy_metrics(predicted, fresh)
    report["median_ratio_measured_to_predicted"] = statistics.median(
        m / p for m, p in zip(fresh, predicted))
    report["trusted"] = (abs(report["median_ratio_measured_to_predicted"] - 1) <= MAX_BIAS
                         and report["kendall_tau"] >= MIN_TAU)
    return report
