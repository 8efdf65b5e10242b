"""The comparison folder: what `layerlapse compare` writes, with a run folder's safety.

Every file is written to a temp name beside it and renamed; `comparison.json` goes last and lists every file with
its checksum, so a killed comparison leaves either the last whole one or no listing. One writer at a time (the run
folder's lock). The folder must not lie inside a run folder (the runs are only read), and a folder that is not
empty is refused unless `force` and it holds a comparison, of which only the files it lists are deleted. Nothing is
written, deleted or followed through a symbolic link outside the folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..errors import CompareError
from ..store import layout
from ..store import lock as run_lock
from ..store.atomic import atomic_output, make_writable_folder, sha256_file

FORMAT = "layerlapse-comparison"
MANIFEST = "comparison.json"
_FILE = re.compile(r"(?:report\.html|measures\.json|items\.npz|figures/[a-z0-9_]+\.png)")


class ComparisonFolder:
    """A comparison folder being written; `create` checks where it is and takes its lock, `close` gives it back."""

    def __init__(self, path: Path, held: run_lock.RunLock, old: list[str]) -> None:
        self.path = path
        self._held = held
        self._old = old  # the files of the comparison this one replaces: deleted at its commit, not before
        self.files: dict[str, str] = {}

    @classmethod
    def create(cls, out: str | os.PathLike, runs: list[Path], *, force: bool = False) -> ComparisonFolder:
        """Check `out` (not inside a run folder, empty or a comparison to replace with `force`) and lock it.

        Parameters
        ----------
        out : path
            The comparison folder to write.
        runs : list of Path
            The compared run folders, which `out` must not lie in.
        force : bool
            Replace the comparison in `out`, deleting only the files its listing names.
        """
        folder = Path(out)
        _not_in_a_run(folder, runs)
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise CompareError(f"{folder} is not a folder: choose another --out")
        old = _old_listing(folder, force)
        make_writable_folder(folder)
        return cls(folder, run_lock.acquire(folder), old)

    def close(self) -> None:
        self._held.release()

    def __enter__(self) -> ComparisonFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def local(self, relpath: str) -> Path:
        """The path of one of the folder's own files, after checking no part of it is a link."""
        if not _FILE.fullmatch(relpath):
            raise ValueError(f"{relpath!r} is not a file a comparison folder holds")
        path = self.path
        for part in relpath.split("/"):
            path = path / part
            if path.is_symlink():
                raise CompareError(f"{path} is a symbolic link, and layerlapse never writes through a link: "
                                   "remove it, or choose another --out")
        return path

    def write_bytes(self, relpath: str, data: bytes) -> Path:
        path = self.local(relpath)
        with atomic_output(path, size=len(data)) as temp:
            temp.write_bytes(data)
        self.files[relpath] = sha256_file(path)
        return path

    def write_json(self, relpath: str, obj: Any) -> Path:
        return self.write_bytes(relpath, _json_bytes(obj))

    def write_file(self, relpath: str, write: Any) -> Path:
        """Write through `write(temp_path)` (a library that writes files itself), atomically."""
        path = self.local(relpath)
        with atomic_output(path) as temp:
            write(temp)
        self.files[relpath] = sha256_file(path)
        return path

    def commit(self, about: dict[str, Any]) -> Path:
        """Write the listing last: what was compared, and every file with its checksum; then the replaced
        comparison's files that this one did not write again are deleted."""
        listing = {"format": FORMAT, "schema_version": 1, **about, "files": dict(sorted(self.files.items()))}
        path = self.path / MANIFEST
        if path.is_symlink():
            raise CompareError(f"{path} is a symbolic link, and layerlapse never writes through a link: remove it")
        with atomic_output(path) as temp:
            temp.write_bytes(_json_bytes(listing))
        for relpath in self._old:
            if relpath not in self.files:
                self._remove(relpath)
        return path

    def _remove(self, relpath: str) -> None:
        path = self.local(relpath)
        if path.is_file() and not path.is_symlink():
            path.unlink()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, allow_nan=False).encode("utf-8")


def _not_in_a_run(folder: Path, runs: list[Path]) -> None:
    """A comparison written into a run folder (or one of its folders) would change data that is only read."""
    here = Path(os.path.abspath(folder))
    for run in runs:
        run_path = Path(os.path.abspath(run))
        if here == run_path or run_path in here.parents:
            raise CompareError(f"--out {folder} lies inside the run folder {run}, which compare only reads: "
                               "choose a folder of its own, e.g. runs/compare")
    for parent in [here, *here.parents]:
        if (parent / layout.MANIFEST).is_file() and _is_run(parent / layout.MANIFEST):
            raise CompareError(f"--out {folder} lies inside the run folder {parent}: choose a folder of its own, "
                               "e.g. runs/compare")


def _is_run(manifest: Path) -> bool:
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("format") is not None
    except (OSError, ValueError, AttributeError):
        return False


def _old_listing(folder: Path, force: bool) -> list[str]:
    """The files of the comparison `force` replaces; a one-line error for a folder that is not empty otherwise."""
    if not folder.is_dir() or not any(child.name != layout.LOCK for child in folder.iterdir()):
        return []
    listing = folder / MANIFEST
    if not force:
        raise CompareError(f"{folder} is not empty: pass --force to replace the comparison in it, or choose "
                           "another --out")
    try:
        if listing.is_symlink():
            raise ValueError("a link")
        found = json.loads(listing.read_text(encoding="utf-8"))
        files = found["files"] if found.get("format") == FORMAT else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        files = None
    if not isinstance(files, dict):
        raise CompareError(f"{folder} holds no comparison to replace (no readable {MANIFEST}): --force replaces "
                           "only a comparison; choose another --out")
    return [relpath for relpath in files if isinstance(relpath, str) and _FILE.fullmatch(relpath)]
