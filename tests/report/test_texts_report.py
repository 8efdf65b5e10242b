"""Texts of probe items in the report: a small real run recorded with `Recorder(..., texts=...)` (a tiny MLP on random
data, 3 epochs, no images) and its report in Chromium. The hover, the pinned panel, the selection list and the
hardest and most forgotten strips show each item's text, as text: texts made of markup (an <img> with an onerror, a
</script>) show literally and run nothing; the page says "items"; the payload carries the texts in a gzipped blob.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from layerlapse.report.page import page_payload

from browser_helpers import Opened, open_report
from browser_helpers import browser, playwright  # noqa: F401 - fixtures
from run_helpers import recorded_loop

ITEMS = 90
HOSTILE = ['<img src=x onerror="window.__xss=1">', "</script><script>window.__xss=2</script>"]
CLASSES = ["calm", "storm", "<b>fog</b>"]


def item_text(i: int) -> str:
    """Every third item's text is markup meant to run; the others plain words, some long."""
    if i % 3 < 2:
        return f"{HOSTILE[i % 3]} #{i}"
    return f"item {i}: a short sentence about weather " + "and how it changes over the day " * (i % 7)


@dataclass
class TextRun:
    path: Path
    report: Path
    texts: list[str]
    labels: np.ndarray


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> TextRun:
    import torch
    from torch import nn

    from layerlapse import RunConfig

    torch.manual_seed(0)
    x = torch.randn(ITEMS, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    texts = [item_text(i) for i in range(ITEMS)]
    run = recorded_loop(model, x, y, ["0", "2"], tmp_path_factory.mktemp("texts") / "run", epochs=3, steps=4, lr=0.5,
                        texts=texts, class_names=CLASSES, config=RunConfig(map_method="pca"))
    return TextRun(run.path, run.path / "report.html", texts, y.numpy())


@pytest.fixture
def opened(browser: Any, text_run: TextRun) -> Iterator[Opened]:
    opened = open_report(browser, text_run.report)
    yield opened
    opened.page.close()


def shown_texts(opened: Opened, selector: str, point: bool = False) -> list:
    """The textContent (or, with `point`, the point pinned on a click) of every element matching `selector` in the
    page's Divs (their shadow roots included)."""
    return opened.page.evaluate("""([selector, point]) => {
        const found = [];
        (function walk(root) {
            root.querySelectorAll(selector).forEach((el) => found.push(point ? Number(el.dataset.point)
                                                                              : el.textContent));
            root.querySelectorAll("*").forEach((el) => { if (el.shadowRoot) walk(el.shadowRoot); });
        })(document);
        return found;
    }""", [selector, point])


def injected(opened: Opened) -> dict:
    """What markup in the texts would have made: the flag its scripts set, and <img> or <b> elements anywhere."""
    return opened.js("""(() => {
        let images = 0, bold = 0;
        (function walk(root) {
            images += root.querySelectorAll("img").length;
            bold += root.querySelectorAll(".layerlapse-pick b, .layerlapse-pinned-text b, #layerlapse-tooltip b")
                .length;
            root.querySelectorAll("*").forEach((el) => { if (el.shadowRoot) walk(el.shadowRoot); });
        })(document);
        return {xss: typeof window.__xss, images, bold};
    })()""")


def assert_nothing_ran(opened: Opened) -> None:
    assert injected(opened) == {"xss": "undefined", "images": 0, "bold": 0}
    opened.assert_clean()  # no console error, no network request (an injected <img src=x> would ask for x)


def reachable_point(opened: Opened, among: list[int]) -> int:
    """Of `among`, the point drawn farthest from its nearest neighbour at the shown snapshot (the mouse finds it)."""
    xy = np.array(opened.js(f"Array.from({{length: {ITEMS}}}, (_, i) => "
                            "{ const p = window.layerlapse.clientPosition(i); return p ? [p.x, p.y] : [1e9, 1e9]; })"))
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return max(among, key=lambda i: distances[i].min())


def test_the_payload_carries_the_texts_and_the_summary_says_items(text_run: TextRun) -> None:
    page = text_run.report.read_text(encoding="utf-8")
    data = page_payload(page)
    assert json.loads(bytes(data["probe"]["texts"]).decode("utf-8")) == text_run.texts
    assert data["itemWord"] == "items" and data["probe"]["atlases"] is None
    assert f"{ITEMS} probe items" in page
    assert "window.__xss=2</script>" not in page  # the raw text never stands in the page


def test_long_texts_count_in_the_size_budget_and_a_subsample_keeps_each_point_s_text(text_run: TextRun) -> None:
    """Texts weigh in the page's size as images do: past the budget the page shows a subsample (with a warning),
    each shown point with its own text."""
    from layerlapse.errors import ReportSizeWarning
    from layerlapse.report.budget import MB, fit_to_budget
    from layerlapse.report.content import read_content
    from layerlapse.report.page import render_page
    from layerlapse.store.run import load_run

    content = read_content(load_run(text_run.path), ["0", "2"])
    rng = np.random.default_rng(0)
    long_texts = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz <>&\"'"), 1000)) for _ in range(ITEMS)]
    content = dataclasses.replace(content, probe=dataclasses.replace(content.probe, texts=long_texts))
    full = len(render_page(content).encode())
    budget = full - 30_000  # the texts take about 60 kB gzipped: half of them must go
    with pytest.warns(ReportSizeWarning, match="stratified, seeded subsample"):
        page = fit_to_budget(content, budget, budget / MB, render_page)
    data = page_payload(page)
    rows = data["probe"]["rows"]
    assert rows is not None and len(rows) < ITEMS
    assert json.loads(bytes(data["probe"]["texts"]).decode("utf-8")) == [long_texts[int(row)] for row in rows]


