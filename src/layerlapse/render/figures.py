"""Pictures of a run: arrays in, files out.

Every function draws with matplotlib's object API on the Agg canvas (never pyplot, so no figure registry and no
leaked figures), writes its file atomically and returns the written path. matplotlib takes over a second to import,
so it is imported inside the functions: importing this module, or `layerlapse --help`, stays fast.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..store.atomic import atomic_output
from ..errors import ConfigError
from ..store.run import metric_series

if TYPE_CHECKING:
    from ..measures.dynamics import RegionCutOffs
    from matplotlib.axes import Axes
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]

# A power of two: size_px / DPI is then an exact binary fraction, so the canvas comes out at exactly size_px
# (Agg truncates width * dpi to an int, and 704 / 100 * 100 may land a hair under 704).
_DPI = 128
_FRAME_SIZE_PX = (800, 704)
# Fixed rectangles (figure fractions) rather than tight or constrained layout: every frame then puts the map at the
# same place, so the GIF does not wobble.
_MAP_RECT = (0.03, 0.075, 0.76, 0.835)  # room under the map for a caption of three lines
_COLORBAR_RECT = (0.81, 0.14, 0.025, 0.70)
# How test points are told apart from the probe's, here and on the page (report.py passes these to report.js): the
# class colour in a diamond with a dark edge, and a red ring on a white halo around each misclassified one, which
# stands out on any class colour (tab10's own red included, through the halo).
TEST_EDGE_COLOR = "#1a1a1a"
MISCLASSIFIED_COLOR = "#ff0000"
MISCLASSIFIED_HALO_COLOR = "#ffffff"
# Past this many test points a figure draws a seeded sample, every misclassified one first (up to half of it), and
# says so in its legend: 10,000 markers would bury the map they are placed on.
TEST_POINTS_DRAWN_AT_MOST = 300
_TEST_DIAMOND_AREA = 10.0  # points²: about 8 pixels tip to tip: above the map's dots, and small enough to see past
_RING_AREA = 62.0  # points²: a ring whose halo just clears the diamond's tips
_RING_WIDTH = 1.8  # points: 3.2 pixels at 128 dpi
_HALO_WIDTH = 2.8  # points: half a point of white each side of the ring


def _new_figure(size_px: tuple[int, int]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size_px
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)  # attaches itself to the figure; Agg needs no display
    return figure


def _save_png(figure: Figure, path: PathLike) -> Path:
    with atomic_output(path) as temporary:
        # The temporary name has no .png suffix, so the format is named; no bbox_inches="tight", which would change
        # the pixel size from one picture to the next.
        figure.savefig(temporary, format="png", dpi=_DPI)
    return Path(path)


def _check_frame_size(size_px: tuple[int, int]) -> None:
    if len(size_px) != 2 or any(int(side) != side or side <= 0 or side % 16 for side in size_px):
        raise ConfigError(
            f"size_px must be two positive multiples of 16 (video encoders work in 16-pixel blocks), got {size_px!r}; "
            f"try {_FRAME_SIZE_PX}"
        )


def _check_points(xy: np.ndarray, labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {xy.shape}; pass the 2-D map, one row per point")
    if labels.shape != (xy.shape[0],):
        raise ValueError(f"labels must have shape ({xy.shape[0]},) to match {name}, got {labels.shape}; "
                         "pass one label per mapped point")
    return xy, labels


def _finite_rows(xy: np.ndarray) -> np.ndarray:
    # A map can hold NaN or inf rows (a diverged network, a point the projection could not place); skip them.
    return np.isfinite(xy).all(axis=1)


def _class_colormap(n_classes: int) -> ListedColormap:
    import matplotlib
    from matplotlib.colors import ListedColormap

    if n_classes <= 10:
        colors = matplotlib.colormaps["tab10"].colors[:n_classes]
    elif n_classes <= 20:
        colors = matplotlib.colormaps["tab20"].colors[:n_classes]
    else:
        colors = matplotlib.colormaps["turbo"].resampled(n_classes)(np.arange(n_classes))
    return ListedColormap(colors, name=f"classes{n_classes}")


def _marker_style(n_points: int) -> tuple[float, float]:
    """Marker area (points²) and alpha: many points get small, translucent markers so dense clusters stay legible."""
    area = float(np.clip(8000.0 / max(n_points, 1), 0.8, 36.0))
    alpha = float(np.clip(math.sqrt(2000.0 / max(n_points, 1)), 0.35, 1.0))
    return area, alpha


def _class_norm(n_classes: int) -> Normalize:
    from matplotlib.colors import Normalize

    # Centre each class on an integer so that class k fills exactly the k-th colour band.
    return Normalize(vmin=-0.5, vmax=n_classes - 0.5)


def _scatter_by_class(
    axes: Axes,
    xy: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    point_size: float | None,
    limits: tuple[tuple[float, float], tuple[float, float]] | None,
    *,
    marker_scale: float = 1.0,
) -> None:
    """The map's finite points coloured by class on `axes`, in a fixed view when `limits` is given."""
    keep = _finite_rows(xy)
    area, alpha = _marker_style(int(keep.sum()))
    axes.scatter(
        xy[keep, 0], xy[keep, 1], c=labels[keep], cmap=_class_colormap(n_classes), norm=_class_norm(n_classes),
        s=area * marker_scale if point_size is None else point_size, alpha=alpha, linewidths=0,
    )
    if limits is not None:
        # the same view on every frame, widened to the axes' shape so that equal aspect needs no further change
        (x0, x1), (y0, y1) = limits
        box = axes.get_position()
        box_ratio = (box.height * axes.figure.bbox.height) / (box.width * axes.figure.bbox.width)
        width, height = max(x1 - x0, (y1 - y0) / box_ratio), max(y1 - y0, (x1 - x0) * box_ratio)
        axes.set_xlim((x0 + x1 - width) / 2, (x0 + x1 + width) / 2)
        axes.set_ylim((y0 + y1 - height) / 2, (y0 + y1 + height) / 2)
        axes.set_aspect("equal", adjustable="box")
    else:
        # datalim keeps the axes box fixed and stretches the limits instead, so the map never moves between frames.
        axes.set_aspect("equal", adjustable="datalim")
    axes.set_xticks([])
    axes.set_yticks([])  # map coordinates have no units


