"""A selection of probe images as a pandas table: who they are, what the network said at a snapshot, and how
they were learned over the run (measures/dynamics.py's `SampleDynamics`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from ..measures.dynamics import probe_dynamics
from ..store import layout
from ..store.run import RunFolder
from .needs import require

if TYPE_CHECKING:
    import pandas

# SampleDynamics' fields as columns; its confidence (the true class's mean probability) is `mean_confidence`, apart
# from the prediction's confidence at the shown snapshot
DYNAMICS_COLUMNS = {"confidence": "mean_confidence", "variability": "variability", "correctness": "correctness",
                    "first_learned": "first_learned", "learned_from": "learned_from",
                    "forgetting_events": "forgetting_events", "never_learned": "never_learned",
                    "unforgettable": "unforgettable"}


def selection_table(run: RunFolder, ids: np.ndarray | list[int], snapshot: int | None = None) -> pandas.DataFrame:
    """Probe images as a table, one row each.

    Parameters
    ----------
    run
        The stored run folder.
    ids
        Probe ids: rows of the run folder's probe arrays (a widget's `selected`).
    snapshot
        The snapshot whose prediction and confidence the table gives; default the last recorded one.

    Returns
    -------
    pandas.DataFrame
        Columns id, label (class name), text (where the run stored texts), prediction (class name, or None without stored predictions), confidence
        (the predicted class's probability), then the dynamics over the trained snapshots where the run has them:
        mean_confidence, variability, correctness, first_learned, learned_from, forgetting_events, never_learned,
        unforgettable.

    Raises
    ------
    ConfigError
        For an id that is not a probe row, or a snapshot the run did not record.
    """
    pandas = require("pandas")
    labels = run.probe_labels()
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) and (ids.min() < 0 or ids.max() >= len(labels)):
        raise ConfigError(f"probe ids run from 0 to {len(labels) - 1}, got {int(ids.min())}..{int(ids.max())}; "
                          f"pass rows of the run's probe (a widget's .selected)")
    snapshot = run.epochs_complete if snapshot is None else int(snapshot)
    if not 0 <= snapshot <= run.epochs_complete:
        raise ConfigError(f"snapshot {snapshot} was not recorded: this run has snapshots 0..{run.epochs_complete}")
    names = np.array([str(name) for name in run.manifest["dataset"]["class_names"]], dtype=object)
    table = {"id": ids, "label": names[labels[ids]]}
    texts = run.probe_texts()
    if texts is not None:  # the items' texts (or a run of tokens' token in its sentence)
        table["text"] = np.asarray(texts, dtype=object)[ids]
    if run.has(layout.predictions(snapshot)):
        probabilities = np.asarray(run.read_array(layout.predictions(snapshot)))[ids]
        predicted = probabilities.argmax(axis=1) if len(ids) else np.zeros(0, dtype=np.int64)
        table["prediction"] = names[predicted]
        table["confidence"] = probabilities[np.arange(len(ids)), predicted].astype(np.float32)
    else:
        table["prediction"] = np.full(len(ids), None, dtype=object)
        table["confidence"] = np.full(len(ids), np.nan, dtype=np.float32)
    found = probe_dynamics(run) if run.has(layout.predictions(0)) else None
    if found is not None:
        for field, column in DYNAMICS_COLUMNS.items():
            table[column] = getattr(found, field)[ids]
    return pandas.DataFrame(table)
