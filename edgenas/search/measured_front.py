"""The front measured on its device: a latency promise checked where the search picks.

A search drives towards its table's errors. Its picks sit where the random archs a table
is fitted and judged on rarely are (the cheap end, a budget's edge), and there a
prediction can be off by far more than the table's held-out error says. So after a search
every front arch is timed on the device as a whole network, with the table's own protocol
(interleaved rounds, its load guard and level: `edgenas.profile.measure.time_in_rounds`).
The measured archs whose rounds agree within `MAX_ROUND_SPREAD` join the table's fitting
networks (`FRONT`) and its correction is refitted; the archs are ranked again on measured
latency where there is one and on the refitted prediction elsewhere, and an arch that
enters the front so is timed in turn (at most `MAX_PASSES` passes). An arch timed after a
refit was not part of it: its error is the refined table's honest one. Last, up to
`HELD_OUT` archs the search evaluated next to the front (its second Pareto layer) are
timed and kept out of the table, so the table's error in the search's region is reported
before and after the refit on networks neither fit saw.

Every timing is checkpointed in the run folder (``front-timing/<device>.json``): a device
lost half-way keeps what it measured, and the same command measures only the rest.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from optuna.trial import FrozenTrial

from edgenas.device.descriptor import Device
from edgenas.errors import DeviceError, EdgenasError, ProfileError
from edgenas.jsonio import read_json, write_json_atomic
from edgenas.profile.latency import LatencyModel, accuracy_metrics
from edgenas.profile.lut import FRONT, LUT, fitting_networks, lut_path, now, save_lut
from edgenas.profile.measure import time_in_rounds
from edgenas.profile.correction import IDENTITY
from edgenas.profile.profiler import fit_on
from edgenas.profile.records import TimedNetwork
from edgenas.profile.residual import cross_validated, fit_residual
from edgenas.search.engine import front
from edgenas.search.results import measured_keys, write_results
from edgenas.space.arch import Arch

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Interleaved rounds per front arch (a deploy times 5; a front of ten takes seconds).
ROUNDS = 3
#: An arch whose rounds spread more than this ((max - min) / median) is timed
#: `EXTRA_ROUNDS` more times, then reported with its spread, never dropped.
MAX_ROUND_SPREAD = 0.10
EXTRA_ROUNDS = 2
#: Rank, time, refit: an arch the refitted table brings onto the front is timed next pass.
MAX_PASSES = 3
#: Archs next to the front timed after the last refit, and kept out of the table.
HELD_OUT = 8


#: What a front row's latency is, in its ``latency_basis`` field.
MEASURED, REFITTED, PREDICTED = "measured", "predicted by the refitted table", "predicted"


@dataclass
class Target:
    """One device whose latency the search optimised: its latency metric, its table (as
    the search used it) and where a refined table is saved (None: kept in memory)."""

    metric: str
    device: Device
    lut: LUT
    lut_path: Path | None = None


@dataclass
class Timings:
    """A device's front timings so far, as checkpointed in the run folder."""

    path: Path
    device: str
    front: list[TimedNetwork] = field(default_factory=list)     # joined the table
    held_out: list[TimedNetwork] = field(default_factory=list)  # kept out of it
    #: arch -> (the prediction when it was timed, the refit pass that prediction came from)
    predicted_when_timed: dict[str, list[float]] = field(default_factory=dict)
    #: the archs chosen to be held out, recorded before they are timed: once some are
    #: timed the ranking moves, and a rerun must time the same ones, not the next ones
    held_out_chosen: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, device: str) -> "Timings":
        if not path.exists():
            return cls(path, device)
        data = read_json(path, "delete it to time the front again")
        if data.get("schema_version") != SCHEMA_VERSION or data.get("device") != device:
            raise EdgenasError(f"{path}: not this device's front timings (device "
                               f"{data.get('device')!r}); delete it to time the front again")
        chosen = data.get("held_out_chosen") or []
        if not isinstance(chosen, list) or not all(isinstance(a, str) for a in chosen):
            raise EdgenasError(f"{path}: held_out_chosen: expected a list of arch JSON "
                               "strings; delete it to time the front again")
        return cls(path, device, _timed(data, "front", path), _timed(data, "held_out", path),
                   data.get("predicted_when_timed") or {}, chosen)

    def save(self) -> None:
        write_json_atomic({"schema_version": SCHEMA_VERSION, "device": self.device,
                           "front": [item.to_dict() for item in self.front],
                           "held_out": [item.to_dict() for item in self.held_out],
                           "predicted_when_timed": self.predicted_when_timed,
                           "held_out_chosen": self.held_out_chosen,
                           "updated": now()}, self.path)

    def by_arch(self) -> dict[str, TimedNetwork]:
        return {item.arch: item for item in [*self.front, *self.held_out]}


