"""Tests for the faithfulness measures: hand-computed small cases, scikit-learn's trustworthiness as the oracle, and
maps whose answer is known (the data itself, a shuffled copy, a turned and scaled copy)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

from layerlapse.maps.faithfulness import (QUALITY_K, caption, change_quality, frame_quality, neighbor_indices, neighbourhoods,
                                procrustes_disparity, quality_sample, shared_per_row, shared_share,
                                temporal_correlation)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data[:300].astype(np.float64)


@pytest.fixture(scope="module")
def plane() -> np.ndarray:
    """300 points in 2-D: a map of itself is perfect."""
    points, _ = make_blobs(n_samples=300, centers=4, n_features=2, cluster_std=2.0, random_state=0)
    return points


def turned_and_scaled(xy: np.ndarray, degrees: float = 30.0, scale: float = 3.0) -> np.ndarray:
    angle = np.radians(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * xy @ rotation + np.array([5.0, -7.0])


# ---- the fixed subsample ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_points", [0, 1, 50, 100])
def test_quality_sample_takes_every_index_when_there_are_at_most_size(n_points: int) -> None:
    np.testing.assert_array_equal(quality_sample(n_points, seed=3, size=100), np.arange(n_points))


def test_quality_sample_is_sorted_distinct_in_range_and_of_the_given_size() -> None:
    sample = quality_sample(1000, seed=0, size=100)
    assert len(sample) == 100 and len(np.unique(sample)) == 100
    assert np.all(np.diff(sample) > 0) and sample[0] >= 0 and sample[-1] < 1000


def test_quality_sample_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    np.testing.assert_array_equal(quality_sample(1000, seed=7, size=100), quality_sample(1000, seed=7, size=100))
    assert not np.array_equal(quality_sample(1000, seed=7, size=100), quality_sample(1000, seed=8, size=100))


# ---- neighbours ------------------------------------------------------------------------------------------------------
def test_neighbor_indices_are_the_nearest_other_rows_nearest_first() -> None:
    x = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
    expected = [[1, 2], [0, 2], [1, 0], [2, 1], [3, 2]]
    np.testing.assert_array_equal(neighbor_indices(x, k=2), expected)


def test_neighbor_indices_match_brute_force_on_real_data(digits: np.ndarray) -> None:
    distances = np.linalg.norm(digits[:, None] - digits[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    found = neighbor_indices(digits)
    assert found.shape == (300, QUALITY_K)
    # the k smallest distances, nearest first (digits are integers: equal distances may swap their rows)
    np.testing.assert_array_equal(np.take_along_axis(distances, found, axis=1),
                                  np.sort(distances, axis=1)[:, :QUALITY_K])


@pytest.mark.parametrize("copies", [2, 3, 5])
def test_neighbor_indices_leave_a_row_out_of_its_own_neighbours_even_among_duplicates(copies: int) -> None:
    x = np.array([[0.0, 0.0]] * copies + [[5.0, 5.0], [6.0, 6.0], [9.0, 9.0]])
    found = neighbor_indices(x, k=2)
    assert found.shape == (len(x), 2)
    for row, neighbours in enumerate(found):
        assert row not in neighbours and len(set(neighbours)) == 2
    for row in range(copies):  # a duplicate's nearest are its other copies
        assert len(set(found[row]) & set(range(copies))) == min(2, copies - 1)


# ---- shared neighbours -----------------------------------------------------------------------------------------------
def test_shared_per_row_by_hand() -> None:
    a = np.array([[1, 2], [0, 2], [0, 1]])
    b = np.array([[2, 1], [3, 1], [3, 1]])
    np.testing.assert_array_equal(shared_per_row(a, b), [1.0, 0.0, 0.5])
    assert shared_share(a, b) == pytest.approx(0.5)


def test_shared_per_row_with_a_wider_or_narrower_second_set() -> None:
    a = np.array([[1, 2], [2, 3], [0, 1], [2, 0]])
    wider = np.array([[3, 2, 1], [0, 2, 1], [3, 4, 1], [4, 1, 3]])
    np.testing.assert_array_equal(shared_per_row(a, wider), [1.0, 0.5, 0.5, 0.0])
    narrower = np.array([[2], [0], [1], [0]])
    np.testing.assert_array_equal(shared_per_row(a, narrower), [0.5, 0.0, 0.5, 0.5])
    np.testing.assert_array_equal(shared_per_row(narrower, a), [1.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize(("k_a", "k_b"), [(10, 10), (5, 12), (12, 5)])
def test_shared_per_row_matches_set_intersections(k_a: int, k_b: int) -> None:
    rng = np.random.default_rng(0)
    a = np.stack([rng.choice(200, size=k_a, replace=False) for _ in range(200)])
    b = np.stack([rng.choice(200, size=k_b, replace=False) for _ in range(200)])
    expected = [len(set(row_a) & set(row_b)) / k_a for row_a, row_b in zip(a, b)]
    np.testing.assert_allclose(shared_per_row(a, b), expected)
    assert shared_share(a, b) == pytest.approx(np.mean(expected))


# ---- one frame -------------------------------------------------------------------------------------------------------
def stable_trustworthiness(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """scikit-learn's trustworthiness, line for line, with equal distances ranked in row order (a stable sort)."""
    n = len(x)
    dist_x = np.linalg.norm(x[:, None] - x[None], axis=2)
    dist_y = np.linalg.norm(y[:, None] - y[None], axis=2)
    np.fill_diagonal(dist_x, np.inf)
    np.fill_diagonal(dist_y, np.inf)
    ind_x = np.argsort(dist_x, axis=1, kind="stable")
    ind_y = np.argsort(dist_y, axis=1, kind="stable")[:, :k]
    inverted = np.zeros((n, n), dtype=int)
    inverted[np.arange(n)[:, None], ind_x] = np.arange(1, n + 1)
    ranks = inverted[np.arange(n)[:, None], ind_y] - k
    return 1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * ranks[ranks > 0].sum()


