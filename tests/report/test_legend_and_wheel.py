"""The map's legend follows its colouring, the page has a viewport setting, and the mouse wheel scrolls the page.

In a browser (Playwright driving Debian's Chromium, the network blocked) over the report of a small real run:
colouring by a measure hides the class legend and shows the measure's colour bar (its title, its range, the points'
palette) in its place, the map's frame staying where it was; back to class, the legend returns and a click on an
entry still hides its class. The wheel over a map or the data map scrolls the page and leaves the map's view alone;
the wheel zoom, turned on in the toolbar, zooms. Screenshots (coloured by class, by a measure; 1,366 × 768, and a
phone's 390 × 844) go to $LAYERLAPSE_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from layerlapse.report.page import VIEWPORT, page_payload, write_report

from browser_helpers import Opened, open_report
from browser_helpers import browser, playwright  # noqa: F401 - fixtures

PROBE = 200
DOC = "Bokeh.documents[0]"
LEGEND, BAR, MAP = (f"{DOC}.get_model_by_name('layerlapse-{name}')" for name in ("class-legend", "color-bar", "map"))
DESKTOP = {"width": 1366, "height": 768}


@dataclass
class Report:
    path: Path
    measures: list[dict]  # the payload's colourings: key, title, low, high, palette


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A small real run (digits, PCA maps, two epochs: its dynamics give every colouring) and its report."""
    from layerlapse import RunConfig, run_experiment

    folder = tmp_path_factory.mktemp("legend")
    run = run_experiment(RunConfig(dataset="digits", epochs=2, layers=("hidden",), probe=PROBE,
                                   test_probe=40, map_method="pca", train_subset=300),
                         folder / "run", show_progress=False)
    path = write_report(run)
    return Report(path, page_payload(path.read_text(encoding="utf-8"))["colorBy"])


@pytest.fixture
def opened(browser: Any, report: Report) -> Iterator[Opened]:
    opened = open_report(browser, report.path)
    opened.page.set_viewport_size(DESKTOP)
    opened.page.wait_for_timeout(300)  # the map fits the window (layout.js waits 150 ms after a resize)
    yield opened
    opened.page.close()