def _timed(data: dict[str, Any], kind: str, path: Path) -> list[TimedNetwork]:
    """The timed networks a checkpoint holds under ``kind`` (front or held_out)."""
    items = data.get(kind) or []
    if not isinstance(items, list):
        raise EdgenasError(f"{path}: {kind}: expected a list of timed networks; delete it to "
                           "time the front again")
    return [TimedNetwork.from_dict(item, f"{path}: {kind}[{i}]") for i, item in enumerate(items)]


def spread(rounds: Sequence[float]) -> float:
    """How far an arch's rounds disagree: (max - min) / median."""
    median = float(np.median(rounds))
    return float((max(rounds) - min(rounds)) / median) if median else 0.0


def _time(target: Target, archs: list[Arch], timings: Timings, kind: str) -> None:
    """Time ``archs`` into ``timings`` (``front`` or ``held_out``), checkpointing; an arch
    whose rounds disagree is timed again."""
    items = getattr(timings, kind)

    def keep(done: list[TimedNetwork]) -> None:
        fresh = {d.arch for d in done}
        items[:] = [*(item for item in items if item.arch not in fresh), *done]
        timings.save()

    keep(time_in_rounds(target.device, target.lut, archs, ROUNDS, items, keep, kind))
    wanted = {arch.to_json() for arch in archs}
    unsteady = [Arch.from_json(item.arch) for item in items
                if item.arch in wanted and spread(item.rounds) > MAX_ROUND_SPREAD]
    if unsteady:
        log.info("%s: %d arch(s) whose %d rounds disagree by more than %.0f %%: %d more "
                 "rounds each", target.device.name, len(unsteady), ROUNDS,
                 100 * MAX_ROUND_SPREAD, EXTRA_ROUNDS)
        keep(time_in_rounds(target.device, target.lut, unsteady, ROUNDS + EXTRA_ROUNDS,
                            items, keep, kind))


def _refit(target: Target, timings: Timings) -> LatencyModel:
    """Add the timed front archs to the table's fitting networks and refit its correction;
    the refined model (the table is saved when it has a path)."""
    lut = target.lut
    kept = {item.arch: item for item in lut.networks.get(FRONT) or []}
    # an arch whose rounds still disagree after its extra rounds is reported with its
    # spread, but a table fitted on it would learn the noise of one busy spell: it is left out
    steady = [item for item in timings.front if spread(item.rounds) <= MAX_ROUND_SPREAD]
    if len(steady) < len(timings.front):
        log.info("%s: %d front arch(s) whose rounds disagree by more than %.0f %% are not "
                 "fitted on", lut.device, len(timings.front) - len(steady),
                 100 * MAX_ROUND_SPREAD)
    kept.update({item.arch: replace(item, extra={}) for item in steady})  # what a table keeps
    lut.networks[FRONT] = list(kept.values())
    if lut.transfer is not None:  # its correction maps another device's units: kept
        log.info("%s: a transferred table; its correction is kept, the front's residual "
                 "fitted on top of it", lut.device)
    else:
        fitting = fitting_networks(lut)
        try:
            fit_on(lut, [Arch.from_json(item.arch) for item in fitting],
                   [item.measured_ms for item in fitting])
        except ProfileError as err:  # no table-fitting networks (--fitting-networks 0)
            log.warning("%s: the correction is not refitted (%s)", lut.device, err)
    # the random archs outnumber the front's in any global fit: what the refit leaves of
    # the error where the search went is kept as a residual near the measured archs
    lut.correction = {key: value for key, value in (lut.correction or {}).items()
                      if key != "residual"} or None
    plain = LatencyModel(lut, anchored=False)
    items = lut.networks[FRONT]
    predicted = [plain.predict(Arch.from_json(item.arch)) for item in items]
    measured = [item.measured_ms for item in items]
    scores = cross_validated(predicted, measured)
    if scores["keep"]:
        lut.correction = {**(lut.correction or IDENTITY),
                          "residual": {**fit_residual(predicted, measured), "cv": scores}}
    else:
        log.info("%s: no residual near the front: it predicts the measured archs no better "
                 "left out (mean |log error| %.3f with, %.3f without)", lut.device,
                 scores["with"], scores["without"])
    lut.updated = now()
    if target.lut_path is not None:
        save_lut(lut, target.lut_path)
    return LatencyModel(lut)


