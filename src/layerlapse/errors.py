"""The exceptions layerlapse raises for problems a user can fix.

Every message is one line: what is wrong, then what to do about it. The CLI prints it and exits with code 2.
"""


class LayerlapseError(Exception):
    """A problem with the user's input or environment, explained in one line with its fix."""


class ConfigError(LayerlapseError, ValueError):
    """A setting has a value that is not allowed."""


class DatasetError(LayerlapseError):
    """A dataset is unknown, missing, corrupt or cannot be downloaded."""


class LayerNotFoundError(LayerlapseError, KeyError):
    """A requested layer name does not exist in the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RunFolderError(LayerlapseError):
    """A run folder cannot be written, is damaged, or is in a state that forbids the request."""


class RunBusyError(RunFolderError):
    """Another process writes the run folder (holds its lock) now."""

    def __init__(self, message: str, folder: object = None, holder: str = "") -> None:
        super().__init__(message)
        self.folder, self.holder = folder, holder


class StorageError(RunFolderError):
    """The disk refused a write: full, read-only, or not ours to write."""
