"""The map's points on an axes: checked, the non-finite ones skipped, coloured by class in a fixed view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .style import COLORBAR_RECT, MAP_RECT, class_colormap, class_norm, marker_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def check_points(xy: np.ndarray, labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {xy.shape}; pass the 2-D map, one row per point")
    if labels.shape != (xy.shape[0],):
        raise ValueError(f"labels must have shape ({xy.shape[0]},) to match {name}, got {labels.shape}; "
                         "pass one label per mapped point")
    return xy, labels


def finite_rows(xy: np.ndarray) -> np.ndarray:
    # A map can hold NaN or inf rows (a diverged network, a point the projection could not place); skip them.
    return np.isfinite(xy).all(axis=1)


def scatter_by_class(
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
    keep = finite_rows(xy)
    markers = marker_style(int(keep.sum()))
    axes.scatter(
        xy[keep, 0], xy[keep, 1], c=labels[keep], cmap=class_colormap(n_classes), norm=class_norm(n_classes),
        s=markers.area * marker_scale if point_size is None else point_size, alpha=markers.alpha, linewidths=0,
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


def class_scatter(
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
    axes = figure.add_axes(MAP_RECT)
    scatter_by_class(axes, xy, labels, n_classes, point_size, limits)
    # A separate, opaque mappable: the colour bar should show the class colours at full strength.
    colorbar = figure.colorbar(ScalarMappable(norm=class_norm(n_classes), cmap=class_colormap(n_classes)),
                               cax=figure.add_axes(COLORBAR_RECT))
    colorbar.set_ticks(range(n_classes), labels=list(class_names))
    colorbar.ax.tick_params(labelsize=8, length=0)
    return axes


def common_limits(maps: Sequence[np.ndarray], margin: float = 0.03
                  ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """One view that holds every finite point of every map, with a small margin (None when there is none)."""
    points = [np.asarray(xy, dtype=np.float64)[finite_rows(np.asarray(xy))] for xy in maps]
    points = [xy for xy in points if len(xy)]
    if not points:
        return None
    low = np.min([xy.min(axis=0) for xy in points], axis=0)
    high = np.max([xy.max(axis=0) for xy in points], axis=0)
    pad = np.maximum((high - low) * margin, 1e-6)
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))