def _class_scatter(
    figure: Figure,
    xy: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    point_size: float | None,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> Axes:
    """Draw the map coloured by class on fixed axes, with a colour bar labelled by class name."""
    from matplotlib.cm import ScalarMappable

    n_classes = len(class_names)
    axes = figure.add_axes(_MAP_RECT)
    _scatter_by_class(axes, xy, labels, n_classes, point_size, limits)
    # A separate, opaque mappable: the colour bar should show the class colours at full strength.
    colorbar = figure.colorbar(ScalarMappable(norm=_class_norm(n_classes), cmap=_class_colormap(n_classes)),
                               cax=figure.add_axes(_COLORBAR_RECT))
    colorbar.set_ticks(range(n_classes), labels=list(class_names))
    colorbar.ax.tick_params(labelsize=8, length=0)
    return axes


def draw_frame(
    xy: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    title: str,
    caption: str | None = None,
    point_size: float | None = None,
    size_px: tuple[int, int] = _FRAME_SIZE_PX,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
    test: PlacedTestPoints | None = None,
) -> Path:
    """Draw one epoch's 2-D map as a scatter coloured by class, exactly `size_px` pixels, so frames stack into a GIF.
    `limits` ((x0, x1), (y0, y1)) fixes the view, the same for every frame of a time-lapse (`common_limits`); `test`,
    the test images placed on this epoch's map, are drawn over it as `draw_test_points` draws them."""
    _check_frame_size(size_px)
    xy, labels = _check_points(xy, labels, "xy")
    figure = _new_figure(size_px)
    axes = _class_scatter(figure, xy, labels, class_names, point_size, limits)
    if test is not None:  # the same sample on every frame of a run, so that the lapse does not flicker
        draw_test_points(axes, test, len(class_names), every_wrong=False)
    axes.set_title(title, fontsize=12)
    if caption:
        figure.text(0.5, 0.004, _wrapped(caption, size_px[0] - 16, 3), ha="center", va="bottom", fontsize=7,
                    color="0.35")
    return _save_png(figure, path)


def common_limits(maps: Sequence[np.ndarray], margin: float = 0.03
                  ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """One view that holds every finite point of every map, with a small margin (None when there is none)."""
    points = [np.asarray(xy, dtype=np.float64)[_finite_rows(np.asarray(xy))] for xy in maps]
    points = [xy for xy in points if len(xy)]
    if not points:
        return None
    low = np.min([xy.min(axis=0) for xy in points], axis=0)
    high = np.max([xy.max(axis=0) for xy in points], axis=0)
    pad = np.maximum((high - low) * margin, 1e-6)
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))


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
        xy, labels = _check_points(self.xy, self.labels, "test xy")
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
    finite = np.flatnonzero(_finite_rows(test.xy))
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
    for width, color in ((_HALO_WIDTH, MISCLASSIFIED_HALO_COLOR), (_RING_WIDTH, MISCLASSIFIED_COLOR)):
        axes.scatter(test.xy[ringed, 0], test.xy[ringed, 1], marker="o", s=_RING_AREA, facecolors="none",
                     edgecolors=color, linewidths=width)
    _draw_diamonds(axes, test, ringed, n_classes)
    finite = int(_finite_rows(test.xy).sum())
    handles = [Line2D([], [], marker="D", linestyle="", markersize=5, markerfacecolor="0.8",
                      markeredgecolor=TEST_EDGE_COLOR, label=_test_legend(len(drawn), finite))]
    if test.predicted is not None:
        handles.append(Line2D([], [], marker="o", linestyle="", markersize=9, markerfacecolor="none",
                              markeredgecolor=MISCLASSIFIED_COLOR, markeredgewidth=_RING_WIDTH,
                              label=_misclassified_legend(len(ringed), int(wrong[_finite_rows(test.xy)].sum()))))
    axes.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.85)


def _draw_diamonds(axes: Axes, test: PlacedTestPoints, rows: np.ndarray, n_classes: int) -> None:
    axes.scatter(test.xy[rows, 0], test.xy[rows, 1], marker="D", s=_TEST_DIAMOND_AREA, c=test.labels[rows],
                 cmap=_class_colormap(n_classes), norm=_class_norm(n_classes), edgecolors=TEST_EDGE_COLOR,
                 linewidths=0.7)


def _test_legend(drawn: int, total: int) -> str:
    if drawn == total:
        return f"test images: all {total:,}"
    return f"test images: {drawn:,} of {total:,} (seeded sample)"


def _misclassified_legend(drawn: int, total: int) -> str:
    if drawn == total:
        return f"misclassified: {total:,}"
    return f"misclassified: {drawn:,} of {total:,} drawn"


def draw_train_test(
    train_xy: np.ndarray,
    train_labels: np.ndarray,
    test: PlacedTestPoints,
    class_names: Sequence[str],
    path: PathLike,
    *,
    title: str,
) -> Path:
    """Draw the final training map coloured by class, with the test points placed on it as `draw_test_points`
    draws them: class colours, a diamond with a dark edge, the misclassified ringed."""
    train_xy, train_labels = _check_points(train_xy, train_labels, "train_xy")
    figure = _new_figure(_FRAME_SIZE_PX)
    axes = _class_scatter(figure, train_xy, train_labels, class_names, None)
    draw_test_points(axes, test, len(class_names))
    axes.set_title(title, fontsize=12)
    return _save_png(figure, path)


