"""One epoch's pictures: the map as a frame of the time-lapse, the training map with the test set on it, and a grid
of example images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .canvas import PathLike, check_frame_size, new_figure, save_png, wrapped
from .points import check_points, class_scatter
from .style import FRAME_SIZE_PX
from .testpoints import PlacedTestPoints, draw_test_points


def draw_frame(
    xy: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    title: str,
    caption: str | None = None,
    point_size: float | None = None,
    size_px: tuple[int, int] = FRAME_SIZE_PX,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
    test: PlacedTestPoints | None = None,
) -> Path:
    """Draw one epoch's 2-D map as a scatter coloured by class, exactly `size_px` pixels, so frames stack into a GIF.
    `limits` ((x0, x1), (y0, y1)) fixes the view, the same for every frame of a time-lapse (`common_limits`); `test`,
    the test images placed on this epoch's map, are drawn over it as `draw_test_points` draws them."""
    check_frame_size(size_px)
    xy, labels = check_points(xy, labels, "xy")
    figure = new_figure(size_px)
    axes = class_scatter(figure, xy, labels, class_names, point_size, limits)
    if test is not None:  # the same sample on every frame of a run, so that the lapse does not flicker
        draw_test_points(axes, test, len(class_names), every_wrong=False)
    axes.set_title(title, fontsize=12)
    if caption:
        figure.text(0.5, 0.004, wrapped(caption, size_px[0] - 16, 3), ha="center", va="bottom", fontsize=7,
                    color="0.35")
    return save_png(figure, path)


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
    train_xy, train_labels = check_points(train_xy, train_labels, "train_xy")
    figure = new_figure(FRAME_SIZE_PX)
    axes = class_scatter(figure, train_xy, train_labels, class_names, None)
    draw_test_points(axes, test, len(class_names))
    axes.set_title(title, fontsize=12)
    return save_png(figure, path)


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
    figure = new_figure((grid * cell_px[0], rows * cell_px[1]))
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
    return save_png(figure, path)
