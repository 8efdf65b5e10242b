"""Test images placed on a map: which are drawn (a seeded sample past TEST_POINTS_DRAWN_AT_MOST) and how (class-
coloured diamonds, the misclassified ringed in red on a white halo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .points import check_points, finite_rows
from .style import (
    HALO_WIDTH,
    RING_AREA,
    RING_WIDTH,
    TEST_DIAMOND_AREA,
    MISCLASSIFIED_COLOR,
    MISCLASSIFIED_HALO_COLOR,
    TEST_EDGE_COLOR,
    TEST_POINTS_DRAWN_AT_MOST,
    class_colormap,
    class_norm,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class PlacedTestPoints:
    """Test images placed on a map: positions (n, 2), true classes (n,) and, where the run stored them, the classes
    the network predicted (n,), so that the misclassified ones can be marked; `seed` picks the sample drawn when
    there are more than TEST_POINTS_DRAWN_AT_MOST."""

    xy: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        xy, labels = check_points(self.xy, self.labels, "test xy")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "labels", labels)
        if self.predicted is not None:
            predicted = np.asarray(self.predicted)
            if predicted.shape != labels.shape:
                raise ValueError(f"test predicted must have shape {labels.shape}, one predicted class per test "
                                 f"point, got {predicted.shape}; pass the argmax of the test predictions")
            object.__setattr__(self, "predicted", predicted)

    def wrong(self) -> np.ndarray:
        """Which points the network got wrong (all False where the run stored no predictions)."""
        if self.predicted is None:
            return np.zeros(len(self.labels), dtype=bool)
        return self.predicted != self.labels


def drawn_test_rows(test: PlacedTestPoints, at_most: int = TEST_POINTS_DRAWN_AT_MOST, *, every_wrong: bool = True
                    ) -> np.ndarray:
    """The rows of the finite test points a figure draws, sorted: all of them when at most `at_most`, else a seeded
    sample; with `every_wrong` it keeps every misclassified one (a random half of the sample where they are more)
    and fills the rest with right ones, without it the sample depends on the seed and the number of points only."""
    finite = np.flatnonzero(finite_rows(test.xy))
    if len(finite) <= at_most:
        return finite
    rng = np.random.default_rng(test.seed)
    if not every_wrong:
        return np.sort(rng.choice(finite, size=at_most, replace=False))
    wrong = finite[test.wrong()[finite]]
    right = finite[~test.wrong()[finite]]
    if len(wrong) > at_most // 2:
        wrong = rng.choice(wrong, size=max(at_most // 2, at_most - len(right)), replace=False)
    right = rng.choice(right, size=min(len(right), at_most - len(wrong)), replace=False)
    return np.sort(np.concatenate([wrong, right]))


def draw_test_points(axes: Axes, test: PlacedTestPoints, n_classes: int, *, every_wrong: bool = True) -> None:
    """The test points over a map: each in its class colour as a diamond with a dark edge, each misclassified one
    ringed in red on a white halo, a sample where there are many (`drawn_test_rows`); the legend says how many are
    drawn of how many, and how many are misclassified."""
    from matplotlib.lines import Line2D

    if len(test.labels) and (test.labels.min() < 0 or test.labels.max() >= n_classes):
        raise ValueError(f"test labels must be class indices 0..{n_classes - 1}, found "
                         f"{test.labels.min()}..{test.labels.max()}: pass the test set's own labels")
    drawn = drawn_test_rows(test, every_wrong=every_wrong)
    wrong = test.wrong()
    ringed = drawn[wrong[drawn]]
    # the right ones first, then the misclassified, ringed, over them: no other marker covers a ring
    _draw_diamonds(axes, test, drawn[~wrong[drawn]], n_classes)
    for width, color in ((HALO_WIDTH, MISCLASSIFIED_HALO_COLOR), (RING_WIDTH, MISCLASSIFIED_COLOR)):
        axes.scatter(test.xy[ringed, 0], test.xy[ringed, 1], marker="o", s=RING_AREA, facecolors="none",
                     edgecolors=color, linewidths=width)
    _draw_diamonds(axes, test, ringed, n_classes)
    finite = int(finite_rows(test.xy).sum())
    handles = [Line2D([], [], marker="D", linestyle="", markersize=5, markerfacecolor="0.8",
                      markeredgecolor=TEST_EDGE_COLOR, label=_test_legend(len(drawn), finite))]
    if test.predicted is not None:
        handles.append(Line2D([], [], marker="o", linestyle="", markersize=9, markerfacecolor="none",
                              markeredgecolor=MISCLASSIFIED_COLOR, markeredgewidth=RING_WIDTH,
                              label=_misclassified_legend(len(ringed), int(wrong[finite_rows(test.xy)].sum()))))
    axes.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.85)


def _draw_diamonds(axes: Axes, test: PlacedTestPoints, rows: np.ndarray, n_classes: int) -> None:
    axes.scatter(test.xy[rows, 0], test.xy[rows, 1], marker="D", s=TEST_DIAMOND_AREA, c=test.labels[rows],
                 cmap=class_colormap(n_classes), norm=class_norm(n_classes), edgecolors=TEST_EDGE_COLOR,
                 linewidths=0.7)


def _test_legend(drawn: int, total: int) -> str:
    if drawn == total:
        return f"test images: all {total:,}"
    return f"test images: {drawn:,} of {total:,} (seeded sample)"


def _misclassified_legend(drawn: int, total: int) -> str:
    if drawn == total:
        return f"misclassified: {total:,}"
    return f"misclassified: {drawn:,} of {total:,} drawn"
