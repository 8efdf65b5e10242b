"""Comparing runs against independent computations: linear CKA from representation.linear_cka, neighbours from
scikit-learn, overlaps and agreements from plain loops, the turn from a known rotation, dynamics from hand-made
predictions."""

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.neighbors import NearestNeighbors

from layerlapse.comparison.measures import (AGREEMENT, LEARNED_BY, MISSING, NEIGHBOUR_ITEMS, agreement, agreement_shares,
                                         apply_turn, cka_from_grams, cka_grams, cka_matrix, consistency_counts,
                                         forgetting_difference, learned_by, learned_later, nearest_neighbours,
                                         neighbour_overlap, neighbour_sample, orthogonal_turn, pairs_by_group,
                                         rank_disagreement, seed_spread, spread, turn_disparity)
from layerlapse.measures.dynamics import NOT_YET, sample_dynamics
from layerlapse.measures.representation import linear_cka


# CKA

def test_cka_from_grams_is_linear_cka_at_any_widths() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 16))
    layers = [base @ rng.normal(size=(16, 64)), np.tanh(base @ rng.normal(size=(16, 512))), rng.normal(size=(200, 8)),
              rng.normal(size=(200, 3, 5)).astype(np.float16)]
    grams = [cka_grams(x) for x in layers]
    found = cka_matrix(grams, grams[:2])
    assert found.shape == (4, 2)
    for i, x in enumerate(layers):
        for j, y in enumerate(layers[:2]):
            assert found[i, j] == pytest.approx(linear_cka(x, y), abs=1e-9)
    assert cka_from_grams(grams[0], grams[1]) == pytest.approx(linear_cka(layers[0], layers[1]), abs=1e-9)


def test_cka_is_one_for_the_same_representation_turned_and_scaled_and_near_zero_for_unrelated_ones() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 20)) * np.linspace(0.3, 3.0, 20)
    turned = 4.0 * x @ ortho_group.rvs(20, random_state=2) + 1.5
    gram = cka_grams(x.astype(np.float32))
    assert cka_from_grams(gram, gram) == pytest.approx(1.0, abs=1e-9)
    assert cka_from_grams(cka_grams(x), cka_grams(turned)) == pytest.approx(1.0, abs=1e-9)
    assert cka_from_grams(cka_grams(x), cka_grams(rng.normal(size=(500, 20)))) < 0.15  # expected about d / n = 0.04


def test_cka_grams_leave_out_rows_not_finite_and_say_nan_for_a_constant_representation() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 6))
    x[[3, 7]] = np.nan
    y[[3, 7], 0] = np.inf
    gram = cka_grams(x)
    assert np.isfinite(gram).all() and not gram[3].any() and not gram[:, 7].any()
    assert cka_from_grams(gram, cka_grams(y)) == pytest.approx(linear_cka(x, y), abs=1e-9)
    assert np.isnan(cka_matrix([cka_grams(np.ones((50, 3)))], [gram])).all()


def test_cka_refuses_representations_of_different_items() -> None:
    with pytest.raises(ValueError, match=r"cka_matrix: Gram matrices of \[\(10, 10\), \(12, 12\)\] rows against"):
        cka_matrix([np.eye(10)], [np.eye(12)])
    with pytest.raises(ValueError, match="cka_from_grams: a Gram matrix of"):
        cka_from_grams(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match=r"cka_grams: a representation is \(items, features\), got shape \(5,\)"):
        cka_grams(np.ones(5))


# Neighbours

