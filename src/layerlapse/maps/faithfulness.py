"""How faithful a map is: measured on every frame, on a fixed seeded subsample of the probe.

Within a frame (Venna & Kaski; scikit-learn's implementation):
- trustworthiness: are the map's neighbours real neighbours in the layer? (1 = no false neighbours)
- continuity: are the layer's neighbours still neighbours on the map? (trustworthiness with the spaces swapped)
- k-NN preservation: the share of each point's k nearest neighbours in the layer that are also its k nearest on the
  map.

Between consecutive frames:
- Procrustes disparity of the two frames (scipy: after the best shift, turn and scale; 0 = same shape);
- the share of each point's k nearest map neighbours that stay its neighbours, set against the same share in the
  layer's space: a faithful time-lapse moves when, and only when, the representation moves;
- the temporal measure of DVI/TimeVis ("temporal preserving"): Spearman's correlation, over points, between how
  much each point's k nearest neighbours in the layer changed and how far the point moved on the map. DVI correlates
  the share *kept* with the distance, so a good map scores near -1 there; here the share *changed* is used, so +1 is
  a map whose points move exactly in the order of how much their neighbourhoods changed, 0 a map whose movement says
  nothing about the network's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

QUALITY_K = 10
QUALITY_SAMPLE = 3000


def quality_sample(n_points: int, seed: int, size: int = QUALITY_SAMPLE) -> np.ndarray:
    """Sorted indices of a seeded subsample, the same for every epoch of a run."""
    if n_points <= size:
        return np.arange(n_points)
    return np.sort(np.random.default_rng(seed).choice(n_points, size=size, replace=False))


def neighbor_indices(x: np.ndarray, k: int = QUALITY_K) -> np.ndarray:
    """Each row's k nearest other rows (n, k), exact."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float64)
    _, indices = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return _without_self(indices)


def _without_self(indices: np.ndarray) -> np.ndarray:
    # a duplicate row can come before the row itself, so remove the row by value, not by position
    rows = np.arange(len(indices))[:, None]
    others = indices != rows
    keep = others & (np.cumsum(others, axis=1) <= indices.shape[1] - 1)
    return indices[keep].reshape(len(indices), indices.shape[1] - 1)


