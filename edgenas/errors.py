"""Exception types raised where bad input enters edgenas.

Every error says *where* (file and field path) and *what would have been accepted*, so a
user can fix the input without reading a traceback from deep inside torch.
"""

from __future__ import annotations


class EdgenasError(Exception):
    """Base class: everything edgenas raises on purpose derives from it."""


class ArchError(EdgenasError, ValueError):
    """An architecture value or file is malformed or outside a search space.

    ``path`` is the field path inside the arch (``stages[2].blocks[1].kernel``); ``source``
    is the file it came from, when there is one.
    """

    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        field = f"{path}: " if path else ""
        super().__init__(f"{where}{field}{message}")

    def with_source(self, source: str) -> "ArchError":
        """The same error, now naming the file the arch was read from."""
        return ArchError(self.path, self.message, source)


class SpaceError(EdgenasError, ValueError):
    """A search space definition or a name that should refer to one is invalid."""


class PresetError(EdgenasError, KeyError):
    """A preset name (architecture or search space) is unknown."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(EdgenasError, ValueError):
    """A dataset path, spec or content is unusable; names the path and how to fix it."""


class CheckpointError(EdgenasError, ValueError):
    """A training checkpoint or run directory does not match what is being resumed or loaded."""


class DeviceError(EdgenasError):
    """A device descriptor is malformed, or a device cannot be reached or run a command."""


class ProfileError(EdgenasError):
    """A latency table is malformed, incomplete, or no longer matches its device."""


class NoTableError(ProfileError):
    """A device has no latency table at all: not a fault of any table, so a caller asking
    many devices (an export's predictions) names such devices together, in one line."""


class ConfigError(EdgenasError, ValueError):
    """A run setting is outside what is accepted; names the setting and the choices."""


class WriteError(EdgenasError, OSError):
    """A file could not be written (a full disk, no permission); the message names it.

    Also an OSError, so that code which skips an optional write on OSError still does.
    """


class ExportError(EdgenasError):
    """An export failed or did not verify."""
