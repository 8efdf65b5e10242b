"""The manifest of a run folder: read (never past MAX_MANIFEST_BYTES), every entry checked before a path is made of
it, and written back as its reader will take it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from . import layout
from ..errors import ConfigError, RunFolderError
from .layout import MANIFEST


SCHEMA_VERSION = 1
# Written into every manifest: a marker another tool's manifest.json cannot carry by accident, so --force knows a
# layerlapse run from anything else that happens to have a schema_version and a files table.
FORMAT = "layerlapse run folder"
MANIFEST_KEYS = ("status", "config", "dataset", "layers", "epochs_complete", "history", "test", "files")
STATUSES = ("running", "interrupted", "failed", "complete")
MAX_MANIFEST_BYTES = 64_000_000  # a run of 10 layers × 1,000 epochs lists ~50,000 files: a few MB
# ---- the manifest ----------------------------------------------------------------------------------------------------
def _read_manifest_text(folder: Path) -> str:
    path = folder / MANIFEST
    if path.is_symlink():
        raise RunFolderError(f"{path} is a symbolic link, and layerlapse never follows a link out of a run folder: "
                             "replace it with the file itself")
    if not path.is_file():
        raise RunFolderError(f"{folder} holds no {MANIFEST}: give the folder of a layerlapse run "
                             "(made by `layerlapse run` or `layerlapse demo`)")
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise RunFolderError(f"{path} is damaged: {size / 1e6:.0f} MB, where a run's manifest holds a few: "
                                 "restore it, or record the run again with --force")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise RunFolderError(f"{path} is damaged ({error}): restore it, or record the run again with --force") \
            from None
    except OSError as error:
        raise RunFolderError(f"{path} cannot be read ({error.strerror or error}): check its permissions") from None


def _parse_manifest(text: str, folder: Path) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        why = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise RunFolderError(f"{folder / MANIFEST} is damaged ({why}): restore it, or record the run again with "
                             "--force") from None


def check_manifest(manifest: Any, folder: Path) -> dict[str, Any]:
    """Every entry of a manifest checked for its type and, where it becomes a path, for being a plain name inside
    the run folder; the first wrong entry is a one-line RunFolderError naming it."""
    where = folder / MANIFEST
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise RunFolderError(f"{where} has schema version {found!r}, this layerlapse reads {SCHEMA_VERSION}: "
                             "record the run again with this version")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise RunFolderError(f"{where} is damaged (it lacks {', '.join(missing)}): record the run again with --force")

    def wrong(entry: str, expected: str) -> RunFolderError:
        value = repr(_entry(manifest, entry))
        shown = value if len(value) <= 60 else value[:57] + "..."
        return RunFolderError(f"{where} is damaged: {entry} must be {expected}, got {shown}; restore it, or record "
                              "the run again with --force")

    if manifest.get("format", FORMAT) != FORMAT:
        raise wrong("format", repr(FORMAT))
    if manifest["status"] not in STATUSES:
        raise wrong("status", f"one of {', '.join(STATUSES)}")
    if not isinstance(manifest["config"], dict):
        raise wrong("config", "a table of settings")
    _check_dataset(manifest, wrong)
    layers = manifest["layers"]
    if not isinstance(layers, list) or not layers or len(set(map(str, layers))) != len(layers):
        raise wrong("layers", "a list of distinct layer names")
    for position, layer in enumerate(layers):
        if layout.plain_name_problem(layer) is not None:
            raise wrong(f"layers[{position}]", "a plain layer name, not a path")
    if not _is_int(manifest["epochs_complete"]) or manifest["epochs_complete"] < -1:
        raise wrong("epochs_complete", "a whole number of at least -1")
    _check_history(manifest, wrong)
    test = manifest["test"]
    if test is not None and not (isinstance(test, dict) and all(_is_number(test.get(key))
                                                               for key in ("loss", "accuracy", "size"))):
        raise wrong("test", "null or a table of loss, accuracy and size")
    _check_files(manifest, where)
    maps = manifest.get("maps")
    if maps is not None and not (isinstance(maps, dict) and isinstance(maps.get("method"), str)):
        raise wrong("maps", "a table with the map method")
    _check_optional(manifest, wrong)
    return manifest


def _check_optional(manifest: dict[str, Any], wrong: Any) -> None:
    """The entries a run recorded from a user's loop may carry: snapshot labels, layer info, settings, notes."""
    snapshots = manifest.get("snapshots")
    if snapshots is not None:
        if not isinstance(snapshots, list) or len(snapshots) != manifest["epochs_complete"] + 1:
            raise wrong("snapshots", "a list with the step and epoch of every snapshot")
        for position, label in enumerate(snapshots):
            if not (isinstance(label, dict) and label and set(label) <= {"step", "epoch"}
                    and all(_is_int(value) and value >= 0 for value in label.values())):
                raise wrong(f"snapshots[{position}]", "a table of step and/or epoch (whole numbers)")
    for key in ("layer_info", "training", "schedule"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            raise wrong(key, "a table")
    info = manifest.get("layer_info") or {}
    for layer, entry in info.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("reduction", ""), str):
            raise wrong(f"layer_info.{layer}", "a table with the layer's reduction")
    notes = manifest.get("notes")
    if notes is not None and not (isinstance(notes, list) and all(isinstance(note, str) for note in notes)):
        raise wrong("notes", "a list of text")


