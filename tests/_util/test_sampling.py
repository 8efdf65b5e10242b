"""Tests for layerlapse._util.sampling: one stratified sample, with each caller's rows as they were."""

from __future__ import annotations

import numpy as np
import pytest

from layerlapse._util.sampling import stratified_rows

LABELS = {
    "balanced": np.arange(600) % 10,
    "imbalanced": np.repeat(np.arange(5), [400, 100, 50, 30, 20]),
    "shuffled": np.random.default_rng(3).integers(0, 7, 999),
}


def page_rows(labels: np.ndarray, keep: int, seed: int) -> np.ndarray:
    """report/page.py's stratified_rows as it was: the oracle for the page's subsample."""
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * keep / len(labels)
    taken = np.floor(quotas).astype(np.int64)
    leftover = keep - int(taken.sum())
    taken[np.argsort(-(quotas - taken), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(labels == label), size=int(count), replace=False)
            for label, count in zip(classes, taken)]
    return np.sort(np.concatenate(rows))


@pytest.mark.parametrize("name", LABELS)
@pytest.mark.parametrize(("size", "seed"), [(150, 0), (151, 7), (37, 1)])
def test_the_page_s_subsample_is_what_it_was(name: str, size: int, seed: int) -> None:
    np.testing.assert_array_equal(stratified_rows(LABELS[name], size, seed), page_rows(LABELS[name], size, seed))


@pytest.mark.parametrize("name", LABELS)
@pytest.mark.parametrize(("size", "seed"), [(150, 0), (151, 7), (None, 0), (10_000, 0)])
def test_a_probe_is_what_scikit_learn_chose(name: str, size: int | None, seed: int) -> None:
    from sklearn.model_selection import train_test_split

    labels = LABELS[name]
    rows = stratified_rows(labels, size, seed, rule="scikit-learn")
    if size is None or size >= len(labels):
        np.testing.assert_array_equal(rows, np.arange(len(labels)))
        return
    chosen, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed)
    np.testing.assert_array_equal(rows, np.sort(chosen))


@pytest.mark.parametrize("rule", ["scikit-learn", "largest-remainder"])
def test_every_class_keeps_its_share_and_the_seed_decides(rule: str) -> None:
    labels = LABELS["imbalanced"]
    rows = stratified_rows(labels, 120, 5, rule=rule)
    assert len(rows) == 120 and len(set(rows.tolist())) == 120 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(np.bincount(labels[rows]), [80, 20, 10, 6, 4])
    np.testing.assert_array_equal(rows, stratified_rows(labels, 120, 5, rule=rule))
    assert not np.array_equal(rows, stratified_rows(labels, 120, 6, rule=rule))


def test_an_unknown_rule_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"^rule must be 'scikit-learn' or 'largest-remainder', got 'random'$"):
        stratified_rows(LABELS["balanced"], 10, 0, rule="random")  # type: ignore[arg-type]


def test_the_probe_and_the_report_draw_their_rows_here() -> None:
    """The recorder's probe (scikit-learn's rule, as every probe so far) and the report's subsample (numpy's) are
    both this function's."""
    from layerlapse.report import budget

    assert budget.stratified_rows is stratified_rows
    pytest.importorskip("torch")
    from layerlapse.capture import inputs

    labels = LABELS["shuffled"]
    np.testing.assert_array_equal(stratified_rows(labels, 300, 2, rule="scikit-learn"),
                                  inputs.stratified_probe(labels, 300, 2))
