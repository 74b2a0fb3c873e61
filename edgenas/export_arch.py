"""Export one arch to a verified bundle: choose weights and data, prepare images, predict.

The CLI's `edgenas export` and the pipeline call `export_arch`; it gathers what
`export_bundle` needs (model with weights, validation and calibration images, the
preprocessing, latency predictions on every profiled device) from run directories.
An orchestrator beside `pipeline` and `assess`: it uses training runs, the latency
tables and `export`, so that `export` itself needs neither.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgenas.data.augment import prepare_batch
from edgenas.device.descriptor import list_devices
from edgenas.errors import EdgenasError, NoTableError
from edgenas.export.bundle import export_bundle
from edgenas.nn.model import build_model
from edgenas.profile.latency import predict_on_device
from edgenas.space import Arch
from edgenas.space.presets import spaces_holding
from edgenas.train.rundata import prepare_data
from edgenas.train.weights import trained_model

log = logging.getLogger(__name__)
AGREEMENT_IMAGES = 500
CALIBRATION_IMAGES = 512


def predicted_latencies(arch: Arch, profiles_dir: str | Path) -> dict[str, Any]:
    """Predicted ms on every device with a (non-stale) table for a space holding ``arch``."""
    out = {}
    holding = spaces_holding(arch)
    untabled = []
    for device in list_devices():
        try:
            prediction = predict_on_device(device, arch, profiles_dir, holding=holding)
        except NoTableError:
            untabled.append(device.name)
            continue
        except EdgenasError as err:
            log.info("no latency prediction for %s: %s", device.name, err)
            continue
        out[device.name] = {"ms": prediction.ms, "lut": str(prediction.path),
                            "lut_updated": prediction.lut.updated,
                            # the model the table timed: the one deploy runs and compares
                            "precision": prediction.lut.runtime.get("precision", "fp32")}
    if untabled:
        log.info("no latency prediction for %s: no table in %s/ ('edgenas profile DEVICE' "
                 "measures one)", ", ".join(untabled), profiles_dir)
    return out


def export_arch(arch: Arch, out: Path, formats: tuple[str, ...], weights: str | None = None,
                data: str = "digits", profiles_dir: str | Path = "profiles",
                drop_rejected: bool = False, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Export ``arch`` with the weights of run ``weights`` (or untrained: FP32 only);
    ``drop_rejected``: an FP16/INT8 variant that fails its check is left out, with the
    reason in the bundle's metrics, instead of failing the export; one in ``keep`` is
    shipped all the same (`edgenas.export.bundle.export_bundle`)."""
    if not weights and set(formats) - {"onnx"}:
        raise EdgenasError("FP16/INT8 exports are verified by top-1 agreement with FP32, which "
                           "only means something for a trained network: pass --weights RUN, "
                           "or --formats onnx for an untrained (latency-only) export")
    if weights:
        model, run_data, provenance = trained_model(arch, weights)
    else:
        log.warning("no --weights: exporting an untrained network (fine for latency, "
                    "meaningless for accuracy)")
        torch.manual_seed(0)
        model = build_model(arch).eval()
        run_data = prepare_data(data, arch.num_classes)
        provenance = {"split": {"split": run_data.split.to_dict(), "data": run_data.spec}}
    images, labels = run_data.data.images, run_data.data.labels
    val = run_data.split.val
    # a seeded sample of the training images: a dataset stored class by class would
    # otherwise calibrate INT8 ranges on its first few classes only
    order = torch.randperm(len(run_data.split.train), generator=torch.Generator().manual_seed(0))
    calibration = run_data.split.train[order[:CALIBRATION_IMAGES]]
    uncalibrated = run_data.split.train[order[CALIBRATION_IMAGES:]]
    # agreement needs >= 500 images; top up a small validation split, first with images a
    # subset-trained run never saw, then with training images the INT8 calibration did not
    # see (accuracy is still reported on validation only)
    seen = torch.zeros(len(labels), dtype=torch.bool)
    seen[run_data.split.train], seen[val] = True, True
    pool = torch.cat([torch.nonzero(~seen).flatten(), uncalibrated])
    extra = pool[:max(0, AGREEMENT_IMAGES - len(val))]
    if extra.numel():
        log.info("validation split has %d images; %d images the network was not trained or "
                 "calibrated on were added for the agreement checks", len(val), len(extra))

    def batch(index: torch.Tensor) -> np.ndarray:
        return torch.cat([prepare_batch(images[index[i:i + 256]], run_data.normalize, False,
                                        arch.resolution) for i in range(0, len(index), 256)]).numpy()

    return export_bundle(
        arch, model, Path(out), val_inputs=batch(torch.cat([val, extra])),
        val_labels=np.concatenate([labels[val].numpy(), np.full(len(extra), -1)]),
        calibration=batch(calibration),
        preprocess={"resolution": arch.resolution, "channels": arch.in_channels, "layout": "NCHW",
                    "scale": "pixels / 255", "mean": list(run_data.normalize.mean),
                    "std": list(run_data.normalize.std), "resize": "bilinear"},
        labels=list(run_data.data.classes), formats=formats, provenance=provenance,
        predicted_latency=predicted_latencies(arch, profiles_dir), drop_rejected=drop_rejected,
        keep=keep)
