"""2-D maps of activations, epoch after epoch, and new points placed onto a map.

Methods (`--map`):

- `aligned` (default): UMAP whose epoch t starts from epoch t-1. The first frame is the article's (the same seeded
  umap-learn fit). Later frames: the k-nearest-neighbour search starts from the previous epoch's graph (pynndescent's
  `init_graph`); the layout continues from the previous one with UMAP's own optimisation at its full learning rate,
  each point's steps scaled by how much of its neighbourhood in the layer changed since its position was last fitted
  (`anchored_sgd`), so points whose neighbours changed are placed as a fresh fit would place them and the others
  hold still; then an orthogonal Procrustes turn onto the previous frame. The change is counted from the neighbours
  a point's position was fitted to, not from the last frame's: small changes that add up over many frames free the
  point in the end, and a frame that frees points so says in its caption. The neighbour search and the layouts run
  on a backend (`--map-backend`: umap-learn, as described here, or TorchDR; layerlapse.maps.backend); the rules
  above stay here whatever runs them.
- `independent`: a fresh, seeded UMAP fit per epoch, as the article does (the reference; frames land in arbitrary
  rotations).
- `aligned-umap`: umap-learn's AlignedUMAP over the whole run at once (slow; cannot place new points itself).
- `pca`: the two leading principal components, turned onto the previous frame: linear, fast, honest.

umap-learn is imported lazily (it takes seconds), with numba's compiled code cached on disk (`jitcache` extends the
cache to the functions umap-learn and pynndescent do not declare cacheable): the first process on a machine pays the
compilation; later processes load it, except for NN-descent's main loop, which numba cannot cache (about 13 s).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..config import MAP_METHODS as METHODS
from ..config import check_backend_fits_method
from ..errors import ConfigError, MapWarning
from .._util.memory import keep_freed_memory
from .backend import MapBackend, load_backend
from .umap_learn import import_umap, seeded_umap

PLACEMENT_NEIGHBORS = 10
PLACEMENT_FIRST_ROWS = 1024  # place_points' screen: its first block, which sets each query's bar for the rest
PLACEMENT_SCREEN = 2  # candidates per neighbour that place_points' float32 screen keeps for the exact ranking
DEFAULT_METHOD = "aligned"
DEFAULT_BACKEND = "auto"  # umap-learn on CPU, TorchDR where CUDA and TorchDR are present (layerlapse.maps.backend)
# up to UMAP's own cut for its epochs (500 below 10,000 points, 200 above), a warm frame takes this many times the
# backend's epochs: freed points then settle into their clusters, and settled points move less (issue 25,
# bench/map_runs.py: the digits demo's worst class-agreement gap against a fresh UMAP 0.017 with 50 epochs, 0.007 with
# 250; map ÷ layer 10-NN kept 0.81 → 0.88)
SMALL_MAP_POINTS = 10_000
SMALL_MAP_EPOCHS_FACTOR = 5
WARM_LEARNING_RATE = 1.0
MOBILE_FROM = 0.15
MOBILITY_POWER = 3.5  # points whose neighbours changed a little move little: 2.5 kept 0.77× the layer's 10-NN on MNIST
# a point at least this free has its position fitted to its new neighbours, and its change is measured from them
# on; a point held or barely moved keeps being measured against the neighbours it was last fitted to, so change
# that adds up over many frames frees it in the end (issue 25)
REFITTED_FROM = 0.25



def check_method(method: str, n_points: int, n_neighbors: int) -> None:
    """One-line errors for a method that does not exist or cannot map this many points."""
    if method not in METHODS:
        raise ConfigError(f"unknown map method {method!r}: choose one of {', '.join(METHODS)}")
    if method != "pca" and n_points <= n_neighbors:
        raise ConfigError(f"--map {method} with n_neighbors={n_neighbors} needs more than {n_neighbors} points, got "
                          f"{n_points}: record a larger --probe or lower --neighbors")
    if method == "pca" and n_points < 3:
        raise ConfigError(f"--map pca needs at least 3 points, got {n_points}: record a larger --probe")


# ---- one frame ---------------------------------------------------------------------------------------------------
def umap_map(activations: np.ndarray, *, n_neighbors: int = 40, seed: int = 0) -> np.ndarray:
    """One epoch's activations (n, features) → seeded UMAP coordinates (n, 2), float32: the article's method.

    A fresh umap-learn fit, seeded; the `independent` map method is this for every epoch.

    Parameters
    ----------
    activations : numpy.ndarray
        One snapshot of a layer, (n, features), any float dtype, every value finite.
    n_neighbors : int, default 40
        UMAP's number of neighbours; fewer than n.
    seed : int, default 0
        UMAP's random state: the same seed and data give the same map.

    Returns
    -------
    numpy.ndarray
        The map, float32 (n, 2).

    Examples
    --------
    >>> import numpy as np
    >>> from layerlapse import umap_map
    >>> x = np.random.default_rng(0).normal(size=(200, 16))
    >>> umap_map(x, n_neighbors=15).shape
    (200, 2)
    """
    check_method("independent", len(activations), n_neighbors)
    return seeded_umap(np.asarray(activations, dtype=np.float32), n_neighbors, seed).embedding_.astype(np.float32)


def procrustes_onto(xy: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`xy` rotated or reflected (no scaling) about its centre to best match `reference`, moved onto its centre."""
    from .faithfulness import turned_onto

    return turned_onto(xy, reference).astype(np.float32)


