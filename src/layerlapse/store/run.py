"""The run folder: everything the pictures need, written atomically, listed with checksums in the manifest.

The manifest is written last, after the files it lists, so it always describes files that are whole. Recorded data
(probe, activations, predictions, checkpoints, test set, maps) is never rewritten once listed; drawn outputs
(figures, frames, GIF, metrics.json, history.jsonl) are derived and may be redrawn at any time.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import blocks, layout
from . import lock as run_lock
from .atomic import (
    TOKEN_PATTERN,
    atomic_output,
    process_token,
    remove_temp_files,
    sha256_file,
    storage_error,
    write_bytes,
)
from ..config import RunConfig
from ..errors import ConfigError, RunFolderError
from .layout import MANIFEST, RECORDED_FOLDERS, epoch_file  # noqa: F401 - epoch_file re-exported for callers

SCHEMA_VERSION = 1
# Written into every manifest: a marker another tool's manifest.json cannot carry by accident, so --force knows a
# layerlapse run from anything else that happens to have a schema_version and a files table.
FORMAT = "layerlapse run folder"
MANIFEST_KEYS = ("status", "config", "dataset", "layers", "epochs_complete", "history", "test", "files")
STATUSES = ("running", "interrupted", "failed", "complete")
MAX_MANIFEST_BYTES = 64_000_000  # a run of 10 layers × 1,000 epochs lists ~50,000 files: a few MB
# derived from the recorded data: redrawn freely, so not checked before they are overwritten
DERIVED = ("figures/", "frames/", "dynamics/", "lapse", layout.METRICS, layout.HISTORY, layout.REPORT)
# Beside maps/<layer> while a redraw swaps a layer's maps in: maps/.new-<token>-<layer> (staged) and
# maps/.old-<token>-<layer> (moved aside), with the writer's token, so only a killed writer's are ever touched after.
OLD_MAPS, NEW_MAPS = ".old-", ".new-"
_SWAP_FOLDER = re.compile(rf"\.(old|new)-({TOKEN_PATTERN})-(.+)")


def is_derived(relpath: str) -> bool:
    return relpath.startswith(DERIVED)


class RunFolder:
    """A run folder on disk and its manifest; write through it so every file is atomic, listed and inside the folder.

    Writing takes the run's lock (one writer per run folder, see `layerlapse.store.lock`): `writing()` holds it for a
    block, any write takes it for the rest of this object's life, `close()` (or leaving a `with` block) gives it
    back. Reading needs no lock.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], manifest_text: str | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self._manifest_text = manifest_text  # as last read or written, to see another writer's commit
        self._lock: run_lock.RunLock | None = None

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
        `a/b`, a class name of a megabyte) are a one-line ConfigError before anything is written."""
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
        _make_writable_folder(folder)
        held = run_lock.acquire(folder)  # before deleting: never under a live writer
        try:
            if old is not None:
                if _read_manifest_text(folder) != old._manifest_text:  # another writer committed meanwhile
                    old = _proven_run(folder)
                old._delete_listed(held.leftover_tokens)
            manifest = {"schema_version": SCHEMA_VERSION, "format": FORMAT, "status": "running", "created": _now(),
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
        """Open an existing run folder, checking the manifest's every entry and that every recorded file is whole."""
        folder = Path(path)
        text = _read_manifest_text(folder)
        run = cls(folder, check_manifest(_parse_manifest(text, folder), folder), text)
        if verify:
            run.verify()
        return run

    @classmethod
    def open_for_writing(cls, path: str | os.PathLike) -> RunFolder:
        """Open a run to continue it: take its lock first, then check it, so two writers never both start."""
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

    # ---- paths ---------------------------------------------------------------------------------------------------
    def local(self, relpath: str) -> Path:
        """The path of `relpath` inside the run folder, after checking it is a plain relative path and that no part
        of it is a symbolic link (layerlapse never follows a link out of a run folder)."""
        problem = layout.relpath_problem(relpath)
        if problem is not None:
            raise RunFolderError(f"run folder {self.path}: {problem}")
        path = self.path
        for part in relpath.split("/"):
            path = path / part
            if path.is_symlink():
                raise RunFolderError(
                    f"run folder {self.path}: {path.relative_to(self.path).as_posix()} is a symbolic link, and "
                    "layerlapse never follows a link out of a run folder: replace it with a real folder or file")
            if not path.exists():
                break  # nothing below a missing part can be a link
        return self.path / relpath

    # ---- reading -------------------------------------------------------------------------------------------------
    @property
    def config(self) -> RunConfig:
        try:
            return RunConfig.from_dict(self.manifest["config"])
        except (ConfigError, TypeError) as error:
            raise RunFolderError(f"{self.path / MANIFEST} holds settings this layerlapse cannot use ({error}): "
                                 "record the run again") from None

    @property
    def status(self) -> str:
        return self.manifest["status"]

    @property
    def epochs_complete(self) -> int:
        return int(self.manifest["epochs_complete"])

    @property
    def layers(self) -> list[str]:
        return list(self.manifest["layers"])

    @property
    def history(self) -> list[dict[str, float]]:
        """The history's rows: "snapshot" (the number of the snapshot the row belongs to; absent from a row of
        epoch-end metrics between two snapshots of a step run), "step" and "epoch" where known, then the metrics."""
        return history_rows(self.manifest)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["dataset"].get("class_names") or [])

    def frame_measures(self, layer: str, epoch: int) -> dict:
        """The stored faithfulness measures and notes of one frame ({} when the run has none)."""
        relpath = layout.quality(layer)
        return self.read_json(relpath)["frames"].get(str(epoch), {}) if self.has(relpath) else {}

    def snapshot_title(self, index: int) -> str:
        """"Epoch 3", or "Step 512 · epoch 2" for a run that records by step."""
        return snapshot_title(self.manifest, index)

    def reduction(self, layer: str) -> str | None:
        """How the layer's outputs became rows ("mean over space", …), when they were not one row already."""
        caption = (self.manifest.get("layer_info") or {}).get(layer, {}).get("caption")
        return caption if isinstance(caption, str) and caption != "as is" else None

    def has(self, relpath: str) -> bool:
        return relpath in self.manifest["files"]

    def array_header(self, relpath: str) -> tuple[tuple[int, ...], np.dtype]:
        """Shape and dtype of a listed .npy file, checked against its size without reading the data: a truncated
        file, a header claiming more than the file holds, or an object array is a one-line RunFolderError."""
        path = self._listed(relpath)
        try:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, _, dtype = read_header(handle)
                data_bytes = os.fstat(handle.fileno()).st_size - handle.tell()
        except (ValueError, OSError, EOFError, SyntaxError) as error:
            raise self._damaged(relpath, str(error).splitlines()[0] if str(error) else type(error).__name__)
        if dtype.hasobject:
            raise self._damaged(relpath, "it holds Python objects, which layerlapse never unpickles")
        if (problem := _activations_problem(relpath, tuple(shape))) is not None:
            raise self._damaged(relpath, problem)
        expected = math.prod(shape) * dtype.itemsize
        if data_bytes != expected:
            raise self._damaged(relpath, f"its header promises {expected:,} bytes of {shape} {dtype} but the file "
                                          f"holds {data_bytes:,}")
        return tuple(shape), dtype

    def read_array(self, relpath: str, *, mapped: bool = False) -> np.ndarray:
        """A listed .npy file; `mapped` gives a read-only memory map, whose rows are read from the file as they are
        used (a snapshot of a wide layer need never sit whole in memory)."""
        self.array_header(relpath)  # never ask numpy to allocate what the file cannot hold
        try:
            return np.load(self.local(relpath), mmap_mode="r" if mapped else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise self._damaged(relpath, str(error)) from None

    def read_json(self, relpath: str) -> Any:
        path = self._listed(relpath)
        try:
            return json.loads(path.read_text())
        except (ValueError, OSError, RecursionError) as error:
            raise self._damaged(relpath, str(error) or type(error).__name__) from None

    def activations(self, layer: str, epoch: int) -> np.ndarray:
        """A snapshot's activations (n_probe, features), memory-mapped and read-only."""
        return self.read_array(layout.activations(layer, epoch), mapped=True)

    def read_rows(self, relpath: str, rows: np.ndarray) -> np.ndarray:
        """Rows `rows` of a listed 2-D-or-more .npy file, read through a memory map: a sample of a wide layer's
        activations without loading the whole snapshot."""
        shape, _ = self.array_header(relpath)
        if not shape or (len(rows) and int(np.max(rows)) >= shape[0]):
            raise self._damaged(relpath, f"it holds {shape[0] if shape else 0} rows where {int(np.max(rows)) + 1} "
                                          "or more belong")
        try:
            return np.asarray(np.load(self.local(relpath), mmap_mode="r", allow_pickle=False)[rows])
        except (ValueError, OSError, EOFError) as error:
            raise self._damaged(relpath, str(error)) from None

    def predictions(self, epoch: int) -> np.ndarray:
        return self.read_array(layout.predictions(epoch))

    def labels(self, relpath: str = layout.PROBE_LABELS, *, count: int | None = None) -> np.ndarray:
        """A labels file as int64, checked: one integer per image (`count` of them where known), each naming one of
        the run's classes."""
        labels = self.read_array(relpath)
        n_classes = len(self.class_names)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise self._damaged(relpath, f"it holds {labels.dtype} of shape {labels.shape} where one whole-number "
                                          "class index per image belongs")
        if count is not None and len(labels) != count:
            raise self._damaged(relpath, f"it holds {len(labels):,} labels for {count:,} images")
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
            raise RunFolderError(f"run folder {self.path}: {relpath} holds class {bad} but the manifest names "
                                 f"{n_classes} classes (dataset.class_names): give every class a name there, "
                                 "or restore the labels")
        return labels.astype(np.int64, copy=False)

    def probe_labels(self) -> np.ndarray:
        return self.labels(layout.PROBE_LABELS, count=self.manifest["dataset"].get("probe_size"))

    def read_xy(self, relpath: str, n_points: int) -> np.ndarray:
        """A stored map, checked to hold one 2-D position per point."""
        xy = self.read_array(relpath)
        if xy.shape != (n_points, 2):
            raise RunFolderError(f"run folder {self.path} is damaged: {relpath} holds {xy.shape} coordinates for "
                                 f"{n_points} points; map it again with `layerlapse render {self.path} --map METHOD`")
        return xy

    def _listed(self, relpath: str) -> Path:
        if not self.has(relpath):
            raise RunFolderError(f"run folder {self.path} has no {relpath}: the run did not record it; "
                                 "record it again, or resume it with --resume")
        return self.local(relpath)

    def _damaged(self, relpath: str, why: str) -> RunFolderError:
        return RunFolderError(f"run folder {self.path} is damaged: {relpath} cannot be read ({why}); "
                              "restore it, or record the run again with --force")

    # ---- writing -------------------------------------------------------------------------------------------------
    def write_array(self, relpath: str, array: np.ndarray, dtype: np.dtype | type | None = None) -> Path:
        """Write `array` (as `dtype`, if given) to `relpath` and list it. An array preallocated in this run folder by
        `empty_array` is moved into place; a large one is written a block of rows at a time, so a snapshot is never
        copied whole in memory; the file's bytes are the same either way (np.save's)."""
        dtype = array.dtype if dtype is None else np.dtype(dtype)
        if (problem := _activations_problem(relpath, array.shape)) is not None:
            raise ConfigError(f"layer {layout.shown(layout.activations_layer(relpath))} gives no values per input "
                              f"(its activations are of shape {array.shape}): record a layer that outputs something "
                              "(layerlapse maps each input's values)")
        if dtype == array.dtype and (spooled := blocks.spooled_file(array, self.path)) is not None:
            return self._adopt(relpath, array, spooled)
        if array.nbytes <= blocks.BLOCK_BYTES:
            return self.write_bytes(relpath, npy_bytes(array.astype(dtype, copy=False)))
        return self._write_in_blocks(relpath, array, dtype)

    def empty_array(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised array backed by a temp file inside this run folder, for a capture to fill a batch at a
        time; `write_array` later moves the file into place (no copy). Until then it is listed nowhere, and a
        resumed run deletes it if this process dies."""
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
        return self.write_bytes(relpath, json_bytes(obj))

    def write_bytes(self, relpath: str, data: bytes) -> Path:
        self.hold()
        target = self.local(relpath)
        write_bytes(target, data)
        self.manifest["files"][relpath] = hashlib.sha256(data).hexdigest()  # the bytes in hand, not a re-read
        return target

    def add_file(self, relpath: str) -> None:
        """List a file that was written (atomically) by someone else, such as a drawing."""
        self.hold()
        self.manifest["files"][relpath] = sha256_file(self.local(relpath))

    def forget(self, relpath: str) -> None:
        """Unlist a file; the caller deletes it after the next commit so a crash never leaves a listed hole."""
        self.manifest["files"].pop(relpath, None)

    def write_probe(self, labels: np.ndarray, images: np.ndarray | None, indices: np.ndarray | None = None) -> None:
        """The probe's labels (and images, for thumbnails and the samples figure), once, before the first epoch."""
        self.write_array(layout.PROBE_LABELS, np.asarray(labels, dtype=np.int64))
        if images is not None:
            self.write_array(layout.PROBE_IMAGES, images)
        if indices is not None:
            self.write_array(layout.PROBE_INDICES, np.asarray(indices, dtype=np.int64))
        dataset = self.manifest.setdefault("dataset", {})
        dataset.setdefault("class_names", [str(label) for label in range(int(np.max(labels)) + 1)])
        dataset["probe_size"] = int(len(labels))
        self.commit()

    def record_epoch(self, epoch: int, history_row: dict[str, float] | None) -> None:
        """Mark snapshot `epoch` complete (its files already written) and commit; the row (with its "snapshot"
        number) joins the history in place of any row of that snapshot or of a later one, and of a row of epoch-end
        metrics at its step (which it took in)."""
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
        and the last manifest stays."""
        self.hold()
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
            self.manifest["status"] = status
        check_names_to_record(self.manifest["layers"], self.manifest["dataset"].get("class_names"))
        self.manifest["format"] = FORMAT
        self.manifest["updated"] = _now()
        data = _manifest_bytes(self.manifest, self.path)
        with atomic_output(self.path / MANIFEST, size=len(data)) as temp:
            temp.write_bytes(data)
        self._manifest_text = data.decode("utf-8")

    # ---- replacing every map of the run at once (a redraw with another method) -----------------------------------
    def stage_maps(self, layer: str) -> Path:
        """An empty folder beside maps/<layer> to write a layer's new maps into before `swap_maps`."""
        self.hold()
        staged = self.local("maps") / _swap_folder(NEW_MAPS, layer)
        _remove_tree(staged)
        staged.mkdir(parents=True)
        return staged

    def swap_maps(self, staged: dict[str, dict[str, str]], maps_info: dict[str, Any]) -> None:
        """Put each layer's staged maps (`staged[layer]`: path under maps/<layer>/ -> sha256) in place of its old
        ones and commit them as the run's maps; the old maps are deleted only after the commit. A writer killed
        in between leaves `.old-` folders that the next writer uses to finish or undo the swap."""
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


def snapshot_labels(manifest: dict[str, Any], count: int | None = None) -> list[dict[str, int]]:
    """Each snapshot's step and epoch: the manifest's "snapshots" list, or epoch i for snapshot i when it has none."""
    count = int(manifest["epochs_complete"]) + 1 if count is None else count
    labels = manifest.get("snapshots") or []
    return [labels[i] if i < len(labels) else {"epoch": i} for i in range(count)]


def history_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's history with each row's "snapshot", "step" and "epoch" saying what they are. Runs recorded
    before 2026-12-06 stored the snapshot's number under "epoch" (in a step run, or one whose first snapshot was not
    epoch 0, that was not its epoch): such rows are read with their snapshot's own labels."""
    rows = list(manifest["history"])
    if not rows or any("snapshot" in row for row in rows):
        return rows
    labels = snapshot_labels(manifest)
    read = []
    for row in rows:
        index = row.get("epoch")
        label = labels[index] if _is_int(index) and 0 <= index < len(labels) else {}
        metrics = {key: value for key, value in row.items() if key != "epoch"}
        read.append({"snapshot": index, **label, **metrics} if _is_int(index) else dict(row))
    return read


def in_step_order(rows: list[dict[str, Any]]) -> None:
    """Sort a step run's history rows (every row knows its step) by step, in place; other runs keep their order."""
    if all("step" in row for row in rows):
        rows.sort(key=lambda row: row["step"])


def curve_axis(manifest: dict[str, Any], history: list[dict[str, Any]]) -> tuple[list[float], list[float], str]:
    """Where the curves put each history row and each snapshot on their x axis, and the axis' name: the optimizer
    step for a run recorded by step, the epoch for one recorded by epoch, or the snapshot's number where a row or a
    snapshot lacks the label the others have."""
    labels = snapshot_labels(manifest)
    for key, name in (("step", "optimizer step"), ("epoch", "epoch")):
        if labels and all(key in label for label in labels) and all(key in row for row in history):
            return [row[key] for row in history], [label[key] for label in labels], name
    return ([row.get("snapshot", position) for position, row in enumerate(history)], list(range(len(labels))),
            "snapshot")


def metric_series(history: list[dict[str, Any]], x: list[float], key: str
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """A metric's points (x, value), from the rows that hold it: a row of other metrics (a step run's epoch-end row
    among its snapshots' rows) is left out, a null (a nan the run stored) is a gap. None when no row has a number."""
    if not any(isinstance(row.get(key), (int, float)) for row in history):
        return None
    rows = [(position, row[key]) for position, row in zip(x, history) if key in row]
    return (np.array([position for position, _ in rows], dtype=float),
            np.array([float(value) if isinstance(value, (int, float)) else np.nan for _, value in rows]))


def snapshot_title(manifest: dict[str, Any], index: int) -> str:
    """How a frame, the report's slider and the curves name snapshot `index`: "Epoch 3", or "Step 512 · epoch 2"."""
    label = snapshot_labels(manifest)[index] if index <= int(manifest["epochs_complete"]) else {"epoch": index}
    if "step" in label:
        return f"Step {label['step']:,}" + (f" · epoch {label['epoch']}" if "epoch" in label else "")
    return f"Epoch {label['epoch']}"


def is_untrained(manifest: dict[str, Any], index: int) -> bool:
    """Whether snapshot `index` shows the network before any training (step 0, or epoch 0 with no step)."""
    label = snapshot_labels(manifest)[index] if index <= int(manifest["epochs_complete"]) else {"epoch": index}
    return label.get("step", label.get("epoch")) == 0


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a .npy file (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode()


def load_run(path: str | os.PathLike) -> RunFolder:
    """Open a finished or interrupted run folder for reading, after checking every recorded file."""
    return RunFolder.open(path, verify=True)


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


def _activations_problem(relpath: str, shape: tuple[int, ...]) -> str | None:
    """Why an array of `shape` cannot be the activations at `relpath` (None for another file): a map needs at least
    one value per input. The rule when a run is recorded (`write_array`) and when it is read (`array_header`)."""
    if layout.activations_layer(relpath) is None or len(shape) < 2 or math.prod(shape[1:]) > 0:
        return None
    return f"it holds no values per input: shape {shape}"


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


def _recover_map_swaps(run: RunFolder, manifest: dict[str, Any], tokens: tuple[str, ...]) -> bool:
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
                _remove_tree(child)
            recovered = True
    return recovered


def _remove_tree(path: Path) -> None:
    """Delete a folder layerlapse made inside the run (a link is unlinked, never followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _make_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        if (storage := storage_error(error, folder / "manifest.json")) is not None and error.errno != errno.EACCES:
            raise storage from None
        raise RunFolderError(f"cannot write to {folder} ({error.strerror or error}): choose another --out "
                             "or fix its permissions") from None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