def _ranked(trials: list[FrozenTrial], targets: list[Target], timings: dict[str, Timings],
            models: dict[str, LatencyModel], refitted: dict[str, bool],
            max_latency_ms: float | None) -> list[FrozenTrial]:
    """Copies of ``trials`` whose latency is measured where it was timed, else predicted by
    the (refitted) table; an arch measured over the latency budget is over budget."""
    timed = {target.metric: timings[target.metric].by_arch() for target in targets}
    out = []
    for trial in trials:
        arch_json = trial.user_attrs["arch"]
        attrs = copy.deepcopy(trial.user_attrs)
        metrics = attrs["metrics"]
        for target in targets:
            keys = measured_keys(target.metric)
            attrs[keys["predicted"]] = trial.user_attrs["metrics"][target.metric]
            item = timed[target.metric].get(arch_json)
            model = models[target.metric]
            if item is not None:
                rounds = [model.anchor * r for r in item.rounds]
                metrics[target.metric] = float(np.median(rounds))
                attrs.update({keys["measured"]: metrics[target.metric],
                              keys["rounds"]: rounds, keys["spread"]: spread(rounds),
                              keys["basis"]: MEASURED})
                if max_latency_ms is not None and metrics[target.metric] > max_latency_ms:
                    attrs["feasible"] = False
                    attrs["over_budget_measured"] = True
            elif refitted[target.metric]:
                metrics[target.metric] = model.predict(Arch.from_json(arch_json))
                attrs[keys["basis"]] = REFITTED
                if max_latency_ms is not None and metrics[target.metric] > max_latency_ms:
                    attrs["feasible"] = False
            else:
                attrs[keys["basis"]] = PREDICTED
        clone = copy.copy(trial)
        clone.user_attrs = attrs
        out.append(clone)
    return out


def _second_layer(trials: list[FrozenTrial], objectives: tuple[str, ...],
                  skip: set[str]) -> list[str]:
    """Archs of the Pareto layers after the first (nearest the front first), not in ``skip``."""
    left = [t for t in trials if t.user_attrs["feasible"] and t.user_attrs["arch"] not in skip]
    chosen: list[str] = []
    while left and len(chosen) < HELD_OUT:
        layer = front(left, objectives)
        if not layer:
            break
        chosen += [t.user_attrs["arch"] for t in layer][:HELD_OUT - len(chosen)]
        taken = {t.user_attrs["arch"] for t in layer}
        left = [t for t in left if t.user_attrs["arch"] not in taken]
    return chosen


def _note_predictions(state: Timings, model: LatencyModel, archs: list[str],
                      after_refit: bool) -> None:
    """Record, before timing ``archs``, what the table predicted for them (at its yardstick)
    and whether it had been refitted on measured front archs by then; a part-timed arch
    keeps what was recorded when its timing began."""
    for arch_json in archs:
        state.predicted_when_timed.setdefault(
            arch_json, [model.predict(Arch.from_json(arch_json)) / model.anchor,
                        float(after_refit)])


