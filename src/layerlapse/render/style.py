"""The one look of every picture: canvas size and resolution, the map's place on a frame, class colours, marker
size and alpha, how test points are marked, and the layers' palette."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.colors import ListedColormap, Normalize


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


_LAYER_PALETTE = "tab10"


def _layer_colors(layer_order: Sequence[str]) -> dict[str, Any]:
    """The same colour for a layer in every figure: tab10 in layer order, input to output."""
    import matplotlib

    palette = matplotlib.colormaps[_LAYER_PALETTE].colors
    return {layer: palette[position % len(palette)] for position, layer in enumerate(layer_order)}
