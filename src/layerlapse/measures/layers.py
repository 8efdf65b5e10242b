"""How good each recorded layer's representation is at every snapshot, and when it changed: the measures of
`layerlapse.measures.representation` over a whole run folder, on one fixed, seeded sample of the probe.

Per layer and snapshot: k-NN and linear-probe accuracy; linear CKA to the previous snapshot and between every pair of
snapshots (a heatmap); the share of 10-NN kept, read from the maps' stored measures; and "what changed when", the
snapshots after which the layer changed most (1 − CKA to the previous snapshot). Per snapshot: CKA between every
pair of layers. Rows that are not finite are left out and counted, as the maps do.

CKA of every pair comes from one product of the snapshots' centred, normalised Gram matrices (n × n each, n the
CKA rows), so the Gram matrices of a run are held at once: n is lowered from the sample size until they fit in
CKA_MEMORY, and the result says which n was used. Stored by `layerlapse render` as dynamics/layers.json and in
metrics.json; `layer_measures(run)` reads the stored file when it measures the run as it is now.
"""

from __future__ import annotations

import math

import numpy as np

from ..store import layout
from ..errors import ConfigError, RunFolderError
from .._util.progress import progress_bar
from .memo import MEMO, digest
from .representation import KNN_K, MEASURE_SAMPLE, measure_sample, probe_accuracies
from ..store.run import RunFolder

CKA_MEMORY = 1_000_000_000  # bytes of Gram matrices held at once (float32)
LARGEST_CHANGES = 3  # snapshots named per layer in "what changed when"


def layer_measures(run: RunFolder, *, sample_size: int | None = None, show_progress: bool = False) -> dict | None:
    """The run's layer measures: the stored ones (dynamics/layers.json) when they cover the run's snapshots and
    the sample asked for, else measured now. None when the run has no snapshot to measure.

    Parameters
    ----------
    run : RunFolder
        The run, from `load_run`; only read.
    sample_size : int, optional
        The probe images to measure on, a seeded sample (at least 4, at most the probe); None: the stored
        measures' sample, else 2,000 or the whole probe when smaller.
    show_progress : bool, default False
        A progress bar on stderr while it measures.

    Returns
    -------
    dict or None
        "snapshots", their "titles", "layer_order", "sample_size", "knn_k", "cka_sample_size";
        "cka_between_layers" (per snapshot, CKA between every pair of layers; None for one layer); and "layers":
        per layer, lists over the snapshots of "knn_accuracy", "linear_probe_accuracy", "cka_to_previous" and
        "neighbors_kept" (None where not defined), "cka" (every pair of snapshots), "left_out" (rows not
        finite) and "largest_change" (the snapshots after which the layer changed most, by 1 − CKA).

    Examples
    --------
    The run of `run_experiment`'s example:

    >>> from layerlapse import layer_measures, load_run
    >>> measures = layer_measures(load_run("runs/digits"))
    >>> measures["snapshots"], len(measures["layers"]["hidden"]["knn_accuracy"])
    ([0, 1, 2], 3)
    """
    if sample_size is not None:
        check_sample_size(sample_size, len(run.probe_labels()))
    stored = _stored(run)
    if stored is not None and sample_size in (None, stored.get("sample_size")):
        return stored
    return measure_run(run, sample_size=sample_size, show_progress=show_progress)


def check_sample_size(sample_size: object, n_points: int) -> int:
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 4:
        raise ConfigError(f"the measures' sample size must be a whole number of probe images of 4 or more, got "
                          f"{sample_size!r}")
    if sample_size > n_points:
        raise ConfigError(f"the measures' sample size {sample_size:,} is larger than the probe ({n_points:,} "
                          f"images): give {n_points:,} or fewer")
    return sample_size


def _stored(run: RunFolder) -> dict | None:
    """dynamics/layers.json when it measures exactly the run's snapshots and layers, else None."""
    if not run.has(layout.DYNAMICS_LAYERS):
        return None
    try:
        stored = run.read_json(layout.DYNAMICS_LAYERS)
    except RunFolderError:  # derived: a damaged or missing copy is measured again
        return None
    fits = (isinstance(stored, dict) and stored.get("snapshots") == list(range(run.epochs_complete + 1))
            and stored.get("layer_order") == list(run.layers) and isinstance(stored.get("layers"), dict))
    return stored if fits else None


