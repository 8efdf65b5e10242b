"""The run's charts: training curves, the test set's confusion matrix and dataset cartography's data map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..store.history import metric_series
from .canvas import PathLike, new_figure, save_png, wrapped
from .style import FRAME_SIZE_PX

if TYPE_CHECKING:
    from ..measures.dynamics import RegionCutOffs
    from matplotlib.axes import Axes


def draw_curves(history: Sequence[Mapping[str, float | None]], path: PathLike, *,
                x: Sequence[float] | None = None, x_label: str = "epoch") -> Path:
    """Draw accuracy and loss against epoch (1..E, or `x`), train and validation, in two panels side by side."""
    from matplotlib.ticker import MaxNLocator

    if not history:
        raise ValueError("history is empty; train at least one epoch before drawing curves")
    epochs = np.arange(1, len(history) + 1) if x is None else np.asarray(x)
    figure = new_figure((1280, 512))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
    for axes, (metric, label) in zip(figure.subplots(1, 2, sharex=True), [("acc", "accuracy"), ("loss", "loss")]):
        for key, legend in [(metric, "train"), (f"val_{metric}", "validation")]:
            series = metric_series(history, epochs, key)
            if series is not None:
                axes.plot(*series, marker="o", markersize=4, label=legend)
        axes.set_title(label, fontsize=11)
        axes.set_xlabel(x_label)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, f"no {label} recorded", transform=axes.transAxes, ha="center", color="0.5")
    return save_png(figure, path)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Count (true, predicted) pairs into an (n_classes, n_classes) int64 matrix; rows are the true class."""
    true = np.asarray(true).ravel()
    predicted = np.asarray(predicted).ravel()
    if true.shape != predicted.shape:
        raise ValueError(f"true and predicted must have the same length, got {true.size} and {predicted.size}")
    for name, values in [("true", true), ("predicted", predicted)]:
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} labels must lie in [0, {n_classes}), got [{values.min()}, {values.max()}]")
    pairs = true.astype(np.int64) * n_classes + predicted.astype(np.int64)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(np.int64)


_CONFUSION_NAME_CHARS = 24  # past this a class name is cut with '…': the heatmap keeps 450 of its 560 pixels


def _shortened(name: str, at_most: int) -> str:
    """`name` as a figure labels it: cut with '…' past `at_most` characters."""
    return name if len(name) <= at_most else name[:at_most - 1].rstrip() + "…"


def _confusion_layout(class_names: Sequence[str]) -> tuple[int, int, int]:
    """Left and bottom margins and the heatmap's side, in pixels, leaving room for the longest class name (as
    shortened)."""
    label_px = 8 * max(len(str(name)) for name in class_names)  # about 8 px a character at 8 points and 128 dpi
    left = max(96, 40 + label_px)
    bottom = max(72, 48 + int(0.7 * label_px)) if label_px > 24 else 72
    side = min(560, FRAME_SIZE_PX[0] - left - 110, FRAME_SIZE_PX[1] - bottom - 50)
    return left, bottom, side