def _as_gray_images(images: np.ndarray) -> tuple[np.ndarray, float]:
    """Return images as (N, H, W) and the value that means white (255 for uint8, 1 for floats in [0, 1])."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]  # a trailing channel axis of one
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width), got {images.shape}")
    return images, 255.0 if images.dtype == np.uint8 else 1.0


def draw_samples(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    grid: int = 10,
    seed: int = 0,
) -> Path:
    """Draw a grid of example images, each titled with its class; a seeded choice when there are more than fit."""
    images, white = _as_gray_images(images)
    labels = np.asarray(labels)
    if len(images) == 0 or labels.shape != (len(images),):
        raise ValueError(f"need at least one image and one label per image, got {images.shape} and {labels.shape}")
    cells = grid * grid
    if len(images) > cells:
        chosen = np.sort(np.random.default_rng(seed).choice(len(images), size=cells, replace=False))
    else:
        chosen = np.arange(len(images))
    rows = math.ceil(len(chosen) / grid)  # fewer images: fewer rows rather than a page of blanks
    cell_px = (96, 112)  # an 80-pixel image with its title above it
    figure = _new_figure((grid * cell_px[0], rows * cell_px[1]))
    # One axes measured in cells, rather than a subplot per image: a hundred subplots take seconds to draw.
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_xlim(0, grid)
    axes.set_ylim(rows, 0)  # row 0 at the top
    half_width, height = 40 / cell_px[0], 80 / cell_px[1]
    for cell, index in enumerate(chosen):
        row, column = divmod(cell, grid)
        centre, bottom = column + 0.5, row + 1 - 4 / cell_px[1]
        axes.imshow(images[index], cmap="gray", vmin=0.0, vmax=white, interpolation="nearest", aspect="auto",
                    extent=(centre - half_width, centre + half_width, bottom, bottom - height))
        axes.text(centre, bottom - height - 0.02, str(class_names[int(labels[index])]), ha="center", va="bottom",
                  fontsize=7)
    return _save_png(figure, path)


def draw_curves(history: Sequence[Mapping[str, float | None]], path: PathLike, *,
                x: Sequence[float] | None = None, x_label: str = "epoch") -> Path:
    """Draw accuracy and loss against epoch (1..E, or `x`), train and validation, in two panels side by side."""
    from matplotlib.ticker import MaxNLocator

    if not history:
        raise ValueError("history is empty; train at least one epoch before drawing curves")
    epochs = np.arange(1, len(history) + 1) if x is None else np.asarray(x)
    figure = _new_figure((1280, 512))
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
    return _save_png(figure, path)


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
    side = min(560, _FRAME_SIZE_PX[0] - left - 110, _FRAME_SIZE_PX[1] - bottom - 50)
    return left, bottom, side


def draw_confusion(matrix: np.ndarray, class_names: Sequence[str], path: PathLike, *, title: str) -> Path:
    """Draw the confusion matrix as a heatmap with the count written in every cell."""
    matrix = np.asarray(matrix)
    n_classes = len(class_names)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"matrix must have shape ({n_classes}, {n_classes}) to match class_names, got {matrix.shape}")
    width, height = _FRAME_SIZE_PX
    class_names = [_shortened(str(name), _CONFUSION_NAME_CHARS) for name in class_names]
    left, bottom, side = _confusion_layout(class_names)
    figure = _new_figure(_FRAME_SIZE_PX)
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
    return _save_png(figure, path)


def _shared_palette(frames: Sequence[Any]) -> Any:
    """One adaptive palette for the whole GIF, from the first, middle and last frames, so colours do not flicker."""
    from PIL import Image

    samples = [frames[0], frames[len(frames) // 2], frames[-1]]
    width, height = samples[0].size
    montage = Image.new("RGB", (width, height * len(samples)))
    for position, frame in enumerate(samples):
        montage.paste(frame, (0, height * position))
    # Maximum coverage keeps the dominant flat colours (white, the class colours) exact, where median cut averages
    # white with the near-white antialiasing around it and greys the whole background.
    return montage.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE)


def _common_frame_size(frame_paths: Sequence[PathLike], kind: str) -> tuple[int, int]:
    """The (width, height) every frame shares, read from the headers only; a one-line error for none or a misfit."""
    from PIL import Image

    if not frame_paths:
        raise ValueError(f"frame_paths is empty; draw at least one frame before writing {kind}")
    sizes = []
    for frame_path in frame_paths:
        with Image.open(frame_path) as image:
            sizes.append(image.size)
        if sizes[-1] != sizes[0]:
            raise ValueError(
                f"frame {os.fspath(frame_path)} is {sizes[-1][0]}x{sizes[-1][1]} pixels but "
                f"{os.fspath(frame_paths[0])} is {sizes[0][0]}x{sizes[0][1]}; "
                "all frames must be the same size: draw them with the same size_px"
            )
    return sizes[0]


def write_gif(frame_paths: Sequence[PathLike], path: PathLike, *, ms_per_frame: int = 500) -> Path:
    """Join same-sized frames into a GIF that loops forever, `ms_per_frame` milliseconds each."""
    from PIL import Image

    _common_frame_size(frame_paths, "a GIF")
    frames = []
    for frame_path in frame_paths:
        with Image.open(frame_path) as image:
            frames.append(image.convert("RGB"))
    palette = _shared_palette(frames)
    # No dithering: flat class colours map onto the palette exactly, and dither noise would bloat the file.
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    with atomic_output(path) as temporary:
        indexed[0].save(temporary, format="GIF", save_all=True, append_images=indexed[1:],
                        duration=ms_per_frame, loop=0)
    return Path(path)


# H.264 codes 16 x 16-pixel blocks; a frame of another size is padded up to the next multiple, never scaled.
_VIDEO_BLOCK_PX = 16
# x264's constant quality. 18 halves the error on the thin caption text against imageio's default (25) for a third
# more bytes: 16 frames of 3,000 points come to about 100 kB.
_VIDEO_CRF = 18


def _whole_blocks(pixels: int) -> int:
    return pixels + -pixels % _VIDEO_BLOCK_PX


def _padded_to_blocks(frame: np.ndarray) -> np.ndarray:
    """The frame grown at the right and bottom to whole video blocks by repeating its edge pixels: for layerlapse's
    frames that is the figure's background colour, and any other picture gains no bar of a colour it does not have."""
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, _whole_blocks(height) - height), (0, _whole_blocks(width) - width), (0, 0)), mode="edge")


