"""Whole networks timed end to end on a device: the measurement every table is checked by.

Used by the table's drift check, by like-for-like assessment of searched and hand-designed
networks, and by anything else that needs a measured (not predicted) latency.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Callable, Mapping, Sequence

from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import DeviceError
from edgenas.profile.lut import LUT
from edgenas.profile.onnx_graph import network_model
from edgenas.profile.precision import DeviceModels
from edgenas.profile.profiler import CHUNK, time_networks
from edgenas.profile.records import TimedNetwork
from edgenas.profile.timing import LoadGuard, load_guard, time_batch
from edgenas.progress import StageProgress, stage_callbacks
from edgenas.space import get_space
from edgenas.space.arch import Arch


def measure_latency(device: Device, archs: Mapping[str, Arch],
                    guard: LoadGuard | None = None) -> dict[str, float]:
    """Median batch-1 latency (ms) of each whole network, timed on ``device``.

    Works for any arch, in a search space or not: the network is built as one ONNX model
    (random weights: latency does not depend on their values) in the device's precision
    and timed by the device's agent with the device's runtime settings, through the timing
    protocol's own loop.
    With a ``guard`` (`edgenas.profile.timing.load_guard`) the times are at the
    uncontended level, as a table's are.
    """
    if not archs:
        return {}
    results: dict[str, float] = {}
    with DeviceSession(device) as session:
        time_batch(session, DeviceModels(device, {name: partial(network_model, arch)
                                                  for name, arch in archs.items()}),
                   lambda name, timing: results.__setitem__(name, float(timing.median_ms)),
                   len(archs), lambda: None, StageProgress(), guard)
    missing = sorted(set(archs) - set(results))
    if missing:
        raise DeviceError(f"{device.name}: the timing agent returned nothing for {missing}")
    return results


def time_in_rounds(device: Device, lut: LUT, archs: Sequence[Arch], rounds: int,
                   timed: list[TimedNetwork],
                   checkpoint: Callable[[list[TimedNetwork]], None] = lambda items: None,
                   label: str = "networks") -> list[TimedNetwork]:
    """Whole networks timed as ``lut``'s own networks are: in ``rounds`` interleaved rounds
    with its load guard, each time expressed at its level, so that they compare with its
    predictions (unanchored) as its held-out networks do.

    ``timed``: items of an earlier, interrupted measurement (as this returns them); only
    the rounds they lack are timed, and ``checkpoint`` gets every item after each chunk, so
    a lost device loses nothing finished. Returns one timed network per arch timed so far.
    """
    wanted = {arch.to_json() for arch in archs}
    scratch = replace(lut, networks={label: [item for item in timed if item.arch in wanted]})
    with DeviceSession(device) as session:
        time_networks(session, scratch, label, archs, CHUNK,
                      lambda table: checkpoint(table.networks[label]), stage_callbacks(),
                      rounds=rounds, guard=load_guard(device, get_space(lut.space), lut))
    return scratch.networks[label]
