"""Accuracy estimators behind one interface, named as on the command line.

An estimator scores archs, higher meaning "expected to be more accurate"; only the order
of scores matters to a search and to the ground-truth benchmark. Names:

==================  ====================================================================
``params``          parameter count (the baseline every other estimator must beat)
``macs``            multiply-accumulates
``naswot``          NASWOT at initialisation on a real batch of ``--data``
``synflow``         synflow at initialisation (data-free; input shape from the arch)
``supernet:DIR``    validation accuracy of the subnet in a trained supernet run
``predictor:TABLE`` surrogate fitted on a ground-truth table (``predictor`` alone: the
                    committed CIFAR-10 table)
==================  ====================================================================
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from edgenas.cost.count import count
from edgenas.data import open_dataset
from edgenas.errors import EdgenasError
from edgenas.estimate.names import DEFAULT_ESTIMATOR, ESTIMATOR_NAMES
from edgenas.estimate.proxy_data import normalise_batch, proxy_images
from edgenas.estimate.zero_cost import naswot, synflow
from edgenas.jsonio import write_json_atomic
from edgenas.resources import default_groundtruth_path
from edgenas.space.arch import Arch
from edgenas.train.supernet_training import supernet_evaluator

log = logging.getLogger(__name__)

#: The committed ground truth, shipped as package data.
DEFAULT_TABLE = default_groundtruth_path()


class EstimatorError(EdgenasError):
    """An estimator name or its argument (run folder, table, data) is unusable."""


class Estimator(ABC):
    """Scores archs; higher is better. ``seconds`` holds the time of every call."""

    name: str = ""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def score(self, arch: Arch) -> float:
        """The score of one arch (timed)."""
        started = time.perf_counter()
        try:
            return float(self._score(arch))
        finally:
            self.seconds.append(time.perf_counter() - started)

    def score_many(self, archs: Sequence[Arch]) -> list[float]:
        """Scores of several archs, in order."""
        return [self.score(arch) for arch in archs]

    def describe(self) -> dict[str, Any]:
        """What a result file should record about the estimate."""
        return {"estimator": self.name}

    @abstractmethod
    def _score(self, arch: Arch) -> float: ...


class ParamsEstimator(Estimator):
    """More parameters, more accuracy: NAS-Bench-201's tau ~0.56 baseline."""

    name = "params"

    def _score(self, arch: Arch) -> float:
        return float(count(arch).params)


class MacsEstimator(Estimator):
    """More multiply-accumulates, more accuracy."""

    name = "macs"

    def _score(self, arch: Arch) -> float:
        return float(count(arch).macs)


class NaswotEstimator(Estimator):
    """NASWOT on a fixed batch (see `edgenas.estimate.zero_cost`)."""

    name = "naswot"

    def __init__(self, batch: torch.Tensor, seed: int = 0) -> None:
        super().__init__()
        self.batch, self.seed = batch, seed

    def _score(self, arch: Arch) -> float:
        return naswot(arch, self.batch, self.seed)


class SynflowEstimator(Estimator):
    """synflow (see `edgenas.estimate.zero_cost`)."""

    name = "synflow"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed

    def _score(self, arch: Arch) -> float:
        return synflow(arch, self.seed)


class SupernetEstimator(Estimator):
    """Subnet accuracy with inherited weights, BN recalibrated (a trained supernet run)."""

    def __init__(self, run_dir: str, val_limit: int | None = None) -> None:
        super().__init__()
        if not Path(run_dir).is_dir():
            raise EstimatorError(f"supernet:{run_dir}: no such run folder; train one with "
                                 "'edgenas supernet train --out DIR'")
        self.name = f"supernet:{run_dir}"
        self.run_dir = run_dir
        self.evaluator = supernet_evaluator(run_dir, val_limit=val_limit)

    def _score(self, arch: Arch) -> float:
        return self.evaluator.evaluate(arch)

    def describe(self) -> dict[str, Any]:
        return {"estimator": self.name, "supernet": self.run_dir}