def write_mp4(frame_paths: Sequence[PathLike], path: PathLike, *, ms_per_frame: int = 500) -> Path:
    """Join same-sized frames into an H.264 MP4 that every player opens (yuv420p), one video frame per picture at
    1000 / `ms_per_frame` frames a second; sides that are not multiples of 16 pixels are padded, never scaled."""
    from fractions import Fraction

    import imageio_ffmpeg
    from PIL import Image

    if isinstance(ms_per_frame, bool) or not isinstance(ms_per_frame, int) or ms_per_frame <= 0:
        raise ValueError(f"ms_per_frame must be a positive whole number of milliseconds, got {ms_per_frame!r}")
    width, height = _common_frame_size(frame_paths, "an MP4")
    video_size = (_whole_blocks(width), _whole_blocks(height))
    with atomic_output(path) as temporary:
        # imageio-ffmpeg's own writer rather than imageio's: imageio picks its plugin by the file's suffix and refuses
        # the temporary name, where ffmpeg is simply told the container (-f mp4). The frames already fill whole
        # blocks, so macro_block_size never asks ffmpeg to scale them (and never logs its resize warning).
        writer = imageio_ffmpeg.write_frames(
            os.fspath(temporary), video_size, fps=Fraction(1000, ms_per_frame), codec="libx264",
            pix_fmt_out="yuv420p", quality=None, macro_block_size=_VIDEO_BLOCK_PX, ffmpeg_log_level="error",
            # the index at the front (faststart), so a browser starts playing before the whole file has arrived
            output_params=["-crf", str(_VIDEO_CRF), "-movflags", "+faststart", "-f", "mp4"])
        try:
            writer.send(None)  # starts ffmpeg
            for frame_path in frame_paths:  # one frame in memory at a time, however long the run
                with Image.open(frame_path) as image:
                    writer.send(_padded_to_blocks(np.asarray(image.convert("RGB"))))
        finally:
            writer.close()  # waits for ffmpeg to finish the file, or stops it after an error
    return Path(path)


def _jsonable(value: Any) -> Any:
    """Turn numpy values and paths into plain JSON; NaN and infinity become null, which JSON has instead."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def draw_data_map(confidence: np.ndarray, variability: np.ndarray, correctness: np.ndarray, path: PathLike, *,
                  snapshots: str) -> Path:
    """Dataset cartography's data map: each probe image at (variability, confidence) of its true class's
    probability over the trained snapshots, coloured by the share of snapshots it was right, with the run's regions
    (`layerlapse.measures.dynamics.region_cut_offs`) drawn, counted and defined under it."""
    from ..measures.dynamics import cartography_regions, region_counts, region_cut_offs

    cut_offs = region_cut_offs(variability)
    counts = region_counts(cartography_regions(confidence, variability, cut_offs))
    figure = _new_figure(_FRAME_SIZE_PX)
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
    figure.text(0.5, 0.012, _wrapped(f"Regions: {cut_offs.definition()}.", 760, 3), ha="center",
                va="bottom", fontsize=7, color="0.25")
    return _save_png(figure, path)


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


def write_json(obj: Any, path: PathLike) -> Path:
    """Write `obj` as indented UTF-8 JSON (metrics.json and the like), atomically."""
    text = json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


# --- the layers side by side: layer measures, CKA, the grid of maps and the layers' lapse ----------------------------

# Sequential, not diverging: CKA runs from 0 (unrelated) to 1 (the same up to rotation and scale), with no middle.
_CKA_COLORMAP = "viridis"
_MISSING_CELL_COLOR = "0.85"  # a pair the measures could not compare (None): grey, with nothing written in it
_MOST_CELLS_WITH_TEXT = 12  # a side beyond this gets no numbers: they would not fit in their cells
_MOST_TICKS = 12
_LAYER_PALETTE = "tab10"
_LEGEND_CLASSES_AT_MOST = 20  # more classes get a colour strip with some names instead of a legend of markers


def _layer_colors(layer_order: Sequence[str]) -> dict[str, Any]:
    """The same colour for a layer in every figure: tab10 in layer order, input to output."""
    import matplotlib

    palette = matplotlib.colormaps[_LAYER_PALETTE].colors
    return {layer: palette[position % len(palette)] for position, layer in enumerate(layer_order)}


def _floats(values: Sequence[float | None]) -> np.ndarray:
    """Stored measures as floats, None (not measured) as NaN, which matplotlib leaves as a gap."""
    return np.array([np.nan if value is None else float(value) for value in values], dtype=np.float64)


def _measured_layers(measures: Mapping[str, Any]) -> tuple[list[int], list[str]]:
    """The snapshot numbers and the layers in order, input to output; a one-line error when there is nothing."""
    layers = measures.get("layers") if isinstance(measures, Mapping) else None
    if not layers:
        raise ValueError("measures has no layers; compute the layer measures of a run that recorded at least one "
                         "layer before drawing them")
    snapshots = [int(snapshot) for snapshot in measures.get("snapshots") or []]
    if not snapshots:
        raise ValueError("measures has no snapshots; compute the layer measures over the run's snapshots first")
    order = list(measures.get("layer_order") or [])
    if unknown := [layer for layer in order if layer not in layers]:
        raise ValueError(f"measures['layer_order'] names {unknown[0]!r}, which measures['layers'] lacks; "
                         "write layer_order from the same measures")
    return snapshots, order + [layer for layer in layers if layer not in order]


def _per_snapshot(measures: Mapping[str, Any], layer: str, key: str, n_snapshots: int) -> np.ndarray:
    """One value per snapshot of a layer's measure (all NaN where the measure is absent)."""
    values = measures["layers"][layer].get(key)
    if values is None:
        return np.full(n_snapshots, np.nan)
    if len(values) != n_snapshots:
        raise ValueError(f"measures['layers'][{layer!r}][{key!r}] has {len(values)} values but there are "
                         f"{n_snapshots} snapshots; compute the measures and the snapshots from the same run")
    return _floats(values)


