"""Run directories: an identity file, an atomically replaced checkpoint, a result file.

A run directory holds ``run.json`` (what is being trained, on which data and split, with
which settings), ``checkpoint.pt`` (the state after the last finished epoch) and, once
done, ``result.json``. Checkpoints hold only tensors and plain values, so they load with
``torch.load(weights_only=True)``; archs and spaces are stored as JSON strings. Each is
written to a temporary file that replaces the old one, so a kill -9 at any moment leaves
either the previous or the new checkpoint, never half of one.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from edgenas.data import canonical_spec
from edgenas.errors import CheckpointError
from edgenas.jsonio import write_hint, write_json_atomic
from edgenas.space.arch import Head, Stem
from edgenas.space.search_space import SearchSpace, StageChoices

SCHEMA_VERSION = 1
RUN_FILE, CHECKPOINT_FILE, RESULT_FILE = "run.json", "checkpoint.pt", "result.json"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, fsync, then atomically replace ``path``.

    The state is serialised in memory first: on a full disk ``torch.save`` into a file
    fails with an internal assertion ("unexpected pos"), a plain write with ENOSPC.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: cannot save the checkpoint ({err.strerror}); "
                              f"{write_hint(err)}") from None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's state; only tensors and plain values are accepted (weights_only)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint; train first (edgenas supernet train "
                              "or edgenas train)") from None
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        raise CheckpointError(f"{path}: not a readable edgenas checkpoint ({err})") from None
    if state.get("schema_version") != SCHEMA_VERSION:
        raise CheckpointError(f"{path}: schema_version {state.get('schema_version')!r}; this "
                              f"edgenas reads {SCHEMA_VERSION}")
    return state


def read_run(run_dir: Path) -> dict[str, Any]:
    """The ``run.json`` of a run directory."""
    path = Path(run_dir) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; {run_dir} is not an edgenas training run "
                              "directory") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None


def start_or_resume(run_dir: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """Record ``identity`` in a new run dir, or return the checkpoint to resume from.

    Re-running the same command continues the run; a different command pointed at the
    same directory is refused rather than silently mixing two runs.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    run_path = run_dir / RUN_FILE
    identity = {"schema_version": SCHEMA_VERSION, **identity}
    if run_path.exists():
        recorded = read_run(run_dir)
        data = recorded.get("data")
        for key in ("spec", "source"):
            if isinstance(data, dict) and isinstance(data.get(key), str):
                # runs recorded before paths were made absolute: relative to where we run now
                data[key] = canonical_spec(data[key])
        if recorded != json.loads(json.dumps(identity)):
            changed = sorted(k for k in set(recorded) | set(identity)
                             if recorded.get(k) != json.loads(json.dumps(identity.get(k))))
            raise CheckpointError(f"{run_path}: this directory holds a different run "
                                  f"(differs in {changed}); use another --out directory or "
                                  "delete this one")
    else:
        write_json_atomic(identity, run_path)
    checkpoint = run_dir / CHECKPOINT_FILE
    return load_checkpoint(checkpoint) if checkpoint.exists() else None


def space_to_json(space: SearchSpace) -> str:
    """A search space as a JSON string (checkpoints store no Python objects)."""
    return json.dumps(space.to_dict(), sort_keys=True)


def space_from_json(text: str) -> SearchSpace:
    """The `SearchSpace` that `space_to_json` wrote (lists become tuples again)."""
    data = json.loads(text)
    tuples = {f.name for f in fields(SearchSpace)} - {"name", "num_classes", "stem", "head",
                                                      "stages", "in_channels"}
    kwargs = {k: (tuple(v) if k in tuples else v) for k, v in data.items()}
    kwargs["stem"] = Stem(**data["stem"])
    kwargs["head"] = Head(**data["head"])
    kwargs["stages"] = tuple(StageChoices(**{k: tuple(v) for k, v in stage.items()})
                             for stage in data["stages"])
    return SearchSpace(**kwargs)
