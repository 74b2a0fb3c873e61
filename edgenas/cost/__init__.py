"""Device-independent cost of an arch: MACs, params, peak memory (no torch)."""

from edgenas.cost.count import ELEMENT_BYTES, Counts, count

__all__ = ["ELEMENT_BYTES", "Counts", "count"]
