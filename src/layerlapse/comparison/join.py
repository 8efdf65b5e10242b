"""Which items and snapshots several runs share, or a loud refusal: the first step of comparing runs.

Items are joined by what the run folders say of them: by dataset index where every run stored its probe's indices
(the built-in loop does), else by position (row i of each probe is one item: a `Recorder` given the same probe
tensor). The join is then checked item by item: the same true class, and, where the runs stored thumbnails, the same
image (within two levels of 255, as each run scaled its inputs to bytes by itself). A mismatch is one line naming
the first item that differs. Runs with probes of other sizes compare on the items they share, and say how many.

Snapshots are matched by epoch where every run records by epoch, else by the fraction of training done (each
snapshot's optimizer step over its run's last): each frame of the comparison is the first run's snapshot and every
other run's nearest one. Only snapshots every run has maps for are compared.

Runs are only read: nothing here writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import CompareError, RunFolderError
from ..store import layout
from ..store.history import snapshot_labels
from ..store.images import stored_pixels
from ..store.run import RunFolder

IMAGE_TOLERANCE = 2  # levels of 255: runs that scaled the same image to bytes by themselves may round apart
FEWEST_SHARED = 20  # items: fewer say nothing about neighbourhoods or agreement


@dataclass(frozen=True)
class JoinedRuns:
    """Several runs joined on their shared probe items and matched snapshots."""

    runs: list[RunFolder]
    names: list[str]  # how the page and the figures name each run ("A", "B", … or the user's)
    rows: list[np.ndarray]  # per run, the probe row of each shared item, in the shared order
    labels: np.ndarray  # (items,) true class of each shared item
    images: np.ndarray | None  # (items, height, width[, 3]) uint8 thumbnails, where every run stored them
    indices: np.ndarray | None  # (items,) dataset index of each shared item, where the runs stored them
    frames: list[list[int]]  # per frame of the comparison, each run's snapshot
    class_names: list[str]
    item_rule: str  # how the items were joined, in words
    snapshot_rule: str  # how the snapshots were matched, in words
    notes: list[str]
    texts: list[str] | None = None  # (items,) each shared item's text, from the first run that stored texts

    @property
    def n_items(self) -> int:
        return len(self.labels)


def join_runs(paths: Sequence[str | os.PathLike], names: Sequence[str] | None = None) -> JoinedRuns:
    """Open the runs at `paths` (checked whole), join their probe items and match their snapshots; a one-line
    CompareError (or RunFolderError) when they cannot be compared.

    Parameters
    ----------
    paths : sequence of path
        Two run folders or more; the first is the one the others' maps are turned onto. One folder given twice
        compares a run with itself.
    names : sequence of str, optional
        What to call each run on the page; default "A", "B", "C", ….
    """
    if len(paths) < 2:
        raise CompareError(f"compare needs two runs or more, got {len(paths)}: name another run folder "
                           "(the same one twice compares a run with itself)")
    names = _names(len(paths), names)
    runs = [_open_complete(Path(path)) for path in paths]
    class_names = _same_classes(runs)
    rows, indices, item_rule, notes = _join_items(runs)
    labels = runs[0].probe_labels()[rows[0]]
    images = _checked_items(runs, rows, labels, indices)
    frames, snapshot_rule = _match_snapshots(runs)
    return JoinedRuns(runs, names, rows, labels, images, indices, frames, class_names, item_rule, snapshot_rule,
                      notes, _texts(runs, rows))


def _texts(runs: list[RunFolder], rows: list[np.ndarray]) -> list[str] | None:
    """The shared items' texts, as the first run that stored texts has them (None where no run did)."""
    for run, run_rows in zip(runs, rows):
        texts = run.probe_texts()
        if texts is not None:
            return [texts[int(row)] for row in run_rows]
    return None


