"""The stand-alone ground truth: archs trained from scratch with one recipe, as a table.

Every accuracy estimator (counts, zero-cost proxies, supernet, surrogate predictor) is
judged by how well it ranks the archs of one committed table, so the table fixes what the
judgement depends on: the archs (a stratified sample plus the space's hand-designed
baselines), the data and its split, the recipe, and the seeds. Some archs are trained
with a second seed; how well seed 0 ranks seed 1 is the ceiling no estimator can beat.

Building it is hours of CPU: workers (one thread each) take jobs from a folder queue,
each training checkpoints every epoch, the table is rewritten after every finished job,
and a killed build resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from edgenas.cost.count import count
from edgenas.data import open_dataset, split_dataset
from edgenas.errors import EdgenasError
from edgenas.estimate.proxy_data import proxy_images
from edgenas.estimate.rank import Agreement, agreement
from edgenas.estimate.sample import stratified_sample
from edgenas.estimate.workqueue import WorkQueue
from edgenas.jsonio import read_json, write_json_atomic
from edgenas.space.arch import Arch
from edgenas.space.baselines import baseline_archs
from edgenas.space.search_space import SearchSpace
from edgenas.train.loop import TrainConfig
from edgenas.train.placement import place
from edgenas.train.standalone import train_arch

log = logging.getLogger(__name__)

KIND = "edgenas-groundtruth"
SCHEMA_VERSION = 1
#: Seed of the train/validation split every job shares (only training seeds differ).
SPLIT_SEED = 0


class GroundTruthError(EdgenasError):
    """A ground-truth table is malformed, or a build cannot go on."""


@dataclass(frozen=True)
class Entry:
    """One arch of the table: what it is, and its accuracy per training seed."""

    id: str
    name: str
    stratum: str                      # "op:<kind>", "uniform" or "baseline"
    arch: Arch
    accuracy: Mapping[int, float]     # seed -> validation accuracy (0..1)
    train_seconds: Mapping[int, float]

    @property
    def mean_accuracy(self) -> float:
        """Mean over the seeds it was trained with (the value estimators are judged on)."""
        return float(np.mean(list(self.accuracy.values())))


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth table (see the module docstring); `load` validates one from JSON."""

    space: str
    data: Mapping[str, Any]
    recipe: Mapping[str, Any]
    entries: tuple[Entry, ...]
    source: str = "<memory>"

    @property
    def finished(self) -> tuple[Entry, ...]:
        """Entries with at least one trained seed."""
        return tuple(entry for entry in self.entries if entry.accuracy)

    def archs(self) -> list[Arch]:
        """The finished archs, in table order."""
        return [entry.arch for entry in self.finished]

    def accuracies(self) -> list[float]:
        """Their mean accuracies, in the same order."""
        return [entry.mean_accuracy for entry in self.finished]

    def seed_pairs(self, a: int = 0, b: int = 1) -> tuple[list[float], list[float]]:
        """Accuracies of the archs trained with both seeds ``a`` and ``b``."""
        both = [entry for entry in self.finished if a in entry.accuracy and b in entry.accuracy]
        return [e.accuracy[a] for e in both], [e.accuracy[b] for e in both]

    def seed_agreement(self) -> Agreement | None:
        """Seed 0 against seed 1: the ceiling of any estimator's rank agreement."""
        first, second = self.seed_pairs()
        return agreement(first, second) if len(first) >= 3 else None

    def proxy_images(self) -> torch.Tensor | None:
        """The zero-cost proxies' images stored beside the table (None if absent).

        Stored with the table so that a predictor fitted on it computes the same features
        on any machine, whether or not the table's dataset is there.
        """
        path = proxy_batch_path(Path(self.source))
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                return torch.from_numpy(stored["images"].copy())
        except (OSError, KeyError, ValueError) as err:
            raise GroundTruthError(f"{path}: unreadable ({err}); delete it to fall back to "
                                   "the table's dataset") from None

    @staticmethod
    def load(path: str | os.PathLike[str]) -> "GroundTruth":
        """Read and validate a table; errors name the file, the field and the fix."""
        data = read_json(path, "build one with 'edgenas groundtruth build', or leave the "
                               "table out to use the one edgenas ships",
                         GroundTruthError)
        return from_dict(data, str(path))


