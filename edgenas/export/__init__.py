"""Export an arch with its weights to verified ONNX / FP16 / INT8 bundles.

The FP16 and INT8 conversions (`fp16`, `int8`) import no torch: the profiler converts the
graphs it times with them. The bundle's names load torch on first use, as `edgenas`'s
`build_model` does.
"""

from typing import Any

__all__ = ["FORMATS", "export_bundle", "load_bundle"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from edgenas.export import bundle

        return getattr(bundle, name)
    raise AttributeError(f"module 'edgenas.export' has no attribute {name!r}")
