"""Every distinct unit a search space can produce, with its input size: the LUT's keys.

The units come from `edgenas.space.plan.space_sites`, the same walk that unfolds one arch;
here they only get their keys.
"""

from __future__ import annotations

from functools import lru_cache

from edgenas.space.plan import Conv, Pool, SqueezeExcite, Unit, space_sites
from edgenas.space.search_space import SearchSpace


def _layer_key(layer: object) -> str:
    if isinstance(layer, Conv):
        kind = "dw" if layer.depthwise else "conv"
        return (f"{kind}{layer.kernel}s{layer.stride}:{layer.in_channels}>{layer.out_channels}"
                f":{layer.activation or 'linear'}")
    if isinstance(layer, SqueezeExcite):
        return f"se:{layer.channels}/{layer.squeeze_channels}"
    if isinstance(layer, Pool):
        return f"{layer.kind}pool2"
    raise TypeError(f"no key for {layer!r}")


@lru_cache(maxsize=262144)
def unit_key(unit: Unit, size: int) -> str:
    """A readable, exact key: input size, then the unit's layers, shortcut and activation.

    Example: ``@16|conv1s1:32>96:relu|dw3s2:96>96:relu|conv1s1:96>48:linear``.
    """
    parts = [f"@{size}", *(_layer_key(layer) for layer in unit.layers)]
    if isinstance(unit.shortcut, Conv):
        parts.append("+" + _layer_key(unit.shortcut))
    elif unit.shortcut == "identity":
        parts.append("+id")
    if unit.post_activation:
        parts.append(f"post:{unit.post_activation}")
    if unit.is_identity:
        parts.append(f"identity:{unit.in_channels}")
    return "|".join(parts)


def space_units(space: SearchSpace) -> dict[str, tuple[Unit, int]]:
    """key -> (unit, input size) for every unit any arch of ``space`` can contain."""
    found: dict[str, tuple[Unit, int]] = {}
    for site in space_sites(space):
        found.setdefault(unit_key(site.unit, site.height), (site.unit, site.height))
    return found


def unit_roles(space: SearchSpace) -> dict[str, str]:
    """key -> the role of the site a unit of ``space`` plays (`edgenas.space.plan.Site.role`;
    a network's stem first, should a unit ever play two)."""
    roles: dict[str, str] = {}
    for site in space_sites(space):
        key = unit_key(site.unit, site.height)
        if roles.get(key) != "stem":
            roles[key] = site.role
    return roles
