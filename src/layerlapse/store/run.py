"""The run folder: everything the pictures need, written atomically, listed with checksums in the manifest.

The manifest is written last, after the files it lists, so it always describes files that are whole. Recorded data
(probe, activations, predictions, checkpoints, test set, maps) is never rewritten once listed; drawn outputs
(figures, frames, GIF, metrics.json, history.jsonl) are derived and may be redrawn at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import blocks, layout
from . import lock as run_lock
from .atomic import atomic_output, make_writable_folder, remove_temp_files, sha256_file, write_bytes
from ..config import RunConfig
from ..errors import ConfigError, RunFolderError
from .layout import MANIFEST, RECORDED_FOLDERS
from .manifest import FORMAT, STATUSES, _manifest_bytes, _parse_manifest, _read_manifest_text, check_manifest
from .manifest import SCHEMA_VERSION, check_names_to_record, timestamp
from .history import in_step_order
from .reading import RunReading, _activations_problem
from .swaps import (_SWAP_FOLDER, NEW_MAPS, OLD_MAPS, _keep_the_users_files, _recover_map_swaps, _remove_tree,
                    _swap_folder, _swap_folders)

# derived from the recorded data: redrawn freely, so not checked before they are overwritten
DERIVED = ("figures/", "frames/", "dynamics/", "lapse", layout.METRICS, layout.HISTORY, layout.REPORT)


def is_derived(relpath: str) -> bool:
    return relpath.startswith(DERIVED)


class RunFolder(RunReading):
    """A run folder on disk and its manifest; write through it so every file is atomic, listed and inside the folder.

    Writing takes the run's lock (one writer per run folder, see `layerlapse.store.lock`): `writing()` holds it for a
    block, any write takes it for the rest of this object's life, `close()` (or leaving a `with` block) gives it
    back. Reading needs no lock.

    Open one with `RunFolder.open` (or `load_run`), start one with `RunFolder.create`; the constructor only wraps a
    manifest already read.

    Parameters
    ----------
    path : Path
        The run folder.
    manifest : dict
        Its manifest, as read and checked (`check_manifest`) or as just created.
    manifest_text : str, optional
        The manifest's text as read from disk, by which a writer sees that another one committed since.

    Examples
    --------
    >>> run = RunFolder.open("runs/mnist")  # doctest: +SKIP
    >>> run.activations(run.layers[0], 3).shape  # (probe inputs, features)  # doctest: +SKIP
    """

    def __init__(self, path: Path, manifest: dict[str, Any], manifest_text: str | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self._manifest_text = manifest_text  # as last read or written, to see another writer's commit
        self._lock: run_lock.RunLock | None = None
        # held by a writer's threads around each whole change (a snapshot, a stored map): the maps made alongside
        # training are stored by a thread of their own while the training thread records (recipe.mapping)
        self.write_lock = threading.RLock()

    def __repr__(self) -> str:
        return (f"RunFolder({str(self.path)!r}, status={self.status!r}, "
                f"epochs_complete={self.epochs_complete}, layers={self.layers})")

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- opening -------------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, config: RunConfig, dataset: dict[str, Any], *,
               force: bool = False) -> RunFolder:
        """Start a new run folder; refuses a non-empty folder unless `force` and it provably holds a layerlapse run,
        of which only what it provably made is deleted (`_delete_listed`). Names the reader would refuse (a layer
        `a/b`, a class name of a megabyte) are a one-line ConfigError before anything is written.

        Parameters
        ----------
        path : str or PathLike
            The folder to make (or an empty one, or with `force` a layerlapse run to replace).
        config : RunConfig
            The run's settings, stored in the manifest; its layers are the run's.
        dataset : dict
            What the manifest says of the data: "name", "class_names", sizes.
        force : bool
            Replace the layerlapse run in `path`, deleting only the files it provably wrote.
        """
        folder = Path(path)
        check_names_to_record(config.layers, dataset.get("class_names"))
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"{folder} is a file, not a folder: choose another --out")
        old = None
        if folder.is_dir() and any(child.name != layout.LOCK for child in folder.iterdir()):
            if not force:
                raise RunFolderError(f"{folder} is not empty: pass --resume to continue the run in it, "
                                     "--force to replace it, or choose another --out (from Python: resume=True, "
                                     "force=True, or another folder)")
            old = _proven_run(folder)
        make_writable_folder(folder)
        held = run_lock.acquire(folder)  # before deleting: never under a live writer
        try:
            if old is not None:
                if _read_manifest_text(folder) != old._manifest_text:  # another writer committed meanwhile
                    old = _proven_run(folder)
                old._delete_listed(held.leftover_tokens)
            manifest = {"schema_version": SCHEMA_VERSION, "format": FORMAT, "status": "running", "created": timestamp(),
                        "config": config.to_dict(), "dataset": dataset, "layers": list(config.layers),
                        "epochs_complete": -1, "history": [], "test": None, "files": {}}
            run = cls(folder, manifest)
            run._lock = held
            run.commit()
        except BaseException:
            held.release()
            raise
        return run

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = True) -> RunFolder:
        """Open an existing run folder, checking the manifest's every entry and that every recorded file is whole.

        Parameters
        ----------
        path : str or PathLike
            The run folder.
        verify : bool
            Check every recorded file against its checksum (False: the manifest only, which is quicker).
        """
        folder = Path(path)
        text = _read_manifest_text(folder)
        run = cls(folder, check_manifest(_parse_manifest(text, folder), folder), text)
        if verify:
            run.verify()
        return run

    @classmethod
    def open_for_writing(cls, path: str | os.PathLike) -> RunFolder:
        """Open a run to continue it: take its lock first, then check it, so two writers never both start.

        Parameters
        ----------
        path : str or PathLike
            The run folder to continue (`--resume`).
        """
        run = cls.open(path, verify=False)
        run.hold()
        run.verify()
        return run

    def verify(self) -> None:
        """Raise RunFolderError for the first recorded file that is missing, truncated, altered or a link."""
        for relpath, expected in self.manifest["files"].items():
            if is_derived(relpath):
                continue
            file = self.local(relpath)
            if not file.is_file():
                raise RunFolderError(f"run folder {self.path} is damaged: {relpath} is missing; restore it, "
                                     "or record the run again with --force")
            if sha256_file(file) != expected and not self._in_swapped_out_maps(relpath, expected):
                raise RunFolderError(f"run folder {self.path} is damaged: {relpath} does not match its checksum "
                                     "(truncated or altered); restore it, or record the run again with --force")

    def _in_swapped_out_maps(self, relpath: str, expected: str) -> bool:
        """A map file a killed redraw moved aside (maps/.old-<token>-<layer>/) that still matches the manifest: the
        run is whole, and its next writer moves it back (see `_recover_map_swaps`)."""
        parts = relpath.split("/", 2)
        maps = self.path / "maps"
        if parts[0] != "maps" or len(parts) != 3 or maps.is_symlink() or not maps.is_dir():
            return False
        for folder in maps.iterdir():
            made = _SWAP_FOLDER.fullmatch(folder.name)
            if made is None or made.group(1) != "old" or made.group(3) != parts[1] or folder.is_symlink():
                continue
            moved = folder / parts[2]
            if not moved.is_symlink() and moved.is_file() and sha256_file(moved) == expected:
                return True
        return False

    def discard_uncommitted(self) -> None:
        """Before resuming: drop what a killed writer wrote after the manifest's last commit: its temp files (those
        with its token) and unlisted files named as the recording names them; anything else is the user's and stays."""
        self.hold()
        remove_temp_files(self.path, self._lock.leftover_tokens)
        listed = set(self.manifest["files"])
        for folder_name in RECORDED_FOLDERS:
            top = self.local(folder_name)
            for root, _, names in os.walk(top):  # a link to a folder is listed, never entered
                for name in names:
                    file = Path(root) / name
                    relpath = file.relative_to(self.path).as_posix()
                    if relpath not in listed and layout.is_recorded_file(relpath) and not file.is_symlink():
                        file.unlink()

    # ---- the lock ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[RunFolder]:
        """Hold the run's lock for the block (and give it back after, unless this object already held it)."""
        taken = self._acquire()
        try:
            yield self
        finally:
            if taken:
                self.close()

    def hold(self) -> None:
        """Take the run's lock (if this object does not hold it yet) until `close()`."""
        self._acquire()

    def close(self) -> None:
        """Give back the run's lock, if held; reading goes on working."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _acquire(self) -> bool:
        if self._lock is not None:
            return False
        self._lock = run_lock.acquire(self.path)
        try:
            self._catch_up_with_disk()
        except BaseException:
            self.close()
            raise
        return True

    def _catch_up_with_disk(self) -> None:
        """Under a freshly taken lock: finish or undo a redraw a killed writer left half swapped, and take the
        manifest another writer committed since this object read it."""
        if not (self.path / MANIFEST).exists():
            return
        text = _read_manifest_text(self.path)
        manifest = check_manifest(_parse_manifest(text, self.path), self.path)
        recovered = _recover_map_swaps(self, manifest, self._lock.leftover_tokens)
        changed = text != self._manifest_text
        if changed:
            self.manifest, self._manifest_text = manifest, text
        if recovered or changed:
            self.verify()
    # ---- writing -------------------------------------------------------------------------------------------------
    def write_array(self, relpath: str, array: np.ndarray, dtype: np.dtype | type | None = None) -> Path:
        """Write `array` (as `dtype`, if given) to `relpath` and list it. An array preallocated in this run folder by
        `empty_array` is moved into place; a large one is written a block of rows at a time, so a snapshot is never
        copied whole in memory; the file's bytes are the same either way (np.save's).

        Parameters
        ----------
        relpath : str
            Where in the run folder, a name the run's layout uses ("activations/<layer>/epoch_003.npy", …).
        array : ndarray
            The data; an object array is refused (a run is never pickled).
        dtype : dtype, optional
            Store as this dtype (float16 for activations); default the array's own.
        """
        dtype = array.dtype if dtype is None else np.dtype(dtype)
        if _activations_problem(relpath, array.shape) is not None:
            raise ConfigError(f"layer {layout.shown(layout.activations_layer(relpath))} gives no values per input "
                              f"(its activations are of shape {array.shape}): record a layer that outputs something "
                              "(layerlapse maps each input's values)")
        if dtype == array.dtype and (spooled := blocks.spooled_file(array, self.path)) is not None:
            return self._adopt(relpath, array, spooled)
        if array.nbytes <= blocks.BLOCK_BYTES:
            return self.write_bytes(relpath, blocks.npy_bytes(array.astype(dtype, copy=False)))
        return self._write_in_blocks(relpath, array, dtype)

    def empty_array(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised array backed by a temp file inside this run folder, for a capture to fill a batch at a
        time; `write_array` later moves the file into place (no copy). Until then it is listed nowhere, and a
        resumed run deletes it if this process dies.

        Parameters
        ----------
        shape : tuple of int
            The array's shape.
        dtype : dtype
            Its dtype, as `write_array` will store it.
        """
        self.hold()
        return blocks.spooled_empty(self.path, shape, dtype)

    def _adopt(self, relpath: str, array: np.ndarray, spooled: Path) -> Path:
        self.hold()
        target = self.local(relpath)
        blocks.adopt(array, target)
        self.manifest["files"][relpath] = sha256_file(target)  # read back through the page cache, not the mapping
        return target

    def _write_in_blocks(self, relpath: str, array: np.ndarray, dtype: np.dtype) -> Path:
        self.hold()
        target = self.local(relpath)
        digest = hashlib.sha256()
        size = len(blocks.npy_header(array.shape, dtype)) + array.size * dtype.itemsize
        with atomic_output(target, size=size) as temp, open(temp, "wb") as handle:
            for chunk in blocks.npy_chunks(array, dtype):
                handle.write(chunk)
                digest.update(chunk)  # the bytes in hand, not a re-read
        self.manifest["files"][relpath] = digest.hexdigest()
        return target

    def write_json(self, relpath: str, obj: Any) -> Path:
        """Write `obj` as indented JSON to `relpath` and list it.

        Parameters
        ----------
        relpath : str
            Where in the run folder.
        obj : JSON-serialisable
            Written indented; NaN and infinity are refused, as JSON has neither.
        """
        return self.write_bytes(relpath, json_bytes(obj))

    def write_bytes(self, relpath: str, data: bytes) -> Path:
        """Write `data` to `relpath` atomically and list it.

        Parameters
        ----------
        relpath : str
            Where in the run folder.
        data : bytes
            The file's whole content, written atomically and listed with its sha256.
        """
        self.hold()
        target = self.local(relpath)
        write_bytes(target, data)
        self.manifest["files"][relpath] = hashlib.sha256(data).hexdigest()  # the bytes in hand, not a re-read
        return target

    def add_file(self, relpath: str) -> None:
        """List a file that was written (atomically) by someone else, such as a drawing.

        Parameters
        ----------
        relpath : str
            The file, already written inside the run folder.
        """
        self.hold()
        self.manifest["files"][relpath] = sha256_file(self.local(relpath))

    def forget(self, relpath: str) -> None:
        """Unlist a file; the caller deletes it after the next commit so a crash never leaves a listed hole.

        Parameters
        ----------
        relpath : str
            The listed file.
        """
        self.manifest["files"].pop(relpath, None)

    def write_probe(self, labels: np.ndarray, images: np.ndarray | None, indices: np.ndarray | None = None,
                    texts: list[str] | None = None) -> None:
        """The probe's labels (and images, for thumbnails and the samples figure), once, before the first epoch.

        Parameters
        ----------
        labels : array of int
            One class index per probe input; class names "0", "1", … are stored when the dataset names none.
        images : array, optional
            The probe's images as thumbnails (uint8 (n, height, width), see `layerlapse.store.images`).
        indices : array of int, optional
            Where each probe input sits in the training set.
        texts : list of str, optional
            One text per probe input, checked by `layerlapse.store.texts.checked_texts`.
        """
        self.write_array(layout.PROBE_LABELS, np.asarray(labels, dtype=np.int64))
        if images is not None:
            self.write_array(layout.PROBE_IMAGES, images)
        if indices is not None:
            self.write_array(layout.PROBE_INDICES, np.asarray(indices, dtype=np.int64))
        if texts is not None:
            self.write_json(layout.PROBE_TEXTS, texts)
        dataset = self.manifest.setdefault("dataset", {})
        dataset.setdefault("class_names", [str(label) for label in range(int(np.max(labels)) + 1)])
        dataset["probe_size"] = int(len(labels))
        self.commit()

    def record_epoch(self, epoch: int, history_row: dict[str, float] | None) -> None:
        """Mark snapshot `epoch` complete (its files already written) and commit; the row (with its "snapshot"
        number) joins the history in place of any row of that snapshot or of a later one, and of a row of epoch-end
        metrics at its step (which it took in).

        Parameters
        ----------
        epoch : int
            The snapshot's number (0 is the first).
        history_row : dict, optional
            The snapshot's metrics ("loss", "acc", "val_loss", "val_acc", …) with its "snapshot", "step" and
            "epoch"; None records no row.
        """
        if history_row is not None:
            step = history_row.get("step")
            kept = [row for row in self.history if row.get("snapshot", -1) < epoch
                    and not ("snapshot" not in row and step is not None and row.get("step") == step)]
            rows = [*kept, history_row]
            in_step_order(rows)
            self.manifest["history"] = rows
            self.write_history()
        self.manifest["epochs_complete"] = epoch
        self.commit()

    def write_history(self) -> None:
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        self.write_bytes(layout.HISTORY, lines.encode())

    @contextlib.contextmanager
    def noting_failure(self) -> Iterator[RunFolder]:
        """Mark the run interrupted (Ctrl-C, SIGTERM) or failed if the block raises, so --resume knows. On a full
        or read-only disk the mark itself may not be writable: the run stays as last committed, which --resume
        continues as well, and the error the user sees is the first one."""
        try:
            yield self
        except KeyboardInterrupt:
            self._try_commit("interrupted")
            raise
        except BaseException:
            self._try_commit("failed")
            raise

    def _try_commit(self, status: str) -> None:
        """The status on top of the last commit: what the block wrote since (a checkpoint unlisted before its epoch
        was committed, say) is not the run's, so it never reaches the manifest."""
        with contextlib.suppress(OSError, RunFolderError, ValueError):
            last = self._last_committed()
            if last is not None:
                self.manifest = json.loads(last)
            self.commit(status)

    def _last_committed(self) -> str | None:
        """The manifest as last committed: the one on disk, since a signal can land after commit's rename and before
        this object noted the new text (the interrupted mark then rolled a committed epoch back); the noted text
        where the file cannot be read as our own plain file."""
        manifest = self.path / MANIFEST
        if manifest.is_symlink() or not manifest.is_file():
            return self._manifest_text
        try:
            return manifest.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return self._manifest_text

    def commit(self, status: str | None = None) -> None:
        """Write the manifest, last, listing every file written so far. It is never one its reader would refuse:
        names that cannot be read back, or a manifest past the size a reader takes, are a one-line error instead,
        and the last manifest stays.

        Parameters
        ----------
        status : {"running", "interrupted", "failed", "complete"}, optional
            The run's new status; default unchanged.
        """
        self.hold()
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
            self.manifest["status"] = status
        check_names_to_record(self.manifest["layers"], self.manifest["dataset"].get("class_names"))
        self.manifest["format"] = FORMAT
        self.manifest["updated"] = timestamp()
        data = _manifest_bytes(self.manifest, self.path)
        with atomic_output(self.path / MANIFEST, size=len(data)) as temp:
            temp.write_bytes(data)
        self._manifest_text = data.decode("utf-8")

    # ---- replacing every map of the run at once (a redraw with another method) -----------------------------------
    def stage_maps(self, layer: str) -> Path:
        """An empty folder beside maps/<layer> to write a layer's new maps into before `swap_maps`.

        Parameters
        ----------
        layer : str
            One of the run's layers.
        """
        self.hold()
        staged = self.local("maps") / _swap_folder(NEW_MAPS, layer)
        _remove_tree(staged)
        staged.mkdir(parents=True)
        return staged

    def swap_maps(self, staged: dict[str, dict[str, str]], maps_info: dict[str, Any]) -> None:
        """Put each layer's staged maps (`staged[layer]`: path under maps/<layer>/ -> sha256) in place of its old
        ones and commit them as the run's maps; the old maps are deleted only after the commit. A writer killed
        in between leaves `.old-` folders that the next writer uses to finish or undo the swap.

        Parameters
        ----------
        staged : dict
            Per layer, each staged file's path under maps/<layer>/ and its sha256.
        maps_info : dict
            The manifest's new "maps" entry: the method and settings the maps were made with.
        """
        self.hold()
        maps = self.local("maps")
        for layer in staged:
            current, old = maps / layer, maps / _swap_folder(OLD_MAPS, layer)
            _remove_tree(old)
            if current.exists() or current.is_symlink():
                os.rename(current, old)
            os.rename(maps / _swap_folder(NEW_MAPS, layer), current)
        for relpath in [relpath for relpath in self.manifest["files"] if relpath.startswith("maps/")]:
            self.forget(relpath)
        for layer, files in staged.items():
            for name, digest in files.items():
                self.manifest["files"][f"{layout.map_folder(layer)}/{name}"] = digest
        self.manifest["maps"] = maps_info
        self.commit()
        for layer in staged:
            _keep_the_users_files(maps / _swap_folder(OLD_MAPS, layer), maps / layer, layer)
            _remove_tree(maps / _swap_folder(OLD_MAPS, layer))

    # ---- deleting (--force) --------------------------------------------------------------------------------------
    def _delete_listed(self, leftover_tokens: tuple[str, ...]) -> None:
        """Delete what this run provably made: each listed file under a name a run writes whose content matches its
        checksum (a manifest is no proof: it can list anything), the temp files and swap folders of its killed
        writers (`leftover_tokens`), its manifest, and the folders it made once they are empty. Anything else stays."""
        _recover_map_swaps(self, self.manifest, leftover_tokens)  # the listed maps back where they are listed
        for relpath, digest in self.manifest["files"].items():
            file = self.local(relpath)
            if layout.is_run_file(relpath) and file.is_file() and sha256_file(file) == digest:
                file.unlink()
        for child in _swap_folders(self.path, leftover_tokens):
            _remove_tree(child)
        remove_temp_files(self.path, leftover_tokens)
        (self.path / MANIFEST).unlink(missing_ok=True)
        for root, _, _ in sorted(os.walk(self.path), key=lambda entry: -len(entry[0])):
            relpath = Path(root).relative_to(self.path)
            if relpath.parts and relpath.parts[0] in (*RECORDED_FOLDERS, *layout.DRAWN_FOLDERS):
                with contextlib.suppress(OSError):
                    os.rmdir(root)  # only when empty: the user's files keep their folder


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode()