def measure_run(run: RunFolder, *, sample_size: int | None = None, show_progress: bool = False) -> dict | None:
    """Measure every recorded layer at every snapshot 0..epochs_complete on the seeded sample."""
    labels = run.probe_labels()
    snapshots = list(range(run.epochs_complete + 1))
    if not snapshots or not run.layers or len(labels) < 4:
        return None
    seed = int(run.config.seed)
    size = MEASURE_SAMPLE if sample_size is None else check_sample_size(sample_size, len(labels))
    sample = measure_sample(len(labels), seed, size)
    cka_rows = _cka_rows(sample, len(run.layers), len(snapshots), seed)
    measured, grams = {}, {}
    with progress_bar("measuring layers", len(run.layers) * len(snapshots), enabled=show_progress) as advance:
        for layer in run.layers:
            measured[layer], grams[layer] = _measure_layer(run, layer, snapshots, sample, cka_rows, labels, seed,
                                                           advance)
    return {
        "sample_size": len(sample), "sample_seed": seed + 1, "knn_k": KNN_K, "cka_sample_size": len(cka_rows),
        "snapshots": snapshots, "titles": [run.snapshot_title(s) for s in snapshots],
        "layer_order": list(run.layers), "layers": measured,
        "cka_between_layers": _between_layers(grams, snapshots) if len(run.layers) > 1 else None,
    }


def _cka_rows(sample: np.ndarray, n_layers: int, n_snapshots: int, seed: int) -> np.ndarray:
    """The sample's rows whose Gram matrices, for every layer and snapshot at once, fit in CKA_MEMORY."""
    fits = int(math.sqrt(CKA_MEMORY / (4 * n_layers * n_snapshots)))
    if fits >= len(sample):
        return sample
    return np.sort(np.random.default_rng(seed + 2).choice(sample, size=max(fits, 4), replace=False))


def _measure_layer(run: RunFolder, layer: str, snapshots: list[int], sample: np.ndarray, cka_rows: np.ndarray,
                   labels: np.ndarray, seed: int, advance) -> tuple[dict, np.ndarray]:
    """One layer's measures at every snapshot, and its normalised Gram matrices (snapshots, n²) for CKA."""
    in_cka = np.searchsorted(sample, cka_rows)
    measured_with = digest(sample, labels[sample], seed, cka_rows)
    keys = [_memo_key(run, layer, snapshot, measured_with) for snapshot in snapshots]
    knn, linear, left_out, grams, finite_rows = [], [], [], [], []
    for snapshot, key in zip(snapshots, keys):
        found = MEMO.get(key)  # measured before, as it is now (the live page measures a growing run again)
        if found is None:
            x = _sample_rows(run, layer, snapshot, sample)
            finite = np.isfinite(x).all(axis=1)
            gram = _normalised_gram(x[in_cka], finite[in_cka])
            found = (probe_accuracies(x, labels[sample], seed), int((~finite).sum()), finite[in_cka], gram)
            MEMO.put(key, found, gram)
        accuracies, rows_left_out, finite_in_cka, gram = found
        left_out.append(rows_left_out)
        knn.append(accuracies.get("knn_accuracy"))
        linear.append(accuracies.get("linear_probe_accuracy"))
        finite_rows.append(finite_in_cka)
        grams.append(gram)
        advance(1)
    everywhere = np.all(finite_rows, axis=0)
    for s, finite in enumerate(finite_rows):  # rare: a row not finite somewhere is left out of every snapshot's Gram
        if not np.array_equal(finite, everywhere):
            grams[s] = _normalised_gram(_sample_rows(run, layer, snapshots[s], sample)[in_cka], everywhere)
            keys[s] = None  # not the Gram matrix kept for this snapshot
    grams = np.stack(grams)
    cka = _kept_cosines(grams, keys)
    to_previous = [None] + [cka[s - 1][s] for s in range(1, len(snapshots))]
    kept = [None] + [run.frame_measures(layer, s).get("layer_neighbors_kept") for s in snapshots[1:]]
    return {"knn_accuracy": knn, "linear_probe_accuracy": linear, "cka_to_previous": to_previous,
            "neighbors_kept": kept, "cka": cka, "left_out": left_out, "cka_left_out": int((~everywhere).sum()),
            "largest_change": _largest_change(run, snapshots, to_previous, kept)}, grams