def _square_matrix(rows: Sequence[Sequence[float | None]], side: int, name: str, axis_name: str) -> np.ndarray:
    """A side x side matrix of floats (None as NaN), or a one-line error naming the shape found."""
    widths = sorted({len(row) for row in rows})
    if len(rows) != side or widths != [side]:
        if not rows:
            found = "empty"
        elif len(widths) == 1:
            found = f"{len(rows)} x {widths[0]}"
        else:
            found = f"{len(rows)} rows of lengths {widths}"
        raise ValueError(f"{name} is {found} but there are {side} {axis_name}; it must be {side} x {side}: compute "
                         f"it over the same {axis_name} as the rest of the measures")
    return np.array([_floats(row) for row in rows], dtype=np.float64)


def _tick_positions(count: int) -> list[int]:
    """Every position when few, else every k-th, so that tick labels never run into each other."""
    return list(range(0, count, math.ceil(count / _MOST_TICKS)))


def _cka_heatmap(axes: Axes, matrix: np.ndarray, names: Sequence[str], title: str) -> Any:
    """One CKA matrix as a heatmap on a fixed 0..1 scale, its values written in when there are few cells."""
    import matplotlib

    colormap = matplotlib.colormaps[_CKA_COLORMAP].with_extremes(bad=_MISSING_CELL_COLOR)
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
    side = len(matrix)
    if side <= _MOST_CELLS_WITH_TEXT:
        fontsize = 8 if side <= 8 else 7
        for (row, column), value in np.ndenumerate(matrix):
            if math.isfinite(value):  # viridis is dark at the bottom: light text there, dark text above
                axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                          color="white" if value < 0.55 else "black")
    ticks = _tick_positions(side)
    labels = [str(names[tick]) for tick in ticks]
    long_names = max(len(label) for label in labels) > 3
    axes.set_xticks(ticks, labels=labels, fontsize=8, rotation=40 if long_names else 0,
                    ha="right" if long_names else "center", rotation_mode="anchor")
    axes.set_yticks(ticks, labels=labels, fontsize=8)
    axes.tick_params(length=2)
    axes.set_title(title, fontsize=10)
    return image


def _cka_panels(measures: Mapping[str, Any], snapshots: list[int], order: list[str]
                ) -> list[tuple[np.ndarray, list[str], str, str]]:
    """(matrix, tick names, title, axis label) for each panel: each layer over the snapshots, then the layers."""
    snapshot_names = [str(snapshot) for snapshot in snapshots]
    panels = [(_square_matrix(measures["layers"][layer].get("cka") or [], len(snapshots),
                              f"measures['layers'][{layer!r}]['cka']", "snapshots"),
               snapshot_names, layer, "snapshot") for layer in order]
    between = measures.get("cka_between_layers")
    if len(order) >= 2 and between:
        if len(between) != len(snapshots):
            raise ValueError(f"measures['cka_between_layers'] has {len(between)} matrices but there are "
                             f"{len(snapshots)} snapshots; compute it at every snapshot of the run")
        titles = measures.get("titles") or []
        last = titles[-1] if len(titles) == len(snapshots) else f"snapshot {snapshots[-1]}"
        matrix = _square_matrix(between[-1] or [], len(order), "measures['cka_between_layers'][-1]", "layers")
        panels.append((matrix, order, f"between layers, {last}", "layer"))
    return panels


def _cka_panel_px(panels: Sequence[tuple[np.ndarray, Any, Any, Any]]) -> int:
    """A panel's side in pixels: 400, or more when numbers are written in up to 12 cells a side (34 px a cell)."""
    with_text = [len(matrix) for matrix, *_ in panels if len(matrix) <= _MOST_CELLS_WITH_TEXT]
    return max(400, 120 + 34 * max(with_text, default=0))


def draw_cka(measures: dict, path: PathLike, *, title: str | None = None) -> Path:
    """Linear CKA between every pair of snapshots, one heatmap per layer, and between the layers at the last
    snapshot: which epochs changed a layer's representation, and how alike the layers end up."""
    snapshots, order = _measured_layers(measures)
    panels = _cka_panels(measures, snapshots, order)
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    panel_px = _cka_panel_px(panels)
    figure = _new_figure((columns * panel_px + 120, rows * panel_px + 50))
    figure.set_layout_engine("constrained", w_pad=0.1, h_pad=0.1)
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, (matrix, names, panel_title, axis_label) in zip(grid, panels):
        image = _cka_heatmap(axes, matrix, names, panel_title)
        axes.set_xlabel(axis_label, fontsize=8)
        axes.set_ylabel(axis_label, fontsize=8)
    for axes in grid[len(panels):]:
        axes.set_axis_off()
    colorbar = figure.colorbar(image, ax=list(grid), shrink=0.8, aspect=30)
    colorbar.set_label("linear CKA", fontsize=9)
    colorbar.ax.tick_params(labelsize=8)
    between = " and between layers" if len(panels) > len(order) else ""
    figure.suptitle(title or f"Linear CKA between snapshots{between}", fontsize=11)
    return _save_png(figure, path)