def from_dict(data: Any, source: str = "<memory>") -> GroundTruth:
    """A `GroundTruth` from its JSON form, checked field by field."""
    def fail(field: str, message: str) -> GroundTruthError:
        return GroundTruthError(f"{source}: {field}: {message}")

    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise fail("kind", f"not a ground-truth table (expected kind {KIND!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise fail("schema_version", f"{data.get('schema_version')!r}; this edgenas reads "
                                     f"version {SCHEMA_VERSION}: rebuild the table")
    for key in ("space", "data", "recipe", "archs"):
        if key not in data:
            raise fail(key, "missing; rebuild the table with 'edgenas groundtruth build'")
    if not isinstance(data["archs"], list):
        raise fail("archs", "must be a list")
    entries = []
    for i, item in enumerate(data["archs"]):
        where = f"archs[{i}]"
        if not isinstance(item, dict):
            raise fail(where, "must be an object")
        try:
            arch = Arch.from_dict(item["arch"], source=f"{source}: {where}.arch")
            accuracy = {int(seed): float(run["val_accuracy"])
                        for seed, run in item.get("runs", {}).items()}
            seconds = {int(seed): float(run.get("train_seconds", 0.0))
                       for seed, run in item.get("runs", {}).items()}
            entries.append(Entry(str(item["id"]), str(item.get("name", item["id"])),
                                 str(item.get("stratum", "")), arch, accuracy, seconds))
        except KeyError as err:
            raise fail(where, f"missing field {err}") from None
        except (TypeError, ValueError, AttributeError) as err:
            raise fail(where, f"malformed ({err})") from None
        for seed, value in entries[-1].accuracy.items():
            if not 0.0 <= value <= 1.0:
                raise fail(f"{where}.runs.{seed}.val_accuracy", f"{value} is not in [0, 1]")
    return GroundTruth(str(data["space"]), data["data"], data["recipe"], tuple(entries),
                       source)


def proxy_batch_path(table_path: Path) -> Path:
    """``x.json`` -> ``x.batch.npz``: the table's zero-cost batch."""
    return table_path.with_name(table_path.stem + ".batch.npz")