def screenshot(opened: Opened, name: str) -> None:
    folder = os.environ.get("LAYERLAPSE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        opened.page.screenshot(path=str(Path(folder) / f"{name}.png"))


def choose_coloring(opened: Opened, key: str) -> None:
    """The reader's way: the "colour:" select (Bokeh draws it in a shadow root, which Playwright's CSS sees into;
    its options, class and then the payload's colourings, are valued by their labels)."""
    options = opened.state()["colorOptions"]
    opened.page.locator("select[name='layerlapse-color-by']").select_option(index=options.index(key))
    opened.page.wait_for_function(f"window.layerlapse.state().colorBy === {key!r}")
    opened.page.wait_for_timeout(200)  # Bokeh lays the map out again in the next frame


def frame(opened: Opened, name: str = "layerlapse-map") -> dict:
    return opened.js(f"""(() => {{
        const view = Bokeh.index.query_one((view) => view.model.name === {name!r});
        const box = view.frame.bbox, rect = view.canvas_view.el.getBoundingClientRect();
        return {{left: rect.left + box.left, top: rect.top + box.top, width: box.width, height: box.height,
                 ranges: [view.model.x_range.start, view.model.x_range.end,
                          view.model.y_range.start, view.model.y_range.end]}};
    }})()""")


def legend_entry(opened: Opened, k: int) -> dict:
    """Where the class legend's k-th entry is drawn, in the window's CSS pixels."""
    return opened.js(f"""(() => {{
        const view = Bokeh.index.query_one((view) => view.model.name === 'layerlapse-class-legend');
        const plot = Bokeh.index.query_one((view) => view.model.name === 'layerlapse-map');
        const rect = plot.canvas_view.el.getBoundingClientRect(), box = view.bbox;
        const rows = {LEGEND}.items.length, title = 22, row = (box.height - title - 8) / rows;
        return {{x: rect.left + box.left + 14, y: rect.top + box.top + title + 4 + row * ({k} + 0.5)}};
    }})()""")


def test_a_measure_s_colouring_has_its_colour_bar_in_place_of_the_class_legend(opened: Opened,
                                                                                report: Report) -> None:
    assert opened.js(f"{LEGEND}.visible") is True and opened.js(f"{BAR}.visible") is False
    before = frame(opened)
    screenshot(opened, "colored_by_class")
    assert len(report.measures) >= 5  # confidence, variability, correctness, first learned, forgetting
    for measure in report.measures:
        choose_coloring(opened, measure["key"])
        assert opened.js(f"{LEGEND}.visible") is False, f"the class legend stayed beside {measure['key']}"
        assert opened.js(f"{BAR}.visible") is True
        assert " ".join(opened.js(f"{BAR}.title").split()) == measure["title"]  # wrapped into lines beside the map
        # the bar shows the scale the points are drawn with: its mapper is theirs, with the measure's range
        mapper = opened.js(f"""(() => {{ const m = {BAR}.color_mapper;
            return {{same: m === {DOC}.get_model_by_name('layerlapse-color-mapper'), low: m.low, high: m.high,
                     palette: Array.from(m.palette)}}; }})()""")
        assert mapper["same"] and (mapper["low"], mapper["high"]) == (measure["low"], measure["high"])
        if measure.get("palette"):
            assert mapper["palette"] == measure["palette"]
        # the frame, and so every point, stays where it was
        after = frame(opened)
        assert (after["left"], after["top"], after["width"], after["height"]) == pytest.approx(
            (before["left"], before["top"], before["width"], before["height"]), abs=1.5), measure["key"]
        if measure["key"] == "confidence":
            screenshot(opened, "colored_by_confidence")
    choose_coloring(opened, "class")
    assert opened.js(f"{LEGEND}.visible") is True and opened.js(f"{BAR}.visible") is False
    assert frame(opened)["width"] == pytest.approx(before["width"], abs=1.5)

    # back to class, a click on the legend's first entry still hides its class, and a second shows it again
    entry = legend_entry(opened, 0)
    opened.page.mouse.click(entry["x"], entry["y"])
    opened.page.wait_for_function(f"!{LEGEND}.items[0].renderers[0].visible", timeout=5_000)
    hidden = opened.js(f"{LEGEND}.items.map((item) => !item.renderers[0].visible)")
    assert not any(hidden[1:]), f"the click hid {hidden}"
    assert 0 not in opened.js("window.layerlapse.points(0).value") and opened.state()["shown"] < PROBE
    opened.page.mouse.click(entry["x"], entry["y"])
    opened.page.wait_for_function(f"{LEGEND}.items[0].renderers[0].visible", timeout=5_000)
    assert opened.state()["shown"] == PROBE
    opened.assert_clean()


class Phone:
    """A browser whose pages are a phone's, 390 × 844 CSS pixels at a scale of 3 with touch, where Chromium reads
    the page's viewport setting (a desktop page ignores it)."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser

    def new_page(self, **_: Any) -> Any:
        return self.browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                     device_scale_factor=3)


def test_the_page_has_a_viewport_setting_and_a_phone_shows_it_unshrunk(browser: Any, report: Report) -> None:
    text = report.path.read_text(encoding="utf-8")
    head = text[text.index("<head>"):text.index("</head>")]
    assert VIEWPORT in head and text.count('name="viewport"') == 1
    opened = open_report(Phone(browser), report.path)
    try:
        opened.page.wait_for_timeout(400)
        # laid out at the phone's own width, at scale 1: without the setting, 980 px shrunk to 0.39
        assert opened.js("[document.documentElement.clientWidth, window.visualViewport.scale]") == [390, 1]
        assert opened.state()["drawn"] == PROBE
        assert frame(opened)["width"] > 100  # the map is laid out and drawn (the phone's own layout is its own item)
        screenshot(opened, "phone_390x844")
        opened.assert_clean()
    finally:
        opened.page.close()


def test_the_wheel_scrolls_the_page_over_the_maps_and_zooms_once_turned_on(opened: Opened) -> None:
    page = opened.page
    assert opened.js(f"{MAP}.toolbar.active_scroll") is None
    before = frame(opened)
    assert opened.js("document.documentElement.scrollHeight") > DESKTOP["height"] + 200
    page.mouse.move(before["left"] + before["width"] / 2, before["top"] + 150)
    page.mouse.wheel(0, 240)
    page.wait_for_function("window.scrollY > 0", timeout=5_000)
    page.wait_for_timeout(200)
    assert frame(opened)["ranges"] == before["ranges"]

    # the data map too: below the map, scrolled into view, the wheel over it scrolls on
    data_map = frame(opened, "layerlapse-data-map")
    page.evaluate(f"window.scrollTo(0, window.scrollY + {data_map['top']} - 200)")
    data_map = frame(opened, "layerlapse-data-map")
    scrolled = opened.js("window.scrollY")
    page.mouse.move(data_map["left"] + data_map["width"] / 2, data_map["top"] + data_map["height"] / 2)
    page.mouse.wheel(0, -120)
    page.wait_for_function(f"window.scrollY < {scrolled}", timeout=5_000)
    page.wait_for_timeout(200)
    assert frame(opened, "layerlapse-data-map")["ranges"] == data_map["ranges"]

    # the wheel zoom, turned on in the map's toolbar (the page's first: the compared map is hidden), zooms
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("[title^='Wheel zoom']").first.click()  # the map's toolbar, its first plot on the page
    assert opened.js(f"{MAP}.toolbar.tools.find((tool) => tool.type === 'WheelZoomTool').active") is True
    before = frame(opened)
    page.mouse.move(before["left"] + before["width"] / 2, before["top"] + before["height"] / 2)
    page.mouse.wheel(0, -240)
    page.wait_for_function(f"{MAP}.x_range.end - {MAP}.x_range.start < "
                           f"{before['ranges'][1] - before['ranges'][0]} - 1e-9", timeout=5_000)
    assert opened.js("window.scrollY") == 0
    opened.assert_clean()
