"""Profile a device: time every unit of a space, then whole networks to fit and validate.

Resumable by construction: the table is handed to ``checkpoint`` after every chunk of
measurements, so an interrupted run (Ctrl-C, kill -9, a dropped SSH connection) loses at
most one chunk, and a re-run measures only what is missing.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import onnx

from edgenas.profile.latency import (LatencyModel, accuracy_metrics, arch_features,
                                     fit_correction, kind_sums, unit_sum)
from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import ProfileError
from edgenas.profile.keys import space_units
from edgenas.profile.level import DEFAULT as DEFAULT_LEVEL
from edgenas.profile.level import RECORD, choose, relevel, round_times
from edgenas.profile.lut import LUT, now, stale_reasons
from edgenas.profile.onnx_graph import network_model, unit_model
from edgenas.profile.sampling import (ACTIVE_ROUNDS, FIRST_SAMPLE, SAMPLE_ABOVE, UnitRegressor,
                                      cross_validated_error, first_sample, unit_features)
from edgenas.space.arch import Arch
from edgenas.space.plan import Unit
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)
Checkpoint = Callable[[LUT], None]
#: Seed offsets keep the three arch streams apart: calibration and validation never share archs.
CALIBRATION_SEED = 1_000_000
VALIDATION_SEED = 2_000_000
#: Held-out networks are timed in this many interleaved rounds; two give the noise floor.
VALIDATION_ROUNDS = 2
#: Table-fitting networks too: the median of two rounds is a steadier target to fit.
CALIBRATION_ROUNDS = 2
#: Table-fitting networks timed by default. The boosted trees need 60; refitted on the first
#: 50/100/150/200 networks of one `cifar` table and scored on the same 50 held-out archs they
#: reached 46/66/78/70 % within +-10 % against a noise floor of 66 %, and 60/100/150 of
#: another, in a busier stretch, 36/30/50 % against 72 % (tools/bench_latency.py --subsets,
#: docs/results.md section 2). 150 costs about 20 s more than 100 on a 2-core CPU.
CALIBRATE = 150


@dataclass
class Progress:
    """Callbacks a front end can implement (default: `edgenas.progress.stage_callbacks`)."""

    start: Callable[[str, int], None] = lambda stage, total: None
    advance: Callable[[int], None] = lambda n: None
    finish: Callable[[], None] = lambda: None


class LoadGuard:
    """Times relative to a reference network, so that a busy spell of a shared host does not
    enter the table.

    A shared host slows down by 30-40 % for seconds at a time (measured here: one reference
    network timed 1.35-2.0 ms within a minute on an otherwise idle machine). The guard
    times a fixed reference network before the first model and after every ``every``
    models, and records for each model its raw time, the mean of its two neighbouring
    reference times and the median reference time of its chunk. The table's ``level``
    (`edgenas.profile.level`, chosen by measurement) says which of them the model's time
    is expressed by, relative to the table's reference time (``reference_ms``: the fastest
    of a burst of reference timings when the table was started). Every time in a table,
    and every later timing judged against it (a resumed profile, a benchmark), is so
    expressed at one level of load: the same host was measured here running the reference
    at 1.25 ms in one 10-minute stretch and at 1.83 ms in the next, a shift that no
    within-run statistic can see. A recalibration (the host itself changed) measures the
    yardstick afresh.
    """

    def __init__(self, reference: onnx.ModelProto, reference_ms: float | None = None,
                 every: int = 20, level: str = DEFAULT_LEVEL, space: str = "cifar") -> None:
        self.reference, self.reference_ms, self.every = reference, reference_ms, every
        self.level, self.space = level, space
        self.agreement: dict[str, Any] = {}  # how each level did on the table-fitting rounds
        self.local: list[float] = []  # the neighbouring reference means models were timed by

    def start(self, session: DeviceSession, burst: int = 20) -> None:
        """Time the reference ``burst`` times for its uncontended time, unless known."""
        if self.reference_ms is not None:
            return
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
        self.reference_ms = min(times)

    def layout(self, names: list[str]) -> list[str]:
        """The timing order: a reference before the first model and after every ``every``."""
        order = []
        for i, name in enumerate(names):
            if i % self.every == 0:
                order.append(f"ref{i // self.every:05d}")
            order.append(name)
        order.append(f"ref{(len(names) + self.every - 1) // self.every:05d}")
        return order

    def scale(self, results: dict[str, dict[str, Any]], names: list[str]) -> None:
        """Record each model's references and express it at the table's level, in place."""
        assert self.reference_ms is not None
        chunk = [r["median_ms"] for key, r in results.items()
                 if key.startswith("ref") and r.get("median_ms")]
        for i, name in enumerate(names):
            if name not in results or "median_ms" not in results[name]:
                continue
            refs = [results.get(f"ref{i // self.every + k:05d}", {}).get("median_ms")
                    for k in (0, 1)]
            refs = [r for r in refs if r]
            if not refs:
                continue  # no yardstick around it: kept as timed
            result = results[name]
            result.update(raw_median_ms=result["median_ms"], reference_ms=float(np.mean(refs)),
                          chunk_reference_ms=float(np.median(chunk)),
                          yardstick_ms=self.reference_ms)
            relevel(result, self.level)
            self.local.append(result["reference_ms"])

    def summary(self) -> dict[str, Any]:
        """What the table records of the protocol."""
        local = np.array(self.local) if self.local else None
        return {"reference_space": self.space, "reference_ms": self.reference_ms,
                "every": self.every, "level": self.level,
                "level_agreement": self.agreement,
                "load_p50": None if local is None else float(np.median(local) / self.reference_ms),
                "load_p90": None if local is None
                else float(np.percentile(local, 90) / self.reference_ms)}


def time_batch(session: DeviceSession, models: dict[str, onnx.ModelProto],
               store: Callable[[str, dict[str, Any]], None], chunk: int,
               checkpoint: Callable[[], None], progress: Progress,
               guard: LoadGuard | None = None) -> None:
    """Time models in chunks; ``store(key, stats)`` each result, checkpoint per chunk.

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

            def deliver(name: str, result: dict[str, Any]) -> bool:
                """Store a model's result (not a reference's); whether it was a model."""
                if name not in names:
                    return False
                if "error" in result:
                    failures.append(f"{names[name]}: {result['error']}")
                else:
                    store(names[name], result)
                return True

            session.time_models(files, handle)
            if guard is not None:  # a whole batch arrives at once: one step of the bar
                guard.scale(results, list(names))
                progress.advance(sum(deliver(name, results[name])
                                     for name in names if name in results))
        checkpoint()
        if failures:
            raise ProfileError(f"{len(failures)} model(s) failed on {session.device.name}; "
                               f"first: {failures[0]}")