def test_frame_quality_agrees_with_scikit_learn(digits: np.ndarray) -> None:
    # digits are integers, so their distances tie; a little noise makes every distance distinct, where the order
    # of equal distances (scikit-learn's argsort leaves it open) cannot matter
    layer = digits + np.random.default_rng(0).normal(scale=1e-3, size=digits.shape)
    xy = PCA(n_components=2, random_state=0).fit_transform(layer)
    quality = frame_quality(layer, xy)
    assert set(quality) == {"trustworthiness", "continuity", "knn_preservation"}
    assert quality["trustworthiness"] == pytest.approx(trustworthiness(layer, xy, n_neighbors=QUALITY_K), abs=1e-12)
    assert quality["continuity"] == pytest.approx(trustworthiness(xy, layer, n_neighbors=QUALITY_K), abs=1e-12)
    expected_kept = np.mean([len(set(a) & set(b)) / QUALITY_K
                             for a, b in zip(neighbor_indices(layer), neighbor_indices(xy))])
    assert quality["knn_preservation"] == pytest.approx(expected_kept)
    assert 0.5 < quality["trustworthiness"] < 1 and 0.5 < quality["continuity"] < 1
    assert 0 < quality["knn_preservation"] < 1


def test_frame_quality_ranks_equal_distances_in_row_order(digits: np.ndarray) -> None:
    xy = np.round(PCA(n_components=2, random_state=0).fit_transform(digits))  # ties on the map too
    quality = frame_quality(digits, xy)
    assert quality["trustworthiness"] == pytest.approx(stable_trustworthiness(digits, xy, QUALITY_K), abs=1e-12)
    assert quality["continuity"] == pytest.approx(stable_trustworthiness(xy, digits, QUALITY_K), abs=1e-12)


