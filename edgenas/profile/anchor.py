"""A table's level at the time it is used: re-anchored by a short timing of its reference.

Every time in a table is expressed at its yardstick: the reference network's time when the
table was started (`edgenas.profile.timing.LoadGuard`). That makes a table consistent
within itself, but a shared host, and an emulated board on it, spends minutes in slower
or faster phases, and a table whose yardstick was taken in a slow phase predicts every
network too slow in a fast one, by the same factor. A burst of reference timings now says
what that factor is: the fastest of them over the yardstick. Predictions are multiplied by
it (`LatencyModel` applies the stored anchor); the table's own checks (validation, drift)
compare with times expressed at the yardstick, and so use the table unanchored.
"""

from __future__ import annotations

from typing import Any

from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import ProfileError
from edgenas.profile.lut import LUT, now
from edgenas.profile.timing import LoadGuard, load_guard
from edgenas.space.search_space import SearchSpace

#: Reference timings in a re-anchoring burst (the table's yardstick took 20).
BURST = 10


def measure_anchor(device: Device, space: SearchSpace, lut: LUT, burst: int = BURST
                   ) -> dict[str, Any]:
    """Time the table's reference network ``burst`` times on ``device`` now and return the
    anchor: the fastest time over the table's yardstick (``ratio``), and what it came from."""
    guard = load_guard(device, space, lut)
    if guard is None or not guard.yardstick_ms:
        raise ProfileError(f"{lut.device}/{lut.space} has no reference network time to anchor "
                           "by (TensorRT tables, and tables measured before references were "
                           f"kept); re-profile with 'edgenas profile {device.name} --space "
                           f"{space.name} --recalibrate'")
    probe = LoadGuard(guard.reference, None, space=guard.space)
    with DeviceSession(device) as session:
        probe.start(session, burst)
    assert probe.yardstick_ms is not None
    return {"ratio": probe.yardstick_ms / guard.yardstick_ms,
            "reference_now_ms": probe.yardstick_ms, "yardstick_ms": guard.yardstick_ms,
            "burst": burst, "measured": now()}


def reanchor(device: Device, space: SearchSpace, lut: LUT, burst: int = BURST) -> dict[str, Any]:
    """Measure the anchor and store it in the table (``timing.anchor``); returns it."""
    anchor = measure_anchor(device, space, lut, burst)
    lut.timing["anchor"] = anchor
    return anchor
