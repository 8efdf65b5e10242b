"""How good a layer's representation is at each snapshot, and how much it changed: measured on a fixed, seeded
sample of the probe (the full probe would make render slow at 60,000 points).

- k-NN accuracy: a k-nearest-neighbour classifier (k = 10, euclidean) fit on one half of the sample, scored on the
  other half;
- linear-probe accuracy: a multinomial logistic regression on standardised activations, fit and scored the same way;
- linear CKA (Kornblith et al., ICML 2019): the similarity of two representations of the same images, invariant to
  rotations and isotropic scaling of either, 1 for the same representation up to those, near 0 for unrelated ones.

Needs scikit-learn only; reads arrays, never the run folder.
"""

from __future__ import annotations

import numpy as np

MEASURE_SAMPLE = 2000  # images; both halves of 1,000 are enough for a 10-class probe
KNN_K = 10


def measure_sample(n_points: int, seed: int, size: int = MEASURE_SAMPLE) -> np.ndarray:
    """Sorted indices of a seeded sample of the probe, the same for every snapshot and layer of a run."""
    if n_points <= size:
        return np.arange(n_points)
    return np.sort(np.random.default_rng(seed + 1).choice(n_points, size=size, replace=False))


def _usable(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    finite = np.isfinite(x).all(axis=1)
    return x, finite


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations (n, features) of the same n images: HSIC(XXᵀ, YYᵀ) normalised, computed in
    feature space when the features are fewer than the images. Rows not finite in either are left out.

    Kornblith et al., ICML 2019: invariant to rotations and isotropic scaling of either representation, 1 for the
    same representation up to those, near 0 for unrelated ones.

    Parameters
    ----------
    x : numpy.ndarray
        One representation, (n, features); any further dimensions are flattened into the features.
    y : numpy.ndarray
        Another representation of the same n images, (n, features'), any width.

    Returns
    -------
    float
        CKA in 0..1; NaN when either representation is constant.

    Raises
    ------
    ValueError
        `x` and `y` have different numbers of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from layerlapse import linear_cka
    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> round(linear_cka(x, 3 * x @ np.linalg.qr(np.ones((5, 5)) + np.eye(5))[0]), 6)  # turned and scaled
    1.0
    """
    x, finite_x = _usable(x)
    y, finite_y = _usable(y)
    if len(x) != len(y):
        raise ValueError(f"CKA compares representations of the same images: {len(x)} rows against {len(y)}")
    keep = finite_x & finite_y
    x, y = x[keep] - x[keep].mean(axis=0), y[keep] - y[keep].mean(axis=0)
    if max(x.shape[1], y.shape[1]) < len(x):
        cross = np.linalg.norm(y.T @ x) ** 2
        norms = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    else:
        gram_x, gram_y = x @ x.T, y @ y.T
        cross = float((gram_x * gram_y).sum())
        norms = np.linalg.norm(gram_x) * np.linalg.norm(gram_y)
    return float(cross / norms) if norms > 0 else float("nan")


def probe_accuracies(x: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    """k-NN and linear-probe accuracy of activations `x` (n, features) for `labels`: fit on one seeded half of the
    rows, scored on the other. Empty when there are too few usable rows or classes to say anything."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    x, finite = _usable(x)
    x, labels = x[finite], np.asarray(labels)[finite]
    order = np.random.default_rng(seed).permutation(len(x))
    fit, score = order[: len(x) // 2], order[len(x) // 2:]
    if len(score) < 2 or len(np.unique(labels[fit])) < 2 or len(fit) <= KNN_K:
        return {}
    knn = KNeighborsClassifier(n_neighbors=KNN_K).fit(x[fit], labels[fit])
    scaler = StandardScaler().fit(x[fit])
    linear = LogisticRegression(max_iter=300).fit(scaler.transform(x[fit]), labels[fit])
    return {"knn_accuracy": float(knn.score(x[score], labels[score])),
            "linear_probe_accuracy": float(linear.score(scaler.transform(x[score]), labels[score]))}