@pytest.mark.parametrize("n_points", [23, 300, 700])  # the smallest allowed, and more rows than one block
def test_neighbourhoods_are_the_stable_sort_of_each_row(n_points: int) -> None:
    # small integers: many equal distances, computed exactly by any formula
    layer = np.round(np.random.default_rng(1).normal(scale=3, size=(n_points, 5)))
    xy = np.round(np.random.default_rng(2).normal(scale=3, size=(n_points, 2)))
    found = neighbourhoods(layer, xy)
    for space, knn in ((layer, found.layer_knn), (xy, found.map_knn)):
        distances = np.linalg.norm(space[:, None] - space[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        np.testing.assert_array_equal(knn, np.argsort(distances, axis=1, kind="stable")[:, :QUALITY_K])


def test_frame_quality_uses_given_neighbourhoods(digits: np.ndarray) -> None:
    xy = PCA(n_components=2, random_state=0).fit_transform(digits)
    assert frame_quality(digits, xy, known=neighbourhoods(digits, xy)) == frame_quality(digits, xy)
    shuffled = neighbourhoods(digits, xy[np.random.default_rng(0).permutation(len(xy))])
    assert frame_quality(digits, xy, known=shuffled) != frame_quality(digits, xy)


def test_a_map_that_is_the_data_itself_scores_one_on_every_measure(plane: np.ndarray) -> None:
    assert frame_quality(plane, plane.astype(np.float32)) == {"trustworthiness": 1.0, "continuity": 1.0,
                                                              "knn_preservation": 1.0}


def test_a_shuffled_map_scores_low(plane: np.ndarray) -> None:
    shuffled = plane[np.random.default_rng(0).permutation(len(plane))]
    quality = frame_quality(plane, shuffled)
    assert quality["trustworthiness"] < 0.6 and quality["continuity"] < 0.6
    assert quality["knn_preservation"] < 0.1


def test_frame_quality_needs_more_than_2k_plus_1_points(plane: np.ndarray) -> None:
    assert frame_quality(plane[:2 * QUALITY_K + 1], plane[:2 * QUALITY_K + 1]) == {}
    assert frame_quality(plane[:2 * QUALITY_K + 2], plane[:2 * QUALITY_K + 2])["trustworthiness"] == 1.0
    assert frame_quality(plane[:5], plane[:5], k=2) == {}
    assert frame_quality(plane[:6], plane[:6], k=2)["continuity"] == 1.0


# ---- between two frames ----------------------------------------------------------------------------------------------
def test_identical_frames_have_no_disparity_and_keep_every_neighbour(digits: np.ndarray, plane: np.ndarray) -> None:
    quality = change_quality(digits, digits, plane, plane)
    assert quality == {"procrustes_disparity": pytest.approx(0.0, abs=1e-12), "map_neighbors_kept": 1.0,
                       "layer_neighbors_kept": 1.0, "temporal_correlation": None}  # nothing changed: undefined


def test_procrustes_removes_a_turn_a_shift_and_a_scale(digits: np.ndarray, plane: np.ndarray) -> None:
    quality = change_quality(digits, digits, plane, turned_and_scaled(plane))
    assert quality["procrustes_disparity"] == pytest.approx(0.0, abs=1e-10)
    assert quality["map_neighbors_kept"] == 1.0


def test_a_reshuffled_map_or_layer_shows_in_its_own_measure(digits: np.ndarray, plane: np.ndarray) -> None:
    order = np.random.default_rng(0).permutation(len(plane))
    map_moved = change_quality(digits, digits, plane, plane[order])
    assert map_moved["procrustes_disparity"] > 0.5
    assert map_moved["map_neighbors_kept"] < 0.1 and map_moved["layer_neighbors_kept"] == 1.0
    layer_moved = change_quality(digits, digits[order], plane, plane)
    assert layer_moved["layer_neighbors_kept"] < 0.1 and layer_moved["map_neighbors_kept"] == 1.0
    assert layer_moved["procrustes_disparity"] == pytest.approx(0.0, abs=1e-12)


def test_change_quality_needs_more_than_k_plus_1_points(plane: np.ndarray) -> None:
    few = plane[:QUALITY_K + 1]
    assert change_quality(few, few, few, few) == {}
    assert change_quality(plane[:QUALITY_K + 2], plane[:QUALITY_K + 2], plane[:QUALITY_K + 2],
                          plane[:QUALITY_K + 2])["map_neighbors_kept"] == 1.0


def test_procrustes_disparity_of_frames_where_every_point_is_in_one_place() -> None:
    flat, other_flat = np.zeros((20, 2)), np.full((20, 2), 3.0)
    spread = np.random.default_rng(0).normal(size=(20, 2))
    assert procrustes_disparity(flat, other_flat) == 0.0
    assert procrustes_disparity(flat, spread) == 1.0
    assert procrustes_disparity(spread, flat) == 1.0
    assert procrustes_disparity(spread, turned_and_scaled(spread)) == pytest.approx(0.0, abs=1e-12)


# ---- the temporal measure (DVI/TimeVis) ------------------------------------------------------------------------------
def direct_temporal_correlation(layer_before, layer_after, xy_before, xy_after, k=QUALITY_K) -> float:
    """The measure written out plainly: sets of neighbours by brute force, scipy's orthogonal Procrustes, Pearson's
    correlation of average ranks (which is Spearman's)."""
    from scipy.linalg import orthogonal_procrustes
    from scipy.stats import rankdata

    def knn(x):
        d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(d, np.inf)
        return [set(np.argsort(row, kind="stable")[:k]) for row in d]

    before, after = knn(layer_before), knn(layer_after)
    changed = np.array([1 - len(b & a) / k for b, a in zip(before, after)])
    rotation, _ = orthogonal_procrustes(xy_after - xy_after.mean(0), xy_before - xy_before.mean(0))
    turned = (xy_after - xy_after.mean(0)) @ rotation + xy_before.mean(0)
    moved = np.sqrt(((turned - xy_before) ** 2).sum(axis=1))
    return float(np.corrcoef(rankdata(changed), rankdata(moved))[0, 1])


def test_temporal_correlation_matches_a_direct_computation(digits: np.ndarray, plane: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    layer_after = digits + rng.normal(scale=4.0, size=digits.shape) * (rng.random(len(digits)) < 0.3)[:, None]
    xy_after = turned_and_scaled(plane, scale=1.0) + rng.normal(scale=0.5, size=plane.shape)
    quality = change_quality(digits, layer_after, plane, xy_after)
    expected = direct_temporal_correlation(digits, layer_after, plane, xy_after)
    assert quality["temporal_correlation"] == pytest.approx(expected, abs=1e-12)


def test_a_map_that_moves_the_points_whose_neighbourhood_changed_scores_high(digits: np.ndarray,
                                                                             plane: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    changing = rng.random(len(digits)) < 0.3
    layer_after = digits.copy()
    layer_after[changing] = rng.permutation(digits[changing])  # these points get other neighbours
    faithful, unfaithful = plane.copy(), plane.copy()
    faithful[changing] += rng.normal(scale=3.0, size=(int(changing.sum()), 2))
    unfaithful[~changing] += rng.normal(scale=3.0, size=(int((~changing).sum()), 2))
    good = change_quality(digits, layer_after, plane, faithful)["temporal_correlation"]
    bad = change_quality(digits, layer_after, plane, unfaithful)["temporal_correlation"]
    assert good > 0.6 and bad < -0.3
    # a turn of the whole frame is not movement
    assert change_quality(digits, layer_after, plane, turned_and_scaled(faithful, scale=1.0))[
        "temporal_correlation"] == pytest.approx(good, abs=1e-9)


def test_temporal_correlation_is_undefined_when_no_point_moved_on_the_map() -> None:
    assert temporal_correlation(np.array([0.0, 0.5, 1.0]), np.eye(3)[:, :2], np.eye(3)[:, :2]) is None


# ---- caption ---------------------------------------------------------------------------------------------------------
FRAME = {"trustworthiness": 0.98765, "continuity": 0.91234, "knn_preservation": 0.456}
CHANGE = {"procrustes_disparity": 0.01234, "map_neighbors_kept": 0.876, "layer_neighbors_kept": 0.654}


def test_caption_of_a_first_frame() -> None:
    assert caption(FRAME) == "trust 0.988 · cont. 0.912 · 10-NN kept 0.46"


def test_caption_of_a_later_frame_adds_the_change_since_the_last() -> None:
    assert caption({**FRAME, **CHANGE, "notes": [], "seconds": 1.5}) == (
        "trust 0.988 · cont. 0.912 · 10-NN kept 0.46 · vs last frame: map kept 0.88, layer 0.65, disparity 0.012")


def test_caption_says_how_the_map_moves_with_the_layer_when_measured() -> None:
    assert caption({**CHANGE, "temporal_correlation": 0.5432}) == (
        "vs last frame: map kept 0.88, layer 0.65, disparity 0.012, motion ρ 0.54")
    assert caption({**CHANGE, "temporal_correlation": None}) == (
        "vs last frame: map kept 0.88, layer 0.65, disparity 0.012, motion ρ n/a")


def test_caption_of_a_frame_without_measures_is_empty() -> None:
    assert caption({}) == ""
    assert caption(CHANGE) == "vs last frame: map kept 0.88, layer 0.65, disparity 0.012"


def test_the_short_caption_keeps_only_trust_and_continuity() -> None:
    from layerlapse.maps.faithfulness import short_caption

    assert short_caption({"trustworthiness": 0.98512, "continuity": 0.9831, "knn_preservation": 0.4}) == (
        "trust 0.985 · cont. 0.983")
    assert short_caption({}) == ""
