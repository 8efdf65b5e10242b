"""The report for any eyes and any screen, in Chromium (network blocked), on the digits run (conftest.py): the
colour-blind-safe class colours on the points, the legend and the data map; the dark scheme where the system asks
for it; a phone's 390 × 844 window (the map first, the panels under it, nothing wider than the window); and the
compared map's heading, painted with the chosen layer's name. Screenshots go to the test's folder, to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from browser_helpers import Opened, open_report
from browser_helpers import browser, playwright  # noqa: F401 - fixtures

DigitsRun = Any  # conftest.py's: the run, its report and its arrays
DOC = "Bokeh.documents[0]"


def model(name: str) -> str:
    return f"{DOC}.get_model_by_name('{name}')"


def test_the_colour_blind_palette_colours_points_legend_and_data_map(browser: Any, digits: DigitsRun,
                                                                      tmp_path: Path) -> None:
    from layerlapse.render.style import COLORBLIND10, TAB10

    opened = open_report(browser, digits.report)
    assert opened.js("window.layerlapse.classColors()") == list(TAB10)  # the article's, by default
    opened.page.locator("select").filter(has_text="colours: tab10").select_option(label="colour-blind safe")
    assert opened.state()["palette"] == "colorblind"
    assert opened.js("window.layerlapse.classColors()") == list(COLORBLIND10)
    # the legend's swatches and the points' colours are the palette's
    legend = opened.js(f"{model('layerlapse-class-legend')}.items.map((item) => item.renderers[0].glyph.fill_color)")
    assert [c["value"] if isinstance(c, dict) else c for c in legend] == list(COLORBLIND10)
    painted = map_pixels(opened)
    assert closer_share(painted, COLORBLIND10, TAB10) > 0.8
    opened.page.screenshot(path=str(tmp_path / "colorblind.png"))
    # and back
    opened.js("window.layerlapse.setPalette('tab10')")
    assert closer_share(map_pixels(opened), TAB10, COLORBLIND10) > 0.8
    opened.assert_clean()
    opened.page.close()


def map_pixels(opened: Opened) -> np.ndarray:
    """The map's point layer as painted: RGB of its pixels with something drawn on them."""
    opened.js("window.layerlapse.repaint()")
    opened.page.wait_for_timeout(150)
    box = opened.js("(() => { const r = window.layerlapse.mapCanvas(0).getBoundingClientRect(); "
                    "return {x: r.left, y: r.top, width: r.width, height: r.height}; })()")
    shot = opened.page.screenshot(clip=box)
    import io

    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).reshape(-1, 3).astype(int)
    return pixels[pixels.max(axis=1) - pixels.min(axis=1) > 40]  # coloured: not the page, the frame or a grey


def closer_share(pixels: np.ndarray, palette: tuple[str, ...], other: tuple[str, ...]) -> float:
    """The share of coloured pixels nearer to one of `palette`'s colours than to any of `other`'s."""
    def nearest(colours: tuple[str, ...]) -> np.ndarray:
        rgb = np.array([[int(c[k:k + 2], 16) for k in (1, 3, 5)] for c in colours])
        return np.abs(pixels[:, None, :] - rgb[None, :, :]).sum(axis=2).min(axis=1)

    assert len(pixels) > 500, "the map should have painted its points"
    return float((nearest(palette) < nearest(other)).mean())


