"""The comparison's page in Chromium (network blocked): both runs' maps side by side under one slider, hover seen
on both, one selection on both, CKA between the runs that follows the slider and the layers shown, colourings by
what differs, each checked against measures.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser_helpers import Opened, open_report
from browser_helpers import browser, playwright  # noqa: F401 - fixtures
from layerlapse import compare
from layerlapse.store.run import RunFolder


@pytest.fixture(scope="module")
def seeds(seed0: RunFolder, seed1: RunFolder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compare([seed0.path, seed1.path], tmp_path_factory.mktemp("seeds-page") / "out")


@pytest.fixture(scope="module")
def opened(browser: Any, seeds: Path) -> Iterator[Opened]:  # noqa: F811 - the fixture
    opened = open_report(browser, seeds / "report.html")
    yield opened
    opened.page.close()


def measured(seeds: Path) -> dict:
    return json.loads((seeds / "measures.json").read_text())


def test_the_page_opens_with_both_runs_side_by_side_and_no_error(opened: Opened) -> None:
    state = opened.state()
    assert state["layer"] == "A · hidden" and state["compare"] == "B · hidden"
    assert state["layers"] == ["A · hidden", "A · flat1", "B · hidden", "B · flat1"]
    assert state["drawn"] == state["compareDrawn"] == 300
    assert opened.js("window.layerlapse.comparison().runs") == ["A", "B"]
    opened.assert_clean()


def test_one_slider_moves_both_maps_and_the_cka_between_the_runs(opened: Opened, seeds: Path) -> None:
    cka = measured(seeds)["pairs"][0]["cka"]["per_snapshot"]
    for epoch in (0, 2, 1):
        opened.js(f"window.layerlapse.setEpoch({epoch})")
        opened.page.wait_for_function(f"window.layerlapse.state().panelsEpoch === {epoch}")
        state = opened.state()
        assert state["paintedEpoch"] == epoch and state["compareDrawn"] == 300
        shown = opened.js("window.layerlapse.comparison()")
        assert shown["cka"] == pytest.approx(cka[epoch][0][0], abs=1e-4)
        assert f"snapshot {epoch}" in shown["table"] and f"{cka[epoch][0][0]:.2f}" in shown["table"]
    opened.js("window.layerlapse.setCompare('B · flat1')")
    opened.page.wait_for_function("window.layerlapse.comparison().layers[1] === 1")
    assert opened.js("window.layerlapse.comparison().cka") == pytest.approx(cka[1][0][1], abs=1e-4)
    opened.js("window.layerlapse.setCompare('B · hidden')")
    opened.assert_clean()


def test_the_pair_curves_are_the_measures_over_the_snapshots(opened: Opened, seeds: Path) -> None:
    pair = measured(seeds)["pairs"][0]
    opened.page.wait_for_function("window.layerlapse.comparison().curves.cka.length === 3")
    curves = opened.js("window.layerlapse.comparison().curves")
    assert curves["cka"] == pytest.approx([frame[0][0] for frame in pair["cka"]["per_snapshot"]], abs=1e-4)
    assert curves["overlap"] == pytest.approx(pair["neighbour_overlap"][0]["mean_per_snapshot"], abs=1e-6)
    assert curves["both"] == pytest.approx([share["both_right"] for share in pair["agreement"]], abs=1e-9)
    assert curves["same"] == pytest.approx([share["same_prediction"] for share in pair["agreement"]], abs=1e-9)


def test_hovering_a_point_rings_it_on_the_other_run_s_map(opened: Opened) -> None:
    opened.js("window.layerlapse.setEpoch(2)")
    point = 7
    position = opened.js(f"window.layerlapse.clientPosition({point}, 'probe', 0)")
    opened.page.mouse.move(position["x"] - 40, position["y"] - 40)
    opened.page.mouse.move(position["x"], position["y"], steps=4)
    opened.page.locator("#layerlapse-tooltip").wait_for(state="visible", timeout=5_000)
    text = opened.page.locator("#layerlapse-tooltip").inner_text()
    assert "A: predicted" in text and "B: predicted" in text
    assert opened.state()["hoverRings"] == [0, 1]
    opened.page.mouse.move(2, 2)
    opened.page.wait_for_function("window.layerlapse.state().hoverRings[1] === 0")


def test_a_selection_is_one_on_both_maps_and_says_how_each_run_fares(opened: Opened, seeds: Path) -> None:
    opened.js("window.layerlapse.select([0, 1, 2, 3, 4])")
    for k in (0, 1):
        drawn = opened.js(f"window.layerlapse.points({k})")
        alpha = dict(zip(drawn["point"], drawn["alpha"]))
        assert min(alpha[i] for i in range(5)) > max(alpha[i] for i in range(5, 300))
    text = opened.js("Bokeh.documents[0].get_model_by_name('layerlapse-selection').text")
    assert "5 selected" in text and "A " in text and " of 5" in text
    opened.js("window.layerlapse.select(null)")
    opened.assert_clean()


def test_colouring_by_agreement_and_overlap_follows_the_snapshot(opened: Opened, seeds: Path, seed0: RunFolder,
                                                                  seed1: RunFolder) -> None:
    with np.load(seeds / "items.npz", allow_pickle=False) as items:
        overlap, labels = items["pair0_1_overlap_0_0"], items["labels"]
        predicted = [items["run0_predicted"], items["run1_predicted"]]
    assert {"agreement", "overlap", "learnedBy", "learnedLater"} <= set(opened.state()["colorOptions"])
    opened.js("window.layerlapse.setColorBy('overlap')")
    for epoch in (1, 2):
        opened.js(f"window.layerlapse.setEpoch({epoch})")
        drawn = opened.js("window.layerlapse.points(0)")
        values = dict(zip(drawn["point"], drawn["value"]))
        assert [values[i] for i in range(20)] == pytest.approx(list(overlap[epoch][:20] / 10))
    opened.js("window.layerlapse.setColorBy('agreement')")
    drawn = opened.js("window.layerlapse.points(1)")
    right = [predicted[k][2] == labels for k in (0, 1)]
    expected = np.where(right[0] & right[1], 0, np.where(right[0], 1, np.where(right[1], 2, 3)))
    values = dict(zip(drawn["point"], drawn["value"]))
    assert [values[i] for i in range(300)] == list(expected)
    with np.load(seeds / "items.npz", allow_pickle=False) as items:
        forgotten = items["run1_forgetting_events"].astype(int) - items["run0_forgetting_events"]
    opened.js("window.layerlapse.setColorBy('forgottenMore')")
    drawn = opened.js("window.layerlapse.points(0)")
    values = dict(zip(drawn["point"], drawn["value"]))
    assert [values[i] for i in range(300)] == list(forgotten)
    opened.js("window.layerlapse.setColorBy('class')")
    opened.assert_clean()


def test_the_strips_list_the_items_the_runs_disagree_on(opened: Opened, seeds: Path) -> None:
    ranked = measured(seeds)["ranked_items"]
    for name in ("disagree", "leftOnly", "rightOnly"):
        text = opened.js(f"Bokeh.documents[0].get_model_by_name('layerlapse-{name}').text")
        assert text.count("layerlapse-pick") == len(ranked[name]) or (not ranked[name] and "none in this run" in text)
    opened.assert_clean()


def test_each_map_rings_its_own_run_s_misclassified(opened: Opened, seeds: Path) -> None:
    with np.load(seeds / "items.npz", allow_pickle=False) as items:
        wrong = [items[f"run{k}_predicted"][1] != items["labels"] for k in (0, 1)]
    assert (wrong[0] != wrong[1]).any()  # the seeds err on other items: the test can tell the maps apart
    opened.js("window.layerlapse.setEpoch(1)")
    opened.page.get_by_text("highlight misclassified").click()
    opened.page.wait_for_function("window.layerlapse.points(0).outline.some((v) => v > 0)")
    for k in (0, 1):
        drawn = opened.js(f"window.layerlapse.points({k})")
        ringed = {point for point, outline in zip(drawn["point"], drawn["outline"]) if outline}
        assert ringed == set(np.flatnonzero(wrong[k]).tolist())
    figures = opened.js("Bokeh.index.query_one((view) => view.model === Bokeh.documents[0]"
                        ".get_model_by_name('layerlapse-figures')).el.shadowRoot.textContent")
    assert f"{int(wrong[0].sum())} of the page's 300 probe points misclassified by A" in figures
    assert f"{int(wrong[1].sum())} of the page's 300 probe points misclassified by B" in figures
    opened.page.get_by_text("highlight misclassified").click()
    opened.assert_clean()
