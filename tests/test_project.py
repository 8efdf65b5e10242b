import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

from layerlapse.errors import ConfigError
from layerlapse.project import PLACEMENT_NEIGHBORS, place_points, umap_map

N_POINTS = 300


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    points, _ = make_blobs(n_samples=N_POINTS, centers=4, n_features=20, cluster_std=1.0, random_state=0)
    return points.astype(np.float16)  # activations are stored as float16


@pytest.fixture(scope="module")
def blob_map(blobs: np.ndarray) -> np.ndarray:
    return umap_map(blobs, n_neighbors=15, seed=0)


# ---- UMAP ------------------------------------------------------------------------------------------------------------
def test_umap_map_gives_finite_float32_coordinates(blob_map: np.ndarray) -> None:
    assert blob_map.shape == (N_POINTS, 2) and blob_map.dtype == np.float32
    assert np.isfinite(blob_map).all()


def test_umap_map_keeps_neighbours_together(blobs: np.ndarray, blob_map: np.ndarray) -> None:
    assert trustworthiness(blobs.astype(np.float32), blob_map, n_neighbors=10) > 0.9


def test_umap_map_is_repeatable_and_the_seed_reaches_umap(blobs: np.ndarray, blob_map: np.ndarray) -> None:
    np.testing.assert_array_equal(umap_map(blobs, n_neighbors=15, seed=0), blob_map)
    assert not np.allclose(umap_map(blobs, n_neighbors=15, seed=1), blob_map, atol=1e-3)


def test_n_neighbors_reaches_umap(blobs: np.ndarray, blob_map: np.ndarray) -> None:
    assert not np.allclose(umap_map(blobs, n_neighbors=40, seed=0), blob_map, atol=1e-3)


@pytest.mark.parametrize(("n_points", "n_neighbors"), [(15, 15), (3, 40), (0, 2)])
def test_umap_map_needs_more_points_than_neighbours(n_points: int, n_neighbors: int) -> None:
    with pytest.raises(ConfigError, match=rf"^UMAP with n_neighbors={n_neighbors} needs more than {n_neighbors} "
                                          rf"points, got {n_points}: record a larger --probe or lower --neighbors$"):
        umap_map(np.ones((n_points, 4), dtype=np.float16), n_neighbors=n_neighbors)


# ---- placing new points ----------------------------------------------------------------------------------------------
def reference_set(n_features: int, n_points: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n_points, n_features)).astype(np.float32),
            rng.uniform(-10, 10, size=(n_points, 2)).astype(np.float32))


def placed_by_hand(reference: np.ndarray, reference_xy: np.ndarray, new: np.ndarray, k: int) -> np.ndarray:
    """The oracle: brute-force distances, the k nearest, weighted by UMAP's kernel exp(-(d - d_nearest) / sigma)
    with sigma the mean of d - d_nearest over the k."""
    distances = np.sqrt(((new[:, None, :].astype(np.float64) - reference[None, :, :]) ** 2).sum(axis=2))
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    near_distances = np.take_along_axis(distances, nearest, axis=1)
    excess = near_distances - near_distances[:, :1]
    sigma = np.maximum(excess.mean(axis=1, keepdims=True), 1e-12)
    weights = np.exp(-excess / sigma)
    return (weights[:, :, None] * reference_xy[nearest]).sum(axis=1) / weights.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("n_features", [3, 64, 512])
def test_place_points_is_the_kernel_weighted_mean_of_the_nearest(n_features: int) -> None:
    reference, reference_xy = reference_set(n_features)
    new = np.random.default_rng(1).normal(size=(30, n_features)).astype(np.float32)
    placed = place_points(reference, reference_xy, new)
    assert placed.shape == (30, 2) and placed.dtype == np.float32
    expected = placed_by_hand(reference, reference_xy, new, PLACEMENT_NEIGHBORS)
    np.testing.assert_allclose(placed, expected, rtol=1e-5, atol=1e-5)
    # and neither the plain mean of the neighbours' positions nor the nearest one's position
    distances = np.linalg.norm(new[:, None, :] - reference[None], axis=2)
    order = np.argsort(distances, axis=1)
    assert np.abs(placed - reference_xy[order[:, :PLACEMENT_NEIGHBORS]].mean(axis=1)).max() > 1e-2
    assert np.abs(placed - reference_xy[order[:, 0]]).max() > 1e-2


def test_k_reaches_the_neighbour_search() -> None:
    reference, reference_xy = reference_set(8)
    new = np.random.default_rng(2).normal(size=(10, 8)).astype(np.float32)
    nearest = np.argmin(np.linalg.norm(new[:, None, :] - reference[None], axis=2), axis=1)
    np.testing.assert_array_equal(place_points(reference, reference_xy, new, k=1), reference_xy[nearest])
    np.testing.assert_allclose(place_points(reference, reference_xy, new, k=3),
                               placed_by_hand(reference, reference_xy, new, 3), rtol=1e-5, atol=1e-5)


def test_k_larger_than_the_reference_set_uses_all_of_it() -> None:
    reference, reference_xy = reference_set(5, n_points=6)
    new = np.random.default_rng(3).normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose(place_points(reference, reference_xy, new, k=50),
                               placed_by_hand(reference, reference_xy, new, 6), rtol=1e-5, atol=1e-5)


def test_points_placed_among_a_cluster_land_within_its_map_region() -> None:
    rng = np.random.default_rng(6)
    centres = np.array([[0.0] * 8, [6.0] * 8])
    reference = np.concatenate([centre + rng.normal(size=(60, 8)) for centre in centres]).astype(np.float32)
    reference_xy = np.concatenate([rng.normal((-5, 0), 0.5, size=(60, 2)), rng.normal((5, 0), 0.5, size=(60, 2))])
    new = (centres[1] + rng.normal(size=(20, 8))).astype(np.float32)
    placed = place_points(reference, reference_xy.astype(np.float32), new)
    assert (placed[:, 0] > 3.0).all()


@pytest.mark.parametrize("n_features", [3, 512])
def test_a_point_identical_to_a_reference_point_lands_exactly_on_it(n_features: int) -> None:
    reference, reference_xy = reference_set(n_features)
    np.testing.assert_array_equal(place_points(reference, reference_xy, reference[:20]), reference_xy[:20])


@pytest.mark.parametrize("n_features", [3, 512])
def test_each_point_is_placed_independently_of_the_others(n_features: int) -> None:
    reference, reference_xy = reference_set(n_features)
    new = np.random.default_rng(4).normal(size=(40, n_features)).astype(np.float32)
    whole = place_points(reference, reference_xy, new)
    one_at_a_time = np.concatenate([place_points(reference, reference_xy, new[i:i + 1]) for i in range(len(new))])
    order = np.random.default_rng(5).permutation(len(new))
    shuffled = np.empty_like(whole)
    shuffled[order] = place_points(reference, reference_xy, new[order])
    # equal bit for bit with 3 features (a tree search); in 512 dimensions the BLAS-based brute search may differ in
    # the last bits between one row and many
    np.testing.assert_allclose(one_at_a_time, whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(shuffled, whole, rtol=1e-6, atol=1e-6)
    if n_features == 3:
        np.testing.assert_array_equal(one_at_a_time, whole)
        np.testing.assert_array_equal(shuffled, whole)


def test_mismatched_reference_lengths_are_refused() -> None:
    reference, reference_xy = reference_set(4, n_points=12)
    with pytest.raises(ValueError, match=r"^12 reference activations but 11 positions$"):
        place_points(reference, reference_xy[:11], reference[:2])