def test_a_comparison_of_runs_with_texts_carries_them(text_run: TextRun, tmp_path: Path) -> None:
    from layerlapse.comparison.writing import compare

    page = (compare([text_run.path, text_run.path], tmp_path / "compared") / "report.html").read_text(encoding="utf-8")
    data = page_payload(page)
    assert json.loads(bytes(data["probe"]["texts"]).decode("utf-8")) == text_run.texts
    assert data["itemWord"] == "items" and "window.__xss=2</script>" not in page


def test_hover_pin_selection_and_strips_show_the_texts_as_text(opened: Opened, text_run: TextRun) -> None:
    texts = text_run.texts
    # hover: the text (cut to a few lines), then the item's number and class; no thumbnail without images
    point = reachable_point(opened, [i for i in range(ITEMS) if i % 3 == 0])
    position = opened.js(f"window.layerlapse.clientPosition({point})")
    opened.page.mouse.move(position["x"] - 40, position["y"] - 40)
    opened.page.mouse.move(position["x"], position["y"], steps=3)
    tooltip = opened.page.locator("#layerlapse-tooltip")
    tooltip.wait_for(state="visible", timeout=5_000)
    assert opened.js("document.querySelector('#layerlapse-tooltip .layerlapse-tooltip-text').textContent") == \
        texts[point]
    assert f"probe item #{point}" in tooltip.inner_text()
    assert opened.js("document.querySelector('#layerlapse-tooltip').getBoundingClientRect().width") <= 322
    # pinned: the whole text
    opened.js(f"window.layerlapse.pin({point + 1})")
    assert shown_texts(opened, ".layerlapse-pinned-text") == [texts[point + 1]]
    long_one = max(range(ITEMS), key=lambda i: len(texts[i]))
    opened.js(f"window.layerlapse.pin({long_one})")
    assert shown_texts(opened, ".layerlapse-pinned-text") == [texts[long_one]]
    # a box selection lists the selected items' texts, each a pick that pins its item
    opened.js("window.layerlapse.selectGeometry({type: 'rect', x0: -1e9, x1: 1e9, y0: -1e9, y1: 1e9}, true, 0)")
    listed = shown_texts(opened, ".layerlapse-selection .layerlapse-item-text")
    assert listed == texts[:60]  # the first 60 of the selected, in order
    assert f"{ITEMS} selected" in shown_texts(opened, ".layerlapse-selected-count")[0]
    opened.page.locator(".layerlapse-selection .layerlapse-pick").nth(4).click()
    assert opened.state()["pinned"] == {"set": "probe", "i": 4}
    assert shown_texts(opened, ".layerlapse-pinned-text") == [texts[4]]
    # the strips: a text card per item, the hardest first
    hardest = shown_texts(opened, ".layerlapse-hardest .layerlapse-item-text")
    assert hardest and all(text in texts for text in hardest)
    forgotten = shown_texts(opened, ".layerlapse-forgotten .layerlapse-item-text")
    assert any(hostile in text for text in hardest + forgotten for hostile in HOSTILE)
    points = shown_texts(opened, ".layerlapse-hardest .layerlapse-pick", point=True)
    assert [texts[i] for i in points] == hardest
    assert_nothing_ran(opened)


def test_the_hover_fits_a_phone_wide_window(browser: Any, text_run: TextRun) -> None:
    opened = open_report(browser, text_run.report)
    try:
        opened.page.set_viewport_size({"width": 390, "height": 800})
        long_one = max(range(ITEMS), key=lambda i: len(text_run.texts[i]))
        opened.js(f"window.layerlapse.pin({long_one})")
        point = reachable_point(opened, list(range(ITEMS)))
        position = opened.js(f"window.layerlapse.clientPosition({point})")
        if position["x"] < 390:
            opened.page.mouse.move(position["x"], position["y"], steps=3)
            opened.page.locator("#layerlapse-tooltip").wait_for(state="visible", timeout=5_000)
            box = opened.js("document.querySelector('#layerlapse-tooltip').getBoundingClientRect().toJSON()")
            assert box["left"] >= 0 and box["right"] <= 390
        assert_nothing_ran(opened)
    finally:
        opened.page.close()


def test_the_notebook_widget_shows_the_text_on_hover(browser: Any, text_run: TextRun, tmp_path: Path) -> None:
    """The widget (its own view, the report's decoding) shows the hovered item's text as text, too."""
    pytest.importorskip("anywidget", reason="the notebook extra: pip install 'layerlapse[notebook]'")
    sys.path.insert(0, str(Path(__file__).parents[1] / "notebook"))
    from nb_helpers import WIDGET, open_widget

    from layerlapse.notebook import show

    page, errors = open_widget(browser, show(text_run.path), tmp_path)
    try:
        places = page.evaluate(f"Array.from({{length: {ITEMS}}}, (_, i) => {WIDGET}.clientPosition(i))")
        xy = np.array([[p["x"], p["y"]] if p else [1e9, 1e9] for p in places])
        distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
        np.fill_diagonal(distances, np.inf)
        point = max((i for i in range(ITEMS) if i % 3 < 2), key=lambda i: distances[i].min())  # a hostile text
        page.mouse.move(xy[point][0] - 30, xy[point][1] - 30)
        page.mouse.move(xy[point][0], xy[point][1], steps=3)
        page.wait_for_selector(".layerlapse-widget .layerlapse-tooltip-text", timeout=5_000)
        assert page.evaluate("document.querySelector('.layerlapse-widget .layerlapse-tooltip-text').textContent") \
            == text_run.texts[point]
        assert page.evaluate("[typeof window.__xss, document.querySelectorAll('.layerlapse-widget img').length]") \
            == ["undefined", 0]
        assert errors == []
    finally:
        page.close()
