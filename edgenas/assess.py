"""Score networks like for like: exact counts, predicted and measured latency on one
device, and validation accuracy after one stand-alone training recipe.

Searched archs and hand-designed baselines go through this same function, so the report's
comparison and the benchmarks in benchmarks/ differ from each other only in which archs and data
they use.
A supernet's estimate is not comparable with a stand-alone trained network's accuracy;
here both sides are trained the same way from scratch.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from edgenas.cost.count import count
from edgenas.data import open_dataset
from edgenas.device.descriptor import Device
from edgenas.errors import ProfileError
from edgenas.profile.latency import LatencyModel
from edgenas.profile.lut import LUT
from edgenas.profile.measure import measure_latency
from edgenas.space.arch import Arch
from edgenas.train.standalone import train_arch

log = logging.getLogger(__name__)


def predict_latency(lut: LUT | None, arch: Arch) -> float | None:
    """The table's prediction, or None when the arch has units the table lacks."""
    if lut is None:
        return None
    try:
        return LatencyModel(lut).predict(arch)
    except ProfileError:
        return None


def slug(name: str) -> str:
    """A folder name for a display name ("MobileNetV2 (in space)" -> "mobilenetv2-in-space")."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "net"


def assess(archs: Mapping[str, Arch], device: Device, lut: LUT | None, data_spec: str,
           out: Path, train_config: Any, *,
           on_trained: Callable[[str, dict[str, Any]], None] | None = None,
           run_dirs: Mapping[str, Path] | None = None) -> list[dict[str, Any]]:
    """One record per arch (in order): counts, latencies, stand-alone validation accuracy.

    ``train_config`` is a `edgenas.train.loop.TrainConfig`; every arch is trained with it
    into ``out/<slug>`` (or ``run_dirs[name]``: an arch a search already trained with the
    same recipe), so an interrupted call resumes each training where it stopped and a
    finished one is not trained again.
    """
    measured = measure_latency(device, archs)
    data = open_dataset(data_spec)
    records = []
    for name, arch in archs.items():
        counts = count(arch)
        log.info("training %s (%.1f M MACs) with the shared recipe", name, counts.macs / 1e6)
        run_dir = Path((run_dirs or {}).get(name) or out / slug(name))
        result = train_arch(arch, data_spec, run_dir, train_config, data=data)
        record = {"name": name, "arch": arch.to_dict(), "macs": counts.macs,
                  "params": counts.params, "memory_bytes_fp32": counts.memory_bytes("fp32"),
                  "predicted_ms": predict_latency(lut, arch), "measured_ms": measured[name],
                  "val_accuracy": result["val_accuracy"], "run_dir": str(run_dir),
                  "train_seconds": sum(e.get("seconds", 0.0) for e in result["history"])}
        records.append(record)
        if on_trained is not None:
            on_trained(name, record)
    return records