def _plot_accuracies(axes: Axes, measures: Mapping[str, Any], snapshots: list[int], order: list[str],
                     colors: Mapping[str, Any]) -> None:
    """Top panel: how well each layer's neighbours (solid) and a linear probe (dashed) tell the classes apart."""
    from matplotlib.lines import Line2D

    marker = "o" if len(snapshots) <= 40 else None  # a lone value between two gaps still shows
    for layer in order:
        for key, style in (("knn_accuracy", "-"), ("linear_probe_accuracy", "--")):
            # not clipped: an accuracy of 1 sits on the top edge, and its marker should show whole
            axes.plot(snapshots, _per_snapshot(measures, layer, key, len(snapshots)), linestyle=style,
                      color=colors[layer], marker=marker, markersize=3, linewidth=1.4, clip_on=False)
    handles = [Line2D([], [], color=colors[layer], linewidth=2, label=layer) for layer in order]
    handles += [Line2D([], [], color="0.3", linestyle="-", label=f"k-NN accuracy (k = {measures.get('knn_k', '?')})"),
                Line2D([], [], color="0.3", linestyle="--", label="linear probe accuracy")]
    sample = measures.get("sample_size")
    axes.legend(handles=handles, fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                title=f"{sample:,} sampled points" if isinstance(sample, int) else None)
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("accuracy", fontsize=9)
    axes.set_title("How well each layer separates the classes", fontsize=10)


def _largest_changes(layer_measures: Mapping[str, Any], change: np.ndarray, snapshots: list[int]
                     ) -> list[tuple[int, float, str]]:
    """(snapshot, height on the change curve, title) of each of a layer's largest changes that has a value."""
    marks = []
    for entry in layer_measures.get("largest_change") or []:
        if entry.get("snapshot") not in snapshots:
            raise ValueError(f"largest_change names snapshot {entry.get('snapshot')!r}, which measures['snapshots'] "
                             "lacks; compute the measures and the snapshots from the same run")
        position = snapshots.index(entry["snapshot"])
        height = change[position] if math.isfinite(change[position]) else entry.get("cka_change")
        if isinstance(height, (int, float)) and math.isfinite(height):
            marks.append((entry["snapshot"], float(height), str(entry.get("title") or entry["snapshot"])))
    return marks


def _mark_largest_changes(axes: Axes, marks: Sequence[tuple[int, float, str, Any]], n_snapshots: int) -> None:
    """A ring in the layer's colour on each largest change, and the snapshot's title once above its highest ring:
    layers often change most at the same snapshot, and one label each would pile up."""
    for snapshot, height, _, color in marks:
        axes.plot(snapshot, height, marker="o", markersize=8, markerfacecolor="none", markeredgecolor=color,
                  markeredgewidth=1.5)
    labelled = []
    for snapshot in sorted({mark[0] for mark in marks}):
        here = [mark for mark in marks if mark[0] == snapshot]
        _, height, title, color = max(here, key=lambda mark: mark[1])
        # a label beside the one before (neighbouring snapshots) goes one line higher, so the two do not overlap
        lift = 7 + (11 if labelled and labelled[-1] == (snapshot - 1, 7) else 0)
        labelled.append((snapshot, lift))
        axes.annotate(title, (snapshot, height), xytext=(0, lift), textcoords="offset points", fontsize=7,
                      ha="left" if n_snapshots > 20 else "center", rotation=50 if n_snapshots > 20 else 0,
                      color=color if len({mark[3] for mark in here}) == 1 else "0.25",
                      bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.5})


def _plot_changes(axes: Axes, measures: Mapping[str, Any], snapshots: list[int], order: list[str],
                  colors: Mapping[str, Any]) -> None:
    """Bottom panel: how much each layer's representation moved since the snapshot before."""
    from matplotlib.lines import Line2D

    marker = "o" if len(snapshots) <= 40 else None
    highest, measured, any_neighbors, marks = 0.0, False, False, []
    for layer in order:
        change = 1.0 - _per_snapshot(measures, layer, "cka_to_previous", len(snapshots))
        lost = 1.0 - _per_snapshot(measures, layer, "neighbors_kept", len(snapshots))
        axes.plot(snapshots, change, color=colors[layer], marker=marker, markersize=3, linewidth=1.4)
        if np.isfinite(lost).any():
            any_neighbors = True
            axes.plot(snapshots, lost, color=colors[layer], linestyle=":", linewidth=1.4)
        highest = max(highest, float(np.nanmax(np.r_[change, lost, 0.0])))
        measured = measured or bool(np.isfinite(change).any())
        marks += [(*mark, colors[layer]) for mark in _largest_changes(measures["layers"][layer], change, snapshots)]
    _mark_largest_changes(axes, marks, len(snapshots))
    if not measured:
        axes.text(0.5, 0.5, "no change measured (it needs two snapshots)", transform=axes.transAxes, ha="center",
                  fontsize=9, color="0.5")
    handles = [Line2D([], [], color="0.3", label="1 − CKA to previous")]
    if any_neighbors:
        handles.append(Line2D([], [], color="0.3", linestyle=":",
                              label=f"1 − share of {measures.get('knn_k', '?')} nearest\nneighbours kept"))
    if marks:
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                              label="largest changes"))
    axes.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.set_ylim(0.0, min(1.08, max(0.05, highest) * 1.25))  # room above the highest ring for its label
    axes.set_ylabel("change from previous", fontsize=9)
    axes.set_title("How much each layer changed since the snapshot before", fontsize=10)