def _errors(pairs: list[tuple[float, float]]) -> dict[str, Any] | None:
    """accuracy_metrics over (predicted, measured) pairs, with every pair; None if none."""
    if not pairs:
        return None
    predicted, measured = zip(*pairs)
    return {**accuracy_metrics(predicted, measured),
            "errors_pct": [100 * (p - m) / m for p, m in pairs]}


def measure_front(run_dir: Path, trials: list[FrozenTrial], objectives: tuple[str, ...],
                  targets: list[Target], max_latency_ms: float | None = None,
                  required: bool = False) -> tuple[list[FrozenTrial], dict[str, Any]]:
    """(the trials with measured latencies, what was measured and how the table held).

    A device that cannot be reached keeps the predictions and says so in the report,
    unless ``required``; one lost half-way raises `DeviceError` after its timings are
    checkpointed (the same command then times only the rest).
    """
    timings = {t.metric: Timings.load(run_dir / "front-timing" / f"{t.device.name}.json",
                                      t.device.name) for t in targets}
    models = {t.metric: LatencyModel(t.lut) for t in targets}
    refitted = {t.metric: False for t in targets}
    ranked = trials
    try:
        for _ in range(MAX_PASSES):
            ranked = _ranked(trials, targets, timings, models, refitted, max_latency_ms)
            current = {t.user_attrs["arch"] for t in front(ranked, objectives)}
            pending = False
            for target in targets:
                state = timings[target.metric]
                done = {arch for arch, item in state.by_arch().items()
                        if len(item.rounds) >= ROUNDS}  # a lost device's part-timed: again
                todo = sorted(current - done)
                if not todo:
                    continue
                pending = True
                _note_predictions(state, models[target.metric], todo, refitted[target.metric])
                log.info("%s: timing %d front arch(s) as whole networks (%d rounds)",
                         target.device.name, len(todo), ROUNDS)
                _time(target, [Arch.from_json(a) for a in todo], state, "front")
                models[target.metric] = _refit(target, state)
                refitted[target.metric] = True
            if not pending:
                break
        for target in targets:
            if timings[target.metric].front and not refitted[target.metric]:
                # a resumed run: its timings are in the table already, refit once more
                models[target.metric] = _refit(target, timings[target.metric])
                refitted[target.metric] = True
        ranked = _ranked(trials, targets, timings, models, refitted, max_latency_ms)
        for target in targets:
            state = timings[target.metric]
            timed = state.by_arch()
            if not state.held_out_chosen:  # a rerun times the archs chosen the first time
                state.held_out_chosen = _second_layer(ranked, objectives,
                                                      {item.arch for item in state.front})
                state.save()
            todo = [a for a in state.held_out_chosen
                    if a not in timed or len(timed[a].rounds) < ROUNDS]
            if todo:
                _note_predictions(state, models[target.metric], todo, after_refit=True)
                _time(target, [Arch.from_json(a) for a in todo], state, "held_out")
    except DeviceError as err:
        # anything timed, in this run or an earlier one, is kept: the device was reached
        kept = any(timings[t.metric].front or timings[t.metric].held_out for t in targets)
        if required or kept:
            done = {t.device.name: len(timings[t.metric].front) for t in targets}
            raise DeviceError(f"{err}; the front timings so far are kept ({done}): run the "
                              "same command again to time the rest") from None
        log.warning("the front is not measured: %s; its latencies stay predictions", err)
        return trials, {"status": "unreachable", "reason": str(err),
                        "devices": [t.device.name for t in targets]}
    ranked = _ranked(trials, targets, timings, models, refitted, max_latency_ms)
    over = [{"trial": t.number, "arch": t.user_attrs["arch"],
             **{measured_keys(m.metric)["measured"]: t.user_attrs.get(
                 measured_keys(m.metric)["measured"]) for m in targets}}
            for t in ranked if t.user_attrs.get("over_budget_measured")]
    return ranked, {"status": "measured", "rounds": ROUNDS, "max_latency_ms": max_latency_ms,
                    "over_budget": list({r["arch"]: r for r in over}.values()),
                    "protocol": "whole networks in interleaved rounds with the table's load "
                                "guard and level, median of rounds",
                    "devices": {t.device.name: _report(trials, t, timings[t.metric], models[t.metric])
                                for t in targets}}


