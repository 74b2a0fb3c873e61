"""Data that ships inside the package: device descriptors and the default ground truth.

An installed wheel has no repository around it, so nothing the library reads may live
beside the package (``benchmarks/``, the checkout's ``devices/``). Everything it needs at run
time is here and is found through :mod:`importlib.resources`; the user's own folders
(``./devices``, ``./profiles``) are still searched first by the code that reads them.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path

_open_files = contextlib.ExitStack()
atexit.register(_open_files.close)


def shipped_path(*parts: str) -> Path:
    """A real file-system path of a shipped file or folder.

    ``as_file`` extracts the resource when the package is not a plain folder (a zip
    import); the extraction lives as long as the process, because callers keep paths.
    """
    resource = resources.files(__name__).joinpath(*parts)
    return _open_files.enter_context(resources.as_file(resource))


def shipped_devices_dir() -> Path:
    """The folder of the device descriptors edgenas ships (host CPU, Jetsons, phone)."""
    return shipped_path("devices")


def default_groundtruth_path() -> Path:
    """The committed CIFAR-10 ground truth the default ``predictor`` estimator fits on."""
    return shipped_path("groundtruth", "cifar-c10-cpu.json")