def _names(count: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [chr(ord("A") + k) if k < 26 else f"run {k + 1}" for k in range(count)]
    names = [str(name) for name in names]
    if len(names) != count:
        raise CompareError(f"{len(names)} names for {count} runs: give one name per run, in the runs' order")
    if len(set(names)) != count or any(not name.strip() or len(name) > 40 for name in names):
        raise CompareError(f"run names must be different, non-empty and at most 40 characters, got {names}")
    return names


def _open_complete(path: Path) -> RunFolder:
    if not path.is_dir():
        raise CompareError(f"{path} is not a folder: name the run folders to compare")
    if not (path / layout.MANIFEST).is_file():
        raise CompareError(f"{path} is not a run folder (it has no {layout.MANIFEST}): name folders that "
                           "`layerlapse run`, a Recorder or a callback wrote")
    run = RunFolder.open(path)
    if run.status != "complete":
        raise CompareError(f"{path} is not complete (status {run.status!r}): let it finish, or continue it with "
                           "--resume, before comparing")
    for layer in run.layers:
        if not run.has(layout.map_file(layer, 0)):
            raise CompareError(f"{path} has no maps for layer {layer!r}: map it with `layerlapse render {path}` "
                               "first")
    return run


def _same_classes(runs: list[RunFolder]) -> list[str]:
    first = runs[0].class_names
    for run in runs[1:]:
        if run.class_names != first:
            raise CompareError(f"{runs[0].path} and {run.path} name their classes differently "
                               f"({_short(first)} against {_short(run.class_names)}): compare runs of one task")
    return first


def _short(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", …" if len(names) > 5 else "")


def _join_items(runs: list[RunFolder]) -> tuple[list[np.ndarray], np.ndarray | None, str, list[str]]:
    """Each run's probe rows of the shared items, their dataset indices, the rule in words, and a note when the
    probes differ in size."""
    sizes = [len(run.probe_labels()) for run in runs]
    datasets = {str(run.manifest["dataset"].get("name")) for run in runs}
    if all(run.has(layout.PROBE_INDICES) for run in runs) and len(datasets) == 1:
        indexed = [run.probe_indices() for run in runs]
        shared = np.sort(indexed[0])  # in index order: the page finds items by their id
        for other in indexed[1:]:
            shared = shared[np.isin(shared, other)]
        rows = [_positions(found, shared) for found in indexed]
        indices, rule = shared, f"joined by index in {datasets.pop()}"
    else:
        count = min(sizes)
        rows, indices = [np.arange(count) for _ in runs], None
        rule = "joined by position (row i of every probe is one item)"
    shared_count = len(rows[0])
    if shared_count < FEWEST_SHARED:
        raise CompareError(f"{runs[0].path} and the other runs share {shared_count} probe items: record them on "
                           "the same probe (the same --data-seed, or the same probe in your loop)")
    notes = []
    if any(size != shared_count for size in sizes):
        held = ", ".join(f"{size:,}" for size in sizes)
        notes.append(f"compared on the {shared_count:,} probe items every run holds (of {held})")
    return rows, indices, rule, notes


def _positions(indices: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    order = np.argsort(indices, kind="stable")
    return order[np.searchsorted(indices, wanted, sorter=order)]


def _checked_items(runs: list[RunFolder], rows: list[np.ndarray], labels: np.ndarray,
                   indices: np.ndarray | None) -> np.ndarray | None:
    """The shared items' thumbnails (from the first run that stored them; None where none did), after checking that
    every run's item is the first run's: its class, and its image where both stored one."""
    first_images = _images(runs[0], rows[0])
    shown = first_images
    for run, run_rows in zip(runs[1:], rows[1:]):
        their_labels = run.probe_labels()[run_rows]
        differs = np.flatnonzero(their_labels != labels)
        if len(differs):
            raise _mismatch(runs[0], run, differs[0], indices, rows,
                            f"is a {runs[0].class_names[labels[differs[0]]]} in one and a "
                            f"{run.class_names[their_labels[differs[0]]]} in the other")
        images = _images(run, run_rows)
        if first_images is not None and images is not None:
            if images.shape != first_images.shape:
                raise _mismatch(runs[0], run, 0, indices, rows,
                                f"is a {first_images.shape[1:]} image in one and {images.shape[1:]} in the other")
            apart = np.abs(images.astype(np.int16) - first_images.astype(np.int16)).reshape(len(images), -1).max(1)
            differs = np.flatnonzero(apart > IMAGE_TOLERANCE)
            if len(differs):
                raise _mismatch(runs[0], run, differs[0], indices, rows, "is another image in each")
        shown = images if shown is None else shown
    return shown


def _images(run: RunFolder, rows: np.ndarray) -> np.ndarray | None:
    return stored_pixels(run.read_array(layout.PROBE_IMAGES))[rows] if run.has(layout.PROBE_IMAGES) else None


def _mismatch(first: RunFolder, other: RunFolder, item: int, indices: np.ndarray | None, rows: list[np.ndarray],
              how: str) -> CompareError:
    where = (f"dataset index {int(indices[item]):,}" if indices is not None
             else f"probe row {int(rows[0][item]):,}")
    return CompareError(f"{first.path} and {other.path} do not hold the same probe: item {where} {how}; record "
                        "both on the same probe (the same --data-seed, or the same probe in your loop)")


def _match_snapshots(runs: list[RunFolder]) -> tuple[list[list[int]], str]:
    mapped = [_mapped_count(run) for run in runs]
    labels = [snapshot_labels(run.manifest, count) for run, count in zip(runs, mapped)]
    by_epoch = all("step" not in label for run_labels in labels for label in run_labels)
    if by_epoch:
        count = min(mapped)
        return [[snapshot] * len(runs) for snapshot in range(count)], "snapshots matched by epoch"
    fractions = [_training_fractions(run_labels) for run_labels in labels]
    if any(fraction is None for fraction in fractions):
        raise CompareError("the runs record by step, but a snapshot of one names no step: compare runs whose "
                           "snapshots all name their optimizer step (or all record by epoch)")
    frames = [[int(np.argmin(np.abs(other - at))) for other in fractions] for at in fractions[0]]
    return frames, ("snapshots matched by the fraction of training done (optimizer step over the run's last): "
                    "each of the first run's snapshots with every other run's nearest")


def _mapped_count(run: RunFolder) -> int:
    count = 0
    while count <= run.epochs_complete and all(run.has(layout.map_file(layer, count)) for layer in run.layers):
        count += 1
    if count == 0:
        raise RunFolderError(f"run folder {run.path} has no maps: map it with `layerlapse render {run.path}` first")
    return count


def _training_fractions(labels: list[dict[str, int]]) -> np.ndarray | None:
    if any("step" not in label for label in labels):
        return None
    steps = np.array([label["step"] for label in labels], dtype=np.float64)
    return steps / max(steps[-1], 1.0)