class PredictorEstimator(Estimator):
    """Surrogate fitted on a ground-truth table (see `edgenas.estimate.predictor`)."""

    def __init__(self, table_path: str | os.PathLike[str], data_spec: str | None = None,
                 folds: int = 5, seed: int = 0, entries: Sequence[int] | None = None,
                 proxy_cache: dict[str, list[float]] | None = None,
                 use_proxies: bool = True) -> None:
        """``entries``: fit on these finished entries only (cross-validation);
        ``proxy_cache``: arch JSON -> zero-cost scores, shared between fits;
        ``use_proxies=False``: the arch's own features only (an ablation)."""
        super().__init__()
        self.use_proxies = use_proxies
        self.proxy_cache = proxy_cache if proxy_cache is not None else {}
        # local: both load scipy (estimate.rank), which of the estimators only this one needs
        from edgenas.estimate.groundtruth import GroundTruth
        from edgenas.estimate.predictor import feature_matrix, fit_predictor

        self.table = GroundTruth.load(table_path)
        self.name = f"predictor:{table_path}"
        finished = list(self.table.finished)
        if entries is not None:
            finished = [finished[i] for i in entries]
        if len(finished) < 2 * folds:
            raise EstimatorError(f"{table_path}: only {len(finished)} trained archs; a "
                                 f"predictor needs at least {2 * folds} (let "
                                 "'edgenas groundtruth build' finish more)")
        stored = self.table.proxy_images()
        if data_spec is None and stored is not None:
            self.batch = normalise_batch(stored)     # the table's own images: reproducible
        else:
            spec = data_spec or str(self.table.data.get("spec", "digits"))
            self.batch = proxy_batch(spec, str(table_path))
        self.naswot = NaswotEstimator(self.batch, seed)
        self.synflow = SynflowEstimator(seed)
        stored_scores = ProxyStore(self.batch, seed)
        committed = stored_scores.beside(Path(table_path))
        for key, value in {**committed, **stored_scores.scores}.items():
            self.proxy_cache.setdefault(key, value)
        archs = [entry.arch for entry in finished]
        missing = sum(a.to_json() not in self.proxy_cache for a in archs) if use_proxies else 0
        if missing:
            log.info("%s: zero-cost scores of %d trained archs (seconds each; cached in %s)",
                     self.name, missing, stored_scores.path.parent)
        started = time.perf_counter()
        x = feature_matrix(archs, self._proxies)
        stored_scores.save(self.proxy_cache)
        y = np.asarray([entry.mean_accuracy for entry in finished], float)
        self.predictor = fit_predictor(x, y, folds, seed)
        self.fit_seconds = time.perf_counter() - started
        log.info("%s: %s fitted on %d archs (cross-validated tau %.3f, mean abs error "
                 "%.2f points)", self.name, self.predictor.name, len(archs),
                 self.predictor.cv_tau, 100 * self.predictor.cv_mae)

    def _proxies(self, arch: Arch) -> list[float]:
        if not self.use_proxies:
            return []
        key = arch.to_json()
        if key not in self.proxy_cache:
            self.proxy_cache[key] = [self.naswot.score(arch), self.synflow.score(arch)]
        return self.proxy_cache[key]

    def _score(self, arch: Arch) -> float:
        from edgenas.estimate.predictor import feature_matrix  # local: scipy, see __init__

        return float(self.predictor.predict(feature_matrix([arch], self._proxies))[0])

    def describe(self) -> dict[str, Any]:
        return {"estimator": self.name, "model": self.predictor.name,
                "cv_kendall_tau": self.predictor.cv_tau, "cv_mae": self.predictor.cv_mae,
                "trained_archs": self.predictor.n, "candidates": self.predictor.candidates}


