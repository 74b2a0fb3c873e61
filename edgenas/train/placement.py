"""Where training runs: device choice, mixed precision, and torchrun's distributed setup.

Launched plainly, training uses one process on CUDA when present, else the CPU. Launched
by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), every process joins
one process group and trains on its shard of each epoch, with no change to the command.
On CUDA, autocast (fp16 with a gradient scaler) and channels_last memory are used; on the
CPU neither helps, so both are off.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ContextManager

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where a training process runs: its torch device and its rank in a (possibly one-process)
    job. (Not `edgenas.device.descriptor.Runtime`, the inference runtime a device times with.)
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether gradients must be averaged across processes."""
        return self.world_size > 1

    @property
    def amp(self) -> bool:
        """Mixed precision: CUDA only."""
        return self.device.type == "cuda"

    @property
    def memory_format(self) -> torch.memory_format:
        """channels_last on CUDA (faster convolutions), the default elsewhere."""
        return torch.channels_last if self.device.type == "cuda" else torch.contiguous_format

    def autocast(self) -> ContextManager[object]:
        """fp16 autocast on CUDA; nothing on the CPU."""
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler that is active exactly when autocast is."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp)


def place(device: str | None = None) -> Placement:
    """Where this process trains (joins the torchrun process group when launched so)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        log.info("joined process group: rank %d of %d on %s", rank, world_size, chosen)
    return Placement(chosen, rank, world_size, local_rank)


def average_gradients(parameters: list[torch.nn.Parameter], placement: Placement) -> None:
    """Average gradients across processes; a parameter no process used stays without one.

    The supernet runs different subnets per step, so which parameters received gradients
    is known only after the step; ranks agree on it first, then all-reduce.
    """
    if not placement.distributed:
        return
    device = placement.device
    has_grad = torch.tensor([p.grad is not None for p in parameters], dtype=torch.int32,
                            device=device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    for param, used in zip(parameters, has_grad.tolist()):
        if not used:
            continue
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad)
        param.grad.div_(placement.world_size)


def broadcast_parameters(module: torch.nn.Module, placement: Placement) -> None:
    """Start every process from rank 0's weights."""
    if placement.distributed:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, 0)
