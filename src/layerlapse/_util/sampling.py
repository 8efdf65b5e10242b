"""Stratified samples: a seeded subset of rows whose classes keep their shares."""

from __future__ import annotations

from typing import Literal

import numpy as np


def stratified_rows(labels: np.ndarray, size: int | None, seed: int, *,
                    rule: Literal["scikit-learn", "largest-remainder"] = "largest-remainder") -> np.ndarray:
    """Sorted row indices of `size` rows, each class in its share of `labels` (every row when `size` is None or at
    least the number of rows).

    Parameters
    ----------
    labels : array of int
        One class per row.
    size : int or None
        How many rows to keep.
    seed : int
        The same seed, labels and size give the same rows.
    rule : "scikit-learn" or "largest-remainder"
        How the rows are drawn. "scikit-learn" is `train_test_split(stratify=labels)`, which chose every probe
        recorded so far: a probe's rows must stay what they were, so that a run and its reference agree. The default,
        numpy alone, gives each class its quota by largest remainders and draws its rows with numpy's generator: the
        report's subsample, written without importing scikit-learn.
    """
    labels = np.asarray(labels)
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    if rule == "scikit-learn":
        from sklearn.model_selection import train_test_split

        chosen, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed)
        return np.sort(chosen)
    if rule != "largest-remainder":
        raise ValueError(f"rule must be 'scikit-learn' or 'largest-remainder', got {rule!r}")
    return _largest_remainders(labels, size, seed)


def _largest_remainders(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * size / len(labels)
    taken = np.floor(quotas).astype(np.int64)
    leftover = size - int(taken.sum())
    taken[np.argsort(-(quotas - taken), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(labels == label), size=int(count), replace=False)
            for label, count in zip(classes, taken)]
    return np.sort(np.concatenate(rows))