# ---- a layer's epochs, in order ----------------------------------------------------------------------------------
@dataclass
class MapState:
    """What the next epoch's map builds on: the last frame and, for the aligned method, its neighbour graph."""

    xy: np.ndarray | None = None
    knn: np.ndarray | None = None
    usable: np.ndarray | None = None  # the rows the graph was built on
    # each row's layer neighbours when its map position was last fitted to them (`knn` of that frame): a held point
    # is measured against these, so small changes that add up over many frames free it in the end
    fitted_knn: np.ndarray | None = None


class EpochMapper:
    """Maps one layer's epochs in order; `next(activations)` returns the frame, float32 (n, 2), NaN for rows that
    could not be mapped. Keeps what the next epoch reuses in `state`.

    For `aligned-umap`, which maps every epoch at once, use `map_epochs`.

    Parameters
    ----------
    method : str, default "aligned"
        "aligned", "independent" or "pca" (see this module's description).
    n_neighbors : int, default 40
        UMAP's number of neighbours (not used by "pca").
    seed : int, default 0
        Seeds every frame's fit.
    state : MapState, optional
        What an earlier mapper of the same layer left (its last frame and neighbour graph), to carry on from it;
        None starts afresh.
    backend : str, default "auto"
        What runs the aligned method: "auto", "umap-learn" or "torchdr" (`layerlapse.maps.backend`); the other
        methods take "auto" or "umap-learn" only.

    Examples
    --------
    >>> import numpy as np
    >>> from layerlapse import EpochMapper
    >>> rng = np.random.default_rng(0)
    >>> mapper = EpochMapper("pca")
    >>> [mapper.next(rng.normal(size=(100, 8))).shape for epoch in range(3)]
    [(100, 2), (100, 2), (100, 2)]
    """

    def __init__(self, method: str = DEFAULT_METHOD, *, n_neighbors: int = 40, seed: int = 0,
                 state: MapState | None = None, backend: str = DEFAULT_BACKEND) -> None:
        if method not in METHODS or method == "aligned-umap":
            check_method(method, n_neighbors + 1, n_neighbors)
            raise ConfigError(f"--map {method} maps the whole run at once: use map_epochs")
        check_backend_fits_method(backend, method)
        keep_freed_memory()  # 18 % faster warm frames at 60,000 points (layerlapse._util.memory)
        self.method, self.n_neighbors, self.seed = method, n_neighbors, seed
        # the aligned method's neighbour graphs and layouts (the other methods are one library's own fit)
        self.backend: MapBackend = load_backend(backend if method == "aligned" else "umap-learn")
        self.state = state or MapState()
        self.previous_activations: np.ndarray | None = None  # set when continuing after a stored frame
        self.notes: list[str] = []  # what the last frame had to work around, for its caption

    def next(self, activations: np.ndarray) -> np.ndarray:
        """The next epoch's frame, built on the last one (with "aligned" and "pca"); `notes` then says what it
        had to work around (rows that are not finite, points freed by slow drift).

        Parameters
        ----------
        activations : numpy.ndarray
            The layer's snapshot, (n, features), any float dtype; a memory-mapped one is read a block at a time.
            Rows with NaN or infinite values are left unmapped (NaN) and counted in a `MapWarning`.

        Returns
        -------
        numpy.ndarray
            The frame, float32 (n, 2).
        """
        x, usable, self.notes = usable_rows(activations)
        xy = np.full((len(x), 2), np.nan, dtype=np.float32)
        if not usable.any() or _constant(x, usable):
            self.notes.append("all activations are equal: nothing to map")
            xy[usable] = 0.0
            self.state = MapState()
            return xy
        check_method(self.method, int(usable.sum()), self.n_neighbors)
        previous = self.state.xy
        if previous is not None and len(previous) != len(x):
            previous = None
        # every row usable (the rule): the rows themselves, not a copy as large as the snapshot (bench/memory.py)
        xy[usable] = self._map(x if usable.all() else x[usable], usable, previous)
        self.state.xy = xy
        return xy

    def _map(self, x: np.ndarray, usable: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        if self.method == "independent":
            return umap_map(x, n_neighbors=self.n_neighbors, seed=self.seed)
        if self.method == "pca":
            return self._pca(x, None if previous is None else previous[usable])
        return self._aligned(x, usable, previous)

    def _pca(self, x: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        from .pca import principal_plane

        xy = principal_plane(x, self.seed)  # scikit-learn's PCA, a block of rows at a time (no float64 copy)
        if previous is not None and np.isfinite(previous).all():
            xy = procrustes_onto(xy, previous)
        return xy

    def _aligned(self, x: np.ndarray, usable: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        warm = previous is not None and bool(np.isfinite(previous[usable]).all())
        if not warm:
            xy, self.state.knn = self.backend.first_frame(x, self.n_neighbors, self.seed)
            self.state.usable, self.state.fitted_knn, self.previous_activations = usable, None, None
            return xy
        # the previous neighbour graph is reused only over the same rows
        same_rows = self.state.usable is not None and np.array_equal(self.state.usable, usable)
        if same_rows and self.state.knn is None and self.previous_activations is not None:
            # a resumed run: find the stored frame's neighbours again
            self.state.knn = self.backend.neighbors(self.previous_activations[usable], self.n_neighbors,
                                                    seed=self.seed)[0]
        previous_knn = self.state.knn if same_rows else None
        knn, distances = self.backend.neighbors(x, self.n_neighbors, seed=self.seed, start=previous_knn)
        start = previous[usable]
        fitted_knn = self.state.fitted_knn if same_rows else None
        mobility, fitted = refitted(knn, fitted_knn, previous_knn)
        if fitted_knn is not None and previous_knn is not None:  # otherwise nothing was measured over frames
            self.notes.extend(_drift_note(mobility, moved_share(knn, previous_knn)))
        xy = self.backend.warm_layout(x, knn, distances, start, seed=self.seed,
                                      n_epochs=warm_epochs_for(len(x), self.backend.warm_epochs),
                                      learning_rate=WARM_LEARNING_RATE, mobility=mobility)
        self.state.knn, self.state.usable, self.previous_activations = knn, usable, None
        self.state.fitted_knn = fitted
        return procrustes_onto(xy, start)

    def replay(self, epochs: list[np.ndarray]) -> None:
        """The neighbour graphs that mapping `epochs` in order would leave, without laying them out: what a mapper
        that continues after the last of them (a resumed run, an epoch mapped again) needs to map the next frame
        as the uninterrupted run did, its points measured against the neighbours they were last fitted to. The
        graphs are found as the run found them, exactly below EXACT_KNN_BELOW rows; above, the first frame's
        graph is pynndescent's own search rather than umap-learn's, so a resumed large run may differ slightly.
        Only the "aligned" method keeps graphs; for the others this does nothing.

        Parameters
        ----------
        epochs : list of numpy.ndarray
            The layer's snapshots from the run's first, in order, each (n, features).
        """
        if self.method != "aligned":
            return
        state = MapState()
        for activations in epochs:
            with warnings.catch_warnings():  # said when the frame was first mapped
                warnings.simplefilter("ignore", MapWarning)
                x, usable, _ = usable_rows(activations)
            if not usable.any() or _constant(x, usable):
                state = MapState()
                continue
            rows = x if usable.all() else x[usable]
            same_rows = state.knn is not None and np.array_equal(state.usable, usable)
            knn = self.backend.neighbors(rows, self.n_neighbors, seed=self.seed,
                                         start=state.knn if same_rows else None)[0]
            fitted = refitted(knn, state.fitted_knn, state.knn)[1] if same_rows else None
            state = MapState(knn=knn, usable=usable, fitted_knn=fitted)
        self.state = state


def refitted(knn: np.ndarray, fitted_knn: np.ndarray | None, previous_knn: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Each point's mobility in a warm frame, and the neighbours each point's position is fitted to after it. A
    point is as free to move as its neighbourhood in the layer (`knn`, itself first) changed since its position was
    last fitted (`fitted_knn`; the last frame's graph where that is not known, and all free without either); a point
    freed to at least REFITTED_FROM is fitted to its new neighbours from then on."""
    fitted = previous_knn if fitted_knn is None else fitted_knn
    if fitted is None:
        return np.ones(len(knn), np.float32), knn
    mobility = mobility_of(moved_share(knn, fitted))
    return mobility, np.where((mobility >= REFITTED_FROM)[:, None], knn, fitted)


def moved_share(knn: np.ndarray, previous_knn: np.ndarray) -> np.ndarray:
    """Per point, the share of its layer-space neighbours (itself left out) that were not its neighbours before."""
    from .faithfulness import shared_per_row

    return 1.0 - shared_per_row(knn[:, 1:], previous_knn)


def warm_epochs_for(n_points: int, backend_epochs: int) -> int:
    """The optimisation epochs `EpochMapper` gives a warm frame of `n_points` points: the backend's `warm_epochs`,
    times SMALL_MAP_EPOCHS_FACTOR up to SMALL_MAP_POINTS (where UMAP itself runs 2.5× its epochs above that size)."""
    return backend_epochs * (SMALL_MAP_EPOCHS_FACTOR if n_points <= SMALL_MAP_POINTS else 1)


def _drift_note(mobility: np.ndarray, step_change: np.ndarray) -> list[str]:
    """The caption's note when points are refitted (freed to at least REFITTED_FROM) by change that added up over
    several frames, where the frame's own change alone would have held them."""
    drifted = int(((mobility >= REFITTED_FROM) & (mobility_of(step_change) < REFITTED_FROM)).sum())
    if drifted == 0:
        return []
    return [f"{drifted:,} points freed by slow drift (neighbours changed over several snapshots)"]


def mobility_of(change: np.ndarray) -> np.ndarray:
    """How freely each point may move in this frame's optimisation, from the share of its neighbourhood that
    changed: held where the change is within what NN-descent's own misses and the layer's small jitter give
    (below MOBILE_FROM), free where the neighbourhood was replaced, and in between rising as a power (MOBILITY_POWER)
    so that points whose neighbours changed little move little (measured by bench/maps.py on MNIST runs)."""
    free = np.clip((change - MOBILE_FROM) / (1.0 - MOBILE_FROM), 0.0, 1.0)
    return (free ** MOBILITY_POWER).astype(np.float32)


def map_epochs(method: str, epochs: list[np.ndarray], *, n_neighbors: int = 40, seed: int = 0,
               backend: str = DEFAULT_BACKEND) -> tuple[list[np.ndarray], list[list[str]]]:
    """Every epoch of one layer with one method: the frames, and each frame's notes.

    Parameters
    ----------
    method : str
        "aligned", "independent", "aligned-umap" (umap-learn's AlignedUMAP over all epochs at once) or "pca".
    epochs : list of numpy.ndarray
        The layer's snapshots in order, each (n, features), the same n rows (images) in each.
    n_neighbors : int, default 40
        UMAP's number of neighbours (not used by "pca").
    seed : int, default 0
        Seeds the fits.
    backend : str, default "auto"
        What runs the aligned method (`layerlapse.maps.backend`).

    Returns
    -------
    frames : list of numpy.ndarray
        One map per snapshot, float32 (n, 2), NaN where a row could not be mapped.
    notes : list of list of str
        Per frame, what it had to work around, as its caption says.

    Examples
    --------
    >>> import numpy as np
    >>> from layerlapse import map_epochs
    >>> rng = np.random.default_rng(0)
    >>> frames, notes = map_epochs("pca", [rng.normal(size=(100, 8)) for epoch in range(3)])
    >>> len(frames), frames[0].shape, notes[0]
    (3, (100, 2), [])
    """
    if method != "aligned-umap":
        mapper = EpochMapper(method, n_neighbors=n_neighbors, seed=seed, backend=backend)
        frames, notes = [], []
        for activations in epochs:
            frames.append(mapper.next(activations))
            notes.append(mapper.notes)
        return frames, notes
    return aligned_umap_maps(epochs, n_neighbors=n_neighbors, seed=seed)


def aligned_umap_maps(epochs: list[np.ndarray], *, n_neighbors: int = 40, seed: int = 0
                      ) -> tuple[list[np.ndarray], list[list[str]]]:
    """umap-learn's AlignedUMAP over all epochs at once, each point related to itself in the next epoch. Rows that
    are not finite in some epoch are left out of every epoch (AlignedUMAP needs the same points throughout)."""
    cleaned = [usable_rows(x) for x in epochs]
    usable = np.logical_and.reduce([rows for _, rows, _ in cleaned])
    check_method("aligned-umap", int(usable.sum()), n_neighbors)
    umap = import_umap()
    n = int(usable.sum())
    relations = [{i: i for i in range(n)} for _ in range(len(epochs) - 1)]
    data = [x[usable] for x, _, _ in cleaned]
    if len(data) == 1:
        embeddings = [umap_map(data[0], n_neighbors=n_neighbors, seed=seed)]
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs.*")
            reducer = umap.AlignedUMAP(n_neighbors=n_neighbors, random_state=seed).fit(data, relations=relations)
        embeddings = reducer.embeddings_
    frames = []
    for embedding in embeddings:
        xy = np.full((len(usable), 2), np.nan, dtype=np.float32)
        xy[usable] = embedding
        frames.append(xy)
    return frames, [notes for _, _, notes in cleaned]


def usable_rows(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """float32 activations (n, features), the mask of rows that are all finite, and a note when some are not (also
    given as a warning with the count). Converted and checked a block of rows at a time: a memory-mapped float16
    snapshot is read into its float32 copy without a second whole copy or a mask as large as the snapshot."""
    from ..store.blocks import finite_rows, float32_rows

    x = float32_rows(activations)
    usable = finite_rows(x)
    notes = []
    if not usable.all():
        bad = int((~usable).sum())
        note = f"{bad:,} of {len(x):,} points have NaN or infinite activations and are not drawn"
        warnings.warn(note, MapWarning, stacklevel=3)
        notes.append(note)
    return x, usable, notes


def _constant(x: np.ndarray, usable: np.ndarray) -> bool:
    """Whether every usable row of `x` equals the first, a block of rows at a time (`x[usable] == ...` would make
    a copy of the snapshot and a mask as large: 5 bytes a value, 1.9 GB at 60,000 × 6,272)."""
    from ..store.blocks import row_blocks

    first, start = x[int(np.argmax(usable))], 0
    for block in row_blocks(x):
        rows, start = usable[start:start + len(block)], start + len(block)
        if not np.all(block[rows] == first):
            return False
    return True


# ---- new points --------------------------------------------------------------------------------------------------
def place_points(reference_activations: np.ndarray, reference_xy: np.ndarray, new_activations: np.ndarray, *,
                 k: int = PLACEMENT_NEIGHBORS) -> np.ndarray:
    """Place new points on a map: a weighted mean of the 2-D positions of their k nearest reference points in the
    layer's space, with UMAP's kernel exp(-(d - d_nearest) / sigma), sigma the mean of (d - d_nearest), so the
    nearest neighbours dominate and a point does not land halfway between two clusters it is near.

    Each new point depends only on itself and the reference set, unlike `umap.transform`, whose results change
    with the batch they come in (lmcinnes/umap#158, #566, #1224). Reference points without a position (NaN) are
    not used; new points whose activations are not finite get NaN. The reference (a memory-mapped snapshot, say) is
    read a block of rows at a time and never copied whole (`nearest_reference_rows`).

    Parameters
    ----------
    reference_activations : numpy.ndarray
        The mapped points' activations in the layer, (n, features): the probe's snapshot the map was made from.
    reference_xy : numpy.ndarray
        Their positions on the map, (n, 2).
    new_activations : numpy.ndarray
        The new points' activations in the same layer and snapshot, (m, features): test images, say.
    k : int, default 10
        How many nearest reference points each new point's position is averaged from.

    Returns
    -------
    numpy.ndarray
        The new points' positions, float32 (m, 2).

    Examples
    --------
    >>> import numpy as np
    >>> from layerlapse import place_points
    >>> reference = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> place_points(reference, xy, np.array([[1.0, 0.0]]), k=2)
    array([[10.,  0.]], dtype=float32)
    """
    if len(reference_activations) != len(reference_xy):
        raise ValueError(f"{len(reference_activations)} reference activations but {len(reference_xy)} positions")
    from ..store.blocks import finite_rows, float32_rows

    new = float32_rows(new_activations)
    positions = np.asarray(reference_xy, dtype=np.float64)
    finite = finite_rows(new)
    placed = np.full((len(new), 2), np.nan, dtype=np.float32)
    if not finite.any():
        return placed
    distances, neighbors = nearest_reference_rows(reference_activations, np.isfinite(positions).all(axis=1),
                                                  new[finite], k)
    if distances.shape[1] == 0:  # no reference point is usable
        return placed
    excess = distances - distances[:, :1]
    sigma = np.maximum(excess.mean(axis=1, keepdims=True), 1e-12)
    weights = np.exp(-excess / sigma)
    weights /= weights.sum(axis=1, keepdims=True)
    # a point that coincides with a reference point (up to float error) takes its place exactly
    duplicate = distances[:, 0] <= 1e-6 * np.maximum(distances[:, -1], 1e-12)
    weights[duplicate] = 0.0
    weights[duplicate, 0] = 1.0
    placed[finite] = np.einsum("nk,nkd->nd", weights, positions[neighbors])
    return placed


def nearest_reference_rows(reference: np.ndarray, allowed: np.ndarray, queries: np.ndarray, k: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Each query row's k nearest reference rows among the `allowed` ones with finite values: (distances, rows),
    nearest first, equal distances in row order; fewer than k columns when fewer rows qualify.

    A screen in float32 over blocks of the reference (its rows never all in memory, nor as float64: a 60,000 × 6,272
    snapshot would take 3 GB so) keeps PLACEMENT_SCREEN × k candidates per query; their exact float64 distances then
    rank them, so the result is the exact search's unless more rows than that tie within float32's rounding. The
    blocks do not depend on the queries: a query's result does not depend on the others."""
    from ..store.blocks import BLOCK_BYTES, release_pages

    n, width = len(reference), queries.shape[1]
    flat = np.asanyarray(reference).reshape(n, width)
    keep = max(1, min(n, PLACEMENT_SCREEN * k))
    best = np.full((len(queries), keep), np.inf, dtype=np.float32)
    best_rows = np.full((len(queries), keep), -1, dtype=np.int64)
    query_norms = np.einsum("ij,ij->i", queries, queries)
    row_step = max(1, BLOCK_BYTES // (4 * max(width, 1)))  # a block's float32 rows
    first = min(n, max(PLACEMENT_FIRST_ROWS, keep))  # a small first block sets each query's bar for the rest
    # a chunk of queries: its distances to a block, and to the first block as candidates (~40 bytes each: index,
    # row, distance, order), each within BLOCK_BYTES
    query_step = max(1, min(BLOCK_BYTES // (4 * row_step), BLOCK_BYTES // (40 * max(first, 1))))
    bounds = [0, *range(first, n, row_step), n]
    usable = 0
    for start, stop in zip(bounds[:-1], bounds[1:]):
        block = np.asarray(flat[start:stop], dtype=np.float32)
        release_pages(flat)
        ok = allowed[start:stop] & np.isfinite(block).all(axis=1)
        usable += int(ok.sum())
        block_norms = np.einsum("ij,ij->i", block, block)
        for low in range(0, len(queries), query_step):
            chunk = slice(low, low + query_step)
            squared = query_norms[chunk, None] + block_norms[None, :] - 2.0 * (queries[chunk] @ block.T)
            squared[:, ~ok] = np.inf
            best[chunk], best_rows[chunk] = _keep_closest(best[chunk], best_rows[chunk], squared, start)
    best_rows[~np.isfinite(best)] = -1
    return _exact_ranking(flat, queries, best_rows, min(k, usable))


def _keep_closest(best: np.ndarray, best_rows: np.ndarray, squared: np.ndarray, offset: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each query's `keep` closest of its kept candidates and a block's rows (`offset` on), ties to the lower row.
    Only the block's rows closer than a query's farthest kept one are looked at."""
    queries_of, rows = np.nonzero(squared < best.max(axis=1, keepdims=True))
    if len(rows) == 0:
        return best, best_rows
    m, keep = best.shape
    queries_of = np.concatenate([np.repeat(np.arange(m), keep), queries_of])
    distances = np.concatenate([best.ravel(), squared[queries_of[m * keep:], rows]])
    rows = np.concatenate([best_rows.ravel(), rows + offset])
    order = np.lexsort((rows, distances, queries_of))  # by query, then distance, then row
    counts = keep + np.bincount(queries_of[m * keep:], minlength=m)
    take = order[((np.cumsum(counts) - counts)[:, None] + np.arange(keep)).ravel()]
    return distances[take].reshape(m, keep), rows[take].reshape(m, keep)


def _exact_ranking(flat: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of each query's candidate rows (-1: none) by exact float64 distance, ties in row order."""
    from ..store.blocks import BLOCK_BYTES

    distances = np.empty((len(queries), k), dtype=np.float64)
    neighbors = np.empty((len(queries), k), dtype=np.int64)
    if k == 0:  # no usable reference row
        return distances, neighbors
    width, none = queries.shape[1], np.iinfo(np.int64).max
    step = max(1, BLOCK_BYTES // (8 * max(width, 1) * max(candidates.shape[1], 1)))
    for start in range(0, len(queries), step):
        # in row order, the missing (-1) last, so the stable sort below breaks ties by row
        chunk = candidates[start:start + step]
        chunk = np.sort(np.where(chunk < 0, none, chunk), axis=1)
        missing = chunk == none
        wanted, where = np.unique(np.where(missing, 0, chunk), return_inverse=True)
        rows = np.asarray(flat[wanted], dtype=np.float64)[where.reshape(chunk.shape)]
        exact = np.sqrt(((queries[start:start + step, None, :].astype(np.float64) - rows) ** 2).sum(axis=2))
        exact[missing] = np.inf
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        distances[start:start + step] = np.take_along_axis(exact, order, axis=1)
        neighbors[start:start + step] = np.take_along_axis(chunk, order, axis=1)
    return distances, neighbors


LEGACY_METHODS = {"umap": "independent"}  # the name runs recorded before there was a choice
METHOD_LABELS = {"aligned": "aligned UMAP (layerlapse)", "independent": "UMAP per epoch (the article's)",
                 "aligned-umap": "umap-learn AlignedUMAP", "pca": "PCA"}
