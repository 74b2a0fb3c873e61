"""Objectives, budgets and the caching evaluator the search scores archs with.

Cheap numbers first: MACs, params and memory come from `count()` and latency from the
device's table in microseconds; only an arch that meets every budget is sent to the
(expensive) accuracy estimate. Every evaluation is cached by the arch's canonical JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgenas.cost.count import count
from edgenas.errors import EdgenasError
from edgenas.profile.latency import LatencyModel
from edgenas.search.pareto import to_minimization
from edgenas.space.arch import Arch, Block, Stage
from edgenas.space.search_space import SearchSpace

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

#: name -> (direction, what it is). Accuracy is a fraction in [0, 1].
OBJECTIVES: dict[str, tuple[str, str]] = {
    "accuracy": ("maximize", "validation top-1 accuracy"),
    "latency": ("minimize", "predicted latency on the device, ms"),
    "memory": ("minimize", "peak inference memory (fp32), MB"),
    "macs": ("minimize", "multiply-accumulates, millions"),
    "params": ("minimize", "parameters, millions"),
}
DEFAULT_OBJECTIVES = ("accuracy", "latency", "memory")
#: Each metric's unit, which its name (the one objectives and studies use) does not carry:
#: front.json records them beside the values, front.csv names its columns with them.
UNITS: dict[str, str] = {"accuracy": "fraction", "latency": "ms", "memory": "MB",
                         "macs": "millions", "params": "millions"}
#: The cost metrics every evaluation records beside its objectives, in front.csv's order.
COST_METRICS = ("macs", "params", "memory", "latency")
#: front.csv's column for a metric: its name with its unit (per-device latencies too).
CSV_COLUMNS: dict[str, str] = {"latency": "latency_ms", "memory": "memory_mb",
                               "macs": "mmacs", "params": "mparams"}


def unit_of(metric: str) -> str:
    """``latency@board`` -> ``ms``."""
    return UNITS[metric.partition("@")[0]]


def csv_column(metric: str) -> str:
    """``latency@board`` -> ``latency_ms@board``; ``accuracy`` as it is."""
    name, at, device = metric.partition("@")
    return CSV_COLUMNS.get(name, name) + at + device


@dataclass(frozen=True)
class TrialResult:
    """What scoring one arch gives: its metrics (by `OBJECTIVES` name, and the cost metrics
    beside), its budget margins (Optuna constraint values, <= 0 where met) and whether it
    meets every budget. A trial stores it as three user attributes (`as_attrs`), the form
    studies already hold; inside the search it is this value."""

    metrics: dict[str, float]
    constraints: list[float]
    feasible: bool

    #: The user attributes a stored result spans, in the order written: "metrics" last, so
    #: that a trial with metrics (what readers look for) has the rest, even from a worker
    #: killed mid-write.
    ATTRS = ("constraints", "feasible", "metrics")

    def as_attrs(self) -> dict[str, Any]:
        """The result as a trial stores it, in `ATTRS` order."""
        return {"constraints": list(self.constraints), "feasible": bool(self.feasible),
                "metrics": dict(self.metrics)}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> TrialResult:
        """The result a trial stored (`as_attrs`)."""
        return cls(attrs["metrics"], attrs["constraints"], attrs["feasible"])

    @staticmethod
    def stored_in(attrs: dict[str, Any]) -> bool:
        """Whether a trial's attributes hold a whole result (a worker may have been killed
        before writing all of it)."""
        return all(k in attrs for k in TrialResult.ATTRS)


def latency_metric(device: str) -> str:
    """The latency objective of one of several devices: ``latency@<device>``."""
    return f"latency@{device}"


def objective_direction(name: str) -> str:
    """"maximize" or "minimize" for an objective, per-device latencies included."""
    return OBJECTIVES[name.split("@", 1)[0]][0]


def objective_matrix(trials: "list[FrozenTrial]", objectives: tuple[str, ...]) -> np.ndarray:
    """Objectives of trials in minimisation form."""
    values = [[t.user_attrs["metrics"][name] for name in objectives] for t in trials]
    return to_minimization(np.asarray(values).reshape(-1, len(objectives)),
                           [objective_direction(name) for name in objectives])


class SearchError(EdgenasError):
    """A search request cannot be carried out as asked (objectives, budgets, storage)."""


@dataclass(frozen=True)
class Budgets:
    """Hard limits; None means unlimited. Units as in the names."""

    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    max_mmacs: float | None = None
    max_params: float | None = None  # a count, not millions: --max-params 500000

    def limits(self) -> dict[str, tuple[str, float]]:
        """metric -> (budget name, limit) for the budgets that are set."""
        pairs = {"latency": ("max_latency_ms", self.max_latency_ms),
                 "memory": ("max_memory_mb", self.max_memory_mb),
                 "macs": ("max_mmacs", self.max_mmacs),
                 "params": ("max_params", self.max_params)}
        out = {}
        for metric, (name, limit) in pairs.items():
            if limit is not None:
                if not limit > 0 or math.isinf(limit):
                    raise SearchError(f"{name}: {limit} must be a positive number")
                if metric == "params":  # a count, checked as given; the metric is in millions
                    if limit < 1:
                        raise SearchError(f"{name}: {limit} must be a parameter count >= 1")
                    limit = limit / 1e6
                out[metric] = (name, float(limit))
        return out

    def violations(self, metrics: dict[str, float]) -> list[float]:
        """Optuna constraint values: <= 0 where a budget is met (relative excess otherwise)."""
        return [metrics[metric] / limit - 1.0 for metric, (_, limit) in self.limits().items()]


@dataclass
class Evaluator:
    """Scores archs; ``accuracy_fn`` is only called for archs within budget.

    One device's table goes in ``latency_model`` (metric ``latency``); several devices'
    tables go in ``latency_models`` by device name (metrics ``latency@<device>``, one
    objective each, and a latency budget applies to every device).
    """

    objectives: tuple[str, ...]
    budgets: Budgets = field(default_factory=Budgets)
    latency_model: LatencyModel | None = None
    accuracy_fn: Callable[[Arch], float] | None = None
    cache: dict[str, TrialResult] = field(default_factory=dict)
    accuracy_calls: int = 0
    latency_models: dict[str, LatencyModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.latency_model is not None and self.latency_models:
            raise SearchError("give one device's table (latency_model) or several "
                              "(latency_models), not both")
        known = set(OBJECTIVES) | {latency_metric(d) for d in self.latency_models}
        unknown = [o for o in self.objectives if o not in known]
        if unknown or not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise SearchError(f"objectives {self.objectives}: choose distinct names from "
                              f"{tuple(sorted(known))}")
        if self.latency_models and "latency" in self.objectives:
            raise SearchError(f"objectives {self.objectives}: with several devices, name each "
                              f"latency ({', '.join(map(latency_metric, self.latency_models))})")
        needs_latency = "latency" in self.objectives or "latency" in self.budgets.limits()
        if needs_latency and self.latency_model is None and not self.latency_models:
            raise SearchError("latency is an objective or a budget but no device table was "
                              "given; pass --device DEVICE (profiled with 'edgenas profile')")
        if "accuracy" in self.objectives and self.accuracy_fn is None:
            raise SearchError("accuracy is an objective but no estimator was given; pass "
                              "--estimator NAME (see 'edgenas estimate -h') or --supernet DIR "
                              "(train one with 'edgenas supernet train'), or choose "
                              "objectives without accuracy")

    @property
    def directions(self) -> list[str]:
        return [objective_direction(name) for name in self.objectives]

    def limits(self) -> dict[str, tuple[str, float]]:
        """metric -> (budget name, limit); a latency budget holds for every device."""
        limits = self.budgets.limits()
        if self.latency_models and "latency" in limits:
            name, limit = limits.pop("latency")
            limits.update({latency_metric(d): (f"{name}@{d}", limit)
                           for d in self.latency_models})
        return limits

    def violations(self, metrics: dict[str, float]) -> list[float]:
        """Optuna constraint values: <= 0 where a budget is met (relative excess otherwise)."""
        return [metrics[metric] / limit - 1.0 for metric, (_, limit) in self.limits().items()]

    def cheap_metrics(self, arch: Arch) -> dict[str, float]:
        """Everything but accuracy: microseconds per arch."""
        counts = count(arch)
        metrics = {"macs": counts.macs / 1e6, "params": counts.params / 1e6,
                   "memory": counts.memory_bytes("fp32") / 1e6}
        if self.latency_model is not None:
            metrics["latency"] = self.latency_model.predict(arch)
        for device, model in self.latency_models.items():
            metrics[latency_metric(device)] = model.predict(arch)
        return metrics

    def evaluate(self, arch: Arch) -> TrialResult:
        """Metrics, constraint values and feasibility of ``arch`` (cached)."""
        key = arch.to_json()
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        result = self.cheap_result(arch)
        metrics, feasible = result.metrics, result.feasible
        if "accuracy" in self.objectives:
            if feasible:
                self.accuracy_calls += 1
                metrics["accuracy"] = float(self.accuracy_fn(arch))  # type: ignore[misc]
            else:
                metrics["accuracy"] = 0.0  # never computed: the arch is outside the budgets
        self.cache[key] = result
        return result

    def cheap_result(self, arch: Arch) -> TrialResult:
        """Metrics without accuracy, constraint values and feasibility (uncached)."""
        metrics: dict[str, Any] = self.cheap_metrics(arch)
        constraints = self.violations(metrics)
        return TrialResult(metrics, constraints, all(c <= 0 for c in constraints))

    def values(self, metrics: dict[str, float]) -> list[float]:
        """The objective vector in the order of ``objectives``."""
        return [float(metrics[name]) for name in self.objectives]


def smallest_achievable(space: SearchSpace, evaluator: Evaluator, samples: int = 2000,
                        seed: int = 0) -> dict[str, float]:
    """The smallest value of each budgeted metric found in the space.

    Candidates: the space's leanest skeletons (smallest resolution, width, depths and
    channels, every first block one op configuration, later blocks skipped) plus
    ``samples`` random archs. Used to tell a user *before* searching that budgets are
    out of reach, and how far.
    """
    lean = space.decode({name: choices[0] for name, choices in space.genes().items()})
    lean = replace(lean, resolution=min(space.resolutions), width_mult=min(space.width_mults),
                   depth_mult=min(space.depth_mults))
    candidates = [space.sample(seed + i) for i in range(samples)]
    ops = [op for op in space.ops if op != "skip"]
    for op in ops:
        for kernel in space.kernels:
            for expansion in space.expansions:
                block = Block(op, kernel, expansion, False, space.activations[0])
                stages = tuple(Stage(min(choice.channels), max(choice.strides), (block,),
                                     choice.downsamples[-1])
                               for choice in space.stages)
                candidates.append(replace(lean, stages=stages))
    best: dict[str, float] = {}
    for arch in candidates:
        if not space.contains(arch):
            continue
        for name, value in evaluator.cheap_metrics(arch).items():
            best[name] = min(best.get(name, float("inf")), value)
    return best


def check_budgets_reachable(space: SearchSpace, evaluator: Evaluator) -> None:
    """Raise before searching when a budget is below anything the space can do."""
    limits = evaluator.limits()
    if not limits:
        return
    smallest = smallest_achievable(space, evaluator)
    scale = {"params": 1e6}  # budgets take a parameter count, metrics hold millions
    out_of_reach = [f"--{name.replace('_', '-').replace('@', ' on ', 1)} "
                    f"{limit * scale.get(metric, 1):g} (smallest in space {space.name!r}: "
                    f"{smallest[metric] * scale.get(metric, 1):.4g})"
                    for metric, (name, limit) in limits.items() if smallest[metric] > limit]
    if out_of_reach:
        raise SearchError("no arch can meet the budgets: " + "; ".join(out_of_reach)
                          + ". Relax them or search a smaller space")


def parse_weights(text: str | None) -> dict[str, float]:
    """``"latency=0.5,memory=0.1"`` -> weights of the cost objectives for a weighted sum."""
    weights = {}
    for item in filter(None, (text or "").split(",")):
        name, _, value = item.partition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            name = ""
        if name not in OBJECTIVES or name == "accuracy":
            raise SearchError(f"--weights {item!r}: use cost=lambda with a cost objective "
                              f"({', '.join(o for o in OBJECTIVES if o != 'accuracy')})")
    return weights