def brute_force_neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Every distance in float64, each row sorted by (distance, index), itself left out."""
    distances = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(distances, np.inf)
    return np.array([np.lexsort((np.arange(len(x)), row))[:k] for row in distances])


@pytest.mark.parametrize("n, block", [(300, 2048), (1000, 37), (1000, 2048)])  # 300: too few chunks to skip
def test_nearest_neighbours_are_scikit_learns(n, block) -> None:
    x = np.random.default_rng(n).normal(size=(n, 24)).astype(np.float32) + 5.0
    found = nearest_neighbours(x, k=10, block=block)
    expected = NearestNeighbors(n_neighbors=11).fit(x).kneighbors(x, return_distance=False)
    assert found.dtype == np.int32 and found.shape == (n, 10)
    for i in range(n):
        assert set(found[i]) == set(expected[i][expected[i] != i][:10]) and i not in found[i]
    np.testing.assert_array_equal(found, brute_force_neighbours(x, 10))  # nearest first


def test_nearest_neighbours_take_duplicates_ties_by_index_and_skip_rows_not_finite() -> None:
    rng = np.random.default_rng(4)
    x = np.repeat(rng.normal(size=(200, 5)), 3, axis=0)  # every item has two duplicates at distance 0
    x[10] = np.nan
    x[20, 1] = np.inf
    x[60:80] = 0.0  # twenty equal items: ties across several chunks
    found = nearest_neighbours(x, k=4, block=64)
    assert (found[10] == -1).all() and (found[20] == -1).all()
    assert not np.isin(found, [10, 20]).any()
    finite = np.flatnonzero(np.isfinite(x).all(axis=1))
    expected = brute_force_neighbours(x[finite], 4)
    np.testing.assert_array_equal(found[finite], finite[expected])
    np.testing.assert_array_equal(found[60], [61, 62, 63, 64])
    np.testing.assert_array_equal(found, nearest_neighbours(x, k=4, block=1000))


def test_nearest_neighbours_of_equal_items_are_the_lowest_other_indices() -> None:
    found = nearest_neighbours(np.zeros((400, 3), dtype=np.float16), k=5, block=100)
    np.testing.assert_array_equal(found[0], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(found[3], [0, 1, 2, 4, 5])
    np.testing.assert_array_equal(found[399], [0, 1, 2, 3, 4])


def test_nearest_neighbours_say_minus_one_where_there_are_too_few_finite_items() -> None:
    x = np.full((6, 2), np.nan)
    x[:3] = [[0, 0], [1, 0], [3, 0]]
    np.testing.assert_array_equal(nearest_neighbours(x, k=3)[:3], [[1, 2, -1], [0, 2, -1], [1, 0, -1]])


def test_nearest_neighbours_refuse_a_k_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="nearest_neighbours: k = 5 neighbours among 5 items: pass k from 1 to 4"):
        nearest_neighbours(np.zeros((5, 2)), k=5)
    with pytest.raises(ValueError, match="nearest_neighbours: block = 0 rows"):
        nearest_neighbours(np.zeros((5, 2)), k=2, block=0)


def test_neighbour_overlap_counts_the_shared_neighbours() -> None:
    rng = np.random.default_rng(5)
    left = np.array([rng.choice(30, size=6, replace=False) for _ in range(30)])
    right = np.array([rng.choice(30, size=6, replace=False) for _ in range(30)])
    right[4] = left[4][::-1]
    left[7, 2] = -1
    right[9] = -1
    found = neighbour_overlap(left, right)
    expected = [MISSING if (a < 0).any() or (b < 0).any() else len(set(a) & set(b)) for a, b in zip(left, right)]
    assert found.dtype == np.uint8
    np.testing.assert_array_equal(found, expected)
    assert found[4] == 6 and found[7] == found[9] == MISSING
    with pytest.raises(ValueError, match=r"neighbour_overlap: neighbours of \(30, 6\) against \(30, 5\)"):
        neighbour_overlap(left, right[:, :5])


def test_neighbour_sample_is_every_item_up_to_its_size_then_a_seeded_sorted_sample() -> None:
    np.testing.assert_array_equal(neighbour_sample(500, seed=3), np.arange(500))
    sample = neighbour_sample(60_000, seed=3)
    assert len(sample) == len(np.unique(sample)) == NEIGHBOUR_ITEMS and (np.diff(sample) > 0).all()
    np.testing.assert_array_equal(sample, neighbour_sample(60_000, seed=3))
    assert not np.array_equal(sample, neighbour_sample(60_000, seed=4))


# Predictions

def test_agreement_codes_and_shares() -> None:
    labels = np.array([0, 1, 2, 3, 4, 5])
    left = np.array([0, 1, 9, 3, 9, 7])
    right = np.array([0, 8, 2, 3, 9, 8])
    codes = agreement(left, right, labels)
    np.testing.assert_array_equal(codes, [0, 1, 2, 0, 3, 3])
    assert [AGREEMENT[c] for c in codes[:3]] == ["both right", "left only", "right only"]
    shares = agreement_shares(codes, same_prediction=left == right)
    assert shares == pytest.approx({"both_right": 2 / 6, "left_only": 1 / 6, "right_only": 1 / 6, "both_wrong": 2 / 6,
                                    "same_prediction": 3 / 6})
    assert set(agreement_shares(codes)) == {"both_right", "left_only", "right_only", "both_wrong"}
    frames = agreement(np.stack([left, labels]), np.stack([right, labels]), labels)  # labels broadcast over frames
    np.testing.assert_array_equal(frames, [codes, np.zeros(6)])


def test_agreement_refuses_shapes_that_do_not_match() -> None:
    with pytest.raises(ValueError, match=r"agreement: predictions of \(3,\) and \(4,\) for labels of \(3,\)"):
        agreement(np.zeros(3), np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match=r"agreement_shares: same_prediction of \(2,\) for codes of \(3,\)"):
        agreement_shares(np.zeros(3, dtype=np.uint8), np.ones(2, dtype=bool))


# Maps

def test_orthogonal_turn_recovers_a_known_rotation_reflection_and_shift() -> None:
    rng = np.random.default_rng(6)
    moving = rng.normal(size=(200, 2)) * [3.0, 1.0]
    angle = 0.7
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) @ np.diag([1.0, -1.0])
    fixed = (moving - moving.mean(axis=0)) @ rotation + [4.0, -2.0]
    moving[5] = np.nan
    fixed[9] = [np.nan, 1.0]
    turn = orthogonal_turn(moving, fixed)
    np.testing.assert_allclose(turn[0], rotation, atol=1e-9)
    turned = apply_turn(moving, turn)
    assert np.isnan(turned[5]).all() and not np.isnan(turned[9]).any()
    keep = np.ones(200, dtype=bool)
    keep[[5, 9]] = False
    np.testing.assert_allclose(turned[keep], fixed[keep], atol=1e-9)
    assert turn_disparity(turned, fixed) == pytest.approx(0.0, abs=1e-9)


def test_a_map_against_itself_gets_no_turn_and_a_turn_applies_to_every_frame() -> None:
    xy = np.random.default_rng(7).normal(size=(50, 2))
    turn = orthogonal_turn(xy, xy)
    np.testing.assert_allclose(turn.rotation, np.eye(2), atol=1e-12)
    frames = np.stack([xy, 2 * xy])
    np.testing.assert_allclose(apply_turn(frames, turn), frames, atol=1e-12)


def test_turn_disparity_is_the_rms_distance_over_the_rms_spread() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(100, 2)), rng.normal(size=(100, 2))
    expected = np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))) / np.sqrt(np.mean(np.sum((b - b.mean(0)) ** 2, axis=1)))
    assert turn_disparity(a, b) == pytest.approx(expected)
    assert np.isnan(turn_disparity(a, np.zeros((100, 2))))


def test_maps_of_different_items_are_refused() -> None:
    with pytest.raises(ValueError, match=r"orthogonal_turn: a map of \(5, 2\) against one of \(6, 2\)"):
        orthogonal_turn(np.zeros((5, 2)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="orthogonal_turn: no item is finite in both maps"):
        orthogonal_turn(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"apply_turn: points of \(5, 3\) for a turn of 2 dimensions"):
        apply_turn(np.zeros((5, 3)), orthogonal_turn(np.eye(2), np.eye(2)))
    with pytest.raises(ValueError, match=r"turn_disparity: a map of \(5, 2\) against one of \(5, 3\)"):
        turn_disparity(np.zeros((5, 2)), np.zeros((5, 3)))


# Dynamics

def dynamics_of(right: list[list[int]]):
    """Snapshots × items of right (1) or wrong (0), as two-class probabilities with every label 0."""
    right = np.asarray(right, dtype=bool)
    p = np.where(right, 0.8, 0.2)
    return sample_dynamics(np.stack([p, 1 - p], axis=2), np.zeros(right.shape[1], dtype=int),
                           snapshots=np.arange(1, len(right) + 1))


LEFT = dynamics_of([[1, 0, 0, 1, 0],
                    [0, 1, 0, 1, 0],
                    [1, 1, 0, 0, 0]])
RIGHT = dynamics_of([[1, 1, 1, 0, 0],
                     [1, 0, 1, 1, 0],
                     [1, 1, 1, 0, 0]])


def test_learned_by_learned_later_and_forgetting_difference() -> None:
    codes = learned_by(LEFT, RIGHT)
    np.testing.assert_array_equal(codes, [0, 0, 2, 3, 3])
    assert [LEARNED_BY[c] for c in codes] == ["both", "both", "right only", "neither", "neither"]
    np.testing.assert_array_equal(learned_by(RIGHT, LEFT), [0, 0, 1, 3, 3])
    # first right: left 1, 2, never, 1, never; right 1, 1, 1, 2, never
    np.testing.assert_array_equal(learned_later(LEFT, RIGHT), np.array([0, -1, np.nan, 1, np.nan], dtype=np.float32))
    assert learned_later(LEFT, RIGHT).dtype == np.float32
    # forgetting events: left 1, 0, 0, 1, 0; right 0, 1, 0, 1, 0
    np.testing.assert_array_equal(forgetting_difference(LEFT, RIGHT), [-1, 1, 0, 0, 0])
    assert forgetting_difference(LEFT, RIGHT).dtype == np.int32


def test_dynamics_of_different_items_are_refused() -> None:
    with pytest.raises(ValueError, match="learned_by: dynamics of 5 items against 2"):
        learned_by(LEFT, dynamics_of([[1, 0]]))


def test_rank_disagreement_orders_by_disagreements_then_low_overlap_then_index() -> None:
    disagree = np.array([[1, 0, 1, 1, 0, 1, 1],
                         [1, 0, 0, 1, 0, 1, 1],
                         [0, 0, 0, 1, 0, 0, 1]], dtype=bool)
    overlap = np.array([[3, 9, 2, 5, 1, 4, MISSING],
                        [5, 9, 2, 5, 1, 4, MISSING],
                        [MISSING, 9, 2, 5, 1, 4, MISSING]], dtype=np.uint8)
    # disagreements: 2, 0, 1, 3, 0, 2, 3; mean overlap: 4, 9, 2, 5, 1, 4, never measured
    np.testing.assert_array_equal(rank_disagreement(overlap, disagree, top=10), [3, 6, 0, 5, 2])
    np.testing.assert_array_equal(rank_disagreement(overlap, disagree, top=3), [3, 6, 0])
    with pytest.raises(ValueError, match=r"rank_disagreement: overlap of \(3, 7\) against disagreement of \(2, 7\)"):
        rank_disagreement(overlap, disagree[:2], top=3)


# Seeds

def test_seed_spread_and_consistency_counts() -> None:
    final_right = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [1, 1, 0, 0]], dtype=bool)
    first_learned = np.array([[2, 3, NOT_YET, 5], [4, NOT_YET, NOT_YET, 1], [3, 7, NOT_YET, NOT_YET]])
    found = seed_spread(final_right, first_learned)
    np.testing.assert_allclose(found["learned_share"], [1, 2 / 3, 0, 1 / 3], rtol=1e-6)
    expected = [np.std([2, 4, 3], ddof=1), np.std([3, 7], ddof=1), np.nan, np.std([5, 1], ddof=1)]
    np.testing.assert_allclose(found["first_learned_spread"], expected, rtol=1e-6)
    assert found["first_learned_spread"].dtype == np.float32
    assert np.isnan(seed_spread(final_right[:2], np.where(first_learned[:2] == 4, NOT_YET, first_learned[:2]))
                    ["first_learned_spread"][0])
    assert consistency_counts(found["learned_share"]) == {"every_run": 1, "no_run": 1, "seed_dependent": 2}
    with pytest.raises(ValueError, match=r"seed_spread: final_right of \(1, 4\) and first_learned of \(1, 4\)"):
        seed_spread(final_right[:1], first_learned[:1])


def test_spread_ignores_nan_and_needs_two_values_for_a_standard_deviation() -> None:
    values = [0.9, np.nan, 0.93, 0.88]
    assert spread(values) == pytest.approx({"mean": np.mean([0.9, 0.93, 0.88]), "sd": np.std([0.9, 0.93, 0.88], ddof=1),
                                            "min": 0.88, "max": 0.93, "count": 3})
    one = spread([0.5])
    assert one["mean"] == 0.5 and np.isnan(one["sd"]) and one["count"] == 1
    assert spread([])["count"] == 0 and np.isnan(spread([])["mean"])


def test_pairs_by_group_splits_pairs_within_and_between_recipes() -> None:
    assert pairs_by_group(["sgd", "adam", "sgd", "adam"]) == {"within": [(0, 2), (1, 3)],
                                                               "between": [(0, 1), (0, 3), (1, 2), (2, 3)]}
    assert pairs_by_group(["a", "a", "a"]) == {"within": [(0, 1), (0, 2), (1, 2)], "between": []}
    with pytest.raises(ValueError, match=r"pairs_by_group: 1 run\(s\): pass one recipe name per run"):
        pairs_by_group(["a"])