def _sample_rows(run: RunFolder, layer: str, snapshot: int, sample: np.ndarray) -> np.ndarray:
    x = run.read_rows(layout.activations(layer, snapshot), sample)
    return x.reshape(len(sample), -1).astype(np.float32)


def _normalised_gram(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The centred Gram matrix of the rows `keep` of x (rows: images), flattened and scaled to unit norm; the rows
    left out are zero rows and columns (so Gram matrices with the same rows left out compare exactly); all zeros for
    a constant representation."""
    centred = np.zeros(x.shape, dtype=np.float32)
    if keep.any():
        kept = x[keep].astype(np.float64)
        centred[keep] = kept - kept.mean(axis=0)
    gram = (centred @ centred.T).ravel()
    norm = math.sqrt(_dot64(gram[None], gram[None])[0, 0])
    return gram / np.float32(norm) if norm > 0 else gram


def _dot64(a: np.ndarray, b: np.ndarray, block: int = 1 << 20) -> np.ndarray:
    """a @ b.T of float32 rows accumulated in float64, a block of columns at a time (the rows are n² long)."""
    total = np.zeros((len(a), len(b)))
    for start in range(0, a.shape[1], block):
        total += a[:, start:start + block].astype(np.float64) @ b[:, start:start + block].astype(np.float64).T
    return total


def _cosines(a: np.ndarray, b: np.ndarray) -> list[list[float | None]]:
    """CKA between every row of `a` and of `b` (normalised Gram matrices); None where a representation is constant."""
    products = _dot64(a, b)
    defined = np.outer(np.abs(a).sum(axis=1) > 0, np.abs(b).sum(axis=1) > 0)
    return [[round(float(v), 6) if ok else None for v, ok in zip(row, oks)] for row, oks in zip(products, defined)]


def _memo_key(run: RunFolder, layer: str, snapshot: int, measured_with: str) -> tuple | None:
    """A snapshot of a layer as measured: its activation file's checksum and how it is measured (None: unlisted)."""
    checksum = run.manifest["files"].get(layout.activations(layer, snapshot))
    return None if checksum is None else (checksum, measured_with)


def _kept_cosines(grams: np.ndarray, keys: list[tuple | None]) -> list[list[float | None]]:
    """`_cosines(grams, grams)`, with the pairs of snapshots measured before kept (MEMO): a run grown by a snapshot
    computes one new row."""
    size = len(keys)
    cka: list[list[float | None]] = [[None] * size for _ in range(size)]
    missing = []
    for i in range(size):
        for j in range(i, size):
            known, value = (False, None) if keys[i] is None or keys[j] is None else MEMO.pair(keys[i], keys[j])
            if not known:
                missing.append(i)
                break
            cka[i][j] = cka[j][i] = value
    if missing:
        for i, row in zip(missing, _cosines(grams[missing], grams)):
            for j, value in enumerate(row):
                cka[i][j] = cka[j][i] = value
                if keys[i] is not None and keys[j] is not None:
                    MEMO.put_pair(keys[i], keys[j], value)
    return cka


def _between_layers(grams: dict[str, np.ndarray], snapshots: list[int]) -> list[list[list[float | None]]]:
    """Per snapshot, CKA between every pair of layers (rows and columns in recording order)."""
    at = [np.stack([layer_grams[s] for layer_grams in grams.values()]) for s in range(len(snapshots))]
    return [_cosines(stacked, stacked) for stacked in at]


def _largest_change(run: RunFolder, snapshots: list[int], to_previous: list, kept: list) -> list[dict]:
    """The snapshots after which the layer changed most: largest 1 − CKA to the previous snapshot."""
    changes = [{"snapshot": snapshots[s], "title": run.snapshot_title(snapshots[s]),
                "cka_change": round(1.0 - to_previous[s], 6),
                "neighbors_kept": None if kept[s] is None else round(float(kept[s]), 6)}
               for s in range(1, len(snapshots)) if to_previous[s] is not None]
    return sorted(changes, key=lambda change: -change["cka_change"])[:LARGEST_CHANGES]


def what_changed_when(measures: dict) -> dict[str, list[dict]]:
    """Per layer, its largest changes (for metrics.json and the report's words)."""
    return {layer: found["largest_change"] for layer, found in measures["layers"].items()}
