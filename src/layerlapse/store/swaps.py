"""A redraw's maps swapped in whole: the staged and moved-aside folders beside maps/<layer>, named with the writer's
token, and how the next writer finishes or undoes a swap that a killed one left."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import layout
from .atomic import TOKEN_PATTERN, process_token, sha256_file

if TYPE_CHECKING:
    from .reading import RunReading


# Beside maps/<layer> while a redraw swaps a layer's maps in: maps/.new-<token>-<layer> (staged) and
# maps/.old-<token>-<layer> (moved aside), with the writer's token, so only a killed writer's are ever touched after.
OLD_MAPS, NEW_MAPS = ".old-", ".new-"
_SWAP_FOLDER = re.compile(rf"\.(old|new)-({TOKEN_PATTERN})-(.+)")


def _swap_folder(prefix: str, layer: str) -> str:
    """The name, in maps/, of a layer's staged (NEW_MAPS) or moved-aside (OLD_MAPS) maps, with this writer's token."""
    return f"{prefix}{process_token()}-{layer}"


def _swap_folders(folder: Path, tokens: tuple[str, ...]) -> list[Path]:
    """The swap folders in maps/ that writers with these `tokens` made: a folder named alike by anyone else (or with
    another token) is not a redraw's and stays."""
    maps = folder / "maps"
    if not tokens or not maps.is_dir() or maps.is_symlink():
        return []
    made = [(child, _SWAP_FOLDER.fullmatch(child.name)) for child in sorted(maps.iterdir())]
    return [child for child, match in made
            if match is not None and match.group(2) in tokens and child.is_dir() and not child.is_symlink()]


def _recover_map_swaps(run: RunReading, manifest: dict[str, Any], tokens: tuple[str, ...]) -> bool:
    """Finish or undo the map swaps that killed writers (with these `tokens`) left: a layer whose listed maps are
    what maps/<layer> holds was committed (its .old- folder goes); otherwise the old maps come back. Staged (.new-)
    folders are dropped."""
    maps = run.path / "maps"
    recovered = False
    for child in _swap_folders(run.path, tokens):
        kind, layer = _SWAP_FOLDER.fullmatch(child.name).group(1, 3)
        if kind == "new":
            _remove_tree(child)
        elif layer in manifest["layers"]:  # else not a name this run gave: left as it is
            current = maps / layer
            listed = {relpath: digest for relpath, digest in manifest["files"].items()
                      if relpath.startswith(f"{layout.map_folder(layer)}/")}
            committed = current.is_dir() and all(
                run.local(relpath).is_file() and sha256_file(run.local(relpath)) == digest
                for relpath, digest in listed.items())
            if not committed:
                _remove_tree(current)
                os.rename(child, current)
            else:
                _keep_the_users_files(child, current, layer)
                _remove_tree(child)
            recovered = True
    return recovered


def _keep_the_users_files(old: Path, current: Path, layer: str) -> None:
    """Before a layer's moved-aside maps are deleted, move back into its new maps what is not the run's own: a file
    or link under a name the maps never write (notes, a user's own plots), in the folder it was in. A redraw replaces
    the maps, never the user's files beside them. A name the new maps hold already is left to go with the old."""
    for root, folders, files in os.walk(old):  # links are not followed: a link is moved as the link it is
        inside = Path(root).relative_to(old)
        for name in [*files, *(folder for folder in folders if os.path.islink(os.path.join(root, folder)))]:
            relpath = (inside / name).as_posix()
            target = current / inside / name
            if layout.is_recorded_file(f"{layout.map_folder(layer)}/{relpath}") or os.path.lexists(target):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(Path(root) / name, target)


def _remove_tree(path: Path) -> None:
    """Delete a folder layerlapse made inside the run (a link is unlinked, never followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
