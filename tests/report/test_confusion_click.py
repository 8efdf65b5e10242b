"""Asking the report's confusion matrix: a small real run (a tiny MLP on random data, recorded with the Recorder) and
its report in Chromium, network blocked. A mouse click on a cell selects exactly the probe items of its true class
that the run predicted as its class at the shown snapshot (held to the run folder's own arrays, at two snapshots);
the selection's heading says what was chosen, class names as text; the slider keeps the items as chosen; the same
cell again, or a click off the cells, lets go; the keyboard reaches the cells too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser_helpers import Opened, open_report
from browser_helpers import browser, playwright  # noqa: F401 - fixtures
from run_helpers import recorded_loop

ITEMS, EPOCHS = 160, 4
CLASSES = ["calm", "storm", "<img src=x onerror=window.__xss=1>", "fog & mist"]
CONFUSION = "Bokeh.index.query_one((view) => view.model.name === 'layerlapse-confusion-plot')"


@dataclass
class ConfusionRun:
    report: Path
    labels: np.ndarray
    predicted: dict[int, np.ndarray]  # snapshot → the run's predicted class of each probe item


@pytest.fixture(scope="module")
def confusion_run(tmp_path_factory: pytest.TempPathFactory) -> ConfusionRun:
    import torch
    from torch import nn

    from layerlapse import RunConfig
    from layerlapse.store.run import load_run

    torch.manual_seed(0)
    x = torch.randn(ITEMS, 8)
    y = (x[:, 0] > 0).long() * 2 + (x[:, 1] > 0).long()  # four classes, learned in part over a few epochs
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, len(CLASSES)))
    run = load_run(recorded_loop(model, x, y, ["0", "2"], tmp_path_factory.mktemp("confusion") / "run",
                                 epochs=EPOCHS, steps=2, lr=0.2, class_names=CLASSES,
                                 config=RunConfig(map_method="pca")).path)
    return ConfusionRun(run.path / "report.html", np.asarray(run.probe_labels()),
                        {epoch: np.asarray(run.predictions(epoch)).argmax(axis=1) for epoch in range(EPOCHS + 1)})


@pytest.fixture
def opened(browser: Any, confusion_run: ConfusionRun) -> Iterator[Opened]:
    opened = open_report(browser, confusion_run.report)
    opened.js(f"{CONFUSION}.el.scrollIntoView({{block: 'center'}})")
    yield opened
    opened.page.close()


def show_snapshot(opened: Opened, epoch: int) -> None:
    """The slider at `epoch`, and the panels beside the map drawn for it (they follow once the slider rests)."""
    opened.js(f"window.layerlapse.setEpoch({epoch})")
    opened.page.wait_for_function(f"window.layerlapse.state().panelsEpoch === {epoch}", timeout=5_000)


def click_cell(opened: Opened, true: int, predicted: int) -> None:
    """A real mouse click at the cell's centre on the screen."""
    position = opened.js(f"window.layerlapse.confusionCellPosition({true}, {predicted})")
    opened.page.mouse.click(position["x"], position["y"])


def cell_items(run: ConfusionRun, epoch: int, true: int, predicted: int) -> list[int]:
    return np.flatnonzero((run.labels == true) & (run.predicted[epoch] == predicted)).tolist()


def confused_cell(run: ConfusionRun, epoch: int, other_than: tuple[int, int] | None = None) -> tuple[int, int]:
    """The cell off the diagonal with the most items at a snapshot (the diagonal's fullest where none is off it)."""
    counts = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    np.add.at(counts, (run.labels, run.predicted[epoch]), 1)
    if other_than is not None:
        counts[other_than] = -1
    off = counts - np.diag(np.diag(counts) + 10**6)
    t, p = np.unravel_index(np.argmax(off if off.max() > 0 else counts), counts.shape)
    return int(t), int(p)


def heading(opened: Opened) -> str:
    return opened.page.locator(".layerlapse-selected-count").inner_text()


def marked_cells(opened: Opened) -> dict:
    """The cells the matrix outlines: the chosen one and the keyboard's."""
    return opened.js("""(() => {
        const doc = Bokeh.documents[0], data = (name) => doc.get_model_by_name(name).data;
        const cells = (source) => Array.from(source.x, (x, k) => [source.y[k], x]);
        return {chosen: cells(data("layerlapse-confusion-chosen")), cursor: cells(data("layerlapse-confusion-cursor"))};
    })()""")


# ---- the tests --------------------------------------------------------------------------------------------------


