"""The timing protocol: how every time in a table, and every timing judged against one, is taken.

Models are timed in chunks by the device's agent (`time_batch`). On ONNX Runtime and
OpenVINO devices a fixed reference network is timed beside them (`LoadGuard`,
`load_guard`), so that a busy spell of a shared host does not enter the table, and each
time is expressed at the table's level of load (`edgenas.profile.level`), chosen on the
table's own rounds (`set_level`).
Two rounds of the same networks say how far any prediction can be trusted (`noise_floor`).
`PROTOCOL` states all of it in words, recorded in every table.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import onnx

from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import DeviceError, ProfileError
from edgenas.profile.level import DEFAULT as DEFAULT_LEVEL
from edgenas.profile.level import choose, express_at, level_named, pair_gaps, relevel
from edgenas.profile.lut import LUT
from edgenas.profile.records import LoadRecord, TimedNetwork, Timing
from edgenas.profile.onnx_graph import network_model
from edgenas.profile.precision import device_model
from edgenas.progress import StageProgress
from edgenas.space import get_space
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)

#: How a table's times are measured, in words a user can check (recorded in the table).
PROTOCOL = {
    "warm_up": "by time as well as by count (the agent's WARMUP_MS), per model",
    "statistic": "median of each model's timed calls (at least repeats and min_time_ms; a "
                 "slow model's warm-up and timed calls capped at max_time_ms each); "
                 "networks: median of interleaved rounds",
    "pinning": "one core when ONNX Runtime, or OpenVINO on a CPU, uses one thread",
    "load": "a reference network (a median-sized arch of reference_space) timed before the "
            "first model and after every 'every' "
            "models; each time at the table's 'level': scaled by yardstick_ms over the mean "
            "of its two neighbouring reference times (neighbours) or over its chunk's median "
            "reference time (chunk), or as timed (none), whichever makes the table-fitting "
            "networks' two rounds agree best (level_scores; load_p50/p90: the "
            "neighbouring mean over yardstick_ms, this run)",
}
#: The load guard's reference: this sample of a space is a median-sized arch of it (by
#: MACs, among 200 samples: 48th percentile in `cifar`, 49th in `imagenet`).
REFERENCE_SEED = 4_000_000


class LoadGuard:
    """Times relative to a reference network, so that a busy spell of a shared host does not
    enter the table.

    A shared host slows down by tens of per cent for seconds at a time, and for minutes at
    a time, which no statistic within one model's timing can see. The guard times a fixed
    reference network before the first model and after every ``every`` models, and records
    for each model its raw time, the mean of its two neighbouring reference times and the
    median reference time of its chunk. The table's ``level`` (`edgenas.profile.level`,
    chosen by measurement) says which of them the model's time is expressed by, relative to
    the table's yardstick (``yardstick_ms``: the fastest of a burst of reference
    timings when the table was started). Every time in a table, and every later timing
    judged against it (a resumed profile, a benchmark), is so expressed at one level of
    load. A recalibration (the host itself changed) measures the yardstick afresh.
    """

    def __init__(self, reference: onnx.ModelProto, yardstick_ms: float | None = None,
                 every: int = 20, level: str = DEFAULT_LEVEL, space: str = "cifar") -> None:
        self.reference, self.yardstick_ms, self.every = reference, yardstick_ms, every
        self.level, self.space = level, space
        self.level_scores: dict[str, Any] = {}  # how each level did on the table-fitting rounds
        self.local: list[float] = []  # the neighbouring reference means models were timed by

    def start(self, session: DeviceSession, burst: int = 20) -> None:
        """Time the reference ``burst`` times for its uncontended time, unless known."""
        if self.yardstick_ms is not None:
            return
        log.info("%s: timing the reference network %d times for the table's yardstick (its "
                 "uncontended time; a minute or two on an emulated board)",
                 session.device.name, burst)
        times: list[float] = []
        with tempfile.TemporaryDirectory(prefix="edgenas-reference-") as folder:
            files = [Path(folder) / f"ref{i:03d}.onnx" for i in range(burst)]
            for file in files:
                onnx.save(self.reference, file)
            session.time_models(files, lambda r: times.append(r["median_ms"])
                                if "median_ms" in r else None)
        if not times:
            raise ProfileError(f"{session.device.name}: the reference network could not be "
                               "timed; see the device's agent output")
        self.yardstick_ms = min(times)

    def layout(self, names: list[str]) -> list[str]:
        """The timing order: a reference before the first model and after every ``every``."""
        order = []
        for i, name in enumerate(names):
            if i % self.every == 0:
                order.append(f"ref{i // self.every:05d}")
            order.append(name)
        order.append(f"ref{(len(names) + self.every - 1) // self.every:05d}")
        return order

    def scale(self, results: Mapping[str, Mapping[str, Any]], names: list[str]
              ) -> dict[str, Timing]:
        """Each of ``names`` timed, with the references around it recorded and expressed at
        the table's level (one with no reference around it as timed; a failed one left
        out). ``results`` are the agent's, by model name, references included."""
        assert self.yardstick_ms is not None
        chunk = [r["median_ms"] for key, r in results.items()
                 if key.startswith("ref") and r.get("median_ms")]
        timings = {}
        for i, name in enumerate(names):
            if name not in results or "median_ms" not in results[name]:
                continue
            timing = Timing.from_dict(results[name], f"the agent's timing of {name}")
            refs = [results.get(f"ref{i // self.every + k:05d}", {}).get("median_ms")
                    for k in (0, 1)]
            refs = [r for r in refs if r]
            if refs:  # else no yardstick around it: kept as timed
                neighbours = float(np.mean(refs))
                record = LoadRecord(timing.median_ms, neighbours, float(np.median(chunk)),
                                    self.yardstick_ms)
                timing = relevel(replace(timing, record=record), self.level)
                self.local.append(neighbours)
            timings[name] = timing
        return timings

    def summary(self) -> dict[str, Any]:
        """What the table records of the protocol."""
        local = np.array(self.local) if self.local else None
        return {"reference_space": self.space, "yardstick_ms": self.yardstick_ms,
                "every": self.every, "level": self.level,
                "level_scores": self.level_scores,
                "load_p50": None if local is None else float(np.median(local) / self.yardstick_ms),
                "load_p90": None if local is None
                else float(np.percentile(local, 90) / self.yardstick_ms)}

    def record(self, lut: LUT) -> None:
        """Write the protocol, as this guard has followed it so far, into ``lut``."""
        lut.timing["protocol"] = {**self.summary(), **PROTOCOL}


