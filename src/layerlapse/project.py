"""2-D maps of activations: UMAP per epoch as the article does, and new points placed onto a map.

umap-learn is imported lazily (it takes seconds), with numba's compiled code cached on disk: the first process on a
machine pays the 40-70 s compilation; later processes still spend about 25-30 s on the parts of umap-learn and
pynndescent that numba does not cache.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import ConfigError
from .paths import cache_root

PLACEMENT_NEIGHBORS = 10


def import_umap() -> Any:
    """umap-learn, with numba's cache on disk (NUMBA_CACHE_DIR, if the user has not chosen one)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_root() / "numba"))
    import umap

    return umap


def umap_map(activations: np.ndarray, *, n_neighbors: int = 40, seed: int = 0) -> np.ndarray:
    """One epoch's activations (n, features) → seeded UMAP coordinates (n, 2), float32."""
    n_points = len(activations)
    if n_points <= n_neighbors:
        raise ConfigError(f"UMAP with n_neighbors={n_neighbors} needs more than {n_neighbors} points, got "
                          f"{n_points}: record a larger --probe or lower --neighbors")
    umap = import_umap()
    # a seed makes UMAP single-threaded anyway; saying so avoids its warning
    reducer = umap.UMAP(n_neighbors=n_neighbors, n_components=2, random_state=seed, n_jobs=1)
    return reducer.fit_transform(np.asarray(activations, dtype=np.float32)).astype(np.float32)


def place_points(reference_activations: np.ndarray, reference_xy: np.ndarray, new_activations: np.ndarray, *,
                 k: int = PLACEMENT_NEIGHBORS) -> np.ndarray:
    """Place new points on a map: a weighted mean of the 2-D positions of their k nearest reference points in the
    layer's space, with UMAP's kernel exp(-(d - d_nearest) / sigma), sigma the mean of (d - d_nearest), so the
    nearest neighbours dominate and a point does not land halfway between two clusters it is near.

    Each new point depends only on itself and the reference set, unlike `umap.transform`, whose results change
    with the batch they come in (lmcinnes/umap#158, #566, #1224).
    """
    from sklearn.neighbors import NearestNeighbors

    if len(reference_activations) != len(reference_xy):
        raise ValueError(f"{len(reference_activations)} reference activations but {len(reference_xy)} positions")
    k = min(k, len(reference_activations))
    index = NearestNeighbors(n_neighbors=k).fit(np.asarray(reference_activations, dtype=np.float64))
    distances, neighbors = index.kneighbors(np.asarray(new_activations, dtype=np.float64))
    excess = distances - distances[:, :1]
    sigma = np.maximum(excess.mean(axis=1, keepdims=True), 1e-12)
    weights = np.exp(-excess / sigma)
    weights /= weights.sum(axis=1, keepdims=True)
    # a point that coincides with a reference point (up to float error) takes its place exactly
    duplicate = distances[:, 0] <= 1e-6 * np.maximum(distances[:, -1], 1e-12)
    weights[duplicate] = 0.0
    weights[duplicate, 0] = 1.0
    return np.einsum("nk,nkd->nd", weights, reference_xy[neighbors]).astype(np.float32)