def test_a_cell_selects_its_items_at_the_shown_snapshot_and_the_slider_keeps_them(
        opened: Opened, confusion_run: ConfusionRun, tmp_path: Path) -> None:
    assert opened.js("window.layerlapse.snapshots()") == EPOCHS + 1
    assert opened.state()["selected"] is None and marked_cells(opened)["chosen"] == []
    first = 1
    show_snapshot(opened, first)
    t, p = confused_cell(confusion_run, first)
    expected = cell_items(confusion_run, first, t, p)
    assert expected, "the run should have items in the chosen cell"
    click_cell(opened, t, p)
    state = opened.state()
    assert state["selected"] == expected
    assert state["selectedCell"] == {"true": t, "predicted": p, "epoch": first}
    assert marked_cells(opened)["chosen"] == [[t, p]]
    said = f"true {CLASSES[t]} → predicted {CLASSES[p]} at epoch {first}: {len(expected)} "
    assert heading(opened).startswith(said)
    # the selection is highlighted on the map: the selected drawn opaque, the others faded
    drawn = opened.js("window.layerlapse.points(0)")
    alpha = dict(zip(drawn["point"], drawn["alpha"]))
    assert min(alpha[i] for i in expected) > max(alpha[i] for i in set(alpha) - set(expected))

    # the slider moves on: the same items stay selected, as chosen at the first snapshot
    show_snapshot(opened, EPOCHS)
    assert opened.state()["selected"] == expected and heading(opened).startswith(said)

    # at the last snapshot, another cell: exactly its items there
    t2, p2 = confused_cell(confusion_run, EPOCHS, other_than=(t, p))
    expected2 = cell_items(confusion_run, EPOCHS, t2, p2)
    assert expected2
    click_cell(opened, t2, p2)
    state = opened.state()
    assert state["selected"] == expected2
    assert state["selectedCell"] == {"true": t2, "predicted": p2, "epoch": EPOCHS}
    assert heading(opened).startswith(f"true {CLASSES[t2]} → predicted {CLASSES[p2]} at epoch {EPOCHS}: "
                                      f"{len(expected2)} ")
    opened.page.screenshot(path=str(tmp_path / "confusion_click.png"))

    # the same cell again lets go
    click_cell(opened, t2, p2)
    assert opened.state()["selected"] is None and opened.state()["selectedCell"] is None
    assert marked_cells(opened)["chosen"] == []
    opened.assert_clean()


def test_off_the_cells_lets_go_and_class_names_show_as_text(opened: Opened, confusion_run: ConfusionRun) -> None:
    hostile = CLASSES.index("<img src=x onerror=window.__xss=1>")
    epoch = next(e for e in range(EPOCHS + 1) if cell_items(confusion_run, e, hostile, hostile))
    show_snapshot(opened, epoch)
    click_cell(opened, hostile, hostile)
    assert opened.state()["selected"] == cell_items(confusion_run, epoch, hostile, hostile)
    assert f"true {CLASSES[hostile]} → predicted {CLASSES[hostile]}" in heading(opened)  # literally, as text
    assert opened.js("window.__xss") is None
    # a click on the matrix off its cells (on the axis' labels, left of the first column) lets go
    position = opened.js("window.layerlapse.confusionCellPosition(0, 0)")
    canvas = opened.js(f"{CONFUSION}.canvas_view.el.getBoundingClientRect().left")
    opened.page.mouse.click(canvas + opened.js(f"{CONFUSION}.frame.bbox.left") / 2, position["y"])
    assert opened.state()["selected"] is None
    opened.assert_clean()


def test_the_keyboard_reaches_the_cells(opened: Opened, confusion_run: ConfusionRun, tmp_path: Path) -> None:
    show_snapshot(opened, EPOCHS)
    opened.js(f"{CONFUSION}.canvas_view.events_el.focus()")
    keyboard = opened.page.keyboard
    keyboard.press("ArrowDown")  # from the first cell: true 1, predicted 0
    keyboard.press("ArrowRight")  # true 1, predicted 1
    assert marked_cells(opened)["cursor"] == [[1, 1]]
    opened.page.screenshot(path=str(tmp_path / "confusion_keyboard.png"))
    keyboard.press("Enter")
    assert opened.state()["selected"] == (cell_items(confusion_run, EPOCHS, 1, 1) or None)
    assert opened.state()["selectedCell"] == ({"true": 1, "predicted": 1, "epoch": EPOCHS}
                                             if cell_items(confusion_run, EPOCHS, 1, 1) else None)
    keyboard.press("Escape")
    assert opened.state()["selected"] is None
    assert opened.js(f"{CONFUSION}.canvas_view.events_el.getAttribute('aria-label')").startswith("confusion matrix")
    opened.assert_clean()