def reference_network(space: SearchSpace) -> onnx.ModelProto:
    """The load guard's reference network for ``space``: one fixed arch of it."""
    return network_model(space.sample(REFERENCE_SEED))


def load_guard(device: Device, space: SearchSpace, lut: LUT | None = None
               ) -> LoadGuard | None:
    """The load guard for timing ``space`` on ``device`` at the level of ``lut`` (its
    recorded reference and reference time; a new one is measured without). ONNX Runtime
    and OpenVINO devices (CPUs, boards, phones, Intel GPUs and NPUs) only; on TensorRT every
    reference would be an engine build, on a device that is rarely shared.

    The reference is a median-sized arch of the space itself (`reference_network`), in the
    device's precision (`device_model`), as every model timed beside it is: load
    does not slow a large `imagenet` network as much as a small `cifar` one, so a `cifar`
    reference would scale `imagenet` timings taken in a busy stretch too far (see
    ``benchmarks/bench_reference.py``). Tables that record no reference space were measured
    against `cifar`'s, and keep it."""
    if device.runtime.name == "tensorrt":
        return None
    protocol = (lut.timing.get("protocol") or {}) if lut else {}
    reference_space = protocol.get("reference_space") or (
        "cifar" if protocol.get("yardstick_ms") else space.name)
    reference = reference_network(space if reference_space == space.name
                                  else get_space(reference_space))
    level = level_named(protocol.get("level", DEFAULT_LEVEL),
                        f"{device.name}'s {space.name} table: timing.protocol.level").name
    guard = LoadGuard(device_model(device, reference), protocol.get("yardstick_ms"),
                      level=level, space=reference_space)
    guard.level_scores = protocol.get("level_scores") or {}
    return guard