def test_dark_mode_follows_the_system(browser: Any, digits: DigitsRun, tmp_path: Path) -> None:
    from bokeh.palettes import Blues256

    opened = open_report(browser, digits.report, color_scheme="dark")
    assert opened.state()["dark"] is True
    background = opened.js("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(22, 24, 28)"
    # what Bokeh draws on canvas: the map's title, the curves' axes and background, light on dark
    assert opened.js(f"{model('layerlapse-map')}.title.text_color") in ("#e3e5e8", "#d0d3d8")
    # and its widgets, through their CSS: the find box's text light on a dark field
    colours = opened.js("""(() => {
        const view = Bokeh.index.query_one((v) => v.model.name === 'layerlapse-find');
        const input = view.el.shadowRoot.querySelector('input'), style = getComputedStyle(input);
        return [style.color, style.backgroundColor];
    })()""")
    assert colours == ["rgb(227, 229, 232)", "rgb(35, 38, 43)"]
    # the confusion matrix's cells: dark blue to light blue, an empty cell dark as the page (light text on it)
    shade = f"{model('layerlapse-confusion-shade')}.palette"
    assert opened.js(f"{shade}[0]") == Blues256[0] and opened.js(f"{shade}.length") == 192
    opened.page.screenshot(path=str(tmp_path / "dark.png"))
    # the system turns light again: the page follows, back to Bokeh's own colours
    opened.page.emulate_media(color_scheme="light")
    opened.page.wait_for_function("window.layerlapse.state().dark === false")
    assert opened.js(f"{model('layerlapse-map')}.title.text_color") not in ("#e3e5e8", "#d0d3d8")
    assert opened.js("getComputedStyle(document.body).backgroundColor") in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    assert opened.js(f"{shade}") == list(reversed(Blues256))
    opened.assert_clean()
    opened.page.close()


@pytest.mark.parametrize("size", [(390, 844), (1024, 700), (1920, 1080)], ids=["phone", "laptop", "monitor"])
def test_every_window_shows_the_map_first_and_nothing_wider(browser: Any, digits: DigitsRun, tmp_path: Path,
                                                           size: tuple[int, int]) -> None:
    phone = size[0] < 500
    opened = open_report(browser, digits.report, viewport=size, is_mobile=phone, has_touch=phone)
    opened.page.wait_for_timeout(400)  # the layout settles (fitToWindow)
    width = opened.js("document.documentElement.clientWidth")
    assert opened.js("document.documentElement.scrollWidth") <= width  # no sideways scroll
    box = element_box(opened, "layerlapse-map")
    assert box["left"] >= 0 and box["right"] <= width
    find = element_box(opened, "layerlapse-find")
    if phone:
        # one column: the map, wide as the window, before the side panels
        assert box["width"] >= width - 20 and find["top"] > box["bottom"]
        assert opened.js("window.devicePixelRatio") == 1 and opened.js("window.innerWidth") == 390
    else:
        # side by side: the map the largest thing on the page, the side column beside it
        assert find["left"] >= box["right"] - 10 and box["bottom"] <= size[1] + 40
    # what a reader does on every screen still works: a point found and pinned
    opened.js("window.layerlapse.find('#3', {pin: true})")
    assert opened.state()["pinned"] == {"set": "probe", "i": 3}
    opened.page.screenshot(path=str(tmp_path / f"report_{size[0]}x{size[1]}.png"))
    opened.assert_clean()
    opened.page.close()


def test_a_laptop_shows_two_maps_and_the_side_column_side_by_side(browser: Any, digits: DigitsRun,
                                                                  tmp_path: Path) -> None:
    """At 1,366 × 768 with a layer compared, the side column stays beside the two maps (the map's column as wide as
    its map, its controls wrapped), nothing wider than the window."""
    opened = open_report(browser, digits.report, viewport=(1366, 768))
    opened.js("window.layerlapse.setCompare('flat1')")
    opened.page.wait_for_timeout(500)
    first, second = element_box(opened, "layerlapse-map"), element_box(opened, "layerlapse-compare-map")
    find = element_box(opened, "layerlapse-find")
    assert second["left"] >= first["right"] - 10 and find["left"] >= second["right"] - 10
    assert find["top"] < first["bottom"]  # beside, not under
    assert opened.js("document.documentElement.scrollWidth") <= 1366
    opened.page.screenshot(path=str(tmp_path / "compare_1366x768.png"))
    # the compared layer let go: the map takes the room again
    opened.js("window.layerlapse.setCompare(null)")
    opened.page.wait_for_timeout(500)
    assert element_box(opened, "layerlapse-map")["width"] > first["width"]
    opened.assert_clean()
    opened.page.close()


def element_box(opened: Opened, name: str) -> dict:
    return opened.js(f"""(() => {{
        const view = Bokeh.index.query_one((v) => v.model.name === '{name}');
        const r = view.el.getBoundingClientRect();
        return {{left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}};
    }})()""")


def test_the_compared_maps_heading_follows_the_chosen_layer(browser: Any, digits: DigitsRun) -> None:
    """Painted, not only set: the heading's pixels for one layer, another, and the first again."""
    opened = open_report(browser, digits.report)

    def heading_pixels(layer: str) -> bytes:
        opened.js(f"window.layerlapse.setCompare('{layer}')")
        opened.page.wait_for_timeout(300)
        assert opened.js(f"{model('layerlapse-compare-map')}.title.text") == f"layer {layer}"
        box = element_box(opened, "layerlapse-compare-map")
        return opened.page.screenshot(clip={"x": box["left"], "y": box["top"], "width": 160, "height": 22})

    flat = heading_pixels("flat1")
    pool = heading_pixels("pool2")
    assert flat != pool
    assert heading_pixels("flat1") == flat
    # the compared layer's measures are in the figures' panel, whole lines
    figures = opened.js("Bokeh.index.query_one((v) => v.model.name === 'layerlapse-figures').el.shadowRoot"
                        ".textContent")
    assert "compared, layer flat1" in figures
    opened.page.wait_for_timeout(300)
    # every line whole: the panel holds them all, none cut mid-line
    overflow = opened.js("(() => { const el = Bokeh.index.query_one((v) => v.model.name === 'layerlapse-figures').el; "
                         "return el.scrollHeight - el.clientHeight; })()")
    assert overflow <= 1
    opened.assert_clean()
    opened.page.close()