def load_run(path: str | os.PathLike) -> RunFolder:
    """Open a finished or interrupted run folder for reading, after checking every recorded file.

    Parameters
    ----------
    path : str or PathLike
        The run folder (made by `layerlapse run`, `layerlapse demo`, a `Recorder` or a framework callback).

    Returns
    -------
    RunFolder
        The run, for reading; a damaged run is a one-line RunFolderError naming the file and the fix.

    Examples
    --------
    >>> from layerlapse import load_run
    >>> run = load_run("runs/mnist")  # doctest: +SKIP
    >>> run.snapshot_title(3)  # doctest: +SKIP
    'Epoch 3'
    """
    return RunFolder.open(path, verify=True)


# ---- --force and interrupted redraws ---------------------------------------------------------------------------------
def _proven_run(folder: Path) -> RunFolder:
    """The run in `folder`, when layerlapse can prove it is one of its own: a manifest that passes every check
    and carries the marker (or, written before the marker, whose every file matches its checksum), all of whose
    files lie inside the folder. Else a RunFolderError with the reason, for --force to refuse."""
    if not (folder / MANIFEST).is_file() or (folder / MANIFEST).is_symlink():
        raise RunFolderError(f"{folder} is not empty and holds no layerlapse run, so --force will not delete it: "
                             "choose another --out")
    try:
        run = RunFolder.open(folder, verify=False)
        for relpath in run.manifest["files"]:
            run.local(relpath)  # refuses a listed file reached through a link
        if run.manifest.get("format") != FORMAT:
            run.verify()
    except RunFolderError as error:
        raise RunFolderError(f"{folder} holds a manifest.json that layerlapse cannot prove is its own run's "
                             f"({error}), so --force will not delete anything in it: choose another --out") from None
    return run
