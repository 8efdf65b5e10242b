"""The exceptions layerlapse raises for problems a user can fix.

Every message is one line: what is wrong, then what to do about it. The CLI prints it and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

SHORT_LINE = 200  # an unknown-name message stays under this, however many names the model has


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


def unknown_layer(name: str, known: Sequence[str], listing: str, model: str = "the model") -> LayerNotFoundError:
    """The error for a layer name the model lacks: the closest names that fit one short line, how many layers there
    are, and how to list them. (Listing them all buried the fix: a BERT has hundreds of modules.)"""
    tail = f": {model} has {len(known):,} layers; {listing} lists them"
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f" (did you mean {close[0]!r}?)" if close else ""  # the closest, always
    for count in range(2, len(close) + 1):  # the next ones while the line stays short
        longer = f" (did you mean {', '.join(map(repr, close[:count]))}?)"
        if len(f"unknown layer {name!r}{longer}{tail}") >= SHORT_LINE:
            break
        hint = longer
    room = max(min(SHORT_LINE - 1 - len(f"unknown layer ''{hint}{tail}"), 80), 20)
    shown = name if len(name) <= room else name[:room - 1] + "…"  # a name of 10,000 characters, say
    return LayerNotFoundError(f"unknown layer {shown!r}{hint}{tail}")


def not_recorded(layers: Sequence[str], recorded: Sequence[str], where: object) -> ConfigError:
    """The error for layers a run folder did not record (a report's, an export's choice): the closest recorded name,
    and the recorded ones while they fit one short line."""
    unknown = [layer for layer in layers if layer not in recorded]
    if not unknown:
        return ConfigError(f"no layer chosen: name at least one of the layers recorded in {where}")
    name = unknown[0] if len(unknown[0]) <= 60 else unknown[0][:59] + "…"
    close = difflib.get_close_matches(unknown[0], list(recorded), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(recorded)
    holds = listed if len(listed) <= 60 else f"{len(recorded)} layers (manifest.json's \"layers\")"
    return ConfigError(f"layer {name!r} was not recorded in {where}{hint}: it holds {holds}")


class RunFolderError(LayerlapseError):
    """A run folder cannot be written, is damaged, or is in a state that forbids the request."""


class RunBusyError(RunFolderError):
    """Another process writes the run folder (holds its lock) now."""

    def __init__(self, message: str, folder: object = None, holder: str = "") -> None:
        super().__init__(message)
        self.folder, self.holder = folder, holder


class StorageError(RunFolderError):
    """The disk refused a write: full, read-only, or not ours to write."""


class CompareError(LayerlapseError):
    """Runs that cannot be compared (`layerlapse compare`): too few, unfinished, or recorded on other probes."""


class LayerlapseWarning(UserWarning):
    """Something layerlapse worked around and says so: the run is written, but not quite as asked."""


class RecordingWarning(LayerlapseWarning):
    """A recording choice that is allowed but seldom the one meant (reduce='first' on a recurrent layer)."""


class MapWarning(LayerlapseWarning):
    """Something about the data that the map had to work around (non-finite rows, constant layers)."""


class ReportSizeWarning(LayerlapseWarning):
    """The report would be larger than its size budget, so it shows a stratified subsample of the points."""


class ExportWarning(LayerlapseWarning):
    """Something the projector cannot show in full (a sprite that cannot fit, more points than the page fetches)."""
