"""The one look of every picture: canvas size and resolution, the map's place on a frame, class colours, marker
size and alpha, how test points are marked, and the layers' palette."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.colors import ListedColormap, Normalize


# A power of two: size_px / DPI is then an exact binary fraction, so the canvas comes out at exactly size_px
# (Agg truncates width * dpi to an int, and 704 / 100 * 100 may land a hair under 704).
DPI = 128
FRAME_SIZE_PX = (800, 704)
# Fixed rectangles (figure fractions) rather than tight or constrained layout: every frame then puts the map at the
# same place, so the GIF does not wobble.
MAP_RECT = (0.03, 0.075, 0.76, 0.835)  # room under the map for a caption of three lines
COLORBAR_RECT = (0.81, 0.14, 0.025, 0.70)
# How test points are told apart from the probe's, here and on the page (report.style hands these to its script):
# the class colour in a diamond with a dark edge, and a red ring on a white halo around each misclassified one,
# which stands out on any class colour (tab10's own red included, through the halo).
TEST_EDGE_COLOR = "#1a1a1a"
MISCLASSIFIED_COLOR = "#ff0000"
MISCLASSIFIED_HALO_COLOR = "#ffffff"
# Past this many test points a figure draws a seeded sample, every misclassified one first (up to half of it), and
# says so in its legend: 10,000 markers would bury the map they are placed on.
TEST_POINTS_DRAWN_AT_MOST = 300
TEST_DIAMOND_AREA = 10.0  # points²: about 8 pixels tip to tip: above the map's dots, and small enough to see past
RING_AREA = 62.0  # points²: a ring whose halo just clears the diamond's tips
RING_WIDTH = 1.8  # points: 3.2 pixels at 128 dpi
HALO_WIDTH = 2.8  # points: half a point of white each side of the ring


# matplotlib's tab10 and tab20, which are d3's category10 and category20 (Bokeh's Category10_10, Category20_20): as
# text here, so that the report and the exports know the class colours without importing matplotlib.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
         "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")
# The colour-blind-safe class colours the report offers beside tab10 (its "colours" choice): Petroff's ten
# (arXiv:2107.02270; matplotlib's `petroff10`), ordered so that the first k stay as far apart as they can. Under
# simulated protanopia, deuteranopia and tritanopia (Machado et al. 2009) every pair of the ten stays more than
# CIEDE2000 11.9 apart, where tab10's orange and green fall to 1.3 (bench/class_palettes.py measures both). Past ten
# classes no palette keeps that margin, and the page does not offer one.
COLORBLIND10 = ("#3f90da", "#bd1f01", "#ffa90e", "#717581", "#92dadd", "#832db6", "#94a4a2", "#a96b59", "#e76300",
                "#b9ac70")
# one colour per run where several are drawn together (layerlapse compare's curves): tab10 without its red, which
# marks what is wrong
RUN_COLORS = TAB10[:3] + TAB10[4:]


def class_rgb(n_classes: int) -> np.ndarray:
    """The class colours as RGB floats in [0, 1], (n_classes, 3): tab10 up to 10 classes, tab20 up to 20, and past
    that matplotlib's turbo sampled at n_classes points (the only case that imports matplotlib)."""
    if n_classes <= 20:
        palette = TAB10 if n_classes <= 10 else TAB20
        # k / 255 is exactly the float matplotlib's own tables hold, so the frames' pixels do not move
        return np.array([[int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)] for color in palette[:n_classes]])
    import matplotlib

    return matplotlib.colormaps["turbo"].resampled(n_classes)(np.arange(n_classes))[:, :3]


def class_colors(n_classes: int) -> list[str]:
    """The class colours as "#rrggbb", one per class: what the PNG frames draw with, for the page and the exports."""
    # rounded as matplotlib.colors.to_hex rounds
    return ["#" + "".join(f"{round(float(value) * 255):02x}" for value in rgb) for rgb in class_rgb(n_classes)]


def colorblind_colors(n_classes: int) -> list[str] | None:
    """The colour-blind-safe class colours for up to ten classes (COLORBLIND10), or None past ten."""
    return list(COLORBLIND10[:n_classes]) if n_classes <= len(COLORBLIND10) else None


def class_colormap(n_classes: int) -> ListedColormap:
    """The class colours as the colormap the figures colour points by (class k is the k-th colour)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap([tuple(rgb) for rgb in class_rgb(n_classes).tolist()], name=f"classes{n_classes}")


def class_norm(n_classes: int) -> Normalize:
    from matplotlib.colors import Normalize

    # Centre each class on an integer so that class k fills exactly the k-th colour band.
    return Normalize(vmin=-0.5, vmax=n_classes - 0.5)


@dataclass(frozen=True)
class MarkerStyle:
    """How big and how opaque a map's markers are, for the PNG figures (`area` in points², `alpha`) and for the page
    (`page_size`, `page_test_size`: diameters in screen pixels; `page_alpha`).

    One rule, two units: a marker's diameter goes as 1 / sqrt(points) in both (matplotlib sizes a marker by its
    area, the page by its diameter), so a map of many points gets small, translucent markers and dense clusters stay
    legible. The page's markers stop at alpha 0.9, where the PNG's reach 1: on the page, a point lies over the
    frames' others while it moves, and the highlighted one must still stand out."""

    area: float
    alpha: float
    page_size: float
    page_test_size: float
    page_alpha: float

    def for_page(self) -> dict[str, float]:
        """The style as the page's script reads it."""
        return {"size": self.page_size, "testSize": self.page_test_size, "alpha": self.page_alpha}


def marker_style(n_points: int) -> MarkerStyle:
    """The markers for a map of `n_points` points, in the figures and on the page."""
    density = max(n_points, 1)
    page_size = float(np.clip(math.sqrt(16000.0 / density), 3.0, 9.0))
    return MarkerStyle(area=float(np.clip(8000.0 / density, 0.8, 36.0)),
                       alpha=float(np.clip(math.sqrt(2000.0 / density), 0.35, 1.0)),
                       page_size=page_size, page_test_size=float(np.clip(page_size * 1.8, 7.0, 13.0)),
                       page_alpha=float(np.clip(math.sqrt(2000.0 / density), 0.35, 0.9)))


def layer_colors(layer_order: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """The same colour for a layer in every figure: tab10 in layer order, input to output."""
    palette = [tuple(rgb) for rgb in class_rgb(10).tolist()]
    return {layer: palette[position % len(palette)] for position, layer in enumerate(layer_order)}