class ProxyStore:
    """Zero-cost scores kept between commands, per (batch, seed), in `cache_dir`.

    Fitting a predictor needs the scores of every ground-truth arch (seconds each); with
    them stored, a search or an ``estimate`` call pays only for the archs it scores.
    """

    def __init__(self, batch: torch.Tensor, seed: int) -> None:
        digest = hashlib.sha256(batch.numpy().tobytes())
        digest.update(f"|{seed}|{torch.__version__}".encode())
        self.key = digest.hexdigest()[:16]
        self.path = cache_dir() / f"zero-cost-{self.key}.json"
        self.scores: dict[str, list[float]] = {}
        try:
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict):
                self.scores = {k: [float(x) for x in v] for k, v in loaded.items()
                               if isinstance(v, list) and len(v) == 2}
        except (OSError, ValueError, TypeError):
            pass                       # a missing or broken cache is only slower

    @staticmethod
    def committed_path(table_path: Path) -> Path:
        """``x.json`` -> ``x.zero-cost.json``: scores committed with a ground-truth table."""
        return table_path.with_name(table_path.stem + ".zero-cost.json")

    def beside(self, table_path: Path) -> dict[str, list[float]]:
        """Scores committed beside a table for this very batch and seed (else none), so a
        fresh clone fits the default predictor in seconds, not minutes."""
        try:
            stored = json.loads(self.committed_path(table_path).read_text())
            if stored.get("key") == self.key:
                return {k: [float(x) for x in v] for k, v in stored["scores"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass
        return {}

    def write_beside(self, table_path: Path, scores: dict[str, list[float]]) -> None:
        """Commit-ready scores of a table's archs (what benchmarks/bench_estimators.py writes)."""
        write_json_atomic({"key": self.key, "torch": torch.__version__,
                           "scores": dict(sorted(scores.items()))},
                          self.committed_path(table_path))

    def save(self, scores: dict[str, list[float]]) -> None:
        """Store ``scores`` (merged with what is there); a read-only cache is skipped."""
        if scores.keys() <= self.scores.keys():
            return
        try:
            write_json_atomic({**self.scores, **scores}, self.path)
        except OSError as err:
            log.info("zero-cost cache %s not written: %s", self.path, err)


def cache_dir() -> Path:
    """Where decoded datasets are cached between commands (``$EDGENAS_CACHE``)."""
    return Path(os.environ.get("EDGENAS_CACHE",
                               Path.home() / ".cache" / "edgenas"))


@lru_cache(maxsize=4)
def proxy_batch(data_spec: str, needed_by: str = "") -> torch.Tensor:
    """The normalised zero-cost batch of ``data_spec`` (see `proxy_images`)."""
    try:
        data = open_dataset(data_spec, cache_dir=cache_dir())
    except EdgenasError as err:
        hint = f" (needed by {needed_by}; pass --data)" if needed_by else " (pass --data)"
        raise EstimatorError(f"{err}{hint}") from None
    return normalise_batch(proxy_images(data))


def make_estimator(name: str | None, data_spec: str | None = None,
                   names: Sequence[str] = ESTIMATOR_NAMES) -> Estimator:
    """The estimator a command-line name stands for (None: `DEFAULT_ESTIMATOR`); ``names``
    are those the calling command accepts, for its error (`search` also takes `trained`)."""
    name = name or DEFAULT_ESTIMATOR
    kind, _, argument = name.partition(":")
    if kind == "params" and not argument:
        return ParamsEstimator()
    if kind == "macs" and not argument:
        return MacsEstimator()
    if kind == "synflow" and not argument:
        return SynflowEstimator()
    if kind == "naswot" and not argument:
        return NaswotEstimator(proxy_batch(data_spec or "digits", "naswot"))
    if kind == "supernet":
        if not argument:
            raise EstimatorError("supernet needs its run folder: --estimator supernet:DIR")
        return SupernetEstimator(argument)
    if kind == "predictor":
        table = argument or str(DEFAULT_TABLE)
        if not Path(table).exists():
            raise EstimatorError(f"{table}: no ground-truth table there; build one with "
                                 "'edgenas groundtruth build --out TABLE' and pass "
                                 "--estimator predictor:TABLE")
        return PredictorEstimator(table, data_spec)
    raise EstimatorError(f"--estimator {name!r}: choose from {', '.join(names)}")