def draw_layer_measures(measures: dict, path: PathLike) -> Path:
    """Per layer and snapshot: k-NN and linear-probe accuracy above, the change from the previous snapshot below,
    with each layer's largest changes marked and named."""
    from matplotlib.ticker import MaxNLocator

    snapshots, order = _measured_layers(measures)
    colors = _layer_colors(order)
    figure = _new_figure((1152, 768))
    figure.set_layout_engine("constrained", h_pad=0.08)
    top, bottom = figure.subplots(2, 1, sharex=True)
    _plot_accuracies(top, measures, snapshots, order, colors)
    _plot_changes(bottom, measures, snapshots, order, colors)
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=8)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))  # no snapshot 1.5
    if len(snapshots) == 1:
        bottom.set_xlim(snapshots[0] - 1, snapshots[0] + 1)  # else the locator zooms in to ticks of -0.045
    bottom.set_xlabel("snapshot", fontsize=9)
    return _save_png(figure, path)


def choose_snapshots(snapshots: list[int], count: int = 5) -> list[int]:
    """About `count` snapshots spread evenly over the run, always its first and last, sorted (all when fewer)."""
    if count < 2:
        raise ValueError(f"count must be at least 2 (the first and the last snapshot), got {count}")
    ordered = sorted(set(snapshots))
    if not ordered:
        raise ValueError("snapshots is empty; record at least one snapshot before choosing some to draw")
    positions = np.linspace(0, len(ordered) - 1, min(count, len(ordered))).round().astype(int)
    return [ordered[position] for position in sorted(set(positions.tolist()))]


# The grid of maps and the layers' frames are laid out in pixels, so that every frame of a run comes out the same
# size whatever its captions say.
_CAPTION_LINE_PX = 16  # a 7-point line at 128 dpi with its leading
_CAPTION_CHAR_PX = 6.6  # an average 7-point character at 128 dpi, for wrapping
_LEGEND_ROW_PX = 22
_LEGEND_CHAR_PX = 8  # an 8-point character, rounded up so that columns never overlap
_GRID_CELL_PX = 240
_LAYER_PANEL_PX = 384
_MOST_LAYER_COLUMNS = 4
_FRAME_TITLE_PX = 44
# a layer's panel in the layers' frame: its name above, its map, three caption lines and a gap below
_LAYER_ROW_PX = 24 + _LAYER_PANEL_PX + 3 * _CAPTION_LINE_PX + 12


def _fraction_rect(figure_px: tuple[int, int], left: float, top: float, width: float, height: float
                   ) -> tuple[float, float, float, float]:
    """A rectangle given in pixels from the top left, as the figure fractions add_axes takes."""
    figure_width, figure_height = figure_px
    return left / figure_width, 1 - (top + height) / figure_height, width / figure_width, height / figure_height


def _wrapped(text: str, width_px: float, most_lines: int) -> str:
    """The caption broken into lines that fit `width_px`, at most `most_lines` of them (the rest cut with '…')."""
    import textwrap

    characters = max(8, int(width_px / _CAPTION_CHAR_PX))
    lines = [line for paragraph in text.splitlines() for line in textwrap.wrap(paragraph, characters) or [""]]
    if len(lines) > most_lines:
        lines = lines[:most_lines]
        lines[-1] = lines[-1][:characters - 1].rstrip() + "…"
    return "\n".join(lines)


