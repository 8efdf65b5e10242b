"""Layer measures against their definitions: linear CKA's invariances and an independent HSIC computation, k-NN and
linear-probe accuracy against scikit-learn's own classifiers on the same split."""

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.datasets import make_blobs

from layerlapse.measures.representation import linear_cka, measure_sample, probe_accuracies


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA written from Kornblith et al.'s definition: HSIC of the two Gram matrices through a centring matrix."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h) / (n - 1) ** 2
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.fixture(scope="module")
def representation() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 20)) @ np.diag(np.linspace(0.2, 3.0, 20))


def test_cka_of_a_representation_with_itself_a_turn_of_it_or_a_scaled_copy_is_one(representation) -> None:
    x = representation
    turned = x @ ortho_group.rvs(20, random_state=1)
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, turned) == pytest.approx(1.0)
    assert linear_cka(x, 7.5 * x + 3.0) == pytest.approx(1.0)  # isotropic scale, and a shift (centred away)


def test_cka_is_not_fooled_by_an_uneven_scaling_and_is_near_zero_for_unrelated_representations(representation) -> None:
    x = representation
    uneven = x * np.linspace(10.0, 0.01, 20)  # the weak directions made strong and the strong weak
    assert linear_cka(x, uneven) < 0.6  # measured 0.55
    unrelated = np.random.default_rng(5).normal(size=(3000, 10))
    assert linear_cka(np.random.default_rng(6).normal(size=(3000, 10)), unrelated) < 0.02


@pytest.mark.parametrize("features", [5, 500])  # fewer features than images (feature space), and more (Gram matrices)
def test_cka_matches_an_independent_hsic_computation(features: int) -> None:
    rng = np.random.default_rng(features)
    x = rng.normal(size=(120, features))
    y = np.tanh(x @ rng.normal(size=(features, 30))) + 0.3 * rng.normal(size=(120, 30))
    assert linear_cka(x, y) == pytest.approx(hsic_cka(x, y), rel=1e-9)


def test_cka_leaves_out_rows_that_are_not_finite_and_refuses_other_images(representation) -> None:
    x = representation.copy()
    y = representation @ ortho_group.rvs(20, random_state=2)
    x[3, 0] = np.nan
    assert linear_cka(x, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="CKA compares representations of the same images: 300 rows against 299"):
        linear_cka(x, y[:-1])


def test_probe_accuracies_are_scikit_learns_on_the_same_halves() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    x, labels = make_blobs(n_samples=400, centers=4, n_features=8, cluster_std=4.0, random_state=0)
    found = probe_accuracies(x, labels, seed=3)
    order = np.random.default_rng(3).permutation(400)
    fit, score = order[:200], order[200:]
    knn = KNeighborsClassifier(n_neighbors=10).fit(x[fit], labels[fit]).score(x[score], labels[score])
    scaler = StandardScaler().fit(x[fit])
    linear = LogisticRegression(max_iter=300).fit(scaler.transform(x[fit]), labels[fit]).score(
        scaler.transform(x[score]), labels[score])
    assert found == {"knn_accuracy": pytest.approx(knn), "linear_probe_accuracy": pytest.approx(linear)}
    assert 0.5 < found["knn_accuracy"] < 1.0  # overlapping blobs: neither trivial nor hopeless


def test_separable_classes_score_one_and_random_labels_about_chance() -> None:
    x, labels = make_blobs(n_samples=600, centers=3, n_features=5, cluster_std=0.5, random_state=1)
    assert probe_accuracies(x, labels, seed=0) == {"knn_accuracy": 1.0, "linear_probe_accuracy": 1.0}
    shuffled = np.random.default_rng(0).permutation(labels)
    chance = probe_accuracies(x, shuffled, seed=0)
    assert chance["knn_accuracy"] < 0.5 and chance["linear_probe_accuracy"] < 0.5


def test_too_few_rows_or_one_class_give_no_accuracies() -> None:
    assert probe_accuracies(np.zeros((8, 2)), np.arange(8) % 2, seed=0) == {}
    assert probe_accuracies(np.random.default_rng(0).normal(size=(100, 3)), np.zeros(100), seed=0) == {}


def test_the_measure_sample_is_seeded_sorted_and_whole_for_small_probes() -> None:
    np.testing.assert_array_equal(measure_sample(50, seed=0), np.arange(50))
    sample = measure_sample(10_000, seed=4)
    assert len(sample) == 2000 and (np.diff(sample) > 0).all()
    np.testing.assert_array_equal(sample, measure_sample(10_000, seed=4))
