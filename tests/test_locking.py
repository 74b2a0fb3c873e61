"""Two commands on one output folder: the second is refused with a message naming the
folder and its holder; a holder killed with SIGKILL leaves no stale lock."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from edgenas.cli import main
from edgenas.locking import FolderLocked, folder_lock

CONTEXT = multiprocessing.get_context("fork")


def _hold(folder: str, what: str, name: str, ready, release) -> None:  # noqa: ANN001
    with folder_lock(folder, what, name=name):
        ready.set()
        release.wait(60)


def holder(folder: Path, what: str = "training", name: str = ".edgenas.lock"):
    ready, release = CONTEXT.Event(), CONTEXT.Event()
    process = CONTEXT.Process(target=_hold, args=(str(folder), what, name, ready, release))
    process.start()
    assert ready.wait(30), "the holder never took the lock"
    return process, release


def test_a_second_writer_is_refused_and_a_killed_holder_frees_the_folder(tmp_path: Path) -> None:
    process, _ = holder(tmp_path / "run")
    try:
        with pytest.raises(FolderLocked, match=rf"training \(pid {process.pid} on"):
            with folder_lock(tmp_path / "run", "training"):
                pass
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    with folder_lock(tmp_path / "run", "training"):  # kill -9 released it
        pass


@pytest.mark.parametrize("command", ["train", "run", "search", "profile"])
def test_commands_refuse_a_folder_in_use(tmp_path: Path, command: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    if command == "profile":  # the lock sits beside the table it writes
        folder, name = tmp_path / "profiles" / "host-cpu", ".cifar.lock"
        argv = ["profile", "host-cpu", "--profiles-dir", str(tmp_path / "profiles")]
    elif command == "search":
        folder, name = out, ".leader.lock"
        argv = ["search", "--estimator", "trained", "--data", "digits", "--objectives",
                "accuracy,macs", "--out", str(out)]
    else:
        folder, name = out, ".edgenas.lock"
        argv = (["train", "resnet20", "--data", "digits", "--epochs", "1", "--out", str(out)]
                if command == "train" else ["run", "--out", str(out)])
    process, release = holder(folder, "another job", name)
    try:
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert str(folder) in error and "another job" in error
    finally:
        release.set()
        process.join(30)
