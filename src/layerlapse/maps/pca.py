"""The two leading principal components of a layer's activations, computed a block of rows at a time.

The PCA map (`--map pca`) of a wide layer at the article's scale held scikit-learn's float64 copies (24 bytes a
value: 9 GB at 60,000 × 6,272); here the worker keeps only the float32 rows it holds anyway, and each pass over them
converts one block (`blocks.row_blocks`) to float64 at a time. Narrow layers take the exact route, the covariance
matrix (width² × 8 bytes, 32 MB at 2,048 values); wider ones a randomized range finder (Halko, Martinsson and Tropp
2011, as scikit-learn's randomized solver: 10 extra directions, 7 power iterations) whose products run block by
block. Signs as scikit-learn gives them: each component's largest loading is positive.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..store.blocks import row_blocks

COVARIANCE_UP_TO = 2048  # widths that take the exact route
OVERSAMPLES = 10
POWER_ITERATIONS = 7


def principal_plane(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """`x` (n, width), finite, projected onto its two leading principal components: float32 (n, 2)."""
    mean = _column_mean(x)
    if x.shape[1] <= COVARIANCE_UP_TO:
        components = _from_covariance(x, mean)
    else:
        components = _randomized(x, mean, seed)
    # as scikit-learn's svd_flip(u_based_decision=False): each component's largest loading is positive
    largest = components[np.arange(len(components)), np.argmax(np.abs(components), axis=1)]
    components *= np.where(largest < 0, -1.0, 1.0)[:, None]
    return _times(x, mean, components.T).astype(np.float32)


def _column_mean(x: np.ndarray) -> np.ndarray:
    total = np.zeros(x.shape[1], dtype=np.float64)
    for block in row_blocks(x):
        total += block.sum(axis=0, dtype=np.float64)
    return total / max(len(x), 1)


def _centred_blocks(x: np.ndarray, mean: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Each block's rows of `x` and the block as float64, less the mean: one block's float64 copy at a time."""
    start = 0
    for block in row_blocks(x):
        yield slice(start, start + len(block)), block.astype(np.float64) - mean
        start += len(block)


def _from_covariance(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    scatter = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
    for _, centred in _centred_blocks(x, mean):
        scatter += centred.T @ centred
    _, vectors = np.linalg.eigh(scatter)  # ascending
    return vectors[:, ::-1][:, :2].T.copy()


def _randomized(x: np.ndarray, mean: np.ndarray, seed: int) -> np.ndarray:
    omega = np.random.default_rng(seed).normal(size=(x.shape[1], 2 + OVERSAMPLES))
    range_ = _times(x, mean, omega)
    for _ in range(POWER_ITERATIONS):
        range_, _ = np.linalg.qr(range_)
        back, _ = np.linalg.qr(_transposed_times(x, mean, range_))
        range_ = _times(x, mean, back)
    basis, _ = np.linalg.qr(range_)
    _, _, vt = np.linalg.svd(_transposed_times(x, mean, basis).T, full_matrices=False)
    return vt[:2].copy()


def _times(x: np.ndarray, mean: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(x - mean) @ matrix, a block of rows at a time, in float64."""
    out = np.empty((len(x), matrix.shape[1]), dtype=np.float64)
    for rows, centred in _centred_blocks(x, mean):
        out[rows] = centred @ matrix
    return out


def _transposed_times(x: np.ndarray, mean: np.ndarray, by_row: np.ndarray) -> np.ndarray:
    """(x - mean).T @ by_row, a block of rows at a time, in float64."""
    out = np.zeros((x.shape[1], by_row.shape[1]), dtype=np.float64)
    for rows, centred in _centred_blocks(x, mean):
        out += centred.T @ by_row[rows]
    return out
