"""How faithful a map is: measured on every frame, on a fixed seeded subsample of the probe.

Within a frame (Venna & Kaski; scikit-learn's implementation):
- trustworthiness: are the map's neighbours real neighbours in the layer? (1 = no false neighbours)
- continuity: are the layer's neighbours still neighbours on the map? (trustworthiness with the spaces swapped)
- k-NN preservation: the share of each point's k nearest neighbours in the layer that are also its k nearest on the
  map.

Between consecutive frames (the temporal measure of DVI/TimeVis):
- Procrustes disparity of the two frames (scipy: after the best shift, turn and scale; 0 = same shape);
- the share of each point's k nearest map neighbours that stay its neighbours, set against the same share in the
  layer's space: a faithful time-lapse moves when, and only when, the representation moves.
"""

from __future__ import annotations

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


def frame_quality(layer: np.ndarray, xy: np.ndarray, k: int = QUALITY_K) -> dict[str, float]:
    """Trustworthiness, continuity and k-NN preservation of one map of `layer` (rows already subsampled)."""
    from sklearn.manifold import trustworthiness

    layer = np.asarray(layer, dtype=np.float64)
    xy = np.asarray(xy, dtype=np.float64)
    if len(layer) <= 2 * k + 1:  # scikit-learn's own limit for these measures
        return {}
    return {"trustworthiness": float(trustworthiness(layer, xy, n_neighbors=k)),
            "continuity": float(trustworthiness(xy, layer, n_neighbors=k)),
            "knn_preservation": shared_share(neighbor_indices(layer, k), neighbor_indices(xy, k))}


def change_quality(layer_before: np.ndarray, layer_after: np.ndarray, xy_before: np.ndarray, xy_after: np.ndarray,
                   k: int = QUALITY_K) -> dict[str, float]:
    """How much the map and the layer changed between two epochs (rows already subsampled, the same in both)."""
    if len(xy_before) <= k + 1:
        return {}
    return {"procrustes_disparity": procrustes_disparity(xy_before, xy_after),
            "map_neighbors_kept": shared_share(neighbor_indices(xy_before, k), neighbor_indices(xy_after, k)),
            "layer_neighbors_kept": shared_share(neighbor_indices(layer_before, k), neighbor_indices(layer_after, k))}


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
                     f"{quality['layer_neighbors_kept']:.2f}, disparity {quality['procrustes_disparity']:.3f}")
    return " · ".join(parts)
