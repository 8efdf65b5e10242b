"""The report in a browser: Playwright drives Debian's Chromium (headless) over the report.html of a small real run,
with every network request blocked and recorded.

Skipped with the reason when playwright or chromium is missing, unless LAYERLAPSE_REQUIRE_BROWSER=1 (CI sets it),
which turns the skip into a failure. One browser per module; WebGL comes from SwiftShader (software), and one test
starts a second browser without WebGL to see the canvas fallback draw.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from layerlapse.report import content as report_content
from layerlapse.report import style as report_style
from layerlapse.report import page as report
from layerlapse.report.page import write_report
from layerlapse.report.script import point_layer_script
from layerlapse.store.layout import epoch_file
from layerlapse.store.run import load_run

from browser_helpers import Opened, open_report
from browser_helpers import (CHROMIUM, NO_WEBGL, QUIET, REQUIRED, SOFTWARE_WEBGL, browser,  # noqa: F401 - fixtures
                             browser_missing, launch, playwright)

EPOCHS, PROBE, TEST_PROBE = 2, 200, 60
HOSTILE = ["</script><img src=x onerror=alert(1)>", "<img src=x onerror=window.__xss=1>"]
DOC = "Bokeh.documents[0]"


@dataclass
class Reports:
    run: Path
    plain: Path
    hostile: Path
    labels: np.ndarray
    class_names: list[str]
    final_xy: np.ndarray  # layer hidden at the last epoch


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    """A small real run (digits, PCA maps) and two reports of it: as recorded, and with hostile class names."""
    from layerlapse import RunConfig, run_experiment

    folder = tmp_path_factory.mktemp("browser")
    run = run_experiment(RunConfig(dataset="digits", epochs=EPOCHS, layers=("hidden", "flat1"), probe=PROBE,
                                   test_probe=TEST_PROBE, map_method="pca", train_subset=600),
                         folder / "run", show_progress=False)
    plain = write_report(run)
    hostile_run = load_run(shutil.copytree(run.path, folder / "hostile"))
    hostile_run.manifest["dataset"]["class_names"][:2] = HOSTILE
    hostile_run.commit()
    return Reports(run.path, plain, write_report(hostile_run), run.read_array("probe/labels.npy"),
                   run.manifest["dataset"]["class_names"], run.read_array(f"maps/hidden/{epoch_file(EPOCHS)}"))


@pytest.fixture
def opened(browser: Any, reports: Reports) -> Iterator[Opened]:
    opened = open_report(browser, reports.plain)
    yield opened
    opened.page.close()


def isolated_point(xy: np.ndarray, among: np.ndarray | None = None) -> int:
    """The point farthest from its nearest neighbour (optionally among some rows): the mouse finds it alone."""
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1) / np.ptp(xy, axis=0).max()
    np.fill_diagonal(distances, np.inf)
    nearest = distances.min(axis=1)
    candidates = np.arange(len(xy)) if among is None else among
    return int(candidates[np.argmax(nearest[candidates])])


def point_source_rows(opened: Opened) -> dict:
    """What the map draws now (the page's point layer): probe rows, those drawn and outlined, and test rows."""
    return opened.js("""(() => {
        const probe = window.layerlapse.points(0, "probe"), test = window.layerlapse.points(0, "test");
        const shown = window.layerlapse.state().shown;
        return {probe: shown, drawn: probe.point.length, test: test.point.length,
                outlined: probe.outline.filter((v) => v > 0).length};
    })()""")


def hover(opened: Opened, point: int) -> str:
    position = opened.js(f"window.layerlapse.clientPosition({point})")
    opened.page.mouse.move(position["x"] - 30, position["y"] - 30)
    opened.page.mouse.move(position["x"], position["y"], steps=3)
    tooltip = opened.page.locator("#layerlapse-tooltip")
    tooltip.wait_for(state="visible", timeout=5_000)
    return tooltip.inner_text()


# ---- the tests --------------------------------------------------------------------------------------------------


def test_page_loads_with_webgl_without_errors_or_network_requests(opened: Opened) -> None:
    state = opened.state()
    assert state["webgl"] is True, "SwiftShader should give this Chromium a WebGL context"
    assert state["renderer"] == "cpu"  # SwiftShader's WebGL is software: the CPU draws the points, faster there
    assert state["drawn"] == PROBE and state["epoch"] == EPOCHS
    opened.assert_clean()


def test_the_hook_and_its_state_are_what_the_contract_says(opened: Opened) -> None:
    from test_report_code import contract_properties

    assert set(opened.js("Object.keys(window.layerlapse)")) == set(contract_properties("LayerlapseHook"))
    assert set(opened.state()) == set(contract_properties("State"))
    assert set(opened.js("Object.keys(window.layerlapse.points(0))")) == set(contract_properties("DrawnPoints"))


def test_slider_reaches_the_last_epoch_and_every_probe_point_is_drawn(opened: Opened) -> None:
    slider = f"{DOC}.get_model_by_name('layerlapse-epoch')"
    opened.js(f"{slider}.value = 0")
    assert opened.state()["epoch"] == 0
    opened.js(f"{slider}.value = {slider}.end")
    assert opened.js(f"{slider}.value") == EPOCHS and opened.state()["epoch"] == EPOCHS
    rows = point_source_rows(opened)
    assert rows["probe"] == rows["drawn"] == PROBE
    figures = opened.page.locator(".layerlapse-figures-live").inner_text()
    assert figures.startswith(f"epoch {EPOCHS} · probe accuracy") and "layer hidden: trust" in figures
    # the measures explained on hover
    help_text = opened.page.locator(".layerlapse-figures-live").get_attribute("title")
    assert "trust (trustworthiness)" in help_text and "motion ρ" in help_text and "disparity" in help_text
    opened.assert_clean()


def test_hover_shows_the_thumbnail_the_true_and_the_predicted_label(opened: Opened, reports: Reports) -> None:
    point = isolated_point(reports.final_xy)
    text = hover(opened, point)
    assert opened.page.locator("#layerlapse-tooltip img").count() == 1
    assert opened.js("document.querySelector('#layerlapse-tooltip img').src").startswith("data:image/png;base64,")
    predicted = load_run(reports.run).predictions(EPOCHS)[point].argmax()
    assert f"probe image #{point}" in text
    assert f"true: {reports.class_names[reports.labels[point]]}" in text
    assert re.search(rf"epoch {EPOCHS}: predicted {re.escape(reports.class_names[predicted])} \(\d\.\d\d\)", text)
    opened.page.mouse.move(2, 2)
    opened.page.locator("#layerlapse-tooltip").wait_for(state="hidden", timeout=5_000)
    opened.assert_clean()


def test_a_click_pins_the_point_beside_the_map_and_draws_its_trajectory(opened: Opened, reports: Reports) -> None:
    point = isolated_point(reports.final_xy)
    position = opened.js(f"window.layerlapse.clientPosition({point})")
    opened.page.mouse.click(position["x"], position["y"])
    assert opened.state()["pinned"] == {"set": "probe", "i": point}
    focused = opened.js("(() => { let el = document.activeElement; "  # into the shadow roots, to the focused layer
                        "while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;"
                        " return [el.className, getComputedStyle(el).outlineStyle]; })()")
    assert focused == ["bk-layer bk-events", "none"]  # no dotted box around the map after a click
    trail = opened.js(f"{DOC}.get_model_by_name('layerlapse-trail').data.x.length")
    assert trail == opened.state()["trail"] == EPOCHS + 1
    # an epoch is labelled only where the point has moved 3 % of the layer's extent from the last label
    xs, ys, labels = opened.js(f"(() => {{ const d = {DOC}.get_model_by_name('layerlapse-trail').data; "
                               "return [Array.from(d.x), Array.from(d.y), Array.from(d.label)]; })()")
    x0, x1, y0, y1 = report_content.read_content(load_run(reports.run), ["hidden"]).limits["hidden"]
    apart, last = 0.03 * max(x1 - x0, y1 - y0), None
    for epoch, (x, y, label) in enumerate(zip(xs, ys, labels)):
        far = last is None or math.hypot(x - last[0], y - last[1]) >= apart
        assert label == (str(epoch) if far else "")
        last = (x, y) if far else last
    pinned = opened.page.locator(".layerlapse-pinned")
    assert pinned.locator("img").count() == 1 and f"probe image #{point}" in pinned.inner_text()
    opened.js("window.layerlapse.setEpoch(0)")  # the pinned point follows the slider
    assert "epoch 0: predicted" in pinned.inner_text()
    opened.js("window.layerlapse.unpin()")
    assert opened.state()["trail"] == 0
    opened.assert_clean()


def test_hostile_class_names_show_as_text_and_run_nothing(browser: Any, reports: Reports) -> None:
    opened = open_report(browser, reports.hostile)
    try:
        for label, name in enumerate(HOSTILE):
            point = isolated_point(reports.final_xy, among=np.flatnonzero(reports.labels == label))
            assert f"true: {name}" in hover(opened, point)
            opened.js(f"window.layerlapse.pin({point})")
            assert f"true: {name}" in opened.page.locator(".layerlapse-pinned").inner_text()
        opened.js(f"{DOC}.get_model_by_name('layerlapse-show-test').active = true")
        opened.page.wait_for_timeout(300)  # time for an onerror to fire, were there an <img> to fail
        assert opened.js("window.__xss") is None
        opened.assert_clean()
    finally:
        opened.page.close()


def test_the_layer_selector_switches_the_map(opened: Opened, reports: Reports) -> None:
    before = opened.js("window.layerlapse.points(0).x.slice(0, 5)")
    opened.js(f"{DOC}.get_model_by_name('layerlapse-layer').value = 'flat1'")
    assert opened.state()["layer"] == "flat1"
    after = opened.js("window.layerlapse.points(0).x.slice(0, 5)")
    flat = load_run(reports.run).read_array(f"maps/flat1/{epoch_file(EPOCHS)}")[:5, 0]
    assert after != before and np.allclose(after, flat, atol=np.ptp(flat) * 1e-3 + 1e-6)
    opened.assert_clean()


def test_toggles_place_the_test_points_and_ring_the_misclassified(opened: Opened, reports: Reports) -> None:
    opened.js(f"{DOC}.get_model_by_name('layerlapse-show-test').active = true")
    assert opened.state()["testShown"] == point_source_rows(opened)["test"] == TEST_PROBE
    run = load_run(reports.run)
    test_labels = run.read_array("test/probe/labels.npy")
    test_wrong = np.flatnonzero(run.read_array(f"test/probe/predictions/{epoch_file(EPOCHS)}").argmax(axis=1)
                                != test_labels)
    test = opened.js("window.layerlapse.points(0, 'test')")
    assert [test_labels[i] for i in test["point"]] == test["value"]  # each in its class colour
    # the misclassified test points ringed, on top, whether or not the probe's misclassified are highlighted
    ringed = [i for i, outline in zip(test["point"], test["outline"]) if outline > 0]
    assert ringed == test_wrong.tolist() == test["point"][len(test["point"]) - len(ringed):]
    figures = opened.page.locator("text=test points (diamonds)")
    assert (f"test points (diamonds): {TEST_PROBE} test images (a sample of the run's 360), {len(test_wrong)} "
            "misclassified at this epoch (ringed in red)") in figures.inner_text()
    assert opened.page.locator("button", has_text=f"test points ({TEST_PROBE} of 360)").count() == 1
    opened.js(f"{DOC}.get_model_by_name('layerlapse-misclassified').active = true")
    wrong = int(np.sum(run.predictions(EPOCHS).argmax(axis=1) != reports.labels))
    assert point_source_rows(opened)["outlined"] == wrong
    figures = opened.page.locator("text=misclassified at this epoch")
    assert f"{wrong} of the page's {PROBE} probe points misclassified" in figures.inner_text()
    opened.assert_clean()


def test_the_legend_hides_and_shows_a_class(opened: Opened, reports: Reports) -> None:
    stand_in = f"{DOC}.get_model_by_name('layerlapse-map').renderers.filter(r => r.glyph.type === 'Ellipse')[4]"
    opened.js(f"{stand_in}.visible = false")  # what a click on the legend's entry for class 3 does
    assert opened.state()["shown"] == PROBE - int(np.sum(reports.labels == 3))
    opened.js(f"{stand_in}.visible = true")
    assert opened.state()["shown"] == PROBE
    opened.assert_clean()


def test_play_runs_to_the_last_epoch(opened: Opened) -> None:
    opened.js("window.layerlapse.setEpoch(0)")
    opened.page.locator("button", has_text="play").click()
    opened.page.wait_for_function("window.layerlapse.state().playing === false && "
                                  f"window.layerlapse.state().epoch === {EPOCHS}", timeout=10_000)
    assert opened.page.locator("button", has_text="play").count() == 1  # the label went back from pause
    opened.assert_clean()


def test_a_report_without_webgl_still_draws(playwright: Any, reports: Reports) -> None:
    browser = launch(playwright, NO_WEBGL)
    try:
        opened = open_report(browser, reports.plain)
        assert opened.js("!!document.createElement('canvas').getContext('webgl')") is False
        state = opened.state()
        assert state["webgl"] is False and state["renderer"] == "cpu" and state["drawn"] == PROBE
        opened.assert_clean()
    finally:
        browser.close()


# ---- dynamics, the data map, layer measures, compare -------------------------------------------------------------


def model(name: str) -> str:
    return f"{DOC}.get_model_by_name('{name}')"


def test_colour_by_a_measure_recolours_the_points_and_shows_the_colour_bar(opened: Opened, reports: Reports) -> None:
    from layerlapse.measures.dynamics import probe_dynamics

    assert opened.state()["colorOptions"] == ["class", "confidence", "variability", "correctness", "firstLearned",
                                              "forgetting"]
    assert opened.js(f"{model('layerlapse-color-bar')}.visible") is False
    class_palette = opened.js(f"{model('layerlapse-color-mapper')}.palette.slice()")
    opened.js(f"{model('layerlapse-color-by')}.value = 'confidence'")
    assert opened.state()["colorBy"] == "confidence"
    assert opened.js(f"{model('layerlapse-color-bar')}.visible") is True
    assert "confidence" in opened.js(f"{model('layerlapse-color-bar')}.title")
    mapper = opened.js(f"(() => {{ const m = {model('layerlapse-color-mapper')}; "
                       "return {low: m.low, high: m.high, palette: m.palette.length}; })()")
    assert mapper == {"low": 0, "high": 1, "palette": 256}
    values = opened.js("(() => { const d = window.layerlapse.points(0); return [d.point, d.value]; })()")
    confidence = probe_dynamics(load_run(reports.run)).confidence
    assert np.allclose(values[1], confidence[values[0]], atol=0.5 / 255 + 1e-6)
    opened.js(f"{model('layerlapse-color-by')}.value = 'correctness'")  # red to green, as the data map shows it
    assert opened.js(f"{model('layerlapse-color-mapper')}.palette.slice()") == opened.js(
        f"{model('layerlapse-data-map-colors')}.palette.slice()")
    opened.js(f"{model('layerlapse-color-by')}.value = 'class'")
    assert opened.js(f"{model('layerlapse-color-bar')}.visible") is False
    assert opened.js(f"{model('layerlapse-color-mapper')}.palette.slice()") == class_palette
    opened.assert_clean()


def alphas_by_point(opened: Opened, where: str) -> dict[int, float]:
    """The alpha of every point a map draws: `where` is 0 (the map), 1 (the compared map) or "dataMap"."""
    pairs = opened.js(f"(() => {{ const d = window.layerlapse.points({where!r}); return [d.point, d.alpha]; }})()")
    return dict(zip(pairs[0], pairs[1]))


def test_a_data_map_region_highlights_its_images_on_the_map_and_lists_them(opened: Opened, reports: Reports) -> None:
    from layerlapse.measures.dynamics import probe_dynamics, region_cut_offs
    from layerlapse.measures.dynamics import cartography_regions
    from layerlapse.report.content import REGIONS
    from layerlapse.report.pack import SELECTION_THUMBNAILS

    found = probe_dynamics(load_run(reports.run))
    hard = np.flatnonzero(cartography_regions(found.confidence, found.variability) == REGIONS["hard"][0])
    opened.js(f"{model('layerlapse-region')}.value = 'hard'")
    assert opened.state()["selected"] == hard.tolist()
    for where in (0, "dataMap"):
        alpha = alphas_by_point(opened, where)
        assert min(alpha[i] for i in hard) >= 0.85 > 0.12 >= max(a for i, a in alpha.items() if i not in set(hard))
    listed = opened.page.locator(".layerlapse-selection")
    assert f"{len(hard)} selected (hard to learn)" in listed.inner_text()
    # what "hard to learn" means in this run, with its cut-offs, stated beside the images it selected
    definition = region_cut_offs(found.variability).definition()
    assert f"Regions: {definition}." in listed.inner_text()
    assert listed.locator(".layerlapse-pick img").count() == min(len(hard), SELECTION_THUMBNAILS)
    listed.locator(".layerlapse-pick").nth(1).click()  # a listed thumbnail pins its image
    assert opened.state()["pinned"] == {"set": "probe", "i": int(hard[1])}
    opened.js(f"{model('layerlapse-region')}.value = 'none'")
    assert opened.state()["selected"] is None
    assert f"Regions: {definition}." in listed.inner_text()  # stated before anything is chosen, too
    opened.assert_clean()


def test_a_box_drawn_on_the_map_highlights_the_same_images_in_the_data_map(opened: Opened) -> None:
    opened.js(f"{model('layerlapse-map')}.toolbar.tools.find((tool) => tool.type === 'BoxSelectTool')"
              ".active = true")  # what a click on its toolbar button does
    frame = opened.js(f"""(() => {{
        const view = Bokeh.index.query_one((v) => v.model === {model('layerlapse-map')});
        const rect = view.canvas_view.el.getBoundingClientRect();
        return {{left: rect.left + view.frame.bbox.left, top: rect.top + view.frame.bbox.top,
                 width: view.frame.bbox.width, height: view.frame.bbox.height}};
    }})()""")
    x0, y0 = frame["left"] + frame["width"] * 0.25, frame["top"] + frame["height"] * 0.25
    x1, y1 = frame["left"] + frame["width"] * 0.6, frame["top"] + frame["height"] * 0.6
    positions = opened.js(f"Array.from({{length: {PROBE}}}, (_, i) => window.layerlapse.clientPosition(i))")
    inside = {i for i, p in enumerate(positions) if p and x0 < p["x"] < x1 and y0 < p["y"] < y1}
    opened.page.mouse.move(x0, y0)
    opened.page.mouse.down()
    opened.page.mouse.move(x1, y1, steps=8)
    opened.page.mouse.up()
    opened.page.wait_for_function("window.layerlapse.state().selected !== null", timeout=5_000)
    selected = set(opened.state()["selected"])
    assert len(inside) >= 5 and len(selected ^ inside) <= 2  # points on the box's edge may fall either way
    alpha = alphas_by_point(opened, "dataMap")
    assert all(alpha[i] >= 0.85 for i in selected) and all(a <= 0.12 for i, a in alpha.items() if i not in selected)
    opened.assert_clean()


def test_the_compare_select_draws_a_second_map_that_follows_the_slider(opened: Opened, reports: Reports) -> None:
    assert opened.js(f"{model('layerlapse-compare-map')}.visible") is False
    opened.js(f"{model('layerlapse-compare')}.value = 'flat1'")
    state = opened.state()
    assert state["compare"] == "flat1" and state["compareDrawn"] == PROBE
    assert opened.js(f"{model('layerlapse-compare-map')}.visible") is True
    assert opened.js(f"{model('layerlapse-compare-map')}.title.text") == "layer flat1"
    assert opened.js(f"{model('layerlapse-map')}.title.text") == f"layer {opened.state()['layer']}"
    opened.js(f"{model('layerlapse-epoch')}.value = 0")
    xs = opened.js("(() => { const d = window.layerlapse.points(1); return [d.point, d.x]; })()")
    flat = load_run(reports.run).read_array(f"maps/flat1/{epoch_file(0)}")[:, 0]
    assert np.allclose(xs[1], flat[xs[0]], atol=np.ptp(flat) * 1e-3 + 1e-6)
    opened.js("window.layerlapse.pin(7)")  # the pinned point's trail on both maps
    assert opened.js(f"{model('layerlapse-compare-trail')}.data.x.length") == EPOCHS + 1
    opened.js("window.layerlapse.select([1, 2, 3])")  # the same highlight on both maps
    alpha = alphas_by_point(opened, 1)
    assert min(alpha[i] for i in (1, 2, 3)) >= 0.85 and alpha[4] <= 0.12
    opened.js("window.layerlapse.setCompare(null)")
    assert opened.state()["compare"] is None and opened.js(f"{model('layerlapse-compare-map')}.visible") is False
    opened.assert_clean()


def test_a_wide_window_gives_the_side_column_the_room_the_map_leaves(browser: Any, reports: Reports) -> None:
    """At a laptop's 1,024 px the side column keeps its width; on a wide monitor the curves and the confusion matrix
    take the room the map (about as wide as tall) leaves, back when a second map is compared, and never wider than
    the window."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    opened = open_report(browser, reports.plain)
    try:
        sizes = f"""({{curve: {model('layerlapse-accuracy')}.width,
            confusion: {model('layerlapse-confusion-plot')}.width, map: {model('layerlapse-map')}.width,
            scroll: document.documentElement.scrollWidth, window: document.documentElement.clientWidth}})"""

        def widths_once(condition: str) -> dict:
            """The widths once `condition` (JavaScript over them, named `w`) holds, or as they are after 10 s:
            layout.js fits the page 150 ms after the last resize, and a busy machine takes a second more."""
            try:
                opened.page.wait_for_function(f"(() => {{ const w = {sizes}; return {condition}; }})()",
                                              timeout=10_000)
            except PlaywrightTimeout:
                pass  # the assertion below says what the widths are
            return opened.js(sizes)

        fitted_narrow = f"w.curve === {report_style.SIDE_WIDTH} && w.scroll <= w.window"
        opened.page.set_viewport_size({"width": 1024, "height": 700})
        laptop = widths_once(fitted_narrow)
        assert laptop["curve"] == laptop["confusion"] == report_style.SIDE_WIDTH
        assert laptop["scroll"] <= laptop["window"]
        opened.page.set_viewport_size({"width": 1920, "height": 1080})
        wide = widths_once(f"w.curve > {report_style.SIDE_WIDTH} && w.map > {laptop['map']}")
        assert wide["map"] > laptop["map"] and wide["curve"] == wide["confusion"] > report_style.SIDE_WIDTH
        assert wide["curve"] <= report_style.SIDE_WIDTH_MAX and wide["scroll"] <= wide["window"]
        opened.js(f"{model('layerlapse-compare')}.value = 'flat1'")
        # the second map takes the room
        assert widths_once(f"w.curve === {report_style.SIDE_WIDTH}")["curve"] == report_style.SIDE_WIDTH
        opened.js("window.layerlapse.setCompare(null)")
        assert widths_once(f"w.curve === {wide['curve']}")["curve"] == wide["curve"]
        opened.page.set_viewport_size({"width": 1024, "height": 700})
        back = widths_once(fitted_narrow)
        assert back["curve"] == report_style.SIDE_WIDTH and back["scroll"] <= back["window"]
        opened.assert_clean()
    finally:
        opened.page.close()


def test_the_layer_measures_marker_follows_the_slider(opened: Opened) -> None:
    markers = ["layerlapse-measures-marker", "layerlapse-cka-marker-height", "layerlapse-cka-marker-width"]
    assert [opened.js(f"{model(name)}.location") for name in markers] == [EPOCHS] * 3
    opened.js(f"{model('layerlapse-epoch')}.value = 1")
    # the panels beside the map follow once the map's frame is on screen
    opened.page.wait_for_function("window.layerlapse.state().panelsEpoch === 1", timeout=10_000)
    assert [opened.js(f"{model(name)}.location") for name in markers] == [1] * 3
    assert "hidden changed most at epoch" in opened.page.locator(".layerlapse-changes").inner_text()
    cka = opened.js(f"Array.from({model('layerlapse-cka-cells')}.data.cka)")
    assert len(cka) == (EPOCHS + 1) ** 2 and cka[0] == pytest.approx(1.0, abs=1e-4)
    opened.assert_clean()


def test_a_click_on_the_hardest_strip_pins_that_image(opened: Opened, reports: Reports) -> None:
    from layerlapse.measures.dynamics import summary

    hardest = summary(load_run(reports.run), 12)["hardest"]
    strip = opened.page.locator(".layerlapse-hardest .layerlapse-pick")
    strip.first.wait_for(timeout=10_000)  # the strips are drawn just after the map
    assert strip.count() == len(hardest)
    assert f"{hardest[0]['label']}→{hardest[0]['predicted']}" in strip.first.inner_text()
    strip.first.click()
    assert opened.state()["pinned"] == {"set": "probe", "i": hardest[0]["index"]}
    assert f"probe image #{hardest[0]['index']}" in opened.page.locator(".layerlapse-pinned").inner_text()
    opened.assert_clean()


# ---- the article's scale ------------------------------------------------------------------------------------------

BIG, BIG_FRAMES = 60_000, 4


def big_content() -> report_content.ReportContent:
    """A page's content of 60,000 probe points over 4 frames, every one with a thumbnail (8×8 images, seeded): ten
    classes drifting apart frame by frame, as a training run's maps do."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, BIG).astype(np.int64)
    centres = rng.normal(0, 6, (10, 2))
    noise = rng.normal(0, 1, (BIG, 2))
    coords = np.stack([(centres[labels] * (frame + 1) / BIG_FRAMES + noise).astype(np.float32)
                       for frame in range(BIG_FRAMES)])
    predicted = np.where(rng.random((BIG_FRAMES, BIG)) < 0.9, labels, (labels + 1) % 10).astype(np.uint8)
    confidence = rng.integers(100, 255, (BIG_FRAMES, BIG)).astype(np.uint8)
    images = rng.integers(0, 255, (BIG, 8, 8)).astype(np.uint8)
    probe = report_content.Points(labels, {"hidden": coords}, images, predicted, confidence, np.arange(BIG))
    x0, x1 = float(coords[..., 0].min()), float(coords[..., 0].max())
    y0, y1 = float(coords[..., 1].min()), float(coords[..., 1].max())
    return report_content.ReportContent(
        title="layerlapse · 60,000 points", summary="a synthetic page", class_names=[str(k) for k in range(10)],
        epochs=list(range(BIG_FRAMES)), layers=["hidden"], limits={"hidden": (x0, x1, y0, y1)}, probe=probe,
        test=None, probe_total=BIG, test_total=0, history=[], confusion=report_content.confusions(probe, 10),
        epoch_figures=[f"epoch {e}" for e in range(BIG_FRAMES)], layer_figures={"hidden": [""] * BIG_FRAMES},
        notes=[], seed=0)


def test_a_60000_point_report_draws_moves_hovers_and_selects_every_point(browser: Any, tmp_path: Path) -> None:
    content = big_content()
    path = tmp_path / "big.html"
    path.write_text(report.render_page(content), encoding="utf-8")
    opened = open_report(browser, path)
    try:
        state = opened.state()
        assert state["webgl"] is True and state["total"] == state["drawn"] == BIG
        opened.js(f"{DOC}.get_model_by_name('layerlapse-epoch').value = 0")  # a slider move repaints frame 0
        opened.page.wait_for_function("window.layerlapse.state().paintedEpoch === 0", timeout=10_000)
        xs = opened.js("(() => { const d = window.layerlapse.points(0); return [d.point.slice(0, 50), "
                       "d.x.slice(0, 50)]; })()")
        first = content.probe.coords["hidden"][0, :, 0]
        assert np.allclose(xs[1], first[xs[0]], atol=np.ptp(first) * 1e-4)
        point = int(np.argmax(np.linalg.norm(content.probe.coords["hidden"][0], axis=1)))  # far out: alone
        assert f"probe image #{point}" in hover(opened, point)
        assert opened.page.locator("#layerlapse-tooltip img").count() == 1  # its atlas decoded when needed
        opened.js("window.layerlapse.selectGeometry({type: 'rect', x0: -1e9, x1: 0, y0: -1e9, y1: 1e9}, true, 0)")
        selected = set(opened.state()["selected"])
        left = set(np.flatnonzero(first <= 0).tolist())
        assert len(left) > 10_000 and len(selected ^ left) <= 2  # a point within a 16-bit step of 0 may fall either way
        opened.js("window.layerlapse.togglePlay()")  # plays frame 0 to the last, blending on the GPU
        opened.page.wait_for_function(f"window.layerlapse.state().epoch === {BIG_FRAMES - 1} && "
                                      "!window.layerlapse.state().playing", timeout=20_000)
        opened.assert_clean()
    finally:
        opened.page.close()


def test_webgl_and_the_cpu_paint_the_same_points_alike(browser: Any, reports: Reports) -> None:
    """SwiftShader's software WebGL is left to the CPU's own drawing (faster there); a GPU's WebGL draws with the
    shaders. Both paint the map, about the same pixels, and say which drew."""
    painted = {}
    for renderer in ("webgl", "cpu"):
        opened = open_report(browser, reports.plain) if renderer == "cpu" else None
        if opened is None:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(reports.plain.as_uri() + "#renderer=webgl")  # the address asks for WebGL even in software
            page.wait_for_function("window.layerlapseReady === true", timeout=30_000)
            opened = Opened(page)
        try:
            assert opened.state()["renderer"] == renderer and opened.state()["drawn"] == PROBE
            painted[renderer] = opened.js("window.layerlapse.paintedPixels()")
        finally:
            opened.page.close()
    assert painted["cpu"] > 200 and 0.6 < painted["webgl"] / painted["cpu"] < 1.6, painted


def marker_mask(diameter: int, diamond: bool, ring: int = 0, halo: int = 0) -> list[tuple[int, int, str]]:
    """A marker's pixels as (dx, dy, part): "fill", "rim" (within 1.2 pixels of its edge), and with a ring (pixels,
    halo included) "halo" and "ring" outside it, from the circle through its tips."""
    radius, reach = diameter / 2, math.ceil(diameter / 2 + ring)
    shift = 0.0 if diameter % 2 else 0.5
    mask = []
    for y in range(-reach, reach + 1):
        for x in range(-reach, reach + 1):
            round_ = math.hypot(x + shift, y + shift) / radius
            r = (abs(x + shift) + abs(y + shift)) / radius if diamond else round_
            if r <= 1:
                mask.append((x, y, "rim" if r > 1 - 1.2 / radius else "fill"))
            elif ring and 1 < round_ <= 1 + ring / radius:
                mask.append((x, y, "halo" if round_ <= 1 + halo / radius else "ring"))
    return mask


def cpu_splat_reference(xy: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, outline: np.ndarray, diameter: int,
                        width: int, height: int, *, diamond: bool = False, edge: tuple | None = None) -> np.ndarray:
    """What the point layer's CPU drawing should paint, one pixel at a time: each point in order, its marker's
    pixels that lie on the canvas blended "over" in premultiplied float32 (an edge opaque on its rim where the set
    has one; an outlined point ringed outside its marker: a white halo of 1 pixel, then 2 of pure red), then the
    straight RGBA bytes the layer puts on the canvas."""
    plain, ringed = marker_mask(diameter, diamond), marker_mask(diameter, diamond, ring=3, halo=1)
    opaque = {"halo": (1, 1, 1, 1), "ring": (1, 0, 0, 1), "rim": None if edge is None else (*edge, 1)}
    pixels = np.zeros((height, width, 4), np.float32)
    for (px, py), color, a, outlined in zip(xy, rgb, alpha, outline):
        keep = 1 - a
        ink = np.array([*(np.float64(color) * (1 - keep)), 1 - keep])
        for dx, dy, part in ringed if outlined else plain:
            x, y = px + dx, py + dy
            if 0 <= x < width and 0 <= y < height:
                mark = opaque.get(part)
                pixels[y, x] = mark if mark is not None else ink + pixels[y, x].astype(np.float64) * keep
    straight = np.zeros_like(pixels)
    drawn = pixels[..., 3] > 0
    straight[drawn, :3] = pixels[drawn, :3] * (255 / pixels[drawn, 3:4].astype(np.float64))
    straight[..., 3] = pixels[..., 3] * 255
    return np.floor(straight).astype(np.int64)


@pytest.mark.parametrize("shape, edge", [("circle", None), ("diamond", "#1a1a1a")])
def test_the_cpu_drawing_blends_each_marker_over_the_last_also_where_the_canvas_cuts_it(browser: Any, shape: str,
                                                                                        edge: str | None) -> None:
    """The point layer's CPU drawing (pointlayer_cpu.js's draw2d, which takes a quicker loop for a marker that lies
    wholly on the canvas) against a pixel-by-pixel reference: markers inside, cut by each edge, off the canvas,
    overlapping, translucent and ringed; round probe points, and diamonds with a dark edge as test points are."""
    width, height, n, diameter = 40, 30, 120, 5
    rng = np.random.default_rng(3)
    xy = np.column_stack([rng.integers(-4, width + 4, n), rng.integers(-4, height + 4, n)])
    xy[:4] = [[0, 0], [width - 1, height - 1], [width - 2, 1], [1, height - 2]]  # cut by the edges
    labels = rng.integers(0, 3, n)
    alpha = rng.integers(40, 256, n)
    outline = (rng.random(n) < 0.2).astype(int) * 255
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    page = browser.new_page()
    try:
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=point_layer_script())
        # codes: pixel centres as data, so the marker's centre is exactly the pixel (x, y) counted from the top
        painted = page.evaluate("""([xy, labels, alpha, outline, palette, width, height, diameter, shape, edge]) => {
            const layer = makePointLayer({webgl: false});
            const codes = new Uint16Array(xy.length * 2);
            xy.forEach(([x, y], i) => { codes[2 * i] = x + 100; codes[2 * i + 1] = height - 1 - y + 100; });
            layer.addSet('points', {n: xy.length, frameCount: 1, frames: () => codes, size: diameter,
                                    limits: [0, 65534, 0, 65534], shape, edge, ring: '#ff0000', halo: '#ffffff'});
            layer.setColors('points', {values: labels, low: -0.5, high: palette.length - 0.5, palette});
            layer.setLooks('points', {alpha: Uint8Array.from(alpha), outline: Uint8Array.from(outline), order: null});
            layer.place(0, 0, width, height, {x0: 100, x1: 100 + width, y0: 99, y1: 99 + height});
            layer.draw(0, 0, 1);
            return Array.from(layer.canvas.getContext('2d').getImageData(0, 0, width, height).data);
        }""", [xy.tolist(), labels.tolist(), alpha.tolist(), outline.tolist(), palette, width, height, diameter,
               shape, edge])
    finally:
        page.close()
    got = np.array(painted).reshape(height, width, 4)
    rgb = np.array([[int(color[k:k + 2], 16) / 255 for k in (1, 3, 5)] for color in palette])[labels]
    edge_rgb = None if edge is None else tuple(int(edge[k:k + 2], 16) / 255 for k in (1, 3, 5))
    want = cpu_splat_reference(xy, rgb, alpha / 255, outline > 0, diameter, width, height, diamond=shape == "diamond",
                               edge=edge_rgb)
    assert (want[..., 3] > 0).sum() > 400 and (want[..., 3] == 0).sum() > 50  # a busy canvas, with gaps
    assert np.array_equal(got[..., 3] > 0, want[..., 3] > 0)
    assert np.abs(got[..., 3] - want[..., 3]).max() <= 1
    # colour bytes go through the canvas's own premultiplied store: the fainter a pixel, the coarser
    opaque_enough = want[..., 3] >= 64
    assert np.abs(got[..., :3] - want[..., :3])[opaque_enough].max() <= 4
