"""How the page looks, in one place: the class colours (the PNG frames'), the markers, the marks that set test and
misclassified points apart, the palettes, the sizes of the page's parts and how long a class name may be shown.
"""

from __future__ import annotations

# the PNG frames' own colours and marker rule (render.style imports nothing heavy: matplotlib only when drawing)
from ..render.style import MISCLASSIFIED_COLOR, MISCLASSIFIED_HALO_COLOR, TEST_EDGE_COLOR
from ..render.style import class_colors  # noqa: F401 - the page's class colours are the frames'
from ..render.style import colorblind_colors  # noqa: F401 - and the colour-blind-safe ones the reader may choose
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
@media (prefers-color-scheme: dark) {
  #layerlapse-banner { background: #1d2a38; color: #cfe0f0; }
  #layerlapse-banner[data-kind="complete"] { background: #1d3320; color: #cfeccf; }
  #layerlapse-banner[data-kind="interrupted"], #layerlapse-banner[data-kind="failed"],
  #layerlapse-banner[data-kind="gone"], #layerlapse-banner[data-kind="unreachable"],
  #layerlapse-banner[data-kind="unreadable"] { background: #3a1d1d; color: #f3d0d0; }
}
"""


# Dark mode: the page follows the system's colour scheme (prefers-color-scheme). PAGE_STYLE is the document's own;
# theme_stylesheet() is added to every Bokeh element (each draws in a shadow root of its own, so the document's
# style does not reach in): Bokeh's widgets take their colours from CSS variables on their host, set here; what
# Bokeh draws on canvas (plots' text, axes, legends) looks.js colours from DARK_SWAPS.
DARK = {"background": "#16181c", "surface": "#23262b", "raised": "#2d3137", "border": "#565b63", "text": "#e3e5e8",
        "muted": "#a4a9b1"}
PAGE_STYLE = (f"@media (prefers-color-scheme: dark) {{ html, body {{ background: {DARK['background']}; "
              f"color: {DARK['text']}; }} a {{ color: #8ab4f8; }} }}")
# Light colours as the page is built (Bokeh's defaults and this module's), each with its dark counterpart: what Bokeh
# draws on canvas, which looks.js swaps (the payload's "dark"), with the page around a plot's frame and the tooltip
DARK_SWAPS = {
    "#ffffff": "#1c1f23", "white": "#1c1f23",  # backgrounds
    "#000000": DARK["text"], "black": DARK["text"], "#444444": "#d0d3d8", "#333333": "#d0d3d8",  # text and marks
    "#555555": "#b5bac2", "#666666": "#b5bac2", "#999999": "#8a8f97",
    "#e5e5e5": "#3a3e45", "#cccccc": "#4a4f57", "#dddddd": "#3a3e45",  # outlines, grids, borders
}


def dark_canvas() -> dict:
    """The dark scheme's colours for what the page's code colours itself (looks.js)."""
    return {"swaps": DARK_SWAPS, "page": DARK["background"],
            "tooltip": {"background": DARK["surface"], "color": DARK["text"], "borderColor": DARK["border"]}}


def theme_stylesheet():
    """One stylesheet model for every element of the page: dark where the system is, Bokeh's own looks elsewhere;
    and every row wraps, so that a narrow window stacks what does not fit side by side (layout.js)."""
    from bokeh.models import InlineStyleSheet

    d = DARK
    dark_host = (f"--color: {d['text']}; --background-color: {d['surface']}; --hover-color: {d['raised']}; "
                 f"--border-color: {d['border']}; --divider-color: {d['raised']}; --surface-background-color: "
                 f"{d['raised']}; --disabled-background-color: {d['raised']}; --disabled-color: {d['muted']}; "
                 f"--inactive-bg: {d['raised']}; --placeholder-color: {d['muted']}; --icon-color: {d['muted']}; "
                 f"--default: {d['raised']}; --default-border: {d['border']}; --default-hover: #383c43; "
                 f"--default-hover-border: {d['border']}; --default-active: #40454c; --default-active-border: "
                 f"{d['border']}; --default-disabled: {d['surface']}; --default-disabled-border: {d['raised']}; "
                 f"--outline-color: {d['border']}; color: {d['text']};")
    css = (":host(.bk-Row) { flex-wrap: wrap; } "
           f"@media (prefers-color-scheme: dark) {{ :host {{ {dark_host} }} "
           f".bk-input {{ color: {d['text']}; }} "
           f"select.bk-input {{ background-image: url('data:image/svg+xml;utf8,<svg version=\"1.1\" "
           f"viewBox=\"0 0 25 20\" xmlns=\"http://www.w3.org/2000/svg\"><path d=\"M 0,0 25,0 12.5,20 Z\" "
           f"fill=\"%23e3e5e8\" /></svg>'); }} "
           f".noUi-target {{ background: {d['raised']}; border-color: {d['border']}; box-shadow: none; }} "
           f".noUi-handle {{ background: #4a4f57; border-color: {d['border']}; box-shadow: none; }} "
           f".noUi-handle::before, .noUi-handle::after {{ background: {d['muted']}; }} "
           f".bk-slider-title, .bk-input-group > label {{ color: {d['text']}; }} }}")
    return InlineStyleSheet(css=css)