def arch_stream(space: SearchSpace, offset: int, count: int) -> list[Arch]:
    return [space.sample(offset + i) for i in range(count)]


def time_networks(session: DeviceSession, lut: LUT, label: str, archs: Iterable[Arch],
                   chunk: int, checkpoint: Checkpoint, progress: Progress,
                   rounds: int = 1, guard: LoadGuard | None = None,
                   budget_s: float | None = None) -> None:
    """Time whole networks end to end, ``rounds`` times each, one round over all of them
    after another, so that a slow spell of a shared host hits every network alike.

    An item keeps each round's median (``rounds``) and their median (``measured_ms``);
    two rounds of the same networks are what the host's noise floor is measured from.
    With ``budget_s``, the first round stops adding networks once all rounds of those
    timed so far would take that long (at least `MIN_NETWORKS` are timed), and the later
    rounds time the same networks.
    """
    items = lut.networks.setdefault(label, [])
    by_arch = {item["arch"]: item for item in items}
    for item in items:  # tables written before rounds were kept hold one round
        item.setdefault("rounds", [item["measured_ms"]])
    for arch in archs:
        key = arch.to_json()
        if key not in by_arch:
            by_arch[key] = {"arch": key, "measured_ms": None, "spread": None, "rounds": []}
    wanted = [item for item in by_arch.values() if len(item["rounds"]) < rounds]
    total = sum(rounds - len(item["rounds"]) for item in wanted)
    if not total:
        return
    progress.start(f"{label} networks", total)
    models = {item["arch"]: network_model(Arch.from_json(item["arch"])) for item in wanted}

    def store(arch_json: str, stats: dict[str, Any]) -> None:
        item = by_arch[arch_json]
        if not item["rounds"]:
            items.append(item)
        item["rounds"].append(stats["median_ms"])
        if "raw_median_ms" in stats:  # what another level would make of it
            item.setdefault("timed", []).append({key: stats[key] for key in RECORD})
        item["measured_ms"] = float(np.median(item["rounds"]))
        item["spread"] = item["spread"] or stats.get("spread")

    started = time.perf_counter()
    first = [key for key in models if not by_arch[key]["rounds"]]
    step = max(1, min(chunk, MIN_NETWORKS // 2)) if budget_s is not None else chunk
    for begin in range(0, len(first), step):  # the first round, in steps when budgeted
        spent = time.perf_counter() - started
        done = sum(1 for key in first[:begin] if by_arch[key]["rounds"])
        if budget_s is not None and done >= MIN_NETWORKS and spent * rounds > budget_s:
            log.info("%s networks: %d of %d fit into %.0f s of timing", label, done,
                     len(first), budget_s)
            models = {key: model for key, model in models.items() if by_arch[key]["rounds"]}
            break
        batch = {key: models[key] for key in first[begin:begin + step]}
        time_batch(session, batch, store, chunk, lambda: checkpoint(lut), progress, guard)
    for round_index in range(1, rounds):
        todo = {key: model for key, model in models.items()
                if len(by_arch[key]["rounds"]) == round_index}
        if todo:
            time_batch(session, todo, store, chunk, lambda: checkpoint(lut), progress, guard)
    progress.finish()


#: Table-fitting networks timed however short the budget: the boosted trees need 60.
MIN_NETWORKS = 60
#: The share of a sampled profile's time budget the table-fitting networks may take.
NETWORK_SHARE = 0.5


def set_level(lut: LUT, guard: LoadGuard) -> None:
    """Choose the table's level on its table-fitting networks' rounds and express every
    unit and network at it (from their raw times, so whatever level they were at before, as
    after a recalibration); a level other than the guard's drops the correction, to be
    fitted anew."""
    level, scores = choose(lut.networks.get("calibration", []))
    guard.agreement = scores
    if not scores:
        return
    if level != guard.level:
        log.info("%s/%s: times at level %r (table-fitting rounds apart by %s at the median)",
                 lut.device, lut.space, level,
                 ", ".join(f"{k} {v['median_gap_pct']:.1f} %" for k, v in scores.items()))
        lut.correction = None
    guard.level = level
    express_at(lut, level)


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


def noise_floor(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How often two rounds of the same networks agree: the best any prediction can do here.

    A network counts as within 10 % when each round is within 10 % of the other
    (|a - b| <= 0.1 * min(a, b)): a perfect predictor of either round would be judged
    against the other one. None when the networks were timed once.
    """
    pairs = np.array([item["rounds"][:2] for item in items if len(item.get("rounds", [])) >= 2])
    if not len(pairs):
        return None
    gap = np.abs(pairs[:, 0] - pairs[:, 1]) / pairs.min(axis=1)
    return {"n": int(len(pairs)), "within_5pct": float(np.mean(gap <= 0.05)),
            "within_10pct": float(np.mean(gap <= 0.10)),
            "median_gap_pct": float(100 * np.median(gap))}


def _time_sample(session: DeviceSession, lut: LUT, units: dict[str, tuple[Unit, int]],
                 missing: list[str], max_units: int | None, time_budget_s: float | None,
                 chunk: int, checkpoint: Checkpoint, progress: Progress,
                 guard: LoadGuard | None, before_units: Callable[[], None] = lambda: None
                 ) -> None:
    """Time a covering sample of the missing units, then the least certain ones; predict the
    rest. With a time budget, a pilot chunk of units is timed first (its rate prints the
    estimate for the whole space before anything long), then ``before_units`` runs (the
    table-fitting networks) on the same budget."""
    def store(key: str, stats: dict[str, Any]) -> None:
        lut.entries[key] = stats

    def time_keys(keys: list[str], label: str) -> None:
        progress.start(label, len(keys))
        time_batch(session, {key: unit_model(*units[key]) for key in keys}, store, chunk,
                   lambda: checkpoint(lut), progress, guard)
        progress.finish()

    order = first_sample(missing, len(missing))
    if max_units is None:
        pilot = order[:chunk]
        started = time.perf_counter()
        time_keys(pilot, "units (pilot)")
        per_unit = (time.perf_counter() - started) / max(1, len(pilot))
        whole = per_unit * len(missing)
        log.log(logging.WARNING if whole > float(time_budget_s or 0) else logging.INFO,
                "%s/%s: timing all %d units would take about %s here; the budget is %s, "
                "table-fitting networks first", lut.device, lut.space, len(units),
                _duration(whole), _duration(float(time_budget_s or 0)))
        networks_started = time.perf_counter()
        before_units()
        left = float(time_budget_s or 0) - (time.perf_counter() - started)
        log.info("%s/%s: table-fitting networks took %s; %s left for units", lut.device,
                 lut.space, _duration(time.perf_counter() - networks_started),
                 _duration(max(0.0, left)))
        max_units = max(len(pilot), int(0.75 * max(0.0, left) / per_unit))
        if max_units >= len(missing):  # everything fits: time it all
            time_keys(order[len(pilot):], "units")
            lut.sampling = None
            return
        log.warning("%s/%s: timing %d of %d units (about %s) and predicting the rest",
                    lut.device, lut.space, max_units, len(units), _duration(per_unit * max_units))
        order = order[len(pilot):]
        max_units -= len(pilot)
    first = order[:int(FIRST_SAMPLE * max_units)]
    time_keys(first, "units (covering sample)")
    todo = max_units - len(first)
    keys = list(units)
    features = np.array([unit_features(*units[key]) for key in keys])

    def timed_now() -> tuple[np.ndarray, np.ndarray]:
        """(mask of the units timed so far, their times in ms)."""
        mask = np.array([key in lut.entries and not lut.entries[key].get("predicted")
                         for key in keys])
        return mask, np.array([lut.entries[k]["median_ms"] for k, d in zip(keys, mask) if d])

    for round_index in range(ACTIVE_ROUNDS):
        timed, ms = timed_now()
        count = todo // (ACTIVE_ROUNDS - round_index)
        if not count or timed.all():
            break
        _, spread = UnitRegressor().fit(features[timed], ms).predict(features[~timed])
        untimed = [key for key, done in zip(keys, timed) if not done]
        doubtful = [untimed[i] for i in np.argsort(-spread)[:count]]
        time_keys(doubtful, f"units (least certain, round {round_index + 1})")
        todo -= len(doubtful)
    timed, ms = timed_now()
    if not timed.all():
        guess, spread = UnitRegressor().fit(features[timed], ms).predict(features[~timed])
        untimed = (key for key, done in zip(keys, timed) if not done)
        for key, value, doubt in zip(untimed, guess, spread):
            lut.entries[key] = {"median_ms": float(value), "predicted": True,
                                "log_std": float(doubt)}
    lut.sampling = {"units": len(keys), "measured": int(timed.sum()),
                    "predicted": int((~timed).sum()),
                    "regressor": "random forest on log ms over unit features",
                    "cross_validated": cross_validated_error(features[timed], ms)}
    log.info("%s/%s: %d units timed, %d predicted (regressor on held-out timed units: %.0f %% "
             "within +-10 %%)", lut.device, lut.space, lut.sampling["measured"],
             lut.sampling["predicted"], 100 * lut.sampling["cross_validated"]["within_10pct"])
    checkpoint(lut)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def profile(device: Device, space: SearchSpace, lut: LUT | None = None, *,
            checkpoint: Checkpoint = lambda lut: None, calibrate: int = CALIBRATE, validate: int = 0,
            chunk: int = 100, allow_stale: bool = False, revalidate: bool = False,
            recalibrate: bool = False, progress: Progress | None = None,
            max_units: int | None = None, time_budget_s: float | None = None) -> LUT:
    """Measure what ``lut`` lacks for ``device`` and ``space``; returns the completed table.

    A space with more units than ``max_units`` is sampled (`edgenas.profile.sampling`):
    ``max_units`` of them are timed and the rest predicted, marked as predicted in the
    table. With ``time_budget_s`` instead, a first chunk of units is timed, then the
    table-fitting networks take up to `NETWORK_SHARE` of the budget (at least
    `MIN_NETWORKS` of them, however long that takes), and the first chunk's rate says how
    many units fit into three quarters of what is left; the space is sampled only if that
    is fewer than all.

    ``calibrate`` whole networks are timed to fit the correction, ``validate`` held-out
    networks to measure how well predictions hold; both are stored in the table. A stale
    ``lut`` (other fingerprint, runtime settings or space) is replaced by a new one unless
    ``allow_stale``, in which case measurements are added to it. ``revalidate`` times the
    held-out networks again (to check a table for drift) instead of reusing stored times.
    ``recalibrate`` also times the calibration networks again and refits the correction:
    the cheap repair when the device got uniformly faster or slower (another host of the
    same kind, a thermal or power mode) without its fingerprint changing.
    """
    if progress is None:   # a bar on a terminal, plain lines in a log
        from edgenas.progress import stage_callbacks

        progress = Progress(*stage_callbacks())
    with DeviceSession(device) as session:
        fingerprint = session.fingerprint()
        if lut is None:
            lut = LUT.new(device, space, fingerprint)
        else:
            reasons = stale_reasons(lut, device, space, fingerprint)
            if reasons and not allow_stale:
                # mixing measurements from two conditions would make every prediction wrong
                log.warning("measuring %s/%s anew; the existing table is stale: %s",
                            device.name, space.name, "; ".join(reasons))
                lut = LUT.new(device, space, fingerprint)
        if recalibrate:  # a new yardstick: an anchor to the old one means nothing now
            lut.networks["calibration"], lut.correction = [], None
            lut.timing.pop("anchor", None)
            revalidate = True
        guard = load_guard(device, space, None if recalibrate else lut)
        if guard is not None:  # the yardstick first: every time in the table is relative to it
            guard.start(session)
            lut.timing["protocol"] = {**guard.summary(), **PROTOCOL}
        units = space_units(space)
        missing = [key for key in units
                   if key not in lut.entries or lut.entries[key].get("predicted")]
        log.info("%s/%s: %d units, %d to measure", device.name, space.name, len(units),
                 len(missing))
        measured = len(units) - len(missing)
        sampled = (max_units is not None and len(units) > max_units) or (
            max_units is None and time_budget_s is not None)
        calibration = arch_stream(space, CALIBRATION_SEED, calibrate)

        def networks_first() -> None:
            """A time budget covers the table-fitting networks too (an `imagenet` network
            times in about 2 s here): they take up to `NETWORK_SHARE` of it before the
            units, and units get what they leave."""
            nonlocal calibration
            time_networks(session, lut, "calibration", calibration, chunk, checkpoint,
                           progress, rounds=CALIBRATION_ROUNDS, guard=guard,
                           budget_s=NETWORK_SHARE * float(time_budget_s or 0))
            calibration = [Arch.from_json(item["arch"]) for item in lut.networks["calibration"]]

        if sampled and missing:  # max_units counts every timed unit, those of earlier runs too
            _time_sample(session, lut, units, missing,
                         None if max_units is None else max(0, max_units - measured),
                         time_budget_s, chunk, checkpoint, progress, guard,
                         before_units=networks_first)
        elif missing:
            progress.start("units", len(missing))
            time_batch(session, {key: unit_model(*units[key]) for key in missing},
                       lambda key, stats: lut.entries.__setitem__(key, stats),
                       chunk, lambda: checkpoint(lut), progress, guard)
            progress.finish()
            lut.sampling = None

        time_networks(session, lut, "calibration", calibration, chunk, checkpoint, progress,
                       rounds=CALIBRATION_ROUNDS, guard=guard)
        if guard is not None:
            set_level(lut, guard)
            lut.timing["protocol"] = {**guard.summary(), **PROTOCOL}
        fitted = len(lut.networks.get("calibration", []))
        if calibrate and (lut.correction is None or lut.correction["networks"] != fitted):
            fit_on(lut, [Arch.from_json(item["arch"]) for item in lut.networks["calibration"]],
                   [item["measured_ms"] for item in lut.networks["calibration"]])
            checkpoint(lut)

        if validate:
            if revalidate:  # the old report goes with its networks: a run killed while
                lut.networks["validation"], lut.validation = [], None  # re-timing is unfinished
            held_out = arch_stream(space, VALIDATION_SEED, validate)
            time_networks(session, lut, "validation", held_out, chunk, checkpoint, progress,
                           rounds=VALIDATION_ROUNDS, guard=guard)
            lut.validation = validation_report(lut, validate)
            checkpoint(lut)
        if guard is not None and guard.local:
            lut.timing["protocol"] = {**guard.summary(), **PROTOCOL}
            checkpoint(lut)
    return lut


#: How a table's times are measured, in words a user can check (recorded in the table).
PROTOCOL = {
    "warm_up": "by time as well as by count (the agent's WARMUP_MS), per model",
    "statistic": "median of each model's timed calls (at least repeats and min_time_ms; a "
                 "slow model's warm-up and timed calls capped at max_time_ms each); "
                 "networks: median of interleaved rounds",
    "pinning": "one core when ONNX Runtime uses one thread",
    "load": "a reference network (a median-sized arch of reference_space) timed before the "
            "first model and after every 'every' "
            "models; each time at the table's 'level': scaled by reference_ms over the mean "
            "of its two neighbouring reference times (neighbours) or over its chunk's median "
            "reference time (chunk), or as timed (none), whichever makes the table-fitting "
            "networks' two rounds agree best (level_agreement; load_p50/p90: the "
            "neighbouring mean over reference_ms, this run)",
}
#: The load guard's reference: this sample of a space is a median-sized arch of it (by
#: MACs, among 200 samples: 48th percentile in `cifar`, 49th in `imagenet`).
REFERENCE_SEED = 4_000_000


def reference_network(space: SearchSpace) -> onnx.ModelProto:
    """The load guard's reference network for ``space``: one fixed arch of it."""
    return network_model(space.sample(REFERENCE_SEED))


def load_guard(device: Device, space: SearchSpace, lut: LUT | None = None
               ) -> LoadGuard | None:
    """The load guard for timing ``space`` on ``device`` at the level of ``lut`` (its
    recorded reference and reference time; a new one is measured without). ONNX Runtime
    devices (CPUs, boards, phones) only; on TensorRT every reference would be an engine
    build, on a device that is rarely shared.

    The reference is a median-sized arch of the space itself (`reference_network`): load
    does not slow a 25 ms `imagenet` network as much as a 1.5 ms `cifar` one, so a `cifar`
    reference scaled `imagenet` timings taken in a busy stretch 10 % too far (measured with
    ``tools/bench_reference.py``). Tables that record no reference space were measured
    against `cifar`'s, and keep it."""
    if device.runtime.name != "onnxruntime":
        return None
    from edgenas.space import get_space

    protocol = (lut.timing.get("protocol") or {}) if lut else {}
    reference_space = protocol.get("reference_space") or (
        "cifar" if protocol.get("reference_ms") else space.name)
    guard = LoadGuard(reference_network(space if reference_space == space.name
                                        else get_space(reference_space)),
                      protocol.get("reference_ms"), level=protocol.get("level", DEFAULT_LEVEL),
                      space=reference_space)
    guard.agreement = protocol.get("level_agreement") or {}
    return guard


def fit_on(lut: LUT, archs: list[Arch], measured: list[float],
           only: list[str] | None = None) -> None:
    """Fit and store the table's correction on timed whole networks (the cross-validated
    choice among the forms ``only`` names; all by default)."""
    kinds, counts = zip(*(kind_sums(lut, arch) for arch in archs))
    matrix = np.array(kinds)
    features = np.array([arch_features(lut, arch) for arch in archs])
    lut.correction = {**fit_correction(matrix.sum(axis=1), counts, measured, kinds=matrix,
                                       features=features, only=only),
                      "fitted": now()}


def unfinished(lut: LUT, space: SearchSpace) -> list[str]:
    """What a profile of ``space`` left undone in ``lut`` (empty: nothing).

    A profile checkpoints the table after every chunk, so a run that was killed leaves a
    table on disk that is fresh (its fingerprint is this device's) but partial: units
    without an entry, table-fitting networks timed since the correction was last fitted,
    held-out networks without their report. Such a table is to be resumed, not used: a
    prediction from it fails on the first unit it lacks.
    """
    reasons = []
    units = space_units(space)
    missing = sum(1 for key in units if key not in lut.entries)
    if missing:
        reasons.append(f"{missing} of {len(units)} units have no entry")
    calibration = lut.networks.get("calibration") or []
    if calibration and (lut.correction or {}).get("networks") != len(calibration):
        reasons.append(f"the correction is not fitted on its {len(calibration)} timed "
                       "table-fitting networks")
    if lut.networks.get("validation") and lut.validation is None:
        reasons.append("its held-out networks have no validation report")
    return reasons


def validation_report(lut: LUT, count: int | None = None) -> dict[str, Any]:
    """Accuracy of the table's predictions on its held-out networks."""
    items = lut.networks.get("validation", [])[:count]
    if not items:
        raise ProfileError("no validation networks timed; run with --validate N")
    model = LatencyModel(lut, anchored=False)  # held-out times are at the yardstick
    predicted = [model.predict(Arch.from_json(item["arch"])) for item in items]
    measured = [item["measured_ms"] for item in items]
    raw = [unit_sum(lut, Arch.from_json(item["arch"]))[0] for item in items]
    report = accuracy_metrics(predicted, measured)
    report["uncorrected_within_10pct"] = accuracy_metrics(raw, measured)["within_10pct"]
    report["noise_floor"] = noise_floor(items)
    report["measured"] = now()
    return report
