"""Reading and writing the JSON files edgenas keeps (tables, fronts, bundles, runs).

Writes are atomic (temporary file in the same folder, fsync, rename), so a crash leaves
the old file or the new one, never half of one. Reads turn I/O and syntax problems into
one `EdgenasError` that names the file and says what would fix it.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edgenas.errors import EdgenasError, WriteError


def write_json_atomic(data: Any, path: str | os.PathLike[str]) -> None:
    """json.dump to a temporary file next to ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are meant to be shared
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise WriteError(f"{path}: cannot write ({err.strerror}); {write_hint(err)}") from None
        raise


def write_hint(err: OSError) -> str:
    """What a user does about a failed write (a full disk is the usual one)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return ("the disk is full; the previous file is kept: free space and re-run the same "
                "command (finished work is saved)")
    return "the previous file is kept: fix the folder's permissions or choose another"


def read_json(path: str | os.PathLike[str], missing_hint: str,
              error: type[EdgenasError] = EdgenasError) -> Any:
    """Parsed JSON; a missing or broken file raises ``error`` naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror}); {missing_hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:  # truncated or not text at all
        raise error(f"{path}: not valid JSON ({err}); it is damaged: restore or rebuild "
                    f"it") from None
