"""Transfer profiling: a new device's table from a few dozen networks timed on it.

Timing every unit of a space on a slow device takes hours (thousands of small models, each
with its own session and warm-up); timing a few dozen whole networks takes minutes. What
the new device lacks is each unit's time; what another device's measured table has is
each unit's time *there*, and devices that run the same runtime largely agree on which
units are expensive (HELP and LitePred build on that), but not on what each kind of work
costs: a board may run depth-wise convolutions, or memory traffic, far dearer than the
source does. So a unit's time on the new device is modelled as a non-negative mix of its
work: its time on the source, its dense and depth-wise multiply-accumulates, the elements
it writes, and one call (`WORK`). A network's time is the sum over its units plus a
network's own call, so the mix's weights are fitted on whole networks (least squares on
relative error, weights >= 0) and then give every unit of the space an entry on the new
device, the way LitePred predicts kernels it never timed. The table then fits the same
cross-validated correction a profiled table does on the same networks. A MACs-only line
fitted on them is scored beside it on the held-out networks, so a transfer that does not
beat counting is seen as such.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from edgenas.cost.count import count
from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import ProfileError
from edgenas.profile.keys import space_units
from edgenas.profile.latency import accuracy_metrics
from edgenas.profile.lut import LUT, now, stale_reasons
from edgenas.profile.padded_work import relative_nnls
from edgenas.profile.profiler import (FITTING_ROUNDS, VALIDATION_ROUNDS, VALIDATION_SEED,
                                      arch_stream, fit_on, fitting_archs, time_networks,
                                      validation_report)
from edgenas.profile.records import TimedNetwork, Timing
from edgenas.profile.timing import load_guard, set_level
from edgenas.progress import StageProgress, stage_callbacks
from edgenas.profile.keys import unit_key
from edgenas.space.arch import Arch
from edgenas.space.plan import Conv, Pool, SqueezeExcite, Unit, layer_output_size, sites
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)
Checkpoint = Callable[[LUT], None]
#: Fewer networks cannot fit the per-kind correction under 5-fold cross-validation.
MIN_NETWORKS = 10
#: Networks timed on the new device by default.
NETWORKS = 50
#: Networks per round trip: a network takes seconds on a slow board, and a kill -9 loses
#: the round trip in flight.
CHUNK = 25
#: What a unit's time on the new device is a non-negative mix of (see the module docstring).
WORK = ("source_ms", "dense_mmacs", "depthwise_mmacs", "written_melements", "unit")


def check_source(source: LUT, space: SearchSpace, where: str) -> None:
    """Refuse a source table that cannot stand for ``space``: another space, a space that
    changed since it was measured, or units it never timed (an interrupted profile)."""
    if source.space != space.name:
        raise ProfileError(f"{where}: a table of space {source.space!r}; --from needs the "
                           f"source device's table of {space.name!r}")
    if source.space_hash != space.space_hash():
        raise ProfileError(f"{where} is stale: space {space.name!r} changed since it was "
                           f"measured (hash {source.space_hash} -> {space.space_hash()}); "
                           f"re-profile {source.device} first")
    units = space_units(space)
    missing = [key for key in units if key not in source.entries]
    if missing:
        raise ProfileError(f"{where} is partial: {len(missing)} of {len(units)} units have no "
                           f"entry (an interrupted profile?); finish it with 'edgenas profile "
                           f"{source.device} --space {space.name}' first")
    if not source.networks.get("fitting"):
        raise ProfileError(f"{where} has no timed networks: it was never finished; finish it "
                           f"with 'edgenas profile {source.device} --space {space.name}' first")


def macs_fit(archs: list[Arch], measured: list[float]) -> tuple[float, float]:
    """(intercept ms, ms per MMAC) of the line through the timed networks, on relative
    error: the baseline any table must beat."""
    macs = np.array([count(arch).macs / 1e6 for arch in archs])
    y = np.asarray(measured, dtype=np.float64)
    x = np.column_stack([np.ones_like(macs), macs]) / y[:, None]
    (intercept, slope), *_ = np.linalg.lstsq(x, np.ones_like(y), rcond=None)
    return float(intercept), float(slope)


def unit_work(unit: Unit, size: int, source_ms: float) -> np.ndarray:
    """The unit's `WORK` vector at an input of ``size``."""
    work = np.array([source_ms, 0.0, 0.0, 0.0, 1.0])

    def add(layer: object, at: int) -> None:
        out = layer_output_size(layer, at)  # type: ignore[arg-type]
        if isinstance(layer, Conv):
            macs = (layer.out_channels * (layer.in_channels // layer.groups)
                    * layer.kernel ** 2 * out * out)
            work[2 if layer.depthwise else 1] += macs / 1e6
            work[3] += layer.out_channels * out * out / 1e6
        elif isinstance(layer, SqueezeExcite):
            work[1] += 2 * layer.channels * layer.squeeze_channels / 1e6
            work[3] += layer.channels * at * at / 1e6  # the gated tensor
        elif isinstance(layer, Pool):
            work[3] += unit.in_channels * out * out / 1e6

    at = size
    for layer in unit.layers:
        add(layer, at)
        at = layer_output_size(layer, at)
    if isinstance(unit.shortcut, Conv):
        add(unit.shortcut, size)
    return work


def space_work(source: LUT, space: SearchSpace) -> dict[str, np.ndarray]:
    """Every unit's `WORK` vector, by table key."""
    return {key: unit_work(unit, size, source.entries[key].median_ms)
            for key, (unit, size) in space_units(space).items()}


def network_work(arch: Arch, work: dict[str, np.ndarray]) -> np.ndarray:
    """A network's `WORK`: the sum over its units (a skipped block costs nothing)."""
    total = np.zeros(len(WORK))
    for site in sites(arch):
        if not site.unit.is_identity:
            total += work[unit_key(site.unit, site.height)]
    return total


def fit_work(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(a network's own call in ms, `WORK` weights), all >= 0, least squares on relative
    error (`edgenas.profile.padded_work.relative_nnls`)."""
    weights = relative_nnls(np.column_stack([np.ones(len(y)), x]), y)
    return float(weights[0]), weights[1:]


def transfer(device: Device, space: SearchSpace, source: LUT, source_where: str,
             lut: LUT | None = None, *, networks: int = NETWORKS, validate: int = 0,
             chunk: int = CHUNK, checkpoint: Checkpoint = lambda lut: None,
             progress: StageProgress | None = None) -> LUT:
    """``device``'s table for ``space`` from ``networks`` networks timed on it and the
    ``source`` table (checked by `check_source`); ``validate`` held-out networks judge it.

    Resumable like a profile: networks timed by an interrupted run of the same transfer
    (same source, same device) are kept; the fit is redone at the end, it takes a moment.
    """
    if networks < MIN_NETWORKS:
        raise ProfileError(f"--networks {networks}: a transfer needs at least {MIN_NETWORKS} "
                           "networks (the per-kind correction is cross-validated in 5 folds)")
    check_source(source, space, source_where)
    if progress is None:  # a bar on a terminal, plain lines in a log
        progress = stage_callbacks()
    origin = {"source": f"{source.device}/{source.space}", "source_updated": source.updated,
              "source_fingerprint": {k: source.fingerprint.get(k) for k in ("machine", "cpu")}}
    with DeviceSession(device) as session:
        fingerprint = session.fingerprint()
        if lut is not None and (stale_reasons(lut, device, space, fingerprint)
                                or {k: (lut.transfer or {}).get(k) for k in origin} != origin):
            log.warning("measuring %s/%s anew: the existing table is not a transfer from %s "
                        "on this device", device.name, space.name, origin["source"])
            lut = None
        if lut is None:
            lut = LUT.new(device, space, fingerprint)
        lut.transfer = {**origin, "networks": networks, "units_timed": 0,
                        "method": "unit entries: a non-negative mix of each unit's source time and "
                                  "work, fitted on networks timed on this device; then the "
                                  "cross-validated correction"}
        guard = load_guard(device, space, lut)
        if guard is not None:
            guard.start(session)
            guard.record(lut)
        # by membership, not position: a table timed on an older stream keeps what it shares
        stream = fitting_archs(space, networks)
        wanted = {arch.to_json() for arch in stream}
        lut.networks["fitting"] = [item for item in lut.networks.get("fitting", [])
                                   if item.arch in wanted]
        time_networks(session, lut, "fitting", stream, chunk, checkpoint,
                      progress, rounds=FITTING_ROUNDS, guard=guard)
        if guard is not None:
            set_level(lut, guard)
            guard.record(lut)
        fit_transfer(lut, source, space)
        checkpoint(lut)
        if validate:
            time_networks(session, lut, "validation",
                          arch_stream(space, VALIDATION_SEED, validate), chunk, checkpoint,
                          progress, rounds=VALIDATION_ROUNDS, guard=guard)
            lut.validation = validation_report(lut, validate)
            held_out = lut.networks["validation"][:validate]
            lut.transfer["macs_only"] = macs_only_metrics(lut, held_out)
            checkpoint(lut)
        if guard is not None and guard.local:
            guard.record(lut)
            checkpoint(lut)
    return lut


def fit_transfer(lut: LUT, source: LUT, space: SearchSpace) -> None:
    """Fit ``lut`` on its timed table-fitting networks from ``source``'s unit entries: the
    `WORK` weights, every unit's entry from them, the cross-validated correction, and the
    MACs-only line beside it, in place."""
    items = lut.networks["fitting"]
    archs = [Arch.from_json(item.arch) for item in items]
    measured = [item.measured_ms for item in items]
    work = space_work(source, space)
    call_ms, weights = fit_work(np.array([network_work(a, work) for a in archs]),
                                np.asarray(measured, dtype=np.float64))
    lut.entries = {key: Timing(float(vector @ weights), transferred=True)
                   for key, vector in work.items()}
    lut.correction = None
    fit_on(lut, archs, measured)
    intercept, slope = macs_fit(archs, measured)
    assert lut.transfer is not None
    lut.transfer.update(work={"network_call_ms": call_ms, **dict(zip(WORK, map(float, weights)))},
                        fitted=now(), networks=len(items),
                        macs_line={"intercept_ms": intercept, "ms_per_mmac": slope})


def macs_line_ms(lut: LUT, arch: Arch) -> float:
    """The table's MACs-only line's prediction for ``arch`` (the baseline it is judged by)."""
    line = lut.transfer["macs_line"]  # type: ignore[index]
    return float(line["intercept_ms"] + line["ms_per_mmac"] * count(arch).macs / 1e6)


def macs_only_metrics(lut: LUT, items: list[TimedNetwork]) -> dict[str, float]:
    """How the table's MACs-only line predicts timed ``items`` (held-out networks)."""
    predicted = [macs_line_ms(lut, Arch.from_json(item.arch)) for item in items]
    return accuracy_metrics(predicted, [item.measured_ms for item in items])


def worse_than_macs(lut: LUT) -> bool:
    """Whether the transferred table predicted its held-out networks worse than a MACs-only
    line fitted on the same networks (mean |error|): then it is not worth its name."""
    macs = (lut.transfer or {}).get("macs_only")
    if not macs or not lut.validation:
        return False
    return lut.validation["mean_abs_pct_error"] > macs["mean_abs_pct_error"]
