"""One writer per output folder: a second command on the same folder is refused, not mixed in.

The lock is an advisory `flock` on a small file in the folder, so the kernel releases it
when its holder dies in any way (kill -9 included): a crashed run never leaves a stale
lock behind, and the re-run resumes at once. The file names who holds it, for the message.
Processes that cooperate by design (the workers of one search study) do not take it.
`flock` does not reach across machines on every network file system; there the study's
database, not the folder, is what coordinates workers.
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from edgenas.errors import EdgenasError

LOCK_FILE = ".edgenas.lock"


class FolderLocked(EdgenasError):
    """Another process is writing into the folder."""


@contextmanager
def folder_lock(folder: str | os.PathLike[str], what: str, *, name: str = LOCK_FILE,
                enabled: bool = True) -> Iterator[None]:
    """Hold the folder's lock for the block; raises `FolderLocked` naming the holder."""
    if not enabled:  # e.g. the non-zero ranks of a torchrun job: rank 0 holds it for all
        yield
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / name, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FolderLocked(f"{path}: {holder} is using this folder; wait for it to "
                               f"finish, stop it, or give this {what} another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what} (pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC)")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
