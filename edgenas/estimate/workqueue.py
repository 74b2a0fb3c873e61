"""A work queue in a folder: claim files and result files, nothing else.

Several processes (on one machine, or on several sharing the folder) take jobs from one
list without a server: a job is claimed by creating ``claims/<id>`` exclusively, and done
when ``results/<id>.json`` exists (written atomically). A claim records host and pid, so a
claim left by a killed process on this host is taken over; a finished result is never
redone. Training resumes inside a job from its own epoch checkpoints.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Iterable, Iterator

from edgenas.jsonio import read_json, write_json_atomic


class WorkQueue:
    """Claims and results of the jobs in ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.claims = self.root / "claims"
        self.results = self.root / "results"
        self.claims.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)

    def result_path(self, job_id: str) -> Path:
        """Where a job's result lives."""
        return self.results / f"{job_id}.json"

    def is_done(self, job_id: str) -> bool:
        """Whether the job has a result."""
        return self.result_path(job_id).exists()

    def result(self, job_id: str) -> dict[str, Any]:
        """A finished job's result."""
        return read_json(self.result_path(job_id), "the job has not finished")

    def finish(self, job_id: str, result: dict[str, Any]) -> None:
        """Store the result, then release the claim."""
        write_json_atomic(result, self.result_path(job_id))
        self._claim_path(job_id).unlink(missing_ok=True)

    def claim(self, job_id: str) -> bool:
        """Take the job unless it is done or held by a live process."""
        if self.is_done(job_id):
            return False
        path = self._claim_path(job_id)
        owner = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self.holder_alive(job_id):
                    return False
                path.unlink(missing_ok=True)   # a killed process's claim: take it over
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(owner, handle)
            return not self.is_done(job_id)    # finished between our check and claim
        return False

    def release(self, job_id: str) -> None:
        """Give a job back unfinished (its worker failed or was interrupted)."""
        self._claim_path(job_id).unlink(missing_ok=True)

    def holder_alive(self, job_id: str) -> bool:
        """Whether the job is claimed by a process that still runs (or on another host)."""
        try:
            owner = json.loads(self._claim_path(job_id).read_text())
        except FileNotFoundError:
            return False
        except (json.JSONDecodeError, OSError):
            return False           # a claim cut short by a crash while writing it
        if owner.get("host") != socket.gethostname():
            return True            # cannot check another machine's processes: trust it
        return _pid_alive(int(owner.get("pid", -1)))

    def pending(self, job_ids: Iterable[str]) -> Iterator[str]:
        """Jobs neither done nor held by a live process, in order."""
        for job_id in job_ids:
            if not self.is_done(job_id) and not self.holder_alive(job_id):
                yield job_id

    def _claim_path(self, job_id: str) -> Path:
        return self.claims / job_id


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed child not yet reaped) is not alive for our purpose
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
