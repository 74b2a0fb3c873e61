"""Shared fixtures: preset names and seeded random archs of each space."""

from __future__ import annotations

import pytest

from edgenas import get_space
from edgenas.space import ARCH_PRESETS


@pytest.fixture(params=sorted(ARCH_PRESETS))
def preset_name(request: pytest.FixtureRequest) -> str:
    return request.param


def random_archs(space_name: str, n: int, seed: int = 0) -> list:
    """``n`` archs drawn from a preset space with consecutive seeds (reproducible)."""
    space = get_space(space_name)
    return [space.sample(seed + i) for i in range(n)]
