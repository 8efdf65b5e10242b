"""The `umap-learn` map backend: umap-learn and pynndescent on the CPU run the aligned map's neighbour graph and its
warm-started layout (`layerlapse.maps.backend` states what a backend computes; `layerlapse.maps.project` keeps the
method's rules whatever runs them). It lives here, beside the other backend (`torchdr`), so the interface module
hands back implementations that sit below it, never one that lives in its user.

umap-learn is imported lazily (it takes seconds), with numba's compiled code cached on disk (`jitcache` extends the
cache to the functions umap-learn and pynndescent do not declare cacheable).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._util.paths import cache_root

# Warm frames of the aligned method (anchored_sgd): UMAP's optimisation from the last frame at its full learning
# rate, each point's steps scaled by its mobility. Measured on MNIST runs by bench/maps.py (docs/benchmarks.md).
WARM_EPOCHS = 50
EXACT_KNN_BELOW = 4096
# NN-descent from the previous epoch's graph, measured at 60,000 MNIST points (epoch 1 → 2): 2 rounds of 12
# candidates find 96 % of the exact 40 neighbours in 3.2 s, 20 candidates 99.6 % in 5.5 s, a cold search (umap's
# settings) 99.99 % in 13-19 s; the maps' measures did not tell 12 from 20 apart beyond the spread between seeds
WARM_KNN_ROUNDS = 2
WARM_KNN_CANDIDATES = 12  # as umap-learn: exact neighbours for small sets, NN-descent above


def import_umap() -> Any:
    """umap-learn, with numba's cache on disk (NUMBA_CACHE_DIR, if the user has not chosen one)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_root() / "numba"))
    import pynndescent  # noqa: F401 - its functions are cached below too
    import umap

    from .jitcache import enable_disk_cache

    enable_disk_cache()  # numba caches only what is declared cache=True; this saves ~1 minute per new process
    return umap


def seeded_umap(x: np.ndarray, n_neighbors: int, seed: int) -> Any:
    """The article's fit, the one place it is made: the independent method and the aligned method's first frame
    are then the same frame."""
    umap = import_umap()
    # a seed makes UMAP single-threaded anyway; saying so avoids its warning
    return umap.UMAP(n_neighbors=n_neighbors, n_components=2, random_state=seed, n_jobs=1).fit(x)


def nearest_neighbors(x: np.ndarray, k: int, *, seed: int, start: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows (itself first) and their distances, as umap-learn computes them: exact below 4,096
    rows, NN-descent above, which starts from the graph `start` (an earlier epoch's) when given."""
    if len(x) < EXACT_KNN_BELOW:
        from sklearn.neighbors import NearestNeighbors

        distances, indices = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
        return indices.astype(np.int32), distances.astype(np.float32)
    import_umap()
    from pynndescent import NNDescent

    if start is None:  # umap-learn's settings
        settings = dict(n_trees=min(64, 5 + int(round(len(x) ** 0.5 / 20.0))),
                        n_iters=max(5, int(round(np.log2(len(x))))), max_candidates=60)
    else:  # the last epoch's graph is mostly right already: two short rounds find 96 % of the neighbours
        settings = dict(n_iters=WARM_KNN_ROUNDS, max_candidates=WARM_KNN_CANDIDATES, init_graph=start)
    index = NNDescent(x, n_neighbors=k, metric="euclidean", random_state=seed, low_memory=True, n_jobs=1,
                      compressed=False, verbose=False, **settings)
    indices, distances = index.neighbor_graph
    return indices.astype(np.int32), distances.astype(np.float32)


def _fuzzy_graph(x: np.ndarray, indices: np.ndarray, distances: np.ndarray, seed: int) -> Any:
    umap = import_umap()
    graph, _, _ = umap.umap_.fuzzy_simplicial_set(x, indices.shape[1], np.random.RandomState(seed), "euclidean",
                                                  knn_indices=indices, knn_dists=distances)
    return graph


def _umap_curve() -> tuple[float, float]:
    umap = import_umap()
    return umap.umap_.find_ab_params(1.0, 0.1)  # UMAP's defaults: spread 1, min_dist 0.1


def _first_frame(x: np.ndarray, n_neighbors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first frame as the article's method makes it (a seeded umap-learn fit, so the two are the same frame),
    and the neighbour graph it was built on (each row's neighbours, itself first) for the next frame to start from."""
    reducer = seeded_umap(x, n_neighbors, seed)
    knn = getattr(reducer, "_knn_indices", None)  # kept by umap-learn only where it ran NN-descent (4,096 rows on)
    if knn is None:
        knn = nearest_neighbors(x, n_neighbors, seed=seed)[0]
    return reducer.embedding_.astype(np.float32), np.asarray(knn, dtype=np.int32)


def _warm_layout(graph: Any, start: np.ndarray, seed: int, *, n_epochs: int, learning_rate: float,
                 mobility: np.ndarray | None = None) -> np.ndarray:
    """UMAP's optimisation, continued from `start` in its own scale (umap-learn's embedding function would rescale
    the start into a 10×10 box, per axis, which distorts a layout that is not square), each point's steps scaled by
    its `mobility` (all free when None)."""
    umap = import_umap()  # first: it points numba's cache (NUMBA_CACHE_DIR) at layerlapse's, for anchored_sgd too
    from .anchored_sgd import optimise_layout

    graph = graph.tocoo()
    graph.sum_duplicates()
    graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0  # as UMAP: edges too weak to be sampled
    graph.eliminate_zeros()
    a, b = _umap_curve()
    mobility = np.ones(len(start), dtype=np.float32) if mobility is None else mobility
    return optimise_layout(start, graph.row, graph.col, umap.umap_.make_epochs_per_sample(graph.data, n_epochs),
                           mobility, a=a, b=b, n_epochs=n_epochs, learning_rate=learning_rate, seed=seed)


class UmapLearnBackend:
    """The `umap-learn` map backend (layerlapse.maps.backend): umap-learn's seeded fit for a cold frame,
    pynndescent's search from the last graph, and UMAP's optimisation continued by `anchored_sgd`."""

    name = "umap-learn"
    warm_epochs = WARM_EPOCHS  # a warm frame's optimisation epochs (MapBackend.warm_epochs)

    def __repr__(self) -> str:
        return "UmapLearnBackend()"

    def first_frame(self, x: np.ndarray, n_neighbors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return _first_frame(x, n_neighbors, seed)

    def neighbors(self, x: np.ndarray, k: int, *, seed: int, start: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        return nearest_neighbors(x, k, seed=seed, start=start)

    def warm_layout(self, x: np.ndarray, knn: np.ndarray, distances: np.ndarray, start: np.ndarray, *, seed: int,
                    n_epochs: int, learning_rate: float, mobility: np.ndarray) -> np.ndarray:
        graph = _fuzzy_graph(x, knn, distances, seed)
        return _warm_layout(graph, start, seed, n_epochs=n_epochs, learning_rate=learning_rate, mobility=mobility)
