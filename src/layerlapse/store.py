"""The run folder: everything the pictures need, written atomically, listed with checksums in the manifest.

The manifest is written last, after the files it lists, so it always describes files that are whole. Recorded data
(probe, activations, predictions, checkpoints, test set, maps) is never rewritten once listed; drawn outputs
(figures, frames, GIF, metrics.json, history.jsonl) are derived and may be redrawn at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output, remove_temp_files, sha256_file, write_bytes
from .config import RunConfig
from .errors import ConfigError, RunFolderError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_KEYS = ("status", "config", "dataset", "layers", "epochs_complete", "history", "test", "files")
STATUSES = ("running", "interrupted", "failed", "complete")
# derived from the recorded data: redrawn freely, so not checked before they are overwritten
DERIVED = ("figures/", "frames/", "lapse", "metrics.json", "history.jsonl", "report.html")
RECORDED_FOLDERS = ("probe", "activations", "predictions", "checkpoints", "test", "maps")


def epoch_file(epoch: int, suffix: str = ".npy") -> str:
    return f"epoch_{epoch:03d}{suffix}"


def is_derived(relpath: str) -> bool:
    return relpath.startswith(DERIVED)


class RunFolder:
    """A run folder on disk and its manifest; write through it so every file is atomic and listed."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    def __repr__(self) -> str:
        return (f"RunFolder({str(self.path)!r}, status={self.status!r}, "
                f"epochs_complete={self.epochs_complete}, layers={self.layers})")

    # ---- opening -------------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, config: RunConfig, dataset: dict[str, Any], *,
               force: bool = False) -> RunFolder:
        """Start a new run folder; refuses a non-empty folder unless `force` and it is a run folder itself."""
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"{folder} is a file, not a folder: choose another --out")
        if folder.is_dir() and any(folder.iterdir()):
            if not force:
                raise RunFolderError(f"{folder} is not empty: pass --resume to continue the run in it, "
                                     "--force to replace it, or choose another --out")
            if not _holds_run(folder):
                raise RunFolderError(f"{folder} is not empty and holds no layerlapse run, so --force will not "
                                     "delete it: choose another --out")
            _empty_folder(folder)
        _make_writable_folder(folder)
        manifest = {"schema_version": SCHEMA_VERSION, "status": "running", "created": _now(),
                    "config": config.to_dict(), "dataset": dataset, "layers": list(config.layers),
                    "epochs_complete": -1, "history": [], "test": None, "files": {}}
        run = cls(folder, manifest)
        run.commit()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = True) -> RunFolder:
        """Open an existing run folder, checking that every recorded file is whole and unchanged."""
        folder = Path(path)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise RunFolderError(f"{folder} holds no {MANIFEST}: give the folder of a layerlapse run "
                                 "(made by `layerlapse run` or `layerlapse demo`)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise RunFolderError(f"{manifest_path} is damaged ({error}): run it again with --force") from None
        if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
            found = manifest.get("schema_version") if isinstance(manifest, dict) else None
            raise RunFolderError(f"{manifest_path} has schema version {found!r}, this layerlapse reads "
                                 f"{SCHEMA_VERSION}: record the run again with this version")
        missing = [key for key in MANIFEST_KEYS if key not in manifest]
        if missing or not isinstance(manifest["files"], dict):
            raise RunFolderError(f"{manifest_path} is damaged (it lacks {', '.join(missing) or 'a files table'}): "
                                 "record the run again with --force")
        run = cls(folder, manifest)
        if verify:
            run.verify()
        return run

    def verify(self) -> None:
        """Raise RunFolderError for the first recorded file that is missing, truncated or altered."""
        for relpath, expected in self.manifest["files"].items():
            if is_derived(relpath):
                continue
            file = self.path / relpath
            if not file.is_file():
                raise RunFolderError(f"run folder {self.path} is damaged: {relpath} is missing; restore it, "
                                     "or record the run again with --force")
            if sha256_file(file) != expected:
                raise RunFolderError(f"run folder {self.path} is damaged: {relpath} does not match its checksum "
                                     "(truncated or altered); restore it, or record the run again with --force")

    def discard_uncommitted(self) -> None:
        """Before resuming: drop what a killed process wrote after the manifest's last commit."""
        remove_temp_files(self.path)
        listed = set(self.manifest["files"])
        for folder_name in RECORDED_FOLDERS:
            for file in sorted((self.path / folder_name).rglob("*")):
                if file.is_file() and file.relative_to(self.path).as_posix() not in listed:
                    file.unlink()

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
        return list(self.manifest["history"])

    def has(self, relpath: str) -> bool:
        return relpath in self.manifest["files"]

    def read_array(self, relpath: str) -> np.ndarray:
        if not self.has(relpath):
            raise RunFolderError(f"run folder {self.path} has no {relpath}: the run did not record it; "
                                 "record it again, or resume it with --resume")
        try:
            return np.load(self.path / relpath, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise RunFolderError(f"run folder {self.path} is damaged: {relpath} cannot be read ({error}); "
                                 "restore it, or record the run again with --force") from None

    def read_json(self, relpath: str) -> Any:
        if not self.has(relpath):
            raise RunFolderError(f"run folder {self.path} has no {relpath}: the run did not record it; "
                                 "record it again, or resume it with --resume")
        try:
            return json.loads((self.path / relpath).read_text())
        except (ValueError, OSError) as error:
            raise RunFolderError(f"run folder {self.path} is damaged: {relpath} cannot be read ({error}); "
                                 "restore it, or record the run again with --force") from None

    def activations(self, layer: str, epoch: int) -> np.ndarray:
        return self.read_array(f"activations/{layer}/{epoch_file(epoch)}")

    def predictions(self, epoch: int) -> np.ndarray:
        return self.read_array(f"predictions/{epoch_file(epoch)}")

    # ---- writing -------------------------------------------------------------------------------------------------
    def write_array(self, relpath: str, array: np.ndarray) -> Path:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return self.write_bytes(relpath, buffer.getvalue())

    def write_json(self, relpath: str, obj: Any) -> Path:
        return self.write_bytes(relpath, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())

    def write_bytes(self, relpath: str, data: bytes) -> Path:
        target = self.path / relpath
        write_bytes(target, data)
        self.manifest["files"][relpath] = hashlib.sha256(data).hexdigest()  # the bytes in hand, not a re-read
        return target

    def add_file(self, relpath: str) -> None:
        """List a file that was written (atomically) by someone else, such as a drawing."""
        self.manifest["files"][relpath] = sha256_file(self.path / relpath)

    def forget(self, relpath: str) -> None:
        """Unlist a file; the caller deletes it after the next commit so a crash never leaves a listed hole."""
        self.manifest["files"].pop(relpath, None)

    def write_probe(self, labels: np.ndarray, images: np.ndarray | None, indices: np.ndarray | None = None) -> None:
        """The probe's labels (and images, for thumbnails and the samples figure), once, before the first epoch."""
        self.write_array("probe/labels.npy", np.asarray(labels, dtype=np.int64))
        if images is not None:
            self.write_array("probe/images.npy", images)
        if indices is not None:
            self.write_array("probe/indices.npy", np.asarray(indices, dtype=np.int64))
        dataset = self.manifest.setdefault("dataset", {})
        dataset.setdefault("class_names", [str(label) for label in range(int(np.max(labels)) + 1)])
        dataset["probe_size"] = int(len(labels))
        self.commit()

    def record_epoch(self, epoch: int, history_row: dict[str, float] | None) -> None:
        """Mark `epoch` complete (its files already written) and commit; the row joins the history."""
        if history_row is not None:
            earlier = [row for row in self.history if row.get("epoch", 0) < epoch]
            self.manifest["history"] = [*earlier, history_row]
            self.write_history()
        self.manifest["epochs_complete"] = epoch
        self.commit()

    def write_history(self) -> None:
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        self.write_bytes("history.jsonl", lines.encode())

    @contextlib.contextmanager
    def noting_failure(self) -> Iterator[RunFolder]:
        """Mark the run interrupted (Ctrl-C, SIGTERM) or failed if the block raises, so --resume knows."""
        try:
            yield self
        except KeyboardInterrupt:
            self.commit("interrupted")
            raise
        except BaseException:
            self.commit("failed")
            raise

    def commit(self, status: str | None = None) -> None:
        """Write the manifest, last, listing every file written so far."""
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
            self.manifest["status"] = status
        self.manifest["updated"] = _now()
        text = json.dumps(self.manifest, indent=2, allow_nan=False) + "\n"
        with atomic_output(self.path / MANIFEST) as temp:
            temp.write_text(text)


def load_run(path: str | os.PathLike) -> RunFolder:
    """Open a finished or interrupted run folder for reading, after checking every recorded file."""
    return RunFolder.open(path, verify=True)


def _holds_run(folder: Path) -> bool:
    """Whether `folder` holds a layerlapse run (a manifest of ours, not just any file of that name)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(manifest, dict) and "schema_version" in manifest and isinstance(manifest.get("files"), dict)


def _make_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RunFolderError(f"cannot write to {folder} ({error.strerror or error}): choose another --out "
                             "or fix its permissions") from None


def _empty_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