def _report(trials: list[FrozenTrial], target: Target, state: Timings,
            refined: LatencyModel) -> dict[str, Any]:
    """Prediction errors on the measured archs: the search's, the refitted table's on the
    archs it was fitted on, and on archs timed after a refit (that it never saw)."""
    searched = {t.user_attrs["arch"]: t.user_attrs["metrics"][target.metric] for t in trials}
    anchor = refined.anchor

    def measured(item: TimedNetwork) -> float:
        return anchor * float(item.measured_ms)

    front_items, held = state.front, state.held_out
    after_refit = [item for item in [*front_items, *held]
                   if state.predicted_when_timed.get(item.arch, [0, 0])[1]]
    return {
        "front_archs_timed": len(front_items), "held_out_archs_timed": len(held),
        "search_prediction_on_front": _errors(
            [(searched[i.arch], measured(i)) for i in front_items if i.arch in searched]),
        "refitted_table_on_front": _errors(
            [(refined.predict(Arch.from_json(i.arch)), measured(i)) for i in front_items]),
        "timed_after_a_refit": _errors(
            [(anchor * state.predicted_when_timed[i.arch][0], measured(i))
             for i in after_refit]),
        "search_prediction_on_held_out": _errors(
            [(searched[i.arch], measured(i)) for i in held if i.arch in searched]),
        "refitted_table_on_held_out": _errors(
            [(refined.predict(Arch.from_json(i.arch)), measured(i)) for i in held]),
        "correction": {k: refined.correction.get(k) for k in ("form", "networks")},
        # timed again and still apart: their latency is reported with its spread
        "unsteady_archs": sum(spread(i.rounds) > MAX_ROUND_SPREAD for i in front_items),
    }


def latency_targets(models: dict[str, LatencyModel], devices: dict[str, Device],
                    profiles_dir: str | Path | None) -> list[Target]:
    """A `Target` per searched device: ``models`` by latency metric (``latency`` for one
    device, ``latency@<name>`` for several), ``devices`` by the same keys; a refined
    table is saved back under ``profiles_dir`` (None: kept in memory)."""
    return [Target(metric, devices[metric], model.lut,
                   None if profiles_dir is None
                   else lut_path(profiles_dir, model.lut.device, model.lut.space))
            for metric, model in models.items()]


def write_measured_results(run_dir: Path, trials: list[FrozenTrial], objectives: tuple[str, ...],
                           population: int, info: dict[str, Any], targets: list[Target],
                           measure: bool | None = None) -> dict[str, Any]:
    """Write the search's results, with the front measured on its devices (``measure``:
    True must, None where the devices can be reached, False not); returns the summary.

    The predicted front is written first, so a measurement that fails leaves the search's
    own results in place."""
    write_results(run_dir, trials, objectives, population, info)
    if measure is False or not targets:
        why = "--no-measure-front" if measure is False else "no device table"
        return write_results(run_dir, trials, objectives, population,
                             {**info, "front_measurement": {"status": "not measured",
                                                            "reason": why}})
    budgets = info.get("budgets") or {}
    ranked, report = measure_front(run_dir, trials, objectives, targets,
                                   budgets.get("max_latency_ms"), required=bool(measure))
    if report["status"] != "measured":
        return write_results(run_dir, trials, objectives, population,
                             {**info, "front_measurement": report})
    return write_results(run_dir, ranked, objectives, population,
                         {**info, "front_measurement": report})