def time_batch(session: DeviceSession, models: Mapping[str, onnx.ModelProto],
               store: Callable[[str, Timing], None], chunk: int,
               checkpoint: Callable[[], None], progress: StageProgress,
               guard: LoadGuard | None = None) -> None:
    """Time models in chunks; ``store(key, stats)`` each result, checkpoint per chunk.
    ``models`` are what the device runs (`edgenas.profile.precision.DeviceModels` makes
    them a chunk at a time).
    Models the device could not run (an operator its runtime cannot compile) are named in
    one error once every other model is timed and stored.

    With a ``guard``, times are taken relative to its reference network (`LoadGuard`)."""
    keys = list(models)
    failures: list[str] = []
    if guard is not None:
        guard.start(session)
    for start in range(0, len(keys), chunk):
        batch = keys[start:start + chunk]
        with tempfile.TemporaryDirectory(prefix="edgenas-models-") as folder:
            names = {f"m{start + i:06d}": key for i, key in enumerate(batch)}
            order = guard.layout(list(names)) if guard is not None else list(names)
            files = []
            for name in order:
                path = Path(folder) / f"{name}.onnx"
                onnx.save(models[names[name]] if name in names else guard.reference, path)  # type: ignore[union-attr]
                files.append(path)
            results: dict[str, dict[str, Any]] = {}

            def handle(result: dict[str, Any]) -> None:
                name = result.pop("model")[: -len(".onnx")]
                results[name] = result
                if guard is None and deliver(name, result):  # as timed: the bar moves
                    progress.advance(1)                     # as results arrive

            def deliver(name: str, result: dict[str, Any], timing: Timing | None = None
                        ) -> bool:
                """Store a model's result (not a reference's), as ``timing`` when the guard
                expressed it at the table's level; whether it was a model."""
                if name not in names:
                    return False
                if "error" in result:
                    failures.append(f"{names[name]}: {result['error']}")
                else:
                    store(names[name], timing or Timing.from_dict(
                        result, f"{session.device.name}: the agent's timing of {names[name]}"))
                return True

            try:
                session.time_models(files, handle)
            except DeviceError:
                # the connection was lost mid-chunk: keep every model the device finished
                # (on a slow board a chunk is minutes of timing), then let the error say so
                _keep(guard, results, names, deliver, progress)
                checkpoint()
                raise
            _keep(guard, results, names, deliver, progress)
        checkpoint()
    if failures:  # after every chunk: a model the runtime cannot compile stops no other
        raise ProfileError(f"{len(failures)} model(s) failed on {session.device.name}; "
                           f"first: {failures[0]}")


def _keep(guard: LoadGuard | None, results: dict[str, dict[str, Any]], names: dict[str, str],
          deliver: Callable[[str, dict[str, Any], Timing | None], bool],
          progress: StageProgress) -> None:
    """Deliver a guarded chunk's results, each expressed at the table's level by the
    references around it (without a guard each was delivered as it arrived)."""
    if guard is None:
        return
    timings = guard.scale(results, list(names))
    progress.advance(sum(deliver(name, results[name], timings.get(name))
                         for name in names if name in results))


def set_level(lut: LUT, guard: LoadGuard) -> None:
    """Choose the table's level on its table-fitting networks' rounds and express every
    unit and network at it (from their raw times, so whatever level they were at before, as
    after a recalibration); a level other than the guard's drops the correction, to be
    fitted anew."""
    level, scores = choose(lut.networks.get("fitting", []))
    guard.level_scores = scores
    if not scores:
        return
    if level != guard.level:
        log.info("%s/%s: times at level %r (table-fitting rounds apart by %s at the median)",
                 lut.device, lut.space, level,
                 ", ".join(f"{k} {v['median_gap_pct']:.1f} %" for k, v in scores.items()))
        lut.correction = None
    guard.level = level
    express_at(lut, level)


def noise_floor(items: list[TimedNetwork]) -> dict[str, Any] | None:
    """How often two rounds of the same networks agree: the best any prediction can do here.

    A network counts as within 10 % when each round is within 10 % of the other
    (|a - b| <= 0.1 * min(a, b)): a perfect predictor of either round would be judged
    against the other one. None when the networks were timed once.
    """
    return pair_gaps([list(item.rounds[:2]) for item in items if len(item.rounds) >= 2])
