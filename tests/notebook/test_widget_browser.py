"""The widget's view in Chromium, without Jupyter (nb_helpers.standalone_page: its ES module with a stand-in for
anywidget's model): it draws the points with the report's point layer, a lasso drawn with the mouse selects the
points inside it and saves them to the model, the slider and the kernel move the snapshot, hover shows the
thumbnail and a click pins the trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="the notebook extra: pip install 'layerlapse[notebook]'")

from nb_helpers import (CHROMIUM, PROBE, QUIET, SOFTWARE_WEBGL, WIDGET, browser_or_skip, inside,  # noqa: E402
                        open_widget)

from layerlapse.notebook import show  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[*QUIET, *SOFTWARE_WEBGL])
        yield browser
        browser.close()




@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_the_view_draws_and_a_lasso_selects_the_points_inside(browser: Any, small_run: Path, tmp_path: Path,
                                                             encoding: str) -> None:
    page, errors = open_widget(browser, show(small_run, encoding=encoding), tmp_path)
    state = page.evaluate(f"{WIDGET}.state()")
    assert state["frames"] == 3 and state["frame"] == 2 and state["total"] == PROBE and state["layer"] == "hidden"
    assert page.evaluate(f"{WIDGET}.paintedPixels()") > 500
    box = page.evaluate(f"{WIDGET}.mapBox()")
    left, top, width, height = box["left"], box["top"], box["width"], box["height"]
    lasso = [(left + width * 0.1, top + height * 0.1), (left + width * 0.7, top + height * 0.2),
             (left + width * 0.5, top + height * 0.9), (left + width * 0.15, top + height * 0.6)]
    page.locator(".layerlapse-tool").select_option("lasso")
    page.mouse.move(*lasso[0])
    page.mouse.down()
    for corner in [*lasso[1:], lasso[0]]:
        page.mouse.move(*corner, steps=8)
    page.mouse.up()
    saved = page.evaluate("window.saved.at(-1).selected_points")
    places = page.evaluate(f"Array.from({{length: {PROBE}}}, (_, i) => {WIDGET}.clientPosition(i))")
    expected = [i for i, xy in enumerate(places) if xy and inside(lasso, xy["x"], xy["y"])]
    assert saved and len(saved) > 10
    # the mouse's path is the lasso, its steps straight lines between the corners: a point on the edge may fall
    # either way by a fraction of a pixel
    assert len(set(saved) ^ set(expected)) <= 2, (saved, expected)
    assert page.evaluate(f"{WIDGET}.state().selected") == saved
    assert errors == []


def test_slider_kernel_hover_and_trail(browser: Any, small_run: Path, tmp_path: Path) -> None:
    page, errors = open_widget(browser, show(small_run), tmp_path)
    page.locator(".layerlapse-widget input[type=range]").fill("1")
    assert page.evaluate(f"{WIDGET}.state().frame") == 1
    assert page.evaluate("window.saved.at(-1).frame") == 1
    page.evaluate("window.model.change('frame', 0)")  # the kernel sets widget.frame = 0
    page.wait_for_function(f"{WIDGET}.state().paintedFrame === 0")
    page.evaluate("window.model.change('layer', 'flat1')")
    assert page.evaluate(f"{WIDGET}.state().layer") == "flat1"
    page.evaluate("window.model.change('selected_points', [3, 4])")
    assert page.evaluate(f"{WIDGET}.state().selected") == [3, 4]
    where = page.evaluate(f"{WIDGET}.clientPosition(5)")
    page.mouse.move(where["x"], where["y"])
    page.wait_for_selector(".layerlapse-widget img.layerlapse-thumbnail", timeout=5_000)
    page.mouse.click(where["x"], where["y"])
    pinned = page.evaluate(f"{WIDGET}.state().pinned")
    assert pinned is not None
    # colouring by a measure of the dynamics, the test points, and playing the snapshots: each still draws
    painted = page.evaluate(f"{WIDGET}.paintedPixels()")
    page.locator(".layerlapse-color-by").select_option("confidence")
    assert page.evaluate(f"{WIDGET}.state().colorBy") == "confidence" and page.evaluate(f"{WIDGET}.paintedPixels()")
    page.locator(".layerlapse-show-test").check()
    assert page.evaluate(f"{WIDGET}.state().testShown")
    assert page.evaluate(f"{WIDGET}.paintedPixels()") > painted * 0.5
    page.locator(".layerlapse-play").click()
    page.wait_for_function(f"!{WIDGET}.state().playing && {WIDGET}.state().frame === 2", timeout=10_000)
    assert errors == []


def test_with_webgl_a_reading_again_draws_on_new_buffers(browser: Any, small_run: Path, tmp_path: Path) -> None:
    """The shaders (forced: SwiftShader would have the CPU draw): a refresh from the kernel gives the old set's
    buffers back and draws from the new ones."""
    page, errors = open_widget(browser, show(small_run), tmp_path, "#renderer=webgl")
    assert page.evaluate(f"{WIDGET}.state().renderer") == "webgl"
    painted = page.evaluate(f"{WIDGET}.paintedPixels()")
    assert painted > 500
    page.evaluate("window.model.change('arrays', window.model.get('arrays'))")  # as refresh() sends them
    page.wait_for_timeout(300)
    assert page.evaluate(f"{WIDGET}.paintedPixels()") == painted
    assert errors == []
