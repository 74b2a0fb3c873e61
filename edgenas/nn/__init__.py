"""PyTorch side: blocks and the model builder (imports torch)."""

from edgenas.nn.model import Network, build_model

__all__ = ["Network", "build_model"]
