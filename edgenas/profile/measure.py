"""Whole networks timed end to end on a device: the measurement every table is checked by.

Used by the table's drift check, by like-for-like assessment of searched and hand-designed
networks, and by anything else that needs a measured (not predicted) latency.
"""

from __future__ import annotations

from typing import Mapping

from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import DeviceError
from edgenas.profile.onnx_graph import network_model
from edgenas.profile.timing import LoadGuard, time_batch
from edgenas.progress import StageProgress
from edgenas.space.arch import Arch


def measure_latency(device: Device, archs: Mapping[str, Arch],
                    guard: LoadGuard | None = None) -> dict[str, float]:
    """Median batch-1 latency (ms) of each whole network, timed on ``device``.

    Works for any arch, in a search space or not: the network is built as one ONNX model
    (random weights: latency does not depend on their values) and timed by the device's
    agent with the device's runtime settings, through the timing protocol's own loop.
    With a ``guard`` (`edgenas.profile.timing.load_guard`) the times are at the
    uncontended level, as a table's are.
    """
    if not archs:
        return {}
    results: dict[str, float] = {}
    with DeviceSession(device) as session:
        time_batch(session, {name: network_model(arch) for name, arch in archs.items()},
                   lambda name, stats: results.__setitem__(name, float(stats["median_ms"])),
                   len(archs), lambda: None, StageProgress(), guard)
    missing = sorted(set(archs) - set(results))
    if missing:
        raise DeviceError(f"{device.name}: the timing agent returned nothing for {missing}")
    return results
