"""The architecture value, search spaces and their presets (no torch)."""

from edgenas.space.arch import ACTIVATIONS, DOWNSAMPLES, OPS, Arch, Block, Head, Stage, Stem
from edgenas.space.presets import ARCH_PRESETS, SPACES, get_preset, get_space
from edgenas.space.search_space import SearchSpace, StageChoices

__all__ = ["ACTIVATIONS", "ARCH_PRESETS", "Arch", "Block", "DOWNSAMPLES", "Head", "OPS",
           "SPACES", "SearchSpace", "Stage", "StageChoices", "Stem", "get_preset", "get_space"]