def shared_per_row(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row, the share of its neighbours in `a` (n, k) that are also among its neighbours in `b` (n, k')."""
    width = int(max(a.max(initial=0), b.max(initial=0))) + 1
    offsets = np.arange(len(a), dtype=np.int64)[:, None] * width
    # (row, neighbour) pairs as one integer each; b's rows sorted and offset make one sorted array to search
    wanted = (offsets + a).ravel()
    present = (offsets + np.sort(b, axis=1)).ravel()
    at = np.minimum(np.searchsorted(present, wanted), len(present) - 1)
    return (present[at] == wanted).reshape(a.shape).sum(axis=1) / a.shape[1]


def shared_share(a: np.ndarray, b: np.ndarray) -> float:
    """The mean share of each row's neighbours in `a` that are also among its neighbours in `b`."""
    return float(shared_per_row(a, b).mean())


@dataclass(frozen=True)
class Neighbourhoods:
    """One frame's neighbourhoods on its sampled rows: each row's k nearest in the layer and on the map, the layer
    ranks of its map neighbours and the map ranks of its layer neighbours. The next frame reuses the lists."""

    layer_knn: np.ndarray
    map_knn: np.ndarray
    layer_ranks: np.ndarray
    map_ranks: np.ndarray


def neighbourhoods(layer: np.ndarray, xy: np.ndarray, k: int = QUALITY_K) -> Neighbourhoods:
    """The exact neighbourhoods of every row of `layer` and of its map `xy`, a block of rows at a time."""
    layer, xy = np.asarray(layer, dtype=np.float64), np.asarray(xy, dtype=np.float64)
    layer_norms, map_norms = np.einsum("ij,ij->i", layer, layer), np.einsum("ij,ij->i", xy, xy)
    parts: list[tuple[np.ndarray, ...]] = []
    for rows in _row_blocks(len(layer)):
        in_layer, on_map = _distances(layer, layer_norms, rows), _distances(xy, map_norms, rows)
        layer_knn, map_knn = _nearest(in_layer, k), _nearest(on_map, k)
        parts.append((layer_knn, map_knn, _ranks(in_layer, map_knn), _ranks(on_map, layer_knn)))
    return Neighbourhoods(*(np.concatenate(column) for column in zip(*parts)))


def frame_quality(layer: np.ndarray, xy: np.ndarray, k: int = QUALITY_K,
                  known: Neighbourhoods | None = None) -> dict[str, float]:
    """Trustworthiness, continuity and k-NN preservation of one map of `layer` (rows already subsampled); `known`
    saves finding the neighbourhoods again.

    Trustworthiness and continuity are Venna & Kaski's, as scikit-learn computes them (1: no false or missed
    neighbours); k-NN preservation is the mean share of each point's k nearest in the layer that are also its k
    nearest on the map. A run measures every frame on a fixed, seeded subsample of QUALITY_SAMPLE points.

    Parameters
    ----------
    layer : numpy.ndarray
        The points in the layer, (n, features), finite.
    xy : numpy.ndarray
        The same points on the map, (n, 2), finite.
    k : int, default 10
        The neighbours each point's measures look at (QUALITY_K).
    known : Neighbourhoods, optional
        These rows' neighbourhoods in both spaces, from `neighbourhoods(layer, xy, k)`, when found already.

    Returns
    -------
    dict
        "trustworthiness", "continuity" and "knn_preservation", floats in 0..1; empty when there are no more
        than 2k + 1 points (scikit-learn's limit for these measures).

    Examples
    --------
    >>> import numpy as np
    >>> from layerlapse import frame_quality
    >>> xy = np.random.default_rng(0).normal(size=(100, 2))
    >>> frame_quality(xy, xy)  # a map that is the layer itself
    {'trustworthiness': 1.0, 'continuity': 1.0, 'knn_preservation': 1.0}
    """
    if len(layer) <= 2 * k + 1:  # scikit-learn's own limit for these measures
        return {}
    found = known or neighbourhoods(layer, xy, k)
    return {"trustworthiness": _trust_from_ranks(found.layer_ranks, len(layer), k),
            "continuity": _trust_from_ranks(found.map_ranks, len(layer), k),
            "knn_preservation": shared_share(found.layer_knn, found.map_knn)}


def change_quality(layer_before: np.ndarray, layer_after: np.ndarray, xy_before: np.ndarray, xy_after: np.ndarray,
                   k: int = QUALITY_K, known: tuple[Neighbourhoods, Neighbourhoods] | None = None
                   ) -> dict[str, float]:
    """How much the map and the layer changed between two epochs (rows already subsampled, the same in both);
    `known` holds both frames' neighbourhoods on these rows when they were found already.

    Parameters
    ----------
    layer_before : numpy.ndarray
        The points in the layer at the earlier snapshot, (n, features), finite.
    layer_after : numpy.ndarray
        The same points in the layer at the later snapshot, (n, features), finite.
    xy_before : numpy.ndarray
        The earlier frame's map of them, (n, 2), finite.
    xy_after : numpy.ndarray
        The later frame's map of them, (n, 2), finite.
    k : int, default 10
        The neighbours each point's measures look at (QUALITY_K).
    known : tuple of Neighbourhoods, optional
        The earlier and the later frame's `neighbourhoods` on these rows, when found already.

    Returns
    -------
    dict
        "procrustes_disparity" (scipy's, after the best rotation and scaling: 0 when the frames differ by those
        alone), "map_neighbors_kept" and "layer_neighbors_kept" (the mean share of each point's k nearest that
        are still its k nearest, on the map and in the layer) and "temporal_correlation" (DVI/TimeVis: Spearman's
        correlation between how much each point's layer neighbourhood changed and how far it moved on the map,
        None where that is not defined); empty for k + 1 points or fewer.

    Examples
    --------
    >>> import numpy as np
    >>> from layerlapse import change_quality
    >>> rng = np.random.default_rng(0)
    >>> layer, xy = rng.normal(size=(100, 8)), rng.normal(size=(100, 2))
    >>> quality = change_quality(layer, layer, xy, xy)  # nothing changed
    >>> quality["map_neighbors_kept"], quality["layer_neighbors_kept"], quality["temporal_correlation"]
    (1.0, 1.0, None)
    """
    if len(xy_before) <= k + 1:
        return {}
    if known is None:
        knn = [_nearest_rows(values, k) for values in (xy_before, xy_after, layer_before, layer_after)]
    else:
        knn = [known[0].map_knn, known[1].map_knn, known[0].layer_knn, known[1].layer_knn]
    layer_kept = shared_per_row(knn[2], knn[3])
    measures = {"procrustes_disparity": procrustes_disparity(xy_before, xy_after),
                "map_neighbors_kept": shared_share(knn[0], knn[1]),
                "layer_neighbors_kept": float(layer_kept.mean())}
    measures["temporal_correlation"] = temporal_correlation(1.0 - layer_kept, xy_before, xy_after)
    return measures


def temporal_correlation(layer_changed: np.ndarray, xy_before: np.ndarray, xy_after: np.ndarray) -> float | None:
    """DVI/TimeVis's temporal measure: Spearman's correlation between each point's share of changed layer
    neighbours and the distance it moved on the map, once the later frame is turned (orthogonal Procrustes, no
    scaling) onto the earlier, so that a frame landing rotated is not counted as movement. None where it is not
    defined: no point's neighbourhood changed, or no point moved."""
    from scipy.stats import spearmanr

    xy_before = np.asarray(xy_before, np.float64)
    moved = np.linalg.norm(turned_onto(xy_after, xy_before) - xy_before, axis=1)
    size = max(float(np.ptp(xy_before, axis=0).max()), 1e-12)
    if np.ptp(layer_changed) == 0 or moved.max() <= 1e-9 * size:  # float error is not movement
        return None
    return float(spearmanr(layer_changed, moved)[0])


def turned_onto(xy: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`xy` rotated or reflected (no scaling) about its centre to best match `reference`, moved onto its centre."""
    from scipy.linalg import orthogonal_procrustes

    xy, reference = np.asarray(xy, np.float64), np.asarray(reference, np.float64)
    centre, reference_centre = xy.mean(axis=0), reference.mean(axis=0)
    rotation, _ = orthogonal_procrustes(xy - centre, reference - reference_centre)
    return (xy - centre) @ rotation + reference_centre


# scikit-learn's trustworthiness argsorts the whole n×n distance matrix of each space (1.5 s a frame for the
# 3,000-point sample, as long as mapping a 10,000-point frame); the measures need only each row's k nearest and the
# ranks of k given rows, which a partial sort and a count give exactly, a block of rows at a time (0.4 s). The tests
# hold these to scikit-learn's results.
_BLOCK_ROWS = 256


def _row_blocks(n: int) -> Iterator[slice]:
    return (slice(start, min(start + _BLOCK_ROWS, n)) for start in range(0, n, _BLOCK_ROWS))


def _distances(x: np.ndarray, squared_norms: np.ndarray, rows: slice) -> np.ndarray:
    """Squared euclidean distances from `rows` to every row (float64), a row's distance to itself infinite."""
    block = squared_norms[rows, None] + squared_norms[None, :] - 2.0 * (x[rows] @ x.T)
    np.maximum(block, 0.0, out=block)
    block[np.arange(block.shape[0]), np.arange(rows.start, rows.stop)] = np.inf
    return block


def _nearest(block: np.ndarray, k: int) -> np.ndarray:
    """Per row of a distance block, the columns of its k smallest distances, nearest first; equal distances in
    column order, as a stable sort would put them (float16 activations and duplicate images do tie)."""
    columns = np.argpartition(block, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(block, columns, axis=1).max(axis=1, keepdims=True)
    tied = np.flatnonzero((block <= kth).sum(axis=1) > k)  # rows where which of the equals to take is open
    if len(tied):
        below, at = block[tied] < kth[tied], block[tied] == kth[tied]
        take = below | (at & (np.cumsum(at, axis=1) <= k - below.sum(axis=1, keepdims=True)))
        columns[tied] = np.nonzero(take)[1].reshape(len(tied), k)
    distances = np.take_along_axis(block, columns, axis=1)
    order = np.lexsort((columns, distances), axis=1)  # nearest first, equals in column order
    return np.take_along_axis(columns, order, axis=1)


def _nearest_rows(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's k nearest other rows, as `neighbourhoods` finds them (equal distances in row order)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.einsum("ij,ij->i", x, x)
    return np.concatenate([_nearest(_distances(x, norms, rows), k) for rows in _row_blocks(len(x))])


def _ranks(block: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The rank (1 = nearest) of each given column in its row's distances, as a stable sort would rank it: one plus
    the count of nearer columns and of equally near columns that come before it."""
    wanted = np.take_along_axis(block, columns, axis=1)[:, :, None]
    others = block[:, None, :]
    ranks = 1 + (others < wanted).sum(axis=2)
    equal = others == wanted
    if equal.sum(axis=2).max(initial=1) > 1:  # another column as near as a wanted one
        earlier = np.arange(block.shape[1])[None, None, :] < columns[:, :, None]
        ranks += (equal & earlier).sum(axis=2)
    return ranks


def _trust_from_ranks(ranks: np.ndarray, n: int, k: int) -> float:
    """Venna & Kaski's trustworthiness from the other space's ranks of each row's k neighbours, as scikit-learn."""
    penalty = np.clip(ranks - k, 0, None).sum()
    return float(1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


def procrustes_disparity(xy_before: np.ndarray, xy_after: np.ndarray) -> float:
    from scipy.spatial import procrustes

    if np.ptp(xy_before, axis=0).max() == 0 or np.ptp(xy_after, axis=0).max() == 0:
        return 0.0 if np.ptp(xy_after, axis=0).max() == np.ptp(xy_before, axis=0).max() else 1.0
    return float(procrustes(np.asarray(xy_before, np.float64), np.asarray(xy_after, np.float64))[2])


def caption(quality: dict[str, float]) -> str:
    """The frame's measures in a few words, for its caption."""
    parts = []
    if "trustworthiness" in quality:
        parts.append(f"trust {quality['trustworthiness']:.3f} · cont. {quality['continuity']:.3f} · "
                     f"{QUALITY_K}-NN kept {quality['knn_preservation']:.2f}")
    if "map_neighbors_kept" in quality:
        parts.append(f"vs last frame: map kept {quality['map_neighbors_kept']:.2f}, layer "
                     f"{quality['layer_neighbors_kept']:.2f}, disparity {quality['procrustes_disparity']:.3f}"
                     + _temporal_caption(quality))
    return " · ".join(parts)


def short_caption(quality: dict[str, float]) -> str:
    """The frame's faithfulness in the fewest words, for a small panel ("trust 0.985 · cont. 0.983")."""
    if "trustworthiness" not in quality:
        return ""
    return f"trust {quality['trustworthiness']:.3f} · cont. {quality['continuity']:.3f}"


def _temporal_caption(quality: dict) -> str:
    if "temporal_correlation" not in quality:  # measured before the measure existed
        return ""
    value = quality["temporal_correlation"]
    return ", motion ρ " + ("n/a" if value is None else f"{value:.2f}")
