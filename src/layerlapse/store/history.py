"""A run's history and snapshots as the pictures name them: each snapshot's step and epoch, its title, the history's
rows (old runs' rows read with their snapshot's labels), and where the curves put them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .manifest import _is_int


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
