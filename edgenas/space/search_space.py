"""`SearchSpace`: the choices at each level, and the fixed-length encoding Optuna searches.

Genes are named by level so that search operators can find them:
``macro.resolution``, ``macro.width_mult``, ``macro.depth_mult``; per stage ``s{i}.depth``,
``s{i}.channels``, ``s{i}.stride``, ``s{i}.downsample``; per block slot
``s{i}.b{j}.op|kernel|expansion|se|activation``. Every gene is present in every encoding;
genes that an arch does not use (slots past a stage's depth, fields its op ignores) hold
their first choice and are ignored on decode, so NSGA-II sees one static space.
Genes with a single choice are constants of the space and are not encoded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Union

from edgenas.errors import ArchError, SpaceError
from edgenas.space.arch import (ACTIVATIONS, DOWNSAMPLES, OP_USES, OPS, Arch, Block, Head,
                                Stage, Stem, validate)

GeneValue = Union[int, float, str, bool]
BLOCK_FIELDS: tuple[str, ...] = ("op", "kernel", "expansion", "se", "activation")


@dataclass(frozen=True)
class StageChoices:
    """Meso-level choices for one stage."""

    channels: tuple[int, ...]
    depths: tuple[int, ...]
    strides: tuple[int, ...] = (1,)
    downsamples: tuple[str, ...] = ("stride",)

    @property
    def max_depth(self) -> int:
        """Block slots this stage encodes."""
        return max(self.depths)


@dataclass(frozen=True)
class SearchSpace:
    """Everything an arch in this space may be; stem, head and class count are fixed."""

    name: str
    num_classes: int
    stem: Stem
    head: Head
    stages: tuple[StageChoices, ...]
    resolutions: tuple[int, ...]
    width_mults: tuple[float, ...] = (1.0,)
    depth_mults: tuple[float, ...] = (1.0,)
    ops: tuple[str, ...] = OPS
    kernels: tuple[int, ...] = (3, 5, 7)
    expansions: tuple[float, ...] = (1.0, 3.0, 6.0)
    se: tuple[bool, ...] = (False, True)
    activations: tuple[str, ...] = ("relu",)
    in_channels: int = 3

    def __post_init__(self) -> None:
        self._check_definition()

    # -- the genes -------------------------------------------------------------------------
    def genes(self) -> dict[str, tuple[GeneValue, ...]]:
        """Every encoded gene and its choices, in a stable order (macro, meso, micro)."""
        all_genes: dict[str, tuple[GeneValue, ...]] = {
            "macro.resolution": self.resolutions,
            "macro.width_mult": self.width_mults,
            "macro.depth_mult": self.depth_mults,
        }
        for i, stage in enumerate(self.stages):
            all_genes[f"s{i}.depth"] = stage.depths
            all_genes[f"s{i}.channels"] = stage.channels
            all_genes[f"s{i}.stride"] = stage.strides
            if 2 in stage.strides:
                all_genes[f"s{i}.downsample"] = stage.downsamples
        for i, stage in enumerate(self.stages):
            for j in range(stage.max_depth):
                for name, choices in self._block_choices(j).items():
                    all_genes[f"s{i}.b{j}.{name}"] = choices
        return {name: choices for name, choices in all_genes.items() if len(choices) > 1}

    def _block_choices(self, slot: int) -> dict[str, tuple[GeneValue, ...]]:
        ops = self.ops if slot > 0 else tuple(op for op in self.ops if op != "skip")
        return {"op": ops, "kernel": self.kernels, "expansion": self.expansions,
                "se": self.se, "activation": self.activations}

    def slot_blocks(self, slot: int) -> list[Block]:
        """The distinct blocks block slot ``slot`` can hold (fields an op ignores stay fixed).

        The one enumeration of a slot: the space's size, the latency table's units and the
        supernet's weight slots are all counted from it.
        """
        choices = self._block_choices(slot)
        out = []
        for op in choices["op"]:
            names = [name for name in BLOCK_FIELDS[1:] if name in OP_USES[op]]
            for values in itertools.product(*(choices[name] for name in names)):
                out.append(Block(op, **dict(zip(names, values))))  # type: ignore[arg-type]
        return out

    # -- encode / decode -------------------------------------------------------------------
    def encode(self, arch: Arch) -> dict[str, GeneValue]:
        """Optuna parameters for ``arch`` (which must lie in this space)."""
        self.validate(arch)
        genes = self.genes()
        values: dict[str, GeneValue] = {
            "macro.resolution": arch.resolution,
            "macro.width_mult": arch.width_mult,
            "macro.depth_mult": arch.depth_mult,
        }
        for i, stage in enumerate(arch.stages):
            values[f"s{i}.depth"] = len(stage.blocks)
            values[f"s{i}.channels"] = stage.channels
            values[f"s{i}.stride"] = stage.stride
            if stage.stride == 2:
                values[f"s{i}.downsample"] = stage.downsample
            for j, block in enumerate(stage.blocks):
                values[f"s{i}.b{j}.op"] = block.op
                for name in BLOCK_FIELDS[1:]:
                    if block.uses(name):
                        values[f"s{i}.b{j}.{name}"] = getattr(block, name)
        # inactive genes hold their first choice, so equal archs encode equally
        return {name: values.get(name, choices[0]) for name, choices in genes.items()}

    def decode(self, params: Mapping[str, Any]) -> Arch:
        """The arch a full set of parameters describes; inactive genes are ignored."""
        genes = self.genes()
        missing = [name for name in genes if name not in params]
        if missing:
            raise SpaceError(f"space {self.name!r}: parameters lack gene {missing[0]!r} "
                             f"({len(missing)} missing); encode() gives every gene")
        for name, choices in genes.items():
            if params[name] not in choices:
                raise SpaceError(f"space {self.name!r}: gene {name!r} = {params[name]!r} "
                                 f"not in {choices}")

        def gene(name: str, default: tuple[GeneValue, ...]) -> Any:
            return params[name] if name in genes else default[0]

        stages = []
        for i, choice in enumerate(self.stages):
            stride = gene(f"s{i}.stride", choice.strides)
            blocks = []
            for j in range(gene(f"s{i}.depth", choice.depths)):
                fields = {name: gene(f"s{i}.b{j}.{name}", choices)
                          for name, choices in self._block_choices(j).items()}
                blocks.append(Block(**fields))
            downsample = gene(f"s{i}.downsample", choice.downsamples) if stride == 2 else "stride"
            stages.append(Stage(gene(f"s{i}.channels", choice.channels), stride, tuple(blocks),
                                downsample))
        return Arch(
            resolution=gene("macro.resolution", self.resolutions),
            stem=self.stem, stages=tuple(stages), head=self.head,
            num_classes=self.num_classes,
            width_mult=gene("macro.width_mult", self.width_mults),
            depth_mult=gene("macro.depth_mult", self.depth_mults),
            in_channels=self.in_channels,
        )

    def sample(self, rng: random.Random | int | None = None) -> Arch:
        """A random arch: each gene drawn uniformly (``rng`` may be a seed)."""
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        return self.decode({name: rng.choice(choices) for name, choices in self.genes().items()})

    # -- membership ------------------------------------------------------------------------
    def validate(self, arch: Arch) -> None:
        """Raise `ArchError` naming the first field of ``arch`` outside this space."""
        validate(arch)

        def check(value: Any, choices: tuple[Any, ...], path: str) -> None:
            if value not in choices:
                raise ArchError(path, f"{value!r} not in {choices} (space {self.name!r})")

        check(arch.resolution, self.resolutions, "resolution")
        check(arch.width_mult, self.width_mults, "width_mult")
        check(arch.depth_mult, self.depth_mults, "depth_mult")
        check(arch.num_classes, (self.num_classes,), "num_classes")
        check(arch.in_channels, (self.in_channels,), "in_channels")
        check(arch.stem, (self.stem,), "stem")
        check(arch.head, (self.head,), "head")
        if len(arch.stages) != len(self.stages):
            raise ArchError("stages", f"{len(arch.stages)} stages; space {self.name!r} has "
                                      f"{len(self.stages)}")
        for i, (stage, choice) in enumerate(zip(arch.stages, self.stages)):
            path = f"stages[{i}]"
            check(stage.channels, choice.channels, f"{path}.channels")
            check(stage.stride, choice.strides, f"{path}.stride")
            if stage.stride == 2:
                check(stage.downsample, choice.downsamples, f"{path}.downsample")
            check(len(stage.blocks), choice.depths, f"{path}.blocks (count)")
            for j, block in enumerate(stage.blocks):
                for name, choices in self._block_choices(j).items():
                    if name == "op" or block.uses(name):
                        check(getattr(block, name), choices, f"{path}.blocks[{j}].{name}")

    def contains(self, arch: Arch) -> bool:
        """Whether ``arch`` is one of this space's archs."""
        try:
            self.validate(arch)
        except ArchError:
            return False
        return True

    def size(self) -> int:
        """Number of distinct archs in the space (exact; it is a large integer)."""

        total = len(self.resolutions) * len(self.width_mults) * len(self.depth_mults)
        for stage in self.stages:
            per_depth = 0
            for depth in stage.depths:
                blocks = 1
                for j in range(depth):
                    blocks *= len(self.slot_blocks(j))
                per_depth += blocks
            shapes = sum(len(stage.downsamples) if s == 2 else 1 for s in stage.strides)
            total *= per_depth * len(stage.channels) * shapes
        return total

    # -- identity --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The space definition as plain data (what the hash covers)."""
        return asdict(self)

    def space_hash(self) -> str:
        """Short content hash; profiles and searches record it to detect a changed space."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _check_definition(self) -> None:
        def bad(field_name: str, message: str) -> SpaceError:
            return SpaceError(f"search space {self.name!r}: {field_name}: {message}")

        for field_name in ("resolutions", "width_mults", "depth_mults", "ops", "kernels",
                           "expansions", "se", "activations"):
            values = getattr(self, field_name)
            if not values or len(set(values)) != len(values):
                raise bad(field_name, f"{values} must be non-empty without repeats")
        if not self.stages:
            raise bad("stages", "needs at least one stage")
        for name in self.ops:
            if name not in OPS:
                raise bad("ops", f"{name!r} not in {OPS}")
        if self.ops == ("skip",):
            raise bad("ops", "a stage's first block cannot be 'skip'; add another op")
        for name in self.activations:
            if name not in ACTIVATIONS:
                raise bad("activations", f"{name!r} not in {ACTIVATIONS}")
        for i, stage in enumerate(self.stages):
            if not set(stage.strides) <= {1, 2} or not stage.strides:
                raise bad(f"stages[{i}].strides", f"{stage.strides} must be drawn from (1, 2)")
            if not set(stage.downsamples) <= set(DOWNSAMPLES) or not stage.downsamples:
                raise bad(f"stages[{i}].downsamples", f"must be drawn from {DOWNSAMPLES}")
            if not stage.depths or min(stage.depths) < 1 or not stage.channels:
                raise bad(f"stages[{i}]", "needs channel choices and depths >= 1")
