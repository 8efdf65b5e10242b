"""How the page looks, in one place: the class colours (the PNG frames'), the markers, the marks that set test and
misclassified points apart, the palettes, the sizes of the page's parts and how long a class name may be shown.
"""

from __future__ import annotations

# the PNG frames' own colours and marker rule (render.style imports nothing heavy: matplotlib only when drawing)
from ..render.style import MISCLASSIFIED_COLOR, MISCLASSIFIED_HALO_COLOR, TEST_EDGE_COLOR
from ..render.style import class_colors  # noqa: F401 - the page's class colours are the frames'
from ..render.style import marker_style as frame_markers


def marks() -> dict[str, str]:
    """The colours that set test points and misclassified points apart: the PNG figures' own."""
    return {"testEdge": TEST_EDGE_COLOR, "misclassified": MISCLASSIFIED_COLOR, "halo": MISCLASSIFIED_HALO_COLOR}


def correctness_palette() -> list[str]:
    """Red (never right) to green (always right), as figures/data_map.png and the report's data map show
    correctness."""
    from bokeh.palettes import RdYlGn11

    return list(reversed(RdYlGn11))


# a comparison's four-way colourings (both, left only, right only, neither: agreement, learned by) and its
# differences between two runs (blue: less on the right, red: more)
FOUR_WAY_COLORS = ["#2ca02c", "#1f77b4", "#ff7f0e", "#d62728"]
DIVERGING_COLORS = ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"]


def sequential_palette() -> list[str]:
    from bokeh.palettes import Viridis256

    return list(Viridis256)


def marker_style(n_points: int) -> dict:
    """Marker diameters in screen pixels (test points: larger diamonds) and alpha: the PNG frames' rule in the
    page's units."""
    return frame_markers(n_points).for_page()


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


# The live page's banner (`layerlapse watch`): where the run is, coloured by what it is doing
LIVE_BANNER_STYLE = """
#layerlapse-banner { font: 14px sans-serif; padding: 6px 10px; margin: 0 0 6px 0; border-radius: 4px;
                     background: #eef3f8; color: #1f3b57; border-left: 4px solid #1f77b4;
                     height: 18px; overflow: hidden; contain: strict; }
#layerlapse-banner[data-kind="complete"] { background: #eef7ee; color: #1e4d1e; border-left-color: #2ca02c; }
#layerlapse-banner[data-kind="interrupted"], #layerlapse-banner[data-kind="failed"],
#layerlapse-banner[data-kind="gone"], #layerlapse-banner[data-kind="unreachable"],
#layerlapse-banner[data-kind="unreadable"] { background: #fbeeee; color: #5c1a1a; border-left-color: #d62728; }
"""