def _check_dataset(manifest: dict[str, Any], wrong: Any) -> None:
    dataset = manifest["dataset"]
    if not isinstance(dataset, dict):
        raise wrong("dataset", "a table")
    names = dataset.get("class_names")
    if names is not None:
        if not isinstance(names, list) or any(layout.class_name_problem(name) is not None for name in names):
            raise wrong("dataset.class_names", "a list of class names (text)")
    if dataset.get("name") is not None and not isinstance(dataset["name"], str):
        raise wrong("dataset.name", "text")
    for key in ("probe_size", "train_size", "test_size"):
        if key in dataset and not (_is_int(dataset[key]) and dataset[key] >= 0):
            raise wrong(f"dataset.{key}", "a whole number")


def _check_history(manifest: dict[str, Any], wrong: Any) -> None:
    history = manifest["history"]
    if not isinstance(history, list):
        raise wrong("history", "a list of rows")
    for position, row in enumerate(history):
        if not isinstance(row, dict) or not all(isinstance(key, str) and (_is_number(value) or value is None)
                                                for key, value in row.items()):
            raise wrong(f"history[{position}]", "a row of named numbers")


def _check_files(manifest: dict[str, Any], where: Path) -> None:
    files = manifest["files"]
    if not isinstance(files, dict):
        raise RunFolderError(f"{where} is damaged: files must be a table of checksums; restore it, or record the run "
                             "again with --force")
    for relpath, digest in files.items():
        problem = layout.relpath_problem(relpath)
        if problem is not None:
            raise RunFolderError(f"{where} lists a file outside the run's own layout: {problem}; layerlapse reads, "
                                 "writes and deletes only inside its run folder: restore the manifest")
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise RunFolderError(f"{where} is damaged: the checksum of {relpath} is not a sha256; restore it, or "
                                 "record the run again with --force")


def check_names_to_record(layers: Any, class_names: Any) -> None:
    """Layer and class names held, before a run is recorded with them, to the rule its reader holds them to
    (`check_manifest`, through `layout`): a one-line ConfigError now, never a run every command calls damaged."""
    for layer in layers:
        if (problem := layout.plain_name_problem(layer)) is not None:
            raise ConfigError(f"layer {layout.shown(layer)} cannot be recorded: {problem}; a layer's name becomes a "
                              "folder of the run: rename the module")
    for position, name in enumerate(class_names or []):
        if (problem := layout.class_name_problem(name)) is not None:
            raise ConfigError(f"class name {position} ({layout.shown(name, 24)}) cannot be recorded: {problem}; give "
                              f"every class a name of at most {layout.MAX_CLASS_NAME_CHARS:,} characters")


def _manifest_bytes(manifest: dict[str, Any], folder: Path) -> bytes:
    """The manifest as written: indented for a person to read, compact where that would pass the size a reader
    takes (MAX_MANIFEST_BYTES), and never past it: a one-line RunFolderError instead."""
    for indent in (2, None):
        data = _utf8_json(manifest, indent)
        if len(data) <= MAX_MANIFEST_BYTES:
            return data
    raise RunFolderError(f"run folder {folder}: its manifest would grow to {len(data) / 1e6:.1f} MB, over the "
                         f"{MAX_MANIFEST_BYTES / 1e6:.0f} MB layerlapse reads back, so it was not written (the run "
                         "stays as last committed): record fewer snapshots or layers in one run")


def _utf8_json(obj: Any, indent: int | None) -> bytes:
    """JSON in UTF-8, text as it is (escaped, "é" takes 6 bytes, not 2: a manifest read near the cap outgrew it)."""
    separators = None if indent else (",", ":")
    text = json.dumps(obj, indent=indent, separators=separators, allow_nan=False, ensure_ascii=False)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, read from a \ud800 escape, has no UTF-8: escape as it came
        return (json.dumps(obj, indent=indent, separators=separators, allow_nan=False) + "\n").encode()


def _entry(manifest: dict[str, Any], entry: str) -> Any:
    value: Any = manifest
    for part in entry.replace("[", ".").replace("]", "").split("."):
        value = value[int(part)] if isinstance(value, list) else value.get(part)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def timestamp() -> str:
    """Now, as the manifest records when a run was created and last updated."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
