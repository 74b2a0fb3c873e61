"""`SuperNet`: one module that contains every arch of a search space (weight sharing).

Once-for-All's idea, driven by an `Arch` alone: the arch is unfolded by
`edgenas.space.plan.sites` exactly as `build_model` unfolds it, and each planned unit runs
on the shared weights of its *slot*:

* a block slot is (stage, position, op); positions count blocks after the depth
  multiplier, so a stage has max(depths) x max(depth_mults) slots and the first d are
  active (elastic depth; repeated blocks still get their own slot weights);
* a slot's weights are as large as the largest unit it can hold; a smaller unit uses the
  first channels (elastic width, expansion, SE width) and the centre of the kernel
  (elastic kernel), see `edgenas.nn.elastic`;
* activations, pooling down-samples and resolution have no weights; the input is resized
  to ``arch.resolution`` when it arrives at another size.

`SuperNet.subnet` copies the active slices into the plain `Network` that `build_model`
builds, so a searched arch leaves the supernet as an ordinary model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from edgenas.errors import ArchError
from edgenas.nn.elastic import ElasticLinear, ElasticUnit
from edgenas.nn.model import Network, build_model
from edgenas.space.arch import Arch, Block
from edgenas.space.plan import Site, Unit, depth_after, sites, space_sites
from edgenas.space.widths import head_width, scale_width
from edgenas.space.search_space import SearchSpace

Route = tuple[tuple[str, Unit], ...]


def stage_slots(space: SearchSpace, index: int) -> int:
    """Block slots of stage ``index``: its deepest choice after the largest depth multiplier."""
    return depth_after(max(space.stages[index].depths), max(space.depth_mults))


def possible_units(space: SearchSpace) -> dict[str, set[Unit]]:
    """Every planned unit each weight slot of the space's supernet must be able to run.

    The units come from the space's own enumeration (`plan.space_sites`); activations have
    no weights, so each block is taken with the space's first activation.
    """
    def weight_blocks(slot: int) -> set[Block]:
        return {replace(block, activation=space.activations[0])
                for block in space.slot_blocks(slot)}

    units: dict[str, set[Unit]] = defaultdict(set)
    for site in space_sites(space, weight_blocks):
        if site.role in ("stem", "head"):
            units[site.role].add(site.unit)
        elif site.role == "block":
            assert site.block is not None
            later = range(1, stage_slots(space, site.stage))
            for j in later if site.index else (0,):
                units[slot_key(site.stage, j, site.block.op)].add(site.unit)
    units["pool"] = set()
    return dict(units)


def slot_key(stage: int, position: int, op: str) -> str:
    """Name of the shared weights of one op at one block position."""
    return f"s{stage}_b{position}_{op}"


def _site_key(site: Site) -> str:
    if site.block is not None:
        return slot_key(site.stage, site.index, site.block.op)
    return site.role  # "stem", "pool", "head"


class SuperNet(nn.Module):
    """Every arch of ``space`` in one module; ``supernet(x, arch)`` runs one of them."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space
        self.slots = nn.ModuleDict({key: ElasticUnit(units)
                                    for key, units in sorted(possible_units(space).items())})
        # the classifier reads the head's width, or the last stage's where there is no head
        features = max(head_width(space.head.channels, wm) or scale_width(channels, wm)
                       for wm in space.width_mults for channels in space.stages[-1].channels)
        self.classifier = ElasticLinear(features, space.num_classes)
        self.active: Arch | None = None
        self._route = lru_cache(maxsize=4096)(self._make_route)

    # -- choosing the path -------------------------------------------------------------
    def set_active(self, arch: Arch) -> None:
        """Make ``arch`` the path that ``forward(x)`` runs (validated against the space)."""
        self._route(arch)
        self.active = arch

    def route(self, arch: Arch) -> Route:
        """(slot key, planned unit) for every unit of ``arch``, in order (cached)."""
        return self._route(arch)

    def _make_route(self, arch: Arch) -> Route:
        self.space.validate(arch)
        route = []
        for site in sites(arch):
            key = _site_key(site)
            if key not in self.slots or not self.slots[key].fits(site.unit):  # type: ignore
                raise ArchError("", f"supernet of space {self.space.name!r} has no weights "
                                    f"for unit {key} ({site.unit.in_channels}->"
                                    f"{site.unit.out_channels}); was it built for this space?")
            route.append((key, site.unit))
        return tuple(route)

    # -- running -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, arch: Arch | None = None) -> torch.Tensor:
        arch = arch if arch is not None else self.active
        if arch is None:
            raise ArchError("", "no active arch: call supernet(x, arch) or set_active(arch)")
        route = self._route(arch)
        if x.shape[-1] != arch.resolution or x.shape[-2] != arch.resolution:
            x = F.interpolate(x, size=(arch.resolution, arch.resolution), mode="bilinear",
                              align_corners=False, antialias=True)
        for key, unit in route:
            x = self.slots[key](x, unit)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = F.dropout(x, arch.head.dropout, self.training)
        return self.classifier(x, x.shape[1])

    @torch.no_grad()
    def subnet(self, arch: Arch) -> Network:
        """``build_model(arch)`` with the supernet's sliced weights and BN statistics."""
        route = self._route(arch)
        network = build_model(arch)
        for (key, unit), block in zip(route, network.units):
            self.slots[key].export_into(block, unit)  # type: ignore[operator]
        self.classifier.export_into(network.classifier.linear)
        device = next(self.parameters()).device
        return network.to(device=device, memory_format=_memory_format(self))

    def __getstate__(self) -> dict:  # the route cache is a bound lru_cache; rebuild it
        state = self.__dict__.copy()
        state.pop("_route", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._route = lru_cache(maxsize=4096)(self._make_route)


def _memory_format(module: nn.Module) -> torch.memory_format:
    weight = next((p for p in module.parameters() if p.dim() == 4), None)
    if weight is not None and weight.is_contiguous(memory_format=torch.channels_last) \
            and not weight.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