def write_proxy_batch(data: Any, table_path: Path) -> None:
    """Store the zero-cost batch of ``data`` beside the table (atomically)."""
    path = proxy_batch_path(table_path)
    partial = path.with_name(path.name + ".tmp.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(partial, images=proxy_images(data).numpy())
    os.replace(partial, path)


# -- planning ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One training: an entry of the table with one seed."""

    entry_id: str
    name: str
    stratum: str
    arch: Arch
    seed: int

    @property
    def id(self) -> str:
        """File-safe job name (queue claim, result, run folder)."""
        return f"{self.entry_id}-s{self.seed}"


def plan_jobs(space: SearchSpace, num_archs: int, reseed: int, sample_seed: int = 0,
              with_baselines: bool = True) -> list[Job]:
    """Seed-0 jobs for a stratified sample (and baselines); seed 1 for ``reseed`` of them.

    The re-seeded archs are spread evenly over the sample, and their jobs interleaved with
    the others so that a partial table already has a seed-to-seed estimate.
    """
    if num_archs < 0 or reseed < 0:
        raise GroundTruthError("--archs and --reseed must be >= 0")
    entries = [(f"a{i:03d}", f"sample {i:03d}", s.stratum, s.arch)
               for i, s in enumerate(stratified_sample(space, num_archs, sample_seed))]
    if with_baselines:
        entries += [("b-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-"),
                     name, "baseline", arch) for name, arch in baseline_archs(space).items()]
    reseed = min(reseed, num_archs)
    again = {int(round(k * num_archs / reseed)) for k in range(reseed)} if reseed else set()
    first = [Job(eid, name, stratum, arch, 0) for eid, name, stratum, arch in entries]
    second = [Job(eid, name, stratum, arch, 1)
              for i, (eid, name, stratum, arch) in enumerate(entries[:num_archs]) if i in again]
    jobs: list[Job] = []
    every = max(1, len(first) // max(1, len(second)))
    for i, job in enumerate(first):
        jobs.append(job)
        if second and (i + 1) % every == 0:
            jobs.append(second.pop(0))
    return jobs + second


# -- building ------------------------------------------------------------------------------
def build_ground_truth(space: SearchSpace, data_spec: str, jobs: Sequence[Job],
                       config: TrainConfig, work_dir: str | os.PathLike[str],
                       table_path: str | os.PathLike[str], workers: int = 2,
                       threads: int = 1, torch_device: str = "cpu",
                       on_progress: Callable[[int, int, float | None], None] | None = None,
                       poll_seconds: float = 2.0) -> GroundTruth:
    """Train every job (resuming), writing the table to ``table_path`` after each one.

    ``config`` is the recipe (its ``seed`` is replaced per job; the split is always drawn
    with `SPLIT_SEED`). ``on_progress(done, total, eta_seconds)`` is called as jobs finish.
    """
    if workers < 1:
        raise GroundTruthError(f"--workers {workers}: need at least one worker")
    work = Path(work_dir)
    queue = WorkQueue(work / "queue")
    cache = work / "cache"
    data = open_dataset(data_spec, cache_dir=cache)   # decoded once here; workers read the cache
    data.check_classes(space.num_classes, "the search space")
    _check_work_dir(work, space, data_spec, config)   # only once the input is known good
    recipe = replace(config, split_seed=SPLIT_SEED)
    if not proxy_batch_path(Path(table_path)).exists():
        write_proxy_batch(data, Path(table_path))
    adopted = adopt_table_results(Path(table_path), recipe, jobs, queue)
    if adopted:
        log.info("ground truth: %d trainings taken from %s (same recipe and archs)", adopted,
                 table_path)

    def write_table() -> GroundTruth:
        table = assemble(space, data_spec, data, recipe, jobs, queue)
        write_json_atomic(table, table_path)
        return from_dict(table, str(table_path))

    ids = [job.id for job in jobs]
    done = sum(queue.is_done(i) for i in ids)
    if on_progress:
        on_progress(done, len(jobs), None)
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker, name=f"groundtruth-worker-{w}",
                             args=(str(work), jobs, data_spec, recipe, str(cache), threads,
                                   torch_device, os.getpid(), w), daemon=False)
             for w in range(min(workers, len(list(queue.pending(ids)))))]
    try:
        for proc in procs:
            proc.start()
        table = write_table()
        while True:
            alive = [p for p in procs if p.is_alive()]
            now_done = sum(queue.is_done(i) for i in ids)
            if now_done != done:
                done = now_done
                table = write_table()
                if on_progress:
                    on_progress(done, len(jobs), _eta(table, len(jobs) - done, len(alive)))
            held_elsewhere = [i for i in ids if not queue.is_done(i) and queue.holder_alive(i)]
            if not alive and not held_elsewhere:
                break
            time.sleep(poll_seconds)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
    failed = [p for p in procs if p.exitcode not in (0, None)]
    missing = [i for i in ids if not queue.is_done(i)]
    table = write_table()
    if missing:
        logs = ", ".join(str(work / f"worker-{w}.log") for w in range(len(procs)))
        reason = f"workers exited with codes {[p.exitcode for p in failed]}" if failed \
            else "the workers stopped"
        raise GroundTruthError(f"{len(missing)} of {len(jobs)} trainings did not finish "
                               f"({reason}); see {logs}, then re-run the same command to "
                               "resume")
    log.info("ground truth: %d trainings in %.0f s", len(jobs), time.monotonic() - started)
    return table


def adopt_table_results(table_path: Path, recipe: TrainConfig, jobs: Sequence[Job],
                        queue: WorkQueue) -> int:
    """Count as done the trainings an existing table already holds; gives how many.

    The table is what gets committed, while the work folder stays on the machine that
    trained: so a build continued in a fresh clone, or on another machine, starts from the
    committed table instead of training its archs again. Only runs of the same recipe and
    the very same arch are taken.
    """
    if not table_path.exists():
        return 0
    stored = read_json(table_path, "", GroundTruthError)
    wanted = {k: v for k, v in recipe.to_dict().items() if k != "seed"}
    if stored.get("kind") != KIND or stored.get("recipe") != wanted:
        return 0
    runs = {(item.get("id"), json.dumps(item.get("arch"), sort_keys=True)): item.get("runs", {})
            for item in stored.get("archs", []) if isinstance(item, dict)}
    adopted = 0
    for job in jobs:
        if queue.is_done(job.id):
            continue
        run = runs.get((job.entry_id, json.dumps(job.arch.to_dict(), sort_keys=True)),
                       {}).get(str(job.seed))
        if isinstance(run, dict) and "val_accuracy" in run:
            queue.finish(job.id, {"val_accuracy": float(run["val_accuracy"]),
                                  "train_seconds": float(run.get("train_seconds", 0.0)),
                                  "final_loss": run.get("final_loss"),
                                  "host": run.get("host"), "from_table": str(table_path)})
            adopted += 1
    return adopted


def _eta(table: GroundTruth, remaining: int, workers: int) -> float | None:
    seconds = [s for entry in table.finished for s in entry.train_seconds.values() if s > 0]
    if not seconds or not workers:
        return None
    return remaining * float(np.mean(seconds)) / workers


