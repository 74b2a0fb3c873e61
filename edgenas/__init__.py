"""edgenas: hardware-aware multi-objective NAS, from device profile to deployed engine.

The analytic side (`Arch`, `SearchSpace`, `count`) imports no torch; `build_model` loads
torch on first use, so tools that only count or encode archs start fast.
"""

from typing import Any

from edgenas.cost import Counts, count
from edgenas.errors import ArchError, EdgenasError, PresetError, SpaceError
from edgenas.space import Arch, SearchSpace, get_preset, get_space

__version__ = "0.1.0"
__all__ = ["Arch", "ArchError", "Counts", "EdgenasError", "PresetError", "SearchSpace",
           "SpaceError", "build_model", "count", "get_preset", "get_space"]


def __getattr__(name: str) -> Any:
    if name == "build_model":
        from edgenas.nn import build_model

        return build_model
    raise AttributeError(f"module 'edgenas' has no attribute {name!r}")
