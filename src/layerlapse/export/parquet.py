"""A stored run as one table per layer, for tools that read tables: `layerlapse export --parquet RUN`.

A row per probe image and snapshot: where the image sits on that snapshot's map, what the network predicted for it
then, and its per-image dynamics over the whole run (the same value on every row of the image). Apache Parquet, so
pandas (`pd.read_parquet`), DuckDB (`SELECT * FROM 'hidden.parquet'`), Apple's Embedding Atlas and DataMapPlot open
it directly; the columns:

- `probe_row` the image's row in the run folder's arrays, `dataset_index` its index in the training set (where the
  run recorded it), `text` (where the run stored a text or caption per item), `label` and `label_name`;
- `snapshot` (0 is the first), `epoch` and, for a run recorded by step, `step` (each where every snapshot has it), `x`, `y` (NaN where the frame does not
  draw the point);
- `predicted`, `predicted_name`, `confidence` (the predicted class's probability), `true_class_probability`, where the
  run stored predictions;
- the dynamics of `layerlapse.measures.dynamics`, where the run has two trained snapshots with predictions:
  `mean_confidence`, `variability`, `correctness`, `first_learned`, `learned_from`, `forgetting_events`,
  `never_learned`, `unforgettable`, and `region` (easy / ambiguous / hard to learn, or empty).

pyarrow writes the file: `pip install layerlapse[parquet]`. Torch is never needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..store import layout
from ..store.atomic import atomic_output
from ..measures.dynamics import REGIONS, cartography_regions, probe_dynamics
from ..errors import LayerlapseError, RunFolderError, not_recorded
from ..store.history import snapshot_labels
from ..store.run import RunFolder

INSTALL_HINT = "writing Parquet needs pyarrow: pip install 'layerlapse[parquet]' (or pip install pyarrow)"
_REGION_NAMES = {code: name for name, code in REGIONS.items()}


def layer_table(run: RunFolder, layer: str) -> dict[str, np.ndarray]:
    """The layer's table as columns (name -> array, one entry per image and mapped snapshot, snapshot-major)."""
    labels = run.probe_labels()
    n = len(labels)
    snapshots = _mapped_snapshots(run, layer)
    rows = np.tile(np.arange(n), len(snapshots))
    xy = np.concatenate([run.read_xy(layout.map_file(layer, s), n).astype(np.float32) for s in snapshots])
    names = np.asarray(run.class_names, dtype=object)
    columns = {"probe_row": rows.astype(np.int64)}
    if run.has(layout.PROBE_INDICES):
        columns["dataset_index"] = np.asarray(run.read_array(layout.PROBE_INDICES), dtype=np.int64)[rows]
    texts = run.probe_texts()
    if texts is not None:
        columns["text"] = np.asarray(texts, dtype=object)[rows]
    columns.update(label=labels[rows], label_name=names[labels[rows]],
                   snapshot=np.repeat(np.asarray(snapshots, dtype=np.int64), n), **_snapshot_columns(run, snapshots, n),
                   x=xy[:, 0], y=xy[:, 1])
    columns.update(_prediction_columns(run, snapshots, labels, names))
    columns.update(_dynamics_columns(run, rows))
    return columns


def _mapped_snapshots(run: RunFolder, layer: str) -> list[int]:
    snapshots = [s for s in range(run.epochs_complete + 1) if run.has(layout.map_file(layer, s))]
    if not snapshots:
        raise RunFolderError(f"run folder {run.path} has no maps for layer {layer!r}: map it with "
                             f"`layerlapse render {run.path}` first")
    return snapshots


def _snapshot_columns(run: RunFolder, snapshots: list[int], n: int) -> dict[str, np.ndarray]:
    labels = snapshot_labels(run.manifest)
    columns = {}
    for key in ("epoch", "step"):  # a label only where every snapshot has it (a step run may not know its epochs)
        if all(key in labels[s] for s in snapshots):
            columns[key] = np.repeat(np.asarray([labels[s][key] for s in snapshots], dtype=np.int64), n)
    return columns


def _prediction_columns(run: RunFolder, snapshots: list[int], labels: np.ndarray, names: np.ndarray
                        ) -> dict[str, np.ndarray]:
    if not all(run.has(layout.predictions(s)) for s in snapshots):
        return {}
    probabilities = np.stack([run.predictions(s) for s in snapshots])  # (snapshots, n, classes)
    if probabilities.ndim != 3 or probabilities.shape[2] != len(names):
        return {}  # not scores for the run's classes: the table says nothing it cannot stand behind
    predicted = probabilities.argmax(axis=2)
    confidence = np.take_along_axis(probabilities, predicted[..., None], axis=2)[..., 0]
    true_class = np.take_along_axis(probabilities, np.broadcast_to(labels, predicted.shape)[..., None], axis=2)[..., 0]
    return {"predicted": predicted.ravel().astype(np.int64), "predicted_name": names[predicted.ravel()],
            "confidence": confidence.ravel().astype(np.float32),
            "true_class_probability": true_class.ravel().astype(np.float32)}


def _dynamics_columns(run: RunFolder, rows: np.ndarray) -> dict[str, np.ndarray]:
    try:
        found = probe_dynamics(run)
    except RunFolderError:  # predictions that are not the probe classes' scores: no dynamics to tell
        return {}
    if found is None:
        return {}
    regions = cartography_regions(found.confidence, found.variability)
    region_names = np.asarray([_REGION_NAMES.get(int(code), "") for code in range(max(REGIONS.values()) + 1)],
                              dtype=object)
    return {"mean_confidence": found.confidence[rows], "variability": found.variability[rows],
            "correctness": found.correctness[rows], "first_learned": found.first_learned[rows],
            "learned_from": found.learned_from[rows], "forgetting_events": found.forgetting_events[rows],
            "never_learned": found.never_learned[rows], "unforgettable": found.unforgettable[rows],
            "region": region_names[regions[rows]]}


def write_parquet(run: RunFolder, out_dir: str | os.PathLike, *, layers: list[str] | None = None) -> list[Path]:
    """Write `<layer>.parquet` for each chosen layer (default: every recorded one) into `out_dir`, each atomically;
    return their paths. Every input is checked before the first file is written."""
    chosen = list(run.layers) if layers is None else list(dict.fromkeys(layers))
    unknown = [layer for layer in chosen if layer not in run.layers]
    if unknown or not chosen:
        raise not_recorded(chosen, run.layers, run.path)
    pyarrow, parquet = _pyarrow()
    tables = {layer: pyarrow.table(layer_table(run, layer)) for layer in chosen}
    written = []
    for layer, table in tables.items():
        path = Path(out_dir) / layout.table_file(layer)
        with atomic_output(path) as temporary:
            parquet.write_table(table, temporary, compression="zstd")
        written.append(path)
    return written


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError:
        raise LayerlapseError(INSTALL_HINT) from None
    return pyarrow, parquet