def draw_confusion(matrix: np.ndarray, class_names: Sequence[str], path: PathLike, *, title: str) -> Path:
    """Draw the confusion matrix as a heatmap with the count written in every cell."""
    matrix = np.asarray(matrix)
    n_classes = len(class_names)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"matrix must have shape ({n_classes}, {n_classes}) to match class_names, got {matrix.shape}")
    width, height = FRAME_SIZE_PX
    class_names = [_shortened(str(name), _CONFUSION_NAME_CHARS) for name in class_names]
    left, bottom, side = _confusion_layout(class_names)
    figure = new_figure(FRAME_SIZE_PX)
    # A square heatmap (imshow keeps cells square) with a colour bar of exactly its height beside it.
    axes = figure.add_axes((left / width, bottom / height, side / width, side / height))
    image = axes.imshow(matrix, cmap="Blues", interpolation="nearest")
    colorbar_rect = ((left + side + 20) / width, bottom / height, 20 / width, side / height)
    colorbar = figure.colorbar(image, cax=figure.add_axes(colorbar_rect))
    colorbar.ax.tick_params(labelsize=8)
    # Dark cells need white text to stay readable; the switch sits halfway up the colour scale.
    threshold = (float(matrix.min()) + float(matrix.max())) / 2
    fontsize = 8 if n_classes <= 10 else max(4, 80 // n_classes)
    # Counts in full (":g" would print 1e+06); a normalised matrix of fractions gets two decimals.
    cell_format = "{:d}" if np.issubdtype(matrix.dtype, np.integer) else "{:.2f}"
    widest = max(len(cell_format.format(count)) for count in matrix.flat)
    fontsize = min(fontsize, max(4, fontsize * 5 // widest))  # six digits and more shrink to stay inside the cell
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, cell_format.format(count), ha="center", va="center", fontsize=fontsize,
                  color="white" if count > threshold else "black")
    long_names = max(len(str(name)) for name in class_names) > 3
    # Long names ("T-shirt/top") would run into each other under 56-pixel columns, so they lean.
    axes.set_xticks(range(n_classes), labels=list(class_names), fontsize=8,
                    rotation=40 if long_names else 0, ha="right" if long_names else "center",
                    rotation_mode="anchor")
    axes.set_yticks(range(n_classes), labels=list(class_names), fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=12)
    return save_png(figure, path)


def draw_data_map(confidence: np.ndarray, variability: np.ndarray, correctness: np.ndarray, path: PathLike, *,
                  snapshots: str) -> Path:
    """Dataset cartography's data map: each probe image at (variability, confidence) of its true class's
    probability over the trained snapshots, coloured by the share of snapshots it was right, with the run's regions
    (`layerlapse.measures.dynamics.region_cut_offs`) drawn, counted and defined under it."""
    from ..measures.dynamics import cartography_regions, region_counts, region_cut_offs

    cut_offs = region_cut_offs(variability)
    counts = region_counts(cartography_regions(confidence, variability, cut_offs))
    figure = new_figure(FRAME_SIZE_PX)
    axes = figure.add_axes((0.10, 0.19, 0.68, 0.73))
    points = axes.scatter(variability, confidence, c=correctness, cmap="RdYlGn", vmin=0.0, vmax=1.0, s=3,
                          linewidths=0, rasterized=True)
    colorbar = figure.colorbar(points, cax=figure.add_axes((0.81, 0.19, 0.025, 0.73)))
    colorbar.set_label("correctness (share of snapshots right)", fontsize=8)
    colorbar.ax.tick_params(labelsize=8)
    axes.set_xlabel("variability (std of the true class's probability)", fontsize=9)
    axes.set_ylabel("confidence (mean probability of the true class)", fontsize=9)
    axes.set_xlim(-0.01, max(0.5, float(np.nanmax(variability, initial=0.0)) * 1.05))
    axes.set_ylim(-0.02, 1.02)
    axes.tick_params(labelsize=8)
    _draw_region_borders(axes, cut_offs, counts)
    axes.set_title(f"Data map: {len(confidence):,} probe images over {snapshots}", fontsize=10)
    figure.text(0.5, 0.012, wrapped(f"Regions: {cut_offs.definition()}.", 760, 3), ha="center",
                va="bottom", fontsize=7, color="0.25")
    return save_png(figure, path)


def _draw_region_borders(axes: Axes, cut_offs: RegionCutOffs, counts: Mapping[str, int]) -> None:
    """The regions' borders, the same the report selects by, each region named with its count; where the run's
    thirds moved the cut-offs, the fixed one stays as a faint dotted line."""
    from ..measures.dynamics import AMBIGUOUS_VARIABILITY

    border = {"color": "0.35", "linewidth": 0.9, "linestyle": "--"}
    axes.axvline(cut_offs.ambiguous_from, **border)
    if cut_offs.steady_below < cut_offs.ambiguous_from:
        axes.axvline(cut_offs.steady_below, **border)
    if cut_offs.follows_the_run:
        axes.axvline(AMBIGUOUS_VARIABILITY, color="0.6", linewidth=0.8, linestyle=":")
        axes.text(AMBIGUOUS_VARIABILITY, 0.5, f" fixed {AMBIGUOUS_VARIABILITY:g} ", rotation=90, ha="right",
                  va="center", fontsize=7, color="0.5")
    for level in (cut_offs.easy_confidence, cut_offs.hard_confidence):
        axes.plot([axes.get_xlim()[0], cut_offs.steady_below], [level, level], **border)
    box = {"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1.5}
    total = max(sum(counts.values()), 1)
    for x, y, name, key, where in ((0.02, 0.97, "easy to learn", "easy", "left"),
                                   (0.02, 0.03, "hard to learn", "hard", "left"),
                                   (0.98, 0.5, "ambiguous", "ambiguous", "right"),
                                   (0.98, 0.03, "in no region", "none", "right")):
        axes.text(x, y, f"{name}: {counts[key]:,} ({counts[key] / total:.0%})", transform=axes.transAxes, ha=where,
                  va="center", fontsize=8, color="0.2", bbox=box)
