"""Profile a device: time every unit of a space, then whole networks to fit and validate.

A profile is a table of named steps (`STEPS`: units, networks, fit, validate), each a
function of the run's state (`ProfileRun`), like the main job's stages. The timing itself
follows one protocol (`edgenas.profile.timing`) here and wherever a time is judged against
a table.

Resumable by construction: the table is handed to ``checkpoint`` after every chunk of
measurements, so an interrupted run (Ctrl-C, kill -9, a dropped SSH connection) loses at
most one chunk, and a re-run measures only what is missing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Callable, Iterable

import numpy as np

from edgenas.device.descriptor import Device
from edgenas.device.session import DeviceSession
from edgenas.errors import ProfileError
from edgenas.profile.cheap_archs import cheap_arch
from edgenas.profile.correction import MIN_FIT, fit_correction
from edgenas.profile.padded_work import BLOCKS, padded_work
from edgenas.profile.keys import space_units, unit_roles
from edgenas.profile.latency import (LatencyModel, accuracy_metrics, boosted_features,
                                     kind_sums, unit_sum)
from edgenas.profile.lut import (FRONT, LUT, SEARCH_BIASED, VALIDATION, fitting_networks, now,
                                 stale_reasons)
from edgenas.profile.onnx_graph import network_model, unit_model
from edgenas.profile.precision import DeviceModels, describe
from edgenas.profile.records import TimedNetwork, Timing
from edgenas.profile.sampling import (ACTIVE_ROUNDS, FIRST_SAMPLE, UnitRegressor,
                                      cross_validated_error, first_sample, unit_features)
from edgenas.profile.timing import LoadGuard, load_guard, noise_floor, set_level, time_batch
from edgenas.progress import StageProgress, stage_callbacks
from edgenas.space.arch import Arch
from edgenas.space.plan import Unit
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)
Checkpoint = Callable[[LUT], None]
#: Seed offsets keep the arch streams apart: table-fitting (random and cheap, below) and
#: held-out (random and search-biased) share no arch (tests/test_cheap_archs.py checks the
#: cheap ones, which greedy steps could bring together).
FITTING_SEED = 1_000_000
VALIDATION_SEED = 2_000_000
#: Held-out networks are timed in this many interleaved rounds; two give the noise floor.
VALIDATION_ROUNDS = 2
#: The search-biased held-out set: its own stream of archs from the space's cheap corner
#: (`edgenas.profile.cheap_archs`), where searches put their fronts.
SEARCH_BIASED_SEED = 3_000_000
#: Every this many-th table-fitting network is a cheap arch of its own stream: random archs
#: alone leave the corner where fronts lie to extrapolation (docs/latency.md).
CHEAP_EVERY = 4
CHEAP_FITTING_SEED = 4_000_000
#: Draws a stream may spend per distinct arch before the space is called too small.
DRAWS_PER_ARCH = 20
#: Its size: half the random held-out set, at least this many.
MIN_SEARCH_BIASED = 10
#: Set in a table's ``timing`` while a recalibration runs: a table killed in it is
#: unfinished whatever it holds, so the next run times what the recalibration had not.
RECALIBRATING = "recalibrating_since"
#: Table-fitting networks too: the median of two rounds is a steadier target to fit.
FITTING_ROUNDS = 2
#: Table-fitting networks timed by default: the boosted trees need 60, and refitting on
#: growing subsets of one table's networks kept gaining on held-out archs up to about 150
#: (benchmarks/bench_latency.py --subsets; docs/notebook/results-log.md §2), at a few seconds of
#: timing per ten networks more.
CALIBRATE = 150
#: Table-fitting networks timed however short the budget: the boosted trees need 60.
MIN_NETWORKS = 60
#: The share of a sampled profile's time budget the table-fitting networks may take.
NETWORK_SHARE = 0.5
#: Models per device round trip: few round trips on a fast device, and a table saved after
#: each, so a kill -9 loses at most one chunk (a lost connection loses nothing finished).
CHUNK = 100


def arch_stream(space: SearchSpace, offset: int, number: int) -> list[Arch]:
    """``number`` archs of ``space`` from the seed ``offset`` on (a table's own stream)."""
    return [space.sample(offset + i) for i in range(number)]


def _next_distinct(draw: Callable[[int], Arch], seed: int, seen: set[str], limit: int,
                   too_few: str) -> tuple[Arch, int]:
    """The first arch ``draw`` gives from ``seed`` on that is not in ``seen`` (added to it),
    and the seed after it; ``too_few`` is the error once ``limit`` seeds are spent."""
    while seed < limit:
        arch, seed = draw(seed), seed + 1
        key = arch.to_json()
        if key not in seen:
            seen.add(key)
            return arch, seed
    raise ProfileError(too_few)


def fitting_archs(space: SearchSpace, number: int) -> list[Arch]:
    """The ``number`` table-fitting archs: random ones, and every `CHEAP_EVERY`-th one from
    the cheap corner, interleaved so that a budget that cuts the stream short keeps both.

    All distinct (a table times an arch once, and a small space's corner repeats archs):
    a draw that repeats an earlier arch is skipped for its stream's next seed, so the
    stream of ``n`` archs is the start of the stream of more."""
    draws = {"random": space.sample, "cheap": lambda seed: cheap_arch(space, seed)}
    offsets = {"random": FITTING_SEED, "cheap": CHEAP_FITTING_SEED}
    seeds = dict(offsets)
    too_few = (f"space {space.name!r} has too few distinct archs for {number} table-fitting "
               "networks; pass fewer (--fitting-networks)")
    archs: list[Arch] = []
    seen: set[str] = set()
    for i in range(number):
        kind = "cheap" if (i + 1) % CHEAP_EVERY == 0 else "random"
        arch, seeds[kind] = _next_distinct(draws[kind], seeds[kind], seen,
                                           offsets[kind] + DRAWS_PER_ARCH * (number + 1), too_few)
        archs.append(arch)
    return archs


def time_networks(session: DeviceSession, lut: LUT, label: str, archs: Iterable[Arch],
                   chunk: int, checkpoint: Checkpoint, progress: StageProgress,
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
    # tables written before rounds were kept hold one round
    items[:] = [item if item.rounds else replace(item, rounds=(item.measured_ms,))
                for item in items]
    place = {item.arch: i for i, item in enumerate(items)}  # where each arch is in items

    def done(key: str) -> int:
        """How many rounds of the network ``key`` are timed."""
        return len(items[place[key]].rounds) if key in place else 0

    wanted = [key for key in dict.fromkeys([*place, *(arch.to_json() for arch in archs)])
              if done(key) < rounds]
    total = sum(rounds - done(key) for key in wanted)
    if not total:
        return
    progress.start(f"{label} networks", total)
    # each network is made once (quantised, on an INT8 device) for all its rounds
    models = DeviceModels(session.device, {
        key: partial(network_model, Arch.from_json(key)) for key in wanted})
    keys = list(models)

    def store(arch_json: str, timing: Timing) -> None:
        if arch_json not in place:  # its first round: it joins the table
            place[arch_json] = len(items)
            items.append(TimedNetwork(arch_json, timing.median_ms))
        items[place[arch_json]] = items[place[arch_json]].with_round(timing)

    started = time.perf_counter()
    first = [key for key in keys if not done(key)]
    step = max(1, min(chunk, MIN_NETWORKS // 2)) if budget_s is not None else chunk
    for begin in range(0, len(first), step):  # the first round, in steps when budgeted
        spent = time.perf_counter() - started
        finished = sum(1 for key in first[:begin] if done(key))
        if budget_s is not None and finished >= MIN_NETWORKS and spent * rounds > budget_s:
            log.info("%s networks: %d of %d fit into %.0f s of timing", label, finished,
                     len(first), budget_s)
            keys = [key for key in keys if done(key)]
            break
        batch = {key: models[key] for key in first[begin:begin + step]}
        time_batch(session, batch, store, chunk, lambda: checkpoint(lut), progress, guard)
    for round_index in range(1, rounds):
        todo = {key: models[key] for key in keys if done(key) == round_index}
        if todo:
            time_batch(session, todo, store, chunk, lambda: checkpoint(lut), progress, guard)
    models.record(lut)
    progress.finish()


@dataclass
class ProfileRun:
    """What the steps of one profile share: the open session, the table being completed,
    the load guard, and the settings of `profile`."""

    session: DeviceSession
    lut: LUT
    space: SearchSpace
    guard: LoadGuard | None
    progress: StageProgress
    checkpoint: Checkpoint
    chunk: int
    calibrate: int
    validate: int
    revalidate: bool
    max_units: int | None
    time_budget_s: float | None
    fitting: list[Arch] = field(default_factory=list)
    units: dict[str, tuple[Unit, int]] = field(default_factory=dict)  # the space's, by key
    roles: dict[str, str] = field(default_factory=dict)  # each unit's site role, by key

    def time_units(self, keys: list[str], label: str) -> None:
        """Time the units ``keys`` of the space into the table, as one stage; each unit is
        made in the device's precision as its chunk is timed."""
        self.progress.start(label, len(keys))
        models = DeviceModels(self.session.device, {
            key: partial(unit_model, *self.units[key], role=self.roles.get(key, "block"))
            for key in keys}, keep=False)

        def checkpoint() -> None:
            models.record(self.lut)  # what quantising the units took, with their times
            self.checkpoint(self.lut)

        time_batch(self.session, models,
                   lambda key, stats: self.lut.entries.__setitem__(key, stats), self.chunk,
                   checkpoint, self.progress, self.guard)
        self.progress.finish()

    def time_fitting(self, budget_s: float | None = None) -> None:
        """Time the table-fitting networks (within ``budget_s`` when given)."""
        time_networks(self.session, self.lut, "fitting", self.fitting, self.chunk,
                      self.checkpoint, self.progress, rounds=FITTING_ROUNDS,
                      guard=self.guard, budget_s=budget_s)


def _units(run: ProfileRun) -> None:
    """Time the units the table lacks: all of them, or a sample and predict the rest."""
    lut, units = run.lut, run.units
    missing = [key for key in units if key not in lut.entries or lut.entries[key].predicted]
    log.info("%s/%s: %d units, %d to measure", run.session.device.name, run.space.name,
             len(units), len(missing))
    if not missing:
        return
    if run.max_units is not None and len(units) > run.max_units:
        # max_units counts every timed unit, those of earlier runs too
        _sampled_units(run, missing, max(0, run.max_units - (len(units) - len(missing))))
    elif run.max_units is None and run.time_budget_s is not None:
        _sampled_units(run, missing, None)
    else:
        run.time_units(missing, "units")
        lut.sampling = None


def _budgeted_networks(run: ProfileRun) -> None:
    """A time budget covers the table-fitting networks too (a large network takes seconds
    to time): they take up to `NETWORK_SHARE` of it before the units, and units get what
    they leave; the table then fits on the networks that fitted in."""
    run.time_fitting(budget_s=NETWORK_SHARE * float(run.time_budget_s or 0))
    run.fitting = [Arch.from_json(item.arch) for item in run.lut.networks["fitting"]]


def _sampled_units(run: ProfileRun, missing: list[str], max_units: int | None) -> None:
    """Time a covering sample of the missing units, then the least certain ones; predict the
    rest. With a time budget (no ``max_units``), a pilot chunk of units is timed first (its
    rate prints the estimate for the whole space before anything long), then the
    table-fitting networks (`_budgeted_networks`) on the same budget."""
    lut, units, budget_s = run.lut, run.units, float(run.time_budget_s or 0)
    order = first_sample(missing, len(missing))
    if max_units is None:
        pilot = order[:run.chunk]
        started = time.perf_counter()
        run.time_units(pilot, "units (pilot)")
        per_unit = (time.perf_counter() - started) / max(1, len(pilot))
        whole = per_unit * len(missing)
        log.log(logging.WARNING if whole > budget_s else logging.INFO,
                "%s/%s: timing all %d units would take about %s here; the budget is %s, "
                "table-fitting networks first", lut.device, lut.space, len(units),
                _duration(whole), _duration(budget_s))
        networks_started = time.perf_counter()
        _budgeted_networks(run)
        left = budget_s - (time.perf_counter() - started)
        log.info("%s/%s: table-fitting networks took %s; %s left for units", lut.device,
                 lut.space, _duration(time.perf_counter() - networks_started),
                 _duration(max(0.0, left)))
        max_units = max(len(pilot), int(0.75 * max(0.0, left) / per_unit))
        if max_units >= len(missing):  # everything fits: time it all
            run.time_units(order[len(pilot):], "units")
            lut.sampling = None
            return
        log.warning("%s/%s: timing %d of %d units (about %s) and predicting the rest",
                    lut.device, lut.space, max_units, len(units), _duration(per_unit * max_units))
        order = order[len(pilot):]
        max_units -= len(pilot)
    first = order[:int(FIRST_SAMPLE * max_units)]
    run.time_units(first, "units (covering sample)")
    todo = max_units - len(first)
    keys = list(units)
    features = np.array([unit_features(*units[key]) for key in keys])

    def timed_now() -> tuple[np.ndarray, np.ndarray]:
        """(mask of the units timed so far, their times in ms)."""
        mask = np.array([key in lut.entries and not lut.entries[key].predicted for key in keys])
        return mask, np.array([lut.entries[k].median_ms for k, d in zip(keys, mask) if d])

    for round_index in range(ACTIVE_ROUNDS):
        timed, ms = timed_now()
        count = todo // (ACTIVE_ROUNDS - round_index)
        if not count or timed.all():
            break
        _, spread = UnitRegressor().fit(features[timed], ms).predict(features[~timed])
        untimed = [key for key, done in zip(keys, timed) if not done]
        doubtful = [untimed[i] for i in np.argsort(-spread)[:count]]
        run.time_units(doubtful, f"units (least certain, round {round_index + 1})")
        todo -= len(doubtful)
    timed, ms = timed_now()
    if not timed.all():
        guess, spread = UnitRegressor().fit(features[timed], ms).predict(features[~timed])
        untimed = (key for key, done in zip(keys, timed) if not done)
        for key, value, doubt in zip(untimed, guess, spread):
            lut.entries[key] = Timing(float(value), predicted=True, log_std=float(doubt))
    lut.sampling = {"units": len(keys), "measured": int(timed.sum()),
                    "predicted": int((~timed).sum()),
                    "regressor": "random forest on log ms over unit features",
                    "cross_validated": cross_validated_error(features[timed], ms)}
    log.info("%s/%s: %d units timed, %d predicted (regressor on held-out timed units: %.0f %% "
             "within +-10 %%)", lut.device, lut.space, lut.sampling["measured"],
             lut.sampling["predicted"], 100 * lut.sampling["cross_validated"]["within_10pct"])
    run.checkpoint(lut)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _networks(run: ProfileRun) -> None:
    """Time the table-fitting networks, then choose the table's level on their rounds."""
    run.time_fitting()
    if run.guard is not None:
        set_level(run.lut, run.guard)
        run.guard.record(run.lut)


def _fit(run: ProfileRun) -> None:
    """Fit the correction on the table-fitting networks, unless fitted on all of them."""
    lut = run.lut
    fitting = fitting_networks(lut)
    if run.calibrate and (lut.correction is None or lut.correction["networks"] != len(fitting)):
        fit_on(lut, [Arch.from_json(item.arch) for item in fitting],
               [item.measured_ms for item in fitting])
        if lut.validation and lut.networks.get(VALIDATION):
            # the stored report describes the replaced correction: judged again, no timing (a
            # table measured before the cheap archs joined the stream refits on its next
            # profile, with or without --validate)
            lut.validation = judged(lut, lut.validation.get("n"),
                                    len(lut.networks.get(SEARCH_BIASED, [])))
        run.checkpoint(lut)


def judged(lut: LUT, count: int | None, biased: int) -> dict[str, Any]:
    """The table's validation report on its first ``count`` held-out networks, and on its
    first ``biased`` search-biased ones where there are any."""
    report = validation_report(lut, count)
    if biased:
        report["search_biased"] = validation_report(lut, biased, SEARCH_BIASED)
    return report


def _validate(run: ProfileRun) -> None:
    """Time the held-out networks and report how well the table predicts them."""
    if not run.validate:
        return
    lut = run.lut
    if run.revalidate:  # the old report goes with its networks: a run killed while
        lut.networks["validation"], lut.validation = [], None  # re-timing is unfinished
        lut.networks.pop(SEARCH_BIASED, None)
    held_out = arch_stream(run.space, VALIDATION_SEED, run.validate)
    time_networks(run.session, lut, "validation", held_out, run.chunk, run.checkpoint,
                  run.progress, rounds=VALIDATION_ROUNDS, guard=run.guard)
    # where searches go: a table judged on random archs only is judged where it is not used
    size = max(MIN_SEARCH_BIASED, run.validate // 2)
    stored = lut.networks.get(SEARCH_BIASED, [])
    stream = search_biased_archs(run.space, max(size, len(stored)))
    biased = stream[:size]
    # a table judged on an earlier search-biased set (before 2026-12-08, the cheapest tenth
    # of a random pool, which fronts lie below) is judged on this one; its report goes with
    # it, so that a run killed while timing the new set leaves no report of the old one
    current = {arch.to_json() for arch in stream}
    lut.networks[SEARCH_BIASED] = [item for item in stored if item.arch in current]
    if len(lut.networks[SEARCH_BIASED]) < len(stored) and lut.validation:
        lut.validation.pop("search_biased", None)
    time_networks(run.session, lut, SEARCH_BIASED, biased, run.chunk, run.checkpoint,
                  run.progress, rounds=VALIDATION_ROUNDS, guard=run.guard)
    lut.validation = judged(lut, run.validate, len(biased))
    run.checkpoint(lut)


def search_biased_archs(space: SearchSpace, size: int) -> list[Arch]:
    """``size`` distinct held-out archs from where a search picks: the space's cheap corner
    (`edgenas.profile.cheap_archs`), on a seed stream of their own (a repeat is skipped)."""
    too_few = (f"space {space.name!r} has too few distinct cheap archs for a search-biased "
               f"set of {size}; validate with fewer")
    limit = SEARCH_BIASED_SEED + DRAWS_PER_ARCH * (size + 1)
    archs, seed, seen = [], SEARCH_BIASED_SEED, set()
    for _ in range(size):
        arch, seed = _next_distinct(lambda at: cheap_arch(space, at), seed, seen, limit, too_few)
        archs.append(arch)
    return archs


#: The steps of a profile, in order; each completes the table from the run's state.
STEPS: tuple[tuple[str, Callable[[ProfileRun], None]], ...] = (
    ("units", _units),
    ("networks", _networks),
    ("fit", _fit),
    ("validate", _validate),
)


def _table_to_complete(lut: LUT | None, device: Device, space: SearchSpace,
                       fingerprint: dict[str, Any], allow_stale: bool) -> LUT:
    """``lut``, or a new table where there is none or (unless ``allow_stale``) it is stale."""
    if lut is None:
        return LUT.new(device, space, fingerprint)
    reasons = stale_reasons(lut, device, space, fingerprint)
    if reasons and not allow_stale:
        # mixing measurements from two conditions would make every prediction wrong
        log.warning("measuring %s/%s anew; the existing table is stale: %s",
                    device.name, space.name, "; ".join(reasons))
        return LUT.new(device, space, fingerprint)
    return lut


def profile(device: Device, space: SearchSpace, lut: LUT | None = None, *,
            checkpoint: Checkpoint = lambda lut: None, calibrate: int = CALIBRATE, validate: int = 0,
            chunk: int = CHUNK, allow_stale: bool = False, revalidate: bool = False,
            recalibrate: bool = False, progress: StageProgress | None = None,
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
    ``recalibrate`` also times the table-fitting networks again and refits the correction:
    the cheap repair when the device got uniformly faster or slower (another host of the
    same kind, a thermal or power mode) without its fingerprint changing.
    """
    if 0 < calibrate < MIN_FIT:  # refused before any timing, not after it
        raise ProfileError(f"--fitting-networks {calibrate}: 0 (unit sums, no correction) or "
                           f"at least {MIN_FIT} networks to fit a correction on")
    with DeviceSession(device) as session:
        fingerprint = session.fingerprint()
        lut = _table_to_complete(lut, device, space, fingerprint, allow_stale)
        lut.timing["models"] = {**lut.timing.get("models", {}), **describe(device, fingerprint)}
        if "note" in lut.timing["models"]:
            log.warning("%s: %s", device.name, lut.timing["models"]["note"])
        if recalibrate:  # a new yardstick: an anchor to the old one means nothing now
            lut.networks["fitting"], lut.correction = [], None
            lut.networks.pop(FRONT, None)  # timed against the old yardstick
            lut.timing.pop("anchor", None)
            # the held-out networks too, at once: a run killed before it times them again
            # must not leave their old times, and a report on them, beside a new correction
            lut.networks["validation"], lut.validation = [], None
            lut.networks.pop(SEARCH_BIASED, None)
            lut.timing[RECALIBRATING] = now()  # until the last step: see `unfinished`
            revalidate = True
        guard = load_guard(device, space, None if recalibrate else lut)
        if guard is not None:  # the yardstick first: every time in the table is relative to it
            guard.start(session)
            guard.record(lut)
        if progress is None:  # a bar on a terminal, plain lines in a log
            progress = stage_callbacks()
        run = ProfileRun(session, lut, space, guard, progress, checkpoint, chunk, calibrate,
                         validate, revalidate, max_units, time_budget_s,
                         fitting_archs(space, calibrate), space_units(space),
                         unit_roles(space))
        for name, step in STEPS:
            log.debug("%s/%s: %s", device.name, space.name, name)
            step(run)
        recalibrated = lut.timing.pop(RECALIBRATING, None) is not None
        if guard is not None and guard.local:
            guard.record(lut)
        if recalibrated or (guard is not None and guard.local):
            checkpoint(lut)
    return lut


def fit_on(lut: LUT, archs: list[Arch], measured: list[float],
           only: list[str] | None = None) -> None:
    """Fit and store the table's correction on timed whole networks (the cross-validated
    choice among the forms ``only`` names; all by default)."""
    kinds, counts = zip(*(kind_sums(lut, arch) for arch in archs))
    matrix = np.array(kinds)
    features = np.array([boosted_features(lut, arch) for arch in archs])
    padded = {block: np.array([padded_work(arch, block) for arch in archs]) for block in BLOCKS}
    lut.correction = {**fit_correction(matrix.sum(axis=1), counts, measured, kinds=matrix,
                                       features=features, only=only, padded=padded),
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
    # fitted on its table-fitting networks, with or without the measured front archs (a
    # transferred table keeps its own fit beside them)
    fitted_on, stream = fitting_networks(lut), lut.networks.get("fitting") or []
    if fitted_on and (lut.correction or {}).get("networks") not in (len(fitted_on), len(stream)):
        reasons.append(f"the correction is not fitted on its {len(fitted_on)} timed "
                       "table-fitting networks")
    if lut.networks.get("validation") and lut.validation is None:
        reasons.append("its held-out networks have no validation report")
    if RECALIBRATING in lut.timing:
        reasons.append("a recalibration was interrupted (its networks are being timed again)")
    return reasons


def validation_report(lut: LUT, count: int | None = None, label: str = VALIDATION
                      ) -> dict[str, Any]:
    """Accuracy of the table's predictions on its held-out networks (``label``: the random
    ones, or the `SEARCH_BIASED` ones)."""
    items = lut.networks.get(label, [])[:count]
    if not items:
        raise ProfileError("no validation networks timed; run with --validate N")
    model = LatencyModel(lut, anchored=False)  # held-out times are at the yardstick
    predicted = [model.predict(Arch.from_json(item.arch)) for item in items]
    measured = [item.measured_ms for item in items]
    raw = [unit_sum(lut, Arch.from_json(item.arch))[0] for item in items]
    report = accuracy_metrics(predicted, measured)
    report["uncorrected_within_10pct"] = accuracy_metrics(raw, measured)["within_10pct"]
    report["noise_floor"] = noise_floor(items)
    report["measured"] = now()
    return report
