"""How the page looks, in one place: the class colours (the PNG frames'), the markers, the marks that set test and
misclassified points apart, the palettes, the sizes of the page's parts and how long a class name may be shown.
"""

from __future__ import annotations

import math

import numpy as np


def marks() -> dict[str, str]:
    """The colours that set test points and misclassified points apart, the PNG figures' own
    (layerlapse.render.figures)."""
    from ..render.figures import MISCLASSIFIED_COLOR, MISCLASSIFIED_HALO_COLOR, TEST_EDGE_COLOR

    return {"testEdge": TEST_EDGE_COLOR, "misclassified": MISCLASSIFIED_COLOR, "halo": MISCLASSIFIED_HALO_COLOR}


def correctness_palette() -> list[str]:
    """Red (never right) to green (always right), as figures/data_map.png and the report's data map show
    correctness."""
    from bokeh.palettes import RdYlGn11

    return list(reversed(RdYlGn11))


def sequential_palette() -> list[str]:
    from bokeh.palettes import Viridis256

    return list(Viridis256)
def class_colors(n_classes: int) -> list[str]:
    """The PNG frames' class colours: tab10 up to 10 classes, tab20 up to 20, turbo beyond."""
    from bokeh.palettes import Category10_10, Category20_20, Turbo256, linear_palette

    if n_classes <= 10:
        return list(Category10_10[:n_classes])  # d3's category10 is matplotlib's tab10
    if n_classes <= 20:
        return list(Category20_20[:n_classes])
    return list(linear_palette(Turbo256, n_classes)) if n_classes <= 256 else [Turbo256[i * 255 // (n_classes - 1)]
                                                                             for i in range(n_classes)]


def marker_style(n_points: int) -> dict:
    """Marker diameters in screen pixels (test points: larger diamonds) and alpha: many points get small,
    translucent markers, as in the PNG frames."""
    size = float(np.clip(math.sqrt(16000.0 / max(n_points, 1)), 3.0, 9.0))
    return {"size": size, "testSize": float(np.clip(size * 1.8, 7.0, 13.0)),
            "alpha": float(np.clip(math.sqrt(2000.0 / max(n_points, 1)), 0.35, 0.9))}

# Sizes for a laptop's window of 1,024 × 700 (CSS pixels); layout.js grows the map (and the compared one) to fill
# larger windows (`fitToWindow`), so the map is the largest thing on the page at every size.
MAP_SIZE = (600, 540)
COMPARE_SIZE = (420, 420)  # the second map, beside the first: smaller, so the shown layer's map stays the largest
SIDE_WIDTH = 360
SIDE_WIDTH_MAX = 600  # in a window wider than the map needs, the side column (curves, matrices) takes the rest
DATA_MAP_SIZE = (310, 300)
SELECTION_WIDTH = MAP_SIZE[0] - DATA_MAP_SIZE[0] - 20
STRIP_WIDTH = MAP_SIZE[0] // 2 - 15

CLASS_NAME_CHARS = 16  # longer names are cut in the legend and the confusion matrix's axes (hover says the whole)


def short_name(name: str, chars: int = CLASS_NAME_CHARS) -> str:
    """A class name for a legend or an axis: whole when short, else its first characters and an ellipsis (a long
    name took half the map's width and squeezed the confusion matrix); the points' hover shows it whole."""
    return name if len(name) <= chars else name[: chars - 1].rstrip() + "…"
