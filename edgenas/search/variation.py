"""Hierarchy-aware crossover and mutation for Optuna's NSGA-II.

Plugged in through ``NSGAIISampler(child_generation_strategy=...)``, so Optuna keeps its
non-dominated sorting, crowding distance and elitism; only how a child is made changes:

* crossover swaps whole units of the hierarchy: the macro settings, and each stage with
  all its blocks, come from one parent or the other (a stage is a working sub-network;
  mixing the genes of two stages gene by gene mostly breaks both);
* mutation acts per level with its own rate: macro multipliers move to a neighbouring
  choice, a stage changes depth, width or down-sampling, a block changes op or a field.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial

STAGE_GENE = re.compile(r"^s(\d+)\.")


def gene_group(name: str) -> str:
    """``macro``, or ``s{i}`` for every gene of stage i (its meso genes and its blocks)."""
    match = STAGE_GENE.match(name)
    return f"s{match.group(1)}" if match else "macro"


def _constraint_violation(trial: FrozenTrial) -> float:
    return float(sum(max(0.0, c) for c in trial.constraints.values()))


def _dominates(a: FrozenTrial, b: FrozenTrial, directions: list[optuna.study.StudyDirection]) -> bool:
    """Constrained domination (Deb): feasible beats infeasible, less violation beats more."""
    va, vb = _constraint_violation(a), _constraint_violation(b)
    if va != vb:
        return va < vb
    assert a.values is not None and b.values is not None
    better = False
    for x, y, direction in zip(a.values, b.values, directions):
        if direction == optuna.study.StudyDirection.MINIMIZE:
            x, y = -x, -y
        if x < y:
            return False
        better = better or x > y
    return better


@dataclass
class HierarchicalVariation:
    """A ``child_generation_strategy`` for `optuna.samplers.NSGAIISampler`."""

    crossover_prob: float = 0.9
    macro_mutation_prob: float = 0.15
    stage_mutation_prob: float = 0.15
    block_mutation_prob: float = 0.05
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("crossover_prob", "macro_mutation_prob", "stage_mutation_prob",
                     "block_mutation_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {value} not in [0, 1]")
        self.rng = random.Random(self.seed)

    def _tournament(self, study: optuna.Study, population: list[FrozenTrial]) -> FrozenTrial:
        a, b = self.rng.sample(population, 2) if len(population) > 1 else population * 2
        if _dominates(b, a, study.directions):
            return b
        return a

    def __call__(self, study: optuna.Study, search_space: dict[str, BaseDistribution],
                 parent_population: list[FrozenTrial]) -> dict[str, Any]:
        first = self._tournament(study, parent_population)
        if self.rng.random() < self.crossover_prob:
            second = self._tournament(study, parent_population)
            # groups in a fixed order: a set's order follows Python's per-process string
            # hashing, and each group takes the next random draw, so the same seed gave
            # other children in another process (a resumed search proposed other archs)
            groups = dict.fromkeys(gene_group(name) for name in search_space)
            donor = {group: self.rng.random() < 0.5 for group in groups}
            child = {name: (second if donor[gene_group(name)] else first).params[name]
                     for name in search_space}
        else:
            child = {name: first.params[name] for name in search_space}
        return self._mutate(child, search_space)

    def _mutate(self, child: dict[str, Any], search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        for name, distribution in search_space.items():
            if not isinstance(distribution, CategoricalDistribution):
                continue
            choices = list(distribution.choices)
            if len(choices) < 2:
                continue
            if name.startswith("macro."):
                if self.rng.random() < self.macro_mutation_prob:
                    child[name] = self._neighbour(choices, child[name])
            elif name.count(".") == 1:  # stage level: s{i}.depth / channels / stride / downsample
                if self.rng.random() < self.stage_mutation_prob:
                    child[name] = self._neighbour(choices, child[name])
            elif self.rng.random() < self.block_mutation_prob:
                child[name] = self.rng.choice([c for c in choices if c != child[name]])
        return child

    def _neighbour(self, choices: list[Any], value: Any) -> Any:
        """An adjacent choice: ordered genes (sizes, multipliers) move one step."""
        index = choices.index(value)
        step = self.rng.choice([-1, 1])
        if not 0 <= index + step < len(choices):
            step = -step
        return choices[index + step]
