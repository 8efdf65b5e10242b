"""What differs between two or more runs of a network recorded on the same probe: measured item by item and layer by
layer, so that a comparison can say where two runs (two recipes, or two seeds of one) part ways.

- Representations: linear CKA between every layer of one run and every layer of the other, from Gram matrices made
  once per layer (`cka_grams`), and how many of each item's 10 nearest neighbours the two runs share.
- Predictions: which run gets each item right (`agreement`), which learned it and how much later (`learned_by`,
  `learned_later`), and the items the runs disagree on most.
- Maps: the rotation or reflection that lays one run's 2-D map onto the other's (orthogonal Procrustes, no scaling),
  so the two pictures are shown the same way up, and how far apart they stay after it.
- Seeds: over three or more runs, which items every seed learns and which only some, and the spread of a measure
  over pairs of runs within a recipe (seed noise) against pairs between recipes.

The caller joins the runs first: every array here is indexed by the same shared items in the same order, and the
snapshots are matched. Arrays in, arrays out (numpy, scikit-learn and scipy only); never reads a run folder.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple, Sequence

import numpy as np

from ..measures.dynamics import NOT_YET, SampleDynamics
from ..measures.representation import measure_sample

NEIGHBOUR_K = 10  # as the layer measures' k-NN accuracy
NEIGHBOUR_ITEMS = 10_000  # exact neighbours among 10,000 items: about a second per snapshot (nearest_neighbours)
MISSING = 255  # neighbour_overlap of an item not measured (not finite in a run)
AGREEMENT = ("both right", "left only", "right only", "both wrong")  # agreement's codes 0..3
LEARNED_BY = ("both", "left only", "right only", "neither")  # learned_by's codes 0..3
_CHUNK = 32  # nearest_neighbours looks for candidates among whole chunks of this many items


def _table(x: np.ndarray, caller: str) -> np.ndarray:
    """A representation as (items, features), further dimensions flattened; the one-line error for fewer than 2-D."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{caller}: a representation is (items, features), got shape {x.shape}: pass one row per item")
    return x.reshape(len(x), -1)


def cka_grams(x: np.ndarray) -> np.ndarray:
    """The centred Gram matrix of a representation, scaled to unit Frobenius norm: what linear CKA compares.

    Made once per layer and snapshot, it is compared with any number of others by `cka_from_grams`. Rows not finite
    are left out of the centring and become zero rows and columns, so two Gram matrices with the same rows left out
    give linear CKA over the rows finite in both (`layerlapse.measures.representation.linear_cka`).

    Parameters
    ----------
    x : numpy.ndarray
        One representation, (n, features), float16, float32 or float64; further dimensions are flattened.

    Returns
    -------
    numpy.ndarray
        (n, n) float64, n² × 8 bytes (32 MB at 2,000 items: make it on `measure_sample`'s sample); all NaN for a
        constant representation, whose CKA with anything is undefined.
    """
    x = _table(x, "cka_grams").astype(np.float64)
    finite = np.isfinite(x).all(axis=1)
    centred = np.zeros_like(x)
    if finite.any():
        centred[finite] = x[finite] - x[finite].mean(axis=0)
    gram = centred @ centred.T
    norm = np.linalg.norm(gram)
    return gram / norm if norm > 0 else np.full_like(gram, np.nan)


def cka_from_grams(left: np.ndarray, right: np.ndarray) -> float:
    """Linear CKA of two representations from their `cka_grams`: the sum of their elementwise product, 0..1."""
    if left.shape != right.shape:
        raise ValueError(f"cka_from_grams: a Gram matrix of {left.shape} against one of {right.shape}: make both with "
                         "cka_grams from representations of the same items")
    return float(np.vdot(left, right))


def cka_matrix(left: Sequence[np.ndarray], right: Sequence[np.ndarray]) -> np.ndarray:
    """Linear CKA between every layer of one run and every layer of another, from one `cka_grams` per layer (all of
    the same n items): (len(left), len(right)) float64, [i, j] the CKA of left layer i and right layer j, NaN where
    either is constant."""
    sizes = {np.shape(gram) for gram in [*left, *right]}
    if len(sizes) > 1 or any(len(size) != 2 or size[0] != size[1] for size in sizes):
        raise ValueError(f"cka_matrix: Gram matrices of {sorted(sizes)} rows against each other: pass cka_grams of "
                         "representations of the same items, joined the same way")
    found = [[cka_from_grams(a, b) for b in right] for a in left]
    return np.array(found, dtype=np.float64).reshape(len(left), len(right))


