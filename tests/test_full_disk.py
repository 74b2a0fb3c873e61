"""A full disk (a small tmpfs as the output folder) during profiling, training and export:
one clear error naming the file, the previous good file intact, and the same command
finishing once there is space again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import EDGENAS_CLI, acting_after_each_rename, tiny_space
from edgenas.device.descriptor import get_device
from edgenas.errors import EdgenasError
from edgenas.export.bundle import load_bundle
from edgenas.profile.lut import load_lut, save_lut
from edgenas.profile.profiler import profile
from edgenas.space import get_space
from edgenas.train.checkpoint import load_checkpoint

FILLER = "filler.bin"


@pytest.fixture
def small_disk(tmp_path):  # noqa: ANN201
    """A 64 MiB tmpfs; mounting needs root (CI runs as root), elsewhere the test skips."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> None:
    """Write until the disk is full (ENOSPC), leaving no byte free."""
    fd = os.open(disk / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)


def free(disk: Path) -> None:
    (disk / FILLER).unlink()


def _quick(device):  # noqa: ANN001, ANN202
    return replace(device, timing=replace(device.timing, warmup=1, repeats=5, min_time_ms=1.0))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".partial" in p.name or p.suffix == ".tmp")


def test_profiling_on_a_full_disk_keeps_the_previous_table(small_disk) -> None:
    device, space = _quick(get_device("host-cpu")), tiny_space()
    path = small_disk / "profiles" / "host-cpu" / "tiny.json"
    lut = profile(device, space, calibrate=4, chunk=16, checkpoint=lambda t: save_lut(t, path))
    good = path.read_bytes()
    fill(small_disk)
    with pytest.raises(EdgenasError, match=rf"{path}: cannot write \(No space left on device\).*"
                                           "previous file is kept"):
        profile(device, space, lut, calibrate=4, chunk=16, recalibrate=True,
                checkpoint=lambda t: save_lut(t, path))
    assert path.read_bytes() == good and _leftovers(small_disk) == []
    free(small_disk)
    again = profile(device, space, load_lut(path), calibrate=4, chunk=16, recalibrate=True,
                    checkpoint=lambda t: save_lut(t, path))
    assert load_lut(path).entries.keys() == again.entries.keys() == lut.entries.keys()


def _edgenas(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgenas.cli", *argv], capture_output=True,
                          text=True, timeout=600)


def _lean_arch(folder: Path) -> Path:
    arch = get_space("cifar").sample(7)
    path = folder / "arch.json"
    path.write_text(arch.to_json())
    return path


def test_training_on_a_full_disk_keeps_the_last_checkpoint_and_resumes(small_disk, tmp_path) -> None:
    out = small_disk / "run"
    argv = ["train", str(_lean_arch(tmp_path)), "--data", "digits", "--epochs", "6",
            "--limit", "256", "--val-limit", "64", "--batch-size", "64", "--out", str(out)]
    checkpoint = out / "checkpoint.pt"
    # the disk fills up the moment the first epoch's checkpoint is in place
    fill_after_epoch_1 = f"""
from test_full_disk import fill
if path == Path({str(checkpoint)!r}):
    fill(Path({str(small_disk)!r}))
"""
    process = subprocess.run([*acting_after_each_rename(EDGENAS_CLI, fill_after_epoch_1), *argv],
                             capture_output=True, text=True, timeout=600)
    stderr = process.stderr
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr and "No space left on device" in stderr
    assert "free space and re-run the same command" in stderr
    saved = load_checkpoint(checkpoint)  # the last finished epoch, intact
    assert saved["epoch"] == 1 and _leftovers(small_disk) == []
    free(small_disk)
    done = _edgenas(*argv)
    assert done.returncode == 0, done.stderr
    assert "after epoch 1" in done.stderr  # resumed, not restarted
    assert load_checkpoint(checkpoint)["epoch"] == 6 and (out / "result.json").exists()


def test_export_on_a_full_disk_keeps_the_previous_bundle(small_disk, tmp_path) -> None:
    arch = _lean_arch(tmp_path)
    out = small_disk / "bundle"
    argv = ["export", str(arch), "--formats", "onnx", "--out", str(out)]
    first = _edgenas(*argv)
    assert first.returncode == 0, first.stderr
    manifest = (out / "manifest.json").read_bytes()
    fill(small_disk)
    failed = _edgenas(*argv)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert "No space left on device" in failed.stderr
    assert (out / "manifest.json").read_bytes() == manifest
    load_bundle(out)  # every file still matches its manifest
    assert _leftovers(small_disk) == [] and not (small_disk / ".bundle.partial").exists()
    free(small_disk)
    assert _edgenas(*argv).returncode == 0
    load_bundle(out)
