"""Find a point, keep a selection, share a view: a small real run (digits, the built-in loop, PCA maps) and a small
own-loop run with texts, their reports in Chromium, network blocked. The find box finds an item by its index, its
dataset index, its class, its prediction and its words, and pins it; a selection downloads as CSV with the rows the
page shows (held to the run folder's own arrays) and copies its ids; kept under a name, it comes back, after a reload
too; the address holds the view, a link reopens it, and a malformed or hostile fragment is ignored safely.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from browser_helpers import Opened, open_report
from browser_helpers import browser, playwright  # noqa: F401 - fixtures
from run_helpers import recorded_loop

EPOCHS = 3  # the digits run's (conftest.py)
DigitsRun = Any  # conftest.py's: the run, its report and its arrays
HOSTILE = "<img src=x onerror=window.__xss=1>"


@pytest.fixture
def opened(browser: Any, digits: DigitsRun) -> Iterator[Opened]:
    opened = open_report(browser, digits.report, permissions=["clipboard-read", "clipboard-write"])
    yield opened
    opened.page.close()


def type_in_find(opened: Opened, query: str, enter: bool = True) -> None:
    """As a reader does: "/" puts the cursor in the find box, the query is typed, Enter pins the first match."""
    opened.page.mouse.click(5, 5)  # the page, not a field, has the focus
    opened.page.keyboard.press("/")
    opened.page.keyboard.press("Control+A")
    opened.page.keyboard.type(query)
    if enter:
        opened.page.keyboard.press("Enter")
    else:
        opened.page.wait_for_timeout(400)  # find runs once the keys rest


def heading(opened: Opened) -> str:
    return opened.page.locator(".layerlapse-selected-count").inner_text()


def note(opened: Opened) -> str:
    return opened.page.locator(".layerlapse-keep-note").inner_text()


# ---- find --------------------------------------------------------------------------------------------------------


def test_find_pins_an_item_by_its_index_and_by_its_dataset_index(opened: Opened, digits: DigitsRun) -> None:
    type_in_find(opened, "#12")
    state = opened.state()
    assert state["pinned"] == {"set": "probe", "i": 12} and state["selected"] == [12]
    assert heading(opened).startswith("find “#12”: 1 selected")
    assert state["trail"] == EPOCHS + 1  # pinned: its trail drawn
    # the pinned panel and the hover name the item by its index and its place in the dataset
    assert f"dataset #{digits.dataset_index[12]}" in opened.js(
        "Bokeh.index.query_one((v) => v.model.name === 'layerlapse-pinned').el.shadowRoot.textContent")

    type_in_find(opened, f"dataset:{digits.dataset_index[57]}")
    assert opened.state()["pinned"] == {"set": "probe", "i": 57} and opened.state()["selected"] == [57]

    type_in_find(opened, "#5000")  # past the probe: said, nothing selected
    assert opened.state()["selected"] is None
    assert note(opened) == "find: no probe item #5000 on this page (its indices run 0–199)"
    opened.assert_clean()


def test_find_selects_a_class_and_a_prediction_at_the_shown_snapshot(opened: Opened, digits: DigitsRun) -> None:
    type_in_find(opened, "true:3", enter=False)  # typing: selected, nothing pinned
    threes = np.flatnonzero(digits.labels == 3).tolist()
    assert opened.state()["selected"] == threes and opened.state()["pinned"] is None
    opened.page.keyboard.press("Enter")  # Enter pins the first
    assert opened.state()["pinned"] == {"set": "probe", "i": threes[0]}

    # "the 3s predicted as 5 at snapshot 1": the run's own predictions there
    opened.js("window.layerlapse.setEpoch(1)")
    predicted = digits.predictions[1].argmax(axis=1)
    wanted = np.flatnonzero((digits.labels == 3) & (predicted == 5)).tolist()
    type_in_find(opened, "true:3 predicted:5", enter=False)
    assert opened.state()["selected"] == (wanted or None)
    wrong = np.flatnonzero(predicted != digits.labels).tolist()
    type_in_find(opened, "is:wrong", enter=False)
    assert opened.state()["selected"] == (wrong or None)

    type_in_find(opened, "true:elephant")
    assert opened.state()["selected"] is None
    assert note(opened).startswith("find: no class is named “elephant” (the classes: 0, 1, 2, 3, 4, 5, …)")
    opened.assert_clean()


def test_what_is_typed_is_shown_as_text_and_never_run(opened: Opened) -> None:
    type_in_find(opened, HOSTILE)
    assert opened.state()["selected"] is None
    assert HOSTILE in note(opened)  # literally
    assert opened.js("window.__xss") is None
    assert opened.js("document.querySelectorAll('img[src=x]').length") == 0
    opened.assert_clean()


# ---- keep ---------------------------------------------------------------------------------------------------------


def test_a_selection_downloads_as_csv_with_the_rows_the_page_shows(opened: Opened, digits: DigitsRun) -> None:
    opened.js("window.layerlapse.setEpoch(2)")
    type_in_find(opened, "true:7", enter=False)
    sevens = np.flatnonzero(digits.labels == 7).tolist()
    with opened.page.expect_download() as download:
        opened.page.get_by_role("button", name="⤓ CSV").click()
    assert download.value.suggested_filename == "selection-hidden-epoch2.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [int(row["probe_index"]) for row in rows] == sevens
    probabilities = digits.predictions[2]
    for row in rows:
        i = int(row["probe_index"])
        assert int(row["dataset_index"]) == digits.dataset_index[i]
        assert row["true_class"] == digits.names[digits.labels[i]] == "7"
        assert row["predicted_class_epoch_2"] == digits.names[probabilities[i].argmax()]
        # the page keeps confidence to 1/255, as its hover shows it
        assert abs(float(row["confidence"]) - probabilities[i].max()) <= 1 / 255 + 1e-3
        assert int(row["correct"]) == int(probabilities[i].argmax() == 7)
        assert row["x_hidden"] and row["y_hidden"] and "forgetting_events" in row and "mean_confidence" in row
        float(row["x_hidden"]), float(row["y_hidden"])  # numbers, never quoted as text
    # as the page shows them: the same rows the heading counts
    assert heading(opened).startswith(f"find “true:7”: {len(sevens)} selected")
    assert note(opened) == f"downloaded {len(sevens)} rows as selection-hidden-epoch2.csv"
    opened.assert_clean()


def test_a_selection_copies_its_ids_and_is_kept_under_a_name(opened: Opened, digits: DigitsRun) -> None:
    type_in_find(opened, "true:0", enter=False)
    zeros = np.flatnonzero(digits.labels == 0).tolist()
    opened.page.get_by_role("button", name="copy ids").click()
    opened.page.wait_for_function("window.layerlapse.state().note !== null")
    assert opened.js("navigator.clipboard.readText()") == ", ".join(map(str, zeros))
    assert note(opened) == f"copied {len(zeros)} probe indices"

    # named and kept: Enter in the name box
    name_box = opened.page.get_by_placeholder("name it (Enter: keep)")
    name_box.fill(f"zeros {HOSTILE}")
    name_box.press("Enter")
    opened.js("window.layerlapse.select(null)")
    assert opened.state()["selected"] is None
    kept = opened.js("Bokeh.documents[0].get_model_by_name('layerlapse-kept').options")
    assert [label for _, label in kept][1:] == [f"zeros {HOSTILE} ({len(zeros)})"]
    # chosen again, after the page is opened again (kept in this browser): the same items
    opened.page.reload()
    opened.page.wait_for_function("window.layerlapseReady === true")
    opened.page.locator("select").filter(has_text="kept selections").select_option(
        label=f"zeros {HOSTILE} ({len(zeros)})")
    assert opened.state()["selected"] == zeros
    assert heading(opened).startswith(f"kept “zeros {HOSTILE}”: {len(zeros)} selected")
    assert opened.js("window.__xss") is None
    opened.assert_clean()


# ---- share --------------------------------------------------------------------------------------------------------


def test_the_address_holds_the_view_and_a_link_reopens_it(browser: Any, opened: Opened, digits: DigitsRun) -> None:
    layerlapse = "window.layerlapse"
    opened.js(f"{layerlapse}.setLayer('flat1'); {layerlapse}.setCompare('pool2'); {layerlapse}.setEpoch(1);"
              f"{layerlapse}.setColorBy('forgetting'); {layerlapse}.setPalette('colorblind');"
              f"{layerlapse}.select([4, 5, 6, 9, 150]); {layerlapse}.pin(9)")
    opened.page.wait_for_function("location.hash.includes('pin=9')")
    fragment = opened.js("location.hash")
    assert fragment == ("#s=1&layer=flat1&compare=pool2&color=forgetting&palette=colorblind&sel=4-6.9.150"
                        "&pin=9")
    shown = opened.state()

    again = open_report(browser, digits.report, fragment=fragment)
    state = again.state()
    for key in ("epoch", "layer", "compare", "colorBy", "palette", "selected", "pinned"):
        assert state[key] == shown[key], key
    assert state["selectionLabel"] == "from the link"
    # a link pasted into the open page's address bar: the page follows it
    again.js("location.hash = '#s=3&layer=hidden'")
    again.page.wait_for_function("window.layerlapse.state().layer === 'hidden'")
    assert again.state()["epoch"] == 3
    again.assert_clean()
    again.page.close()
    opened.assert_clean()


HOSTILE_FRAGMENTS = [
    "#layer=" + quote(HOSTILE) + "&compare=" + quote("</script><script>window.__xss=1</script>"),
    "#s=-1&sel=9-3&pin=abc&color=constructor&palette=__proto__",
    "#s=99999999&sel=0-999999999&pin=test99999",
    "#%E0%A4%A&&==&s=%ZZ",
    "#sel=" + ".".join(["1"] * 30_000),  # past the longest fragment read
    "#" + quote("javascript:window.__xss=1"),
    "#palette=colorblind&palette=tab10&wrong=2&test=yes&sel=1-2.x",
]


@pytest.mark.parametrize("fragment", HOSTILE_FRAGMENTS, ids=range(len(HOSTILE_FRAGMENTS)))
def test_a_malformed_or_hostile_fragment_is_ignored_safely(browser: Any, digits: DigitsRun, fragment: str) -> None:
    opened = open_report(browser, digits.report, fragment=fragment)
    state = opened.state()
    assert state["layer"] == "hidden" and state["compare"] is None and state["epoch"] == EPOCHS
    assert state["selected"] is None and state["pinned"] is None and state["colorBy"] == "class"
    assert opened.js("window.__xss") is None
    assert opened.js("document.querySelectorAll('img[src=x]').length") == 0
    opened.assert_clean()
    opened.page.close()


# ---- find by words ---------------------------------------------------------------------------------------------


def test_find_searches_the_items_texts(browser: Any, tmp_path: Path) -> None:
    import torch
    from torch import nn

    from layerlapse import RunConfig

    torch.manual_seed(0)
    x = torch.randn(60, 6)
    y = (x[:, 0] > 0).long()
    texts = [f"{'Storm' if k % 3 == 0 else 'calm'} day {k} {HOSTILE if k == 4 else ''}" for k in range(60)]
    run = recorded_loop(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)), x, y, ["0"], tmp_path / "run",
                        epochs=2, steps=2, lr=0.2, texts=texts, class_names=["low", "high"],
                        config=RunConfig(map_method="pca"))
    opened = open_report(browser, run.path / "report.html")
    type_in_find(opened, "storm", enter=False)  # case ignored
    assert opened.state()["selected"] == [k for k in range(60) if k % 3 == 0]
    type_in_find(opened, "high", enter=False)  # a class's whole name: its items
    assert opened.state()["selected"] == np.flatnonzero(y.numpy() == 1).tolist()
    type_in_find(opened, "onerror")  # a text's words are found, and shown as text
    assert opened.state()["selected"] == [4] and opened.state()["pinned"] == {"set": "probe", "i": 4}
    assert opened.js("window.__xss") is None
    opened.assert_clean()
    opened.page.close()