def _check_work_dir(work: Path, space: SearchSpace, data_spec: str, config: TrainConfig
                    ) -> None:
    """Refuse to mix results of another recipe, space or data into this work folder.

    The plan (how many archs, how many re-seeded) is not part of it: a larger sample's
    first archs are the smaller sample, so a build can be extended in place.
    """
    identity = {"space": space.space_hash(), "data": data_spec,
                "recipe": {k: v for k, v in config.to_dict().items() if k != "seed"}}
    path = work / "identity.json"
    if path.exists():
        stored = read_json(path, "delete the work folder to start over", GroundTruthError)
        if stored != identity:
            changed = sorted(k for k in identity if stored.get(k) != identity[k])
            raise GroundTruthError(
                f"{work}: was built with another {', '.join(changed)} "
                f"({ {k: stored.get(k) for k in changed} }); use another --work folder or "
                "the same settings")
    else:
        write_json_atomic(identity, path)


def _worker(work_dir: str, jobs: Sequence[Job], data_spec: str, config: TrainConfig,
            cache_dir: str, threads: int, torch_device: str, parent: int, number: int) -> None:
    """One training process: claim the next free job, train it, store its result."""
    log_path = Path(work_dir) / f"worker-{number}.log"
    with open(log_path, "a", buffering=1, encoding="utf-8") as log_file, \
            contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                            stream=log_file, force=True)
        torch.set_num_threads(threads)
        _run_jobs(WorkQueue(Path(work_dir) / "queue"), Path(work_dir), jobs, data_spec,
                  config, cache_dir, torch_device, parent)
        print(f"worker {number}: no jobs left", file=sys.stderr)


def _run_jobs(queue: WorkQueue, work: Path, jobs: Sequence[Job], data_spec: str,
              config: TrainConfig, cache_dir: str, torch_device: str, parent: int) -> None:
    data = open_dataset(data_spec, cache_dir=cache_dir)
    placement = place(torch_device)
    for job in jobs:
        if os.getppid() != parent:
            return               # the build was killed: leave the rest to its re-run
        if not queue.claim(job.id):
            continue
        try:
            result = train_arch(job.arch, data_spec, work / "runs" / job.id,
                                replace(config, seed=job.seed), data=data, placement=placement)
        except BaseException:
            queue.release(job.id)
            raise
        history = result["history"]
        queue.finish(job.id, {
            "val_accuracy": result["val_accuracy"],
            "train_seconds": sum(epoch.get("seconds", 0.0) for epoch in history),
            "final_loss": history[-1]["loss"] if history else None,
            "split_hash": result["split"]["hash"], "host": platform.node(),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def assemble(space: SearchSpace, data_spec: str, data: Any, recipe: TrainConfig,
             jobs: Sequence[Job], queue: WorkQueue) -> dict[str, Any]:
    """The table's JSON from the plan and whatever results the queue holds."""
    split = split_dataset(data.labels, recipe.val_fraction, SPLIT_SEED, recipe.limit)
    entries: dict[str, dict[str, Any]] = {}
    for job in jobs:
        entry = entries.get(job.entry_id)
        if entry is None:
            counts = count(job.arch)
            entry = entries[job.entry_id] = {
                "id": job.entry_id, "name": job.name, "stratum": job.stratum,
                "arch": job.arch.to_dict(), "macs": counts.macs, "params": counts.params,
                "memory_bytes_fp32": counts.memory_bytes("fp32"), "runs": {}}
        if queue.is_done(job.id):
            result = queue.result(job.id)
            entry["runs"][str(job.seed)] = {
                "val_accuracy": result["val_accuracy"],
                "train_seconds": round(float(result["train_seconds"]), 2),
                "final_loss": result.get("final_loss"), "host": result.get("host")}
    table: dict[str, Any] = {
        "kind": KIND, "schema_version": SCHEMA_VERSION,
        "space": space.name, "space_hash": space.space_hash(),
        "data": {"spec": data_spec, "source": data.source, "images": len(data),
                 "limit": recipe.limit, "split": split.to_dict(),
                 "note": "validation images are carved from the training images; "
                         "there is no test split"},
        "recipe": {k: v for k, v in recipe.to_dict().items() if k != "seed"},
        "seeds": sorted({job.seed for job in jobs}),
        "planned_trainings": len(jobs),
        "finished_trainings": sum(len(e["runs"]) for e in entries.values()),
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "archs": list(entries.values()),
    }
    ceiling = from_dict(table).seed_agreement()
    table["seed_to_seed"] = ceiling.to_dict() if ceiling else None
    return table