def _class_key_layout(class_names: Sequence[str], width_px: int) -> tuple[int, int]:
    """Columns and height in pixels of the class key across the bottom of a figure `width_px` wide."""
    if len(class_names) > _LEGEND_CLASSES_AT_MOST:
        return 0, 64  # a colour strip with some of the names under it
    entry_px = 40 + _LEGEND_CHAR_PX * max(len(str(name)) for name in class_names)
    rows = math.ceil(len(class_names) / max(1, min(len(class_names), (width_px - 24) // entry_px)))
    # as few columns as fill those rows: 5 + 5 reads better than 9 + 1
    return math.ceil(len(class_names) / rows), rows * _LEGEND_ROW_PX + 14


def _draw_class_key(figure: Figure, figure_px: tuple[int, int], class_names: Sequence[str], columns: int,
                    height_px: int) -> None:
    """One key to the class colours for the whole figure, in a band of `height_px` at its bottom."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D

    n_classes = len(class_names)
    colormap = _class_colormap(n_classes)
    if columns == 0:
        strip = figure.add_axes(_fraction_rect(figure_px, 40, figure_px[1] - height_px + 8, figure_px[0] - 80, 14))
        colorbar = figure.colorbar(ScalarMappable(norm=_class_norm(n_classes), cmap=colormap), cax=strip,
                                   orientation="horizontal")
        ticks = _tick_positions(n_classes)
        colorbar.set_ticks(ticks, labels=[str(class_names[tick]) for tick in ticks])
        colorbar.ax.tick_params(labelsize=8, length=0)
        return
    rows = math.ceil(n_classes / columns)
    # The legend fills column by column; handing it the classes in this order makes them read along the rows.
    order = [row * columns + column for column in range(columns) for row in range(rows) if row * columns + column
             < n_classes]
    handles = [Line2D([], [], marker="o", linestyle="", markersize=6, color=colormap(position),
                      label=str(class_names[position])) for position in order]
    figure.legend(handles=handles, loc="center", ncols=columns, fontsize=8, frameon=False, handlelength=1.0,
                  handletextpad=0.4, columnspacing=1.2,
                  bbox_to_anchor=_fraction_rect(figure_px, 0, figure_px[1] - height_px, figure_px[0], height_px))


def _grid_maps(maps: Mapping[str, Mapping[int, np.ndarray]], labels: np.ndarray, snapshots: Sequence[int]
               ) -> dict[str, list[np.ndarray]]:
    """Each layer's maps at the chosen snapshots, checked: every snapshot there, one label per point."""
    if not maps:
        raise ValueError("maps has no layers; pass each layer's maps as {layer: {snapshot: map}}")
    if not snapshots:
        raise ValueError("snapshots is empty; pick some to draw, for example with choose_snapshots")
    chosen = {}
    for layer, by_snapshot in maps.items():
        if missing := [snapshot for snapshot in snapshots if snapshot not in by_snapshot]:
            raise ValueError(f"maps[{layer!r}] has no map for snapshot {missing[0]}; map that snapshot first or "
                             "leave it out of snapshots")
        chosen[layer] = [_check_points(by_snapshot[snapshot], labels, f"maps[{layer!r}][{snapshot}]")[0]
                         for snapshot in snapshots]
    return chosen


def _grid_cell_px(rows: int, columns: int) -> int:
    """240-pixel cells, smaller for many layers or snapshots so that the figure stays within about 2000 x 3000."""
    return int(max(120, min(_GRID_CELL_PX, 1900 // columns, 2800 // rows)))


def draw_layer_grid(maps: dict[str, dict[int, np.ndarray]], labels: np.ndarray, class_names: list[str],
                    snapshots: list[int], titles: dict[int, str], path: PathLike, *,
                    captions: dict[tuple[str, int], str] | None = None) -> Path:
    """Every layer's map (rows, input to output) at a few snapshots (columns), coloured by class; each layer's
    maps share one view, so what moves between columns is the map, not the axes."""
    chosen = _grid_maps(maps, labels, snapshots)
    labels = np.asarray(labels)
    cell = _grid_cell_px(len(chosen), len(snapshots))
    left, top, gap = 34, 30, 10
    caption_px = 2 * _CAPTION_LINE_PX + 4 if captions else 0
    width = left + len(snapshots) * (cell + gap) + 4
    key_columns, key_px = _class_key_layout(class_names, width)
    height = top + len(chosen) * (cell + caption_px + gap) + key_px
    figure = _new_figure((width, height))
    for row, (layer, layer_maps) in enumerate(chosen.items()):
        limits = common_limits(layer_maps)
        for column, (snapshot, xy) in enumerate(zip(snapshots, layer_maps)):
            cell_left, cell_top = left + column * (cell + gap), top + row * (cell + caption_px + gap)
            axes = figure.add_axes(_fraction_rect((width, height), cell_left, cell_top, cell, cell))
            _scatter_by_class(axes, xy, labels, len(class_names), None, limits, marker_scale=cell / 600)
            if row == 0:
                axes.set_title(titles.get(snapshot, f"snapshot {snapshot}"), fontsize=9)
            if column == 0:
                axes.set_ylabel(layer, fontsize=9)
            if captions and (caption := captions.get((layer, snapshot))):
                figure.text((cell_left + cell / 2) / width, 1 - (cell_top + cell + 3) / height,
                            _wrapped(caption, cell, 2), ha="center", va="top", fontsize=7, color="0.35")
    _draw_class_key(figure, (width, height), class_names, key_columns, key_px)
    return _save_png(figure, path)


def _frame_maps(maps_at: Mapping[str, np.ndarray], labels: np.ndarray, limits: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    """The layers' maps at one snapshot, checked: a view for every layer, one label per point."""
    if not maps_at:
        raise ValueError("maps_at has no layers; pass each layer's map at this snapshot as {layer: map}")
    if missing := [layer for layer in maps_at if layer not in limits]:
        raise ValueError(f"limits has no entry for layer {missing[0]!r}; pass common_limits over all of that "
                         "layer's maps, the same for every frame")
    return {layer: _check_points(xy, labels, f"maps_at[{layer!r}]")[0] for layer, xy in maps_at.items()}


def _layers_frame_layout(n_layers: int, class_names: Sequence[str]) -> tuple[tuple[int, int], int, int, int]:
    """Figure size, columns and the class key's columns and height: they depend only on the number of layers and
    the class names, so every frame of a run has the same size."""
    columns = min(n_layers, _MOST_LAYER_COLUMNS)
    rows = math.ceil(n_layers / columns)
    width = 16 + columns * (_LAYER_PANEL_PX + 16)
    key_columns, key_px = _class_key_layout(class_names, width)
    height = _FRAME_TITLE_PX + rows * _LAYER_ROW_PX + key_px
    return (width, _whole_blocks(height)), columns, key_columns, key_px


def draw_layers_frame(maps_at: dict[str, np.ndarray], labels: np.ndarray, class_names: list[str],
                      limits: dict[str, tuple], path: PathLike, *, title: str, captions: dict[str, str]) -> Path:
    """One frame of the layers' lapse: every layer's map at one snapshot side by side, each in its own fixed view
    (`limits`, from common_limits over all of that layer's maps) with its caption under it."""
    chosen = _frame_maps(maps_at, labels, limits)
    labels = np.asarray(labels)
    size, columns, key_columns, key_px = _layers_frame_layout(len(chosen), class_names)
    figure = _new_figure(size)
    figure.text(0.5, 1 - 12 / size[1], title, ha="center", va="top", fontsize=12)
    for position, (layer, xy) in enumerate(chosen.items()):
        row, column = divmod(position, columns)
        left, top = 16 + column * (_LAYER_PANEL_PX + 16), _FRAME_TITLE_PX + row * _LAYER_ROW_PX + 24
        axes = figure.add_axes(_fraction_rect(size, left, top, _LAYER_PANEL_PX, _LAYER_PANEL_PX))
        _scatter_by_class(axes, xy, labels, len(class_names), None, limits[layer],
                          marker_scale=_LAYER_PANEL_PX / 600)
        axes.set_title(layer, fontsize=10)
        if caption := captions.get(layer):
            figure.text((left + _LAYER_PANEL_PX / 2) / size[0], 1 - (top + _LAYER_PANEL_PX + 4) / size[1],
                        _wrapped(caption, _LAYER_PANEL_PX, 3), ha="center", va="top", fontsize=7, color="0.35")
    _draw_class_key(figure, size, class_names, key_columns, key_px)
    return _save_png(figure, path)