def neighbour_sample(n: int, seed: int, size: int = NEIGHBOUR_ITEMS) -> np.ndarray:
    """Sorted indices of a seeded sample of at most `size` items, all of them when there are no more.

    The neighbours are found among these items only, so at 60,000 items the neighbour overlap is measured on a
    10,000-item sample (an item's 10 neighbours among a sixth of the items): exact neighbours among all 60,000 would
    take about 36 times as long, and the search's time grows with the square of `size`.
    """
    return measure_sample(n, seed, size=size)


def nearest_neighbours(x: np.ndarray, k: int = NEIGHBOUR_K, block: int = 2048) -> np.ndarray:
    """Exact k nearest neighbours (euclidean) of every item among all items, itself excluded.

    Distances are ‖a‖² + ‖b‖² − 2a·b in float32 (after centring, which keeps the cancellation small), `block` rows
    at a time: memory is bounded by block × n, never n × n. Ties go to the lower index, so the same input always
    gives the same neighbours; a duplicate of an item is its neighbour at distance 0 (the item itself is left out by
    index). Rows not finite are infinitely far: nobody's neighbour, and their own row is all -1.

    Measured (median of 3) at 10,000 × 512 float32, k = 10: 0.9 s on an Intel Xeon, 2 cores, AVX-512 (the matrix
    product is most of it; choosing the k among whole chunks of candidates keeps the selection small).

    Parameters
    ----------
    x : numpy.ndarray
        (n, features), any float type; further dimensions are flattened.
    k : int
        Neighbours per item, 1..n-1.
    block : int
        Rows per step.

    Returns
    -------
    numpy.ndarray
        (n, k) int32: row i holds i's neighbours, nearest first; -1 where there is none (a row not finite, or fewer
        than k finite others).
    """
    x = _table(x, "nearest_neighbours")
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"nearest_neighbours: k = {k} neighbours among {n} items: pass k from 1 to {n - 1}")
    if block < 1:
        raise ValueError(f"nearest_neighbours: block = {block} rows: pass a positive number of rows per step")
    x64 = x.astype(np.float64)
    finite = np.isfinite(x64).all(axis=1)
    centred = np.where(finite[:, None], x64 - (x64[finite].mean(axis=0) if finite.any() else 0.0), 0.0)
    # one product gives the distance up to the row's own ‖a‖² (which does not change the order within a row):
    # [a, 1] · [-2b, ‖b‖²]; columns of padding and of rows not finite get ‖b‖² = inf, infinitely far
    columns = -(-n // _CHUNK) * _CHUNK
    rows = np.hstack([centred, np.ones((n, 1))]).astype(np.float32)
    others = np.zeros((centred.shape[1] + 1, columns), dtype=np.float32)
    others[:-1, :n] = -2 * centred.T
    others[-1] = np.inf
    others[-1, :n][finite] = (centred[finite] ** 2).sum(axis=1)
    found = np.full((n, k), -1, dtype=np.int32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        distances = rows[start:stop] @ others
        distances[np.arange(stop - start), np.arange(start, stop)] = np.inf
        found[start:stop] = _nearest_of_block(distances, k)
    found[~finite] = -1
    return found


def _nearest_of_block(distances: np.ndarray, k: int) -> np.ndarray:
    """The k smallest columns of each row by (distance, index), -1 for infinite ones. The k-th smallest chunk minimum
    bounds the k-th smallest distance, so the k neighbours lie in the chunks whose minimum is at most it: where
    those are exactly k chunks (no tie), only their k × _CHUNK distances are searched."""
    b, columns = distances.shape
    if columns // _CHUNK <= k:  # too few chunks to leave any out
        return _no_neighbour(distances, _smallest(distances, np.arange(columns)[None, :], k))
    chunked = distances.reshape(b, columns // _CHUNK, _CHUNK)
    minima = chunked.min(axis=2)
    within = minima <= np.partition(minima, k - 1, axis=1)[:, k - 1:k]
    tied = within.sum(axis=1) > k
    found = np.empty((b, k), dtype=np.int64)
    if tied.any():
        found[tied] = _smallest(distances[tied], np.arange(columns)[None, :], k)
    plain = np.flatnonzero(~tied)
    chunks = np.nonzero(within[plain])[1].reshape(len(plain), k)  # ascending, so the candidates' indices ascend
    candidates = chunked[plain[:, None], chunks].reshape(len(plain), k * _CHUNK)
    indices = (chunks[:, :, None] * _CHUNK + np.arange(_CHUNK)).reshape(len(plain), k * _CHUNK)
    found[plain] = _smallest(candidates, indices, k)
    return _no_neighbour(distances, found)


def _no_neighbour(distances: np.ndarray, found: np.ndarray) -> np.ndarray:
    """-1 for the neighbours found at an infinite distance: rows not finite, or padding."""
    return np.where(np.isinf(np.take_along_axis(distances, found, axis=1)), -1, found)


def _smallest(values: np.ndarray, indices: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k smallest values of each row, ordered by (value, index); `indices` ascend along a row."""
    kth = np.partition(values, k - 1, axis=1)[:, k - 1:k]
    below, at = values < kth, values == kth
    # all below the k-th value, and of those equal to it the first (lowest-index) ones, up to k in all
    keep = below | (at & (np.cumsum(at, axis=1) <= k - below.sum(axis=1, keepdims=True)))
    picked = np.nonzero(keep)
    chosen = np.broadcast_to(indices, values.shape)[picked].reshape(-1, k)
    order = np.lexsort((chosen, values[picked].reshape(-1, k)), axis=1)
    return np.take_along_axis(chosen, order, axis=1)


def neighbour_overlap(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Per item, how many of its k neighbours in one run (`nearest_neighbours`) are among its k in the other: (n,)
    uint8, 0..k; MISSING (255) for an item with a -1 in either row (not finite in a run, or too few neighbours)."""
    left, right = np.asarray(left), np.asarray(right)
    if left.shape != right.shape or left.ndim != 2:
        raise ValueError(f"neighbour_overlap: neighbours of {left.shape} against {right.shape}: pass the (n, k) "
                         "nearest_neighbours of the same items with the same k in both runs")
    if left.shape[1] >= MISSING:
        raise ValueError(f"neighbour_overlap: k = {left.shape[1]} does not fit a uint8 count: pass k below {MISSING}")
    shared = (left[:, :, None] == right[:, None, :]).any(axis=2).sum(axis=1).astype(np.uint8)
    shared[(left < 0).any(axis=1) | (right < 0).any(axis=1)] = MISSING
    return shared


def agreement(pred_left: np.ndarray, pred_right: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Which run predicts each item right, from the predicted classes of both, (n,) or (frames, n), and the true
    ones (n,): AGREEMENT's codes, 0 both right, 1 left only, 2 right only, 3 both wrong; uint8, the predictions'
    shape."""
    pred_left, pred_right, labels = np.asarray(pred_left), np.asarray(pred_right), np.asarray(labels)
    if pred_left.shape != pred_right.shape or pred_left.ndim not in (1, 2) or labels.shape != pred_left.shape[-1:]:
        raise ValueError(f"agreement: predictions of {pred_left.shape} and {pred_right.shape} for labels of "
                         f"{labels.shape}: pass (n,) or (frames, n) predictions of the same n items in both runs and "
                         "their n labels")
    left_wrong = (pred_left != labels).astype(np.uint8)
    right_wrong = (pred_right != labels).astype(np.uint8)
    return right_wrong + 2 * left_wrong


def agreement_shares(codes: np.ndarray, same_prediction: np.ndarray | None = None) -> dict[str, float]:
    """The share of the items in each of AGREEMENT's four, keyed "both_right", "left_only", "right_only" and
    "both_wrong"; given `same_prediction` (pred_left == pred_right, the codes' shape), also the share of items both
    runs predict the same, right or wrong. Over every code given: pass one frame's codes for that frame's shares.
    NaN shares for no items."""
    codes = np.asarray(codes)
    counts = np.bincount(codes.ravel().astype(np.int64), minlength=len(AGREEMENT))
    if len(counts) > len(AGREEMENT):
        raise ValueError(f"agreement_shares: code {len(counts) - 1} is not one of AGREEMENT's 0..3: pass agreement()")
    total = codes.size if codes.size else np.nan
    shares = {name.replace(" ", "_"): float(count / total) for name, count in zip(AGREEMENT, counts)}
    if same_prediction is not None:
        same_prediction = np.asarray(same_prediction, dtype=bool)
        if same_prediction.shape != codes.shape:
            raise ValueError(f"agreement_shares: same_prediction of {same_prediction.shape} for codes of "
                             f"{codes.shape}: pass pred_left == pred_right of the same predictions")
        shares["same_prediction"] = float(same_prediction.sum() / total)
    return shares


class Turn(NamedTuple):
    """The orthogonal turn that lays one map onto another: (x − moving_mean) @ rotation + fixed_mean."""

    rotation: np.ndarray  # (d, d) orthogonal: a rotation, or a rotation and a reflection
    moving_mean: np.ndarray  # (d,)
    fixed_mean: np.ndarray  # (d,)


def orthogonal_turn(moving: np.ndarray, fixed: np.ndarray) -> Turn:
    """The rotation or reflection, and shifts, that best lay the `moving` map (n, d) onto the `fixed` one in least
    squares (orthogonal Procrustes), rows not finite in either left out: no scaling, so distances within a map are
    kept and only its orientation changes. Returns (rotation, moving_mean, fixed_mean) for `apply_turn`."""
    from scipy.linalg import orthogonal_procrustes

    moving, fixed = np.asarray(moving, dtype=np.float64), np.asarray(fixed, dtype=np.float64)
    if moving.shape != fixed.shape or moving.ndim != 2:
        raise ValueError(f"orthogonal_turn: a map of {moving.shape} against one of {fixed.shape}: pass (n, d) maps of "
                         "the same items")
    both = np.isfinite(moving).all(axis=1) & np.isfinite(fixed).all(axis=1)
    if not both.any():
        raise ValueError("orthogonal_turn: no item is finite in both maps: pass maps with shared finite points")
    moving_mean, fixed_mean = moving[both].mean(axis=0), fixed[both].mean(axis=0)
    rotation, _ = orthogonal_procrustes(moving[both] - moving_mean, fixed[both] - fixed_mean)
    return Turn(rotation, moving_mean, fixed_mean)


def apply_turn(xy: np.ndarray, turn: Turn) -> np.ndarray:
    """A map (..., d) turned by `orthogonal_turn`'s turn, float64; rows not finite come out NaN."""
    xy = np.asarray(xy, dtype=np.float64)
    rotation, moving_mean, fixed_mean = turn
    if xy.ndim < 1 or xy.shape[-1] != len(rotation):
        raise ValueError(f"apply_turn: points of {xy.shape} for a turn of {len(rotation)} dimensions: pass (..., "
                         f"{len(rotation)}) points of the map the turn was fit to")
    turned = (xy - moving_mean) @ rotation + fixed_mean
    turned[~np.isfinite(xy).all(axis=-1)] = np.nan
    return turned


def turn_disparity(moving_turned: np.ndarray, fixed: np.ndarray) -> float:
    """How far apart two maps stay after the turn: the root-mean-square distance between an item's two points
    divided by the root-mean-square distance of `fixed`'s points from their mean, over the items finite in both.
    0: the same picture; about 1.4 for unrelated maps of the same spread. NaN where nothing is left to compare."""
    moving_turned, fixed = np.asarray(moving_turned, dtype=np.float64), np.asarray(fixed, dtype=np.float64)
    if moving_turned.shape != fixed.shape or moving_turned.ndim != 2:
        raise ValueError(f"turn_disparity: a map of {moving_turned.shape} against one of {fixed.shape}: pass (n, d) "
                         "maps of the same items, the first turned by apply_turn")
    both = np.isfinite(moving_turned).all(axis=1) & np.isfinite(fixed).all(axis=1)
    spread = np.sqrt(((fixed[both] - fixed[both].mean(axis=0)) ** 2).sum(axis=1).mean()) if both.any() else 0.0
    if spread == 0:
        return float("nan")
    return float(np.sqrt(((moving_turned[both] - fixed[both]) ** 2).sum(axis=1).mean()) / spread)


def _same_items(left: SampleDynamics, right: SampleDynamics, caller: str) -> None:
    if left.first_learned.shape != right.first_learned.shape:
        raise ValueError(f"{caller}: dynamics of {left.first_learned.shape[0]} items against "
                         f"{right.first_learned.shape[0]}: pass sample_dynamics of the same joined items")


def learned_by(left: SampleDynamics, right: SampleDynamics) -> np.ndarray:
    """Which run learned each item (right at its last snapshot): LEARNED_BY's codes, 0 both, 1 left only, 2 right
    only, 3 neither; uint8 (n,)."""
    _same_items(left, right, "learned_by")
    return ((right.learned_from == NOT_YET) + 2 * (left.learned_from == NOT_YET)).astype(np.uint8)


def learned_later(left: SampleDynamics, right: SampleDynamics) -> np.ndarray:
    """How many snapshots later the right run was first right about each item than the left (negative: earlier);
    float32 (n,), NaN where either run was never right about it."""
    _same_items(left, right, "learned_later")
    both = (left.first_learned != NOT_YET) & (right.first_learned != NOT_YET)
    later = right.first_learned.astype(np.float32) - left.first_learned.astype(np.float32)
    return np.where(both, later, np.float32(np.nan)).astype(np.float32)


def forgetting_difference(left: SampleDynamics, right: SampleDynamics) -> np.ndarray:
    """The right run's forgetting events minus the left's, per item; int32 (n,)."""
    _same_items(left, right, "forgetting_difference")
    return (right.forgetting_events.astype(np.int32) - left.forgetting_events.astype(np.int32)).astype(np.int32)


def rank_disagreement(overlap_per_frame: np.ndarray, disagree_per_frame: np.ndarray, top: int) -> np.ndarray:
    """The items the runs disagree on most, at most `top` of them: most snapshots with different predictions first,
    then the lowest mean neighbour overlap over the snapshots where it was measured (never measured: last), then the
    lowest index. Items the runs predict the same at every snapshot are not listed. `overlap_per_frame`: (frames, n)
    `neighbour_overlap`, MISSING where not measured; `disagree_per_frame`: (frames, n) bool, the predictions differ.
    Returns int64 item indices, most disagreed first."""
    overlap, disagree = np.asarray(overlap_per_frame), np.asarray(disagree_per_frame, dtype=bool)
    if overlap.shape != disagree.shape or overlap.ndim != 2:
        raise ValueError(f"rank_disagreement: overlap of {overlap.shape} against disagreement of {disagree.shape}: "
                         "pass (frames, n) arrays of the same frames and items")
    if top < 0:
        raise ValueError(f"rank_disagreement: top = {top}: pass how many items to list, 0 or more")
    measured = overlap != MISSING
    counted = measured.sum(axis=0)
    mean_overlap = np.where(measured, overlap, 0).sum(axis=0) / np.maximum(counted, 1)
    mean_overlap = np.where(counted > 0, mean_overlap, np.inf)
    disagreements = disagree.sum(axis=0)
    order = np.lexsort((np.arange(disagree.shape[1]), mean_overlap, -disagreements))
    return order[disagreements[order] > 0][:top]


def seed_spread(final_right: np.ndarray, first_learned: np.ndarray) -> dict[str, np.ndarray]:
    """How much each item depends on the seed, over two or more runs: "learned_share", the share of runs right about
    it at the end (float32), and "first_learned_spread", the standard deviation (ddof = 1) of the snapshot it was
    first right at, over the runs ever right about it (float32; NaN where fewer than 2 were). From `final_right`,
    (runs, n) bool, each run right at its last snapshot, and `first_learned`, (runs, n) `SampleDynamics.first_learned`
    of each run (NOT_YET where never right)."""
    final_right, first_learned = np.asarray(final_right, dtype=bool), np.asarray(first_learned)
    if final_right.shape != first_learned.shape or final_right.ndim != 2 or len(final_right) < 2:
        raise ValueError(f"seed_spread: final_right of {final_right.shape} and first_learned of {first_learned.shape}: "
                         "pass (runs, n) arrays of the same items for 2 or more runs")
    learned = first_learned != NOT_YET
    runs = learned.sum(axis=0)
    mean = np.where(learned, first_learned, 0).sum(axis=0) / np.maximum(runs, 1)
    squares = np.where(learned, (first_learned - mean) ** 2, 0.0).sum(axis=0)
    sd = np.where(runs >= 2, np.sqrt(squares / np.maximum(runs - 1, 1)), np.nan)
    return {"learned_share": final_right.mean(axis=0).astype(np.float32),
            "first_learned_spread": sd.astype(np.float32)}


def consistency_counts(learned_share: np.ndarray) -> dict[str, int]:
    """How many items every run learned, how many none did, and how many only some ("seed_dependent")."""
    learned_share = np.asarray(learned_share)
    every, none = int((learned_share == 1).sum()), int((learned_share == 0).sum())
    return {"every_run": every, "no_run": none, "seed_dependent": int(learned_share.size - every - none)}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, standard deviation (ddof = 1; NaN for fewer than 2), min, max and count of a measure over pairs of
    runs, NaN values left out: "0.91 ± 0.02 over 3 pairs"."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if not len(values):
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan"), "count": 0}
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
            "min": float(values.min()), "max": float(values.max()), "count": len(values)}


def pairs_by_group(groups: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    """Given each run's recipe, the pairs of runs (i < j) of the same recipe ("within": seed noise) and of different
    recipes ("between"), so that a measure between recipes is read against its spread within one."""
    if len(groups) < 2:
        raise ValueError(f"pairs_by_group: {len(groups)} run(s): pass one recipe name per run for 2 or more runs")
    pairs: dict[str, list[tuple[int, int]]] = {"within": [], "between": []}
    for i, j in combinations(range(len(groups)), 2):
        pairs["within" if groups[i] == groups[j] else "between"].append((i, j))
    return pairs
