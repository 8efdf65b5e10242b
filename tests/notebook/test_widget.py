"""The notebook widget in Python: what its model holds (the report's payload, its arrays as bytes), the selection
read back as probe ids and a table, a second reading that never sends the images again, and the one-line errors."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from layerlapse.errors import ConfigError
from layerlapse.report.content import read_content
from layerlapse.report.pack import quantise, undo_delta_planes
from layerlapse.store import layout
from layerlapse.store.run import load_run

pytest.importorskip("anywidget", reason="the notebook extra: pip install 'layerlapse[notebook]'")
pytest.importorskip("pandas", reason="the notebook extra: pip install 'layerlapse[notebook]'")

from layerlapse.notebook import INSTALL_HINT, NotebookError, run_display, show  # noqa: E402

from nb_helpers import EPOCHS, PROBE, TEST_PROBE  # noqa: E402


def decoded(widget, ref: dict) -> np.ndarray:
    raw = widget.arrays[str(ref["blob"])]
    if ref["encoding"] == "gzip":
        raw = gzip.decompress(raw)
        if ref.get("delta"):
            return undo_delta_planes(raw, ref["shape"])
    return np.frombuffer(raw, dtype=np.dtype(ref["dtype"]).newbyteorder("<")).reshape(ref["shape"])


@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_the_model_holds_every_snapshot_of_every_layer_as_bytes(small_run: Path, encoding: str) -> None:
    widget = show(small_run, encoding=encoding)
    data = json.loads(widget.payload)
    assert widget.snapshots == EPOCHS + 1 and data["epochs"] == list(range(EPOCHS + 1))
    assert [layer["name"] for layer in data["layers"]] == ["hidden", "flat1"] and widget.layer == "hidden"
    assert widget.frame == EPOCHS  # the last snapshot first
    content = read_content(load_run(small_run), ["hidden", "flat1"])
    for layer in data["layers"]:
        codes = decoded(widget, layer["probe"])
        assert codes.shape == (EPOCHS + 1, PROBE, 2)
        assert np.array_equal(codes, quantise(content.probe.coords[layer["name"]], content.limits[layer["name"]]))
        assert decoded(widget, layer["test"]).shape == (EPOCHS + 1, TEST_PROBE, 2)
    assert np.array_equal(decoded(widget, data["probe"]["labels"]), content.probe.labels)
    # the thumbnails: PNG atlases, apart from the arrays
    sheets = data["probe"]["atlases"]["sheets"]
    assert all(widget.images[str(sheet)].startswith(b"\x89PNG") for sheet in sheets)
    assert all(isinstance(value, bytes) for value in widget.arrays.values())
    assert len(data["classColors"]) == len(data["classNames"]) == 10


def test_the_selection_comes_back_as_probe_ids_and_a_table(small_run: Path) -> None:
    run = load_run(small_run)
    widget = show(run)
    assert widget.selected.tolist() == [] and len(widget.selection()) == 0
    widget.selected_points = [7, 2, 40]  # as the map's lasso sets them
    assert widget.selected.tolist() == [2, 7, 40]
    table = widget.selection()
    assert list(table.columns[:4]) == ["id", "label", "prediction", "confidence"]
    assert {"mean_confidence", "variability", "correctness", "first_learned", "forgetting_events",
            "never_learned", "unforgettable"} <= set(table.columns)
    names = run.manifest["dataset"]["class_names"]
    labels = run.probe_labels()
    assert table["id"].tolist() == [2, 7, 40]
    assert table["label"].tolist() == [str(names[labels[i]]) for i in (2, 7, 40)]
    probabilities = run.read_array(layout.predictions(EPOCHS))
    assert table["prediction"].tolist() == [str(names[k]) for k in probabilities[[2, 7, 40]].argmax(axis=1)]
    assert np.allclose(table["confidence"], probabilities[[2, 7, 40]].max(axis=1))
    # at an earlier snapshot, the slider's
    widget.frame = 0
    assert widget.shown_snapshot == 0
    first = widget.selection()
    assert np.allclose(first["confidence"], run.read_array(layout.predictions(0))[[2, 7, 40]].max(axis=1))


def test_a_subsample_maps_the_maps_points_back_to_probe_ids(small_run: Path) -> None:
    widget = show(small_run, max_points=50)
    data = json.loads(widget.payload)
    assert data["probe"]["n"] == 50 and any("showing 50 of 200 probe points" in note for note in data["notes"])
    rows = decoded(widget, data["probe"]["rows"])
    widget.selected_points = [0, 49]
    assert widget.selected.tolist() == sorted([int(rows[0]), int(rows[49])])


def test_reading_again_sends_new_arrays_but_never_the_images_again(small_run: Path) -> None:
    widget = show(small_run)
    sent = []
    widget.observe(lambda change: sent.append(change["name"]), names=["images", "arrays", "payload"])
    images = widget.images
    assert widget.refresh() == EPOCHS + 1
    assert "images" not in sent and widget.images is images


def test_showing_a_run_again_reuses_its_thumbnail_atlases(small_run: Path) -> None:
    first, again = show(small_run), show(small_run)
    assert again.images is first.images
    fewer = show(small_run, max_points=50)  # other points: their own atlases
    assert fewer.images is not first.images and len(json.loads(fewer.payload)["probe"]["atlases"]["sheets"]) == 1


def test_a_run_displays_as_the_widget(small_run: Path) -> None:
    data, _ = run_display(load_run(small_run))
    assert "application/vnd.jupyter.widget-view+json" in data


def test_without_anywidget_or_pandas_a_one_line_error_says_how_to_install(small_run: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for package in ("anywidget", "pandas"):
        with monkeypatch.context() as patched:
            patched.setitem(sys.modules, package, None)
            with pytest.raises(NotebookError) as raised:
                show(small_run)
            message = str(raised.value)
            assert message == f"the notebook display needs {package}, which is not installed: {INSTALL_HINT}"
            assert 'pip install "layerlapse[notebook]"' in message and "\n" not in message
            # and a run then displays as its words
            data, _ = run_display(load_run(small_run))
            assert list(data) == ["text/plain"] and "pip install" in data["text/plain"]


@pytest.mark.parametrize(("settings", "words"), [
    ({"max_points": 0}, "max_points must be a positive whole number of probe points, got 0"),
    ({"encoding": "zip"}, "encoding must be one of raw, gzip, got 'zip'"),
    ({"palette": "viridis"}, "palette must be one of tab10, colorblind, got 'viridis'"),
    ({"layers": ["nope"]}, "nope"),
])
def test_bad_settings_are_one_line_errors(small_run: Path, settings: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")) as raised:
        show(small_run, **settings)
    assert "\n" not in str(raised.value)


def test_the_colour_blind_palette_colours_the_classes(small_run: Path, tmp_path: Path) -> None:
    import shutil

    from layerlapse.render.style import COLORBLIND10

    assert json.loads(show(small_run, palette="colorblind").payload)["classColors"] == list(COLORBLIND10)
    # past ten classes it has no colours to give: one line, and the way out
    many = load_run(shutil.copytree(small_run, tmp_path / "many"))
    many.manifest["dataset"]["class_names"] = [f"class {k}" for k in range(12)]
    many.commit()
    with pytest.raises(ConfigError) as raised:
        show(many, palette="colorblind")
    assert str(raised.value) == ("palette 'colorblind' has ten colours and this run has 12 classes: leave palette "
                                 "as 'tab10'")


def test_a_selection_table_refuses_ids_and_snapshots_the_run_has_not(small_run: Path) -> None:
    from layerlapse.notebook.selection import selection_table

    run = load_run(small_run)
    with pytest.raises(ConfigError, match=r"probe ids run from 0 to 199, got 3\.\.200; pass rows of the run's probe"):
        selection_table(run, [3, 200])
    with pytest.raises(ConfigError, match=r"snapshot 9 was not recorded: this run has snapshots 0\.\.2"):
        selection_table(run, [3], snapshot=9)
