"""An independent measurement of peak activation memory, for checking `count()`.

It shares no code with the analytic model: the built network is traced with torch.fx,
batch norm is folded into convolutions (`torch.fx.experimental.optimization.fuse`), and the
graph is run by `torch.fx.Interpreter`, which drops each value after its last use. A
`TorchDispatchMode` watches every tensor the run creates and records, after each op, the
bytes of all storages that are still referenced.
"""

from __future__ import annotations

import weakref

import torch
from torch.fx import Interpreter, symbolic_trace
from torch.fx.experimental.optimization import fuse
from torch.utils._python_dispatch import TorchDispatchMode


class _LiveBytes(TorchDispatchMode):
    def __init__(self, excluded: set[int]) -> None:
        super().__init__()
        self.excluded = excluded
        self.storages: dict[int, tuple[int, list[weakref.ref]]] = {}
        self.peak = 0

    def track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self.excluded:
            return
        entry = self.storages.get(key)
        if entry is None or not any(ref() is not None for ref in entry[1]):
            # a new storage, or a freed one whose address the allocator handed out again
            entry = self.storages[key] = (storage.nbytes(), [])
        entry[1].append(weakref.ref(tensor))

    def live_bytes(self) -> int:
        total = 0
        for key in list(self.storages):
            nbytes, refs = self.storages[key]
            if any(ref() is not None for ref in refs):
                total += nbytes
            else:
                del self.storages[key]
        return total

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self.track(tensor)
        self.peak = max(self.peak, self.live_bytes())
        return out


def measured_peak_activation_bytes(model: torch.nn.Module, image: torch.Tensor) -> int:
    """Peak bytes of simultaneously live activations (input included) in one inference."""
    graph = fuse(symbolic_trace(model.eval()))
    excluded = {t.untyped_storage().data_ptr() for t in graph.state_dict().values()}
    mode = _LiveBytes(excluded)
    mode.track(image)
    with torch.no_grad(), mode:
        Interpreter(graph).run(image)
    return mode.peak
