"""Export an arch with its weights to verified ONNX / FP16 / INT8 bundles."""

from edgenas.export.bundle import FORMATS, export_bundle, load_bundle

__all__ = ["FORMATS", "export_bundle", "load_bundle"]
