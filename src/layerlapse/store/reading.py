"""The read side of a run folder: paths checked to stay inside it, the manifest's entries, and every listed file
read back checked (shape, dtype and size from the .npy header before numpy allocates). Reading needs no lock."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import layout
from ..config import RunConfig
from ..errors import ConfigError, RunFolderError
from .history import history_rows, snapshot_title
from .layout import MANIFEST
from .texts import stored_texts


class RunReading:
    """What reading a run folder takes: its `path` and its `manifest` (a `RunFolder` holds both)."""

    path: Path
    manifest: dict[str, Any]

    # ---- paths ---------------------------------------------------------------------------------------------------
    def local(self, relpath: str) -> Path:
        """The path of `relpath` inside the run folder, after checking it is a plain relative path and that no part
        of it is a symbolic link (layerlapse never follows a link out of a run folder).

        Parameters
        ----------
        relpath : str
            A path relative to the run folder, with "/" between its parts.
        """
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
        """The stored faithfulness measures and notes of one frame ({} when the run has none).

        Parameters
        ----------
        layer : str
            One of the run's layers.
        epoch : int
            The snapshot's number.
        """
        relpath = layout.quality(layer)
        return self.read_json(relpath)["frames"].get(str(epoch), {}) if self.has(relpath) else {}

    def snapshot_title(self, index: int) -> str:
        """"Epoch 3", or "Step 512 · epoch 2" for a run that records by step.

        Parameters
        ----------
        index : int
            The snapshot's number.
        """
        return snapshot_title(self.manifest, index)

    def reduction(self, layer: str) -> str | None:
        """How the layer's outputs became rows ("mean over space", …), when they were not one row already.

        Parameters
        ----------
        layer : str
            One of the run's layers.
        """
        caption = (self.manifest.get("layer_info") or {}).get(layer, {}).get("caption")
        return caption if isinstance(caption, str) and caption != "as is" else None

    def has(self, relpath: str) -> bool:
        """Whether the manifest lists `relpath`.

        Parameters
        ----------
        relpath : str
            A path relative to the run folder.
        """
        return relpath in self.manifest["files"]

    def array_header(self, relpath: str) -> tuple[tuple[int, ...], np.dtype]:
        """Shape and dtype of a listed .npy file, checked against its size without reading the data: a truncated
        file, a header claiming more than the file holds, or an object array is a one-line RunFolderError.

        Parameters
        ----------
        relpath : str
            A listed .npy file.
        """
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
        used (a snapshot of a wide layer need never sit whole in memory).

        Parameters
        ----------
        relpath : str
            A listed .npy file ("probe/labels.npy", "maps/<layer>/epoch_003.npy", …).
        mapped : bool
            Return a read-only memory map rather than reading the whole file.
        """
        self.array_header(relpath)  # never ask numpy to allocate what the file cannot hold
        try:
            return np.load(self.local(relpath), mmap_mode="r" if mapped else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise self._damaged(relpath, str(error)) from None

    def read_json(self, relpath: str) -> Any:
        """A listed JSON file, parsed.

        Parameters
        ----------
        relpath : str
            A listed JSON file.
        """
        path = self._listed(relpath)
        try:
            return json.loads(path.read_text())
        except (ValueError, OSError, RecursionError) as error:
            raise self._damaged(relpath, str(error) or type(error).__name__) from None

    def activations(self, layer: str, epoch: int) -> np.ndarray:
        """A snapshot's activations (n_probe, features), memory-mapped and read-only.

        Parameters
        ----------
        layer : str
            One of the run's layers.
        epoch : int
            The snapshot's number.
        """
        return self.read_array(layout.activations(layer, epoch), mapped=True)

    def read_rows(self, relpath: str, rows: np.ndarray) -> np.ndarray:
        """Rows `rows` of a listed 2-D-or-more .npy file, read through a memory map: a sample of a wide layer's
        activations without loading the whole snapshot.

        Parameters
        ----------
        relpath : str
            A listed .npy file of at least one dimension.
        rows : array of int
            The rows to read, in the order wanted.
        """
        shape, _ = self.array_header(relpath)
        if not shape or (len(rows) and int(np.max(rows)) >= shape[0]):
            raise self._damaged(relpath, f"it holds {shape[0] if shape else 0} rows where {int(np.max(rows)) + 1} "
                                          "or more belong")
        try:
            return np.asarray(np.load(self.local(relpath), mmap_mode="r", allow_pickle=False)[rows])
        except (ValueError, OSError, EOFError) as error:
            raise self._damaged(relpath, str(error)) from None

    def predictions(self, epoch: int) -> np.ndarray:
        """A snapshot's predictions for the probe: a row of class scores per input, (n_probe, n_classes).

        Parameters
        ----------
        epoch : int
            The snapshot's number.
        """
        return self.read_array(layout.predictions(epoch))

    def labels(self, relpath: str = layout.PROBE_LABELS, *, count: int | None = None) -> np.ndarray:
        """A labels file as int64, checked: one integer per image (`count` of them where known), each naming one of
        the run's classes.

        Parameters
        ----------
        relpath : str
            A listed labels file; default the probe's.
        count : int, optional
            How many labels the file must hold.
        """
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

    def probe_indices(self) -> np.ndarray | None:
        """Where each probe input sits in the dataset's training set (the built-in loop stores it), or None: to
        record another network on the same probe, and compare the two (`layerlapse compare`)."""
        return self.read_array(layout.PROBE_INDICES).astype(np.int64) if self.has(layout.PROBE_INDICES) else None

    def describe_points(self, n_points: int) -> str:
        """`n_points` of the run's points as captions and the page say them: "300 probe images", "300 probe items"
        (texts, no images), "286 tokens of 40 probe items" (a run of tokens), else "300 probe inputs"."""
        dataset = self.manifest.get("dataset") or {}
        if dataset.get("points") == "tokens":
            items = dataset.get("items")
            return f"{n_points:,} tokens" + (f" of {items:,} probe items" if isinstance(items, int) else "")
        noun = "images" if self.has(layout.PROBE_IMAGES) else "items" if self.has(layout.PROBE_TEXTS) else "inputs"
        return f"{n_points:,} probe {noun}"

    def probe_texts(self) -> list[str] | None:
        """One text per probe item (a text model's input, or a caption given for any other data), made safe to show
        and bounded (`layerlapse.store.texts`), or None where the run was given none."""
        if not self.has(layout.PROBE_TEXTS):
            return None
        count = len(self.probe_labels())
        texts = stored_texts(self.read_json(layout.PROBE_TEXTS), count)
        if texts is None:
            raise self._damaged(layout.PROBE_TEXTS, f"it holds no list of {count:,} strings, one per probe item")
        return texts

    def probe_labels(self) -> np.ndarray:
        return self.labels(layout.PROBE_LABELS, count=self.manifest["dataset"].get("probe_size"))

    def read_xy(self, relpath: str, n_points: int) -> np.ndarray:
        """A stored map, checked to hold one 2-D position per point.

        Parameters
        ----------
        relpath : str
            A listed map, maps/<layer>/epoch_NNN.npy.
        n_points : int
            How many points it must place.
        """
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


def _activations_problem(relpath: str, shape: tuple[int, ...]) -> str | None:
    """Why an array of `shape` cannot be the activations at `relpath` (None for another file): a map needs at least
    one value per input. The rule when a run is recorded (`write_array`) and when it is read (`array_header`)."""
    if layout.activations_layer(relpath) is None or len(shape) < 2 or math.prod(shape[1:]) > 0:
        return None
    return f"it holds no values per input: shape {shape}"
