"""Tests for layerlapse.report.page without a browser: packing, the size budget, escaping, errors, no torch.

Everything runs on one real run folder (digits, two layers, PCA maps: no UMAP to wait for), copied where a test
changes it. tests/report/test_report_browser.py drives the page itself in Chromium.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from layerlapse.report import budget as report_budget
from layerlapse.report import content as report_content
from layerlapse.report import pack as report_pack
from layerlapse.report import style as report_style
from layerlapse.report import page as report
from layerlapse.errors import ConfigError, ReportSizeWarning, RunFolderError
from layerlapse.render.figures import common_limits
from layerlapse.measures.dynamics import SampleDynamics
from layerlapse.store.layout import epoch_file
from layerlapse.store.run import RunFolder, load_run

HOSTILE_NAMES = ["</script><img src=x onerror=alert(1)>", "<img src=x onerror=window.__xss=1>",
                 "\"><svg onload=window.__xss=2>", "&lt;b&gt; & 'quotes'"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real run: digits, 2 epochs, layers hidden and flat1, 300 probe and 100 test-probe images."""
    from layerlapse import RunConfig, run_experiment

    out = tmp_path_factory.mktemp("report") / "run"
    run_experiment(RunConfig(dataset="digits", epochs=2, layers=("hidden", "flat1"), probe=300, test_probe=100,
                             map_method="pca", train_subset=600), out, show_progress=False)
    return out


@pytest.fixture
def run(recorded: Path, tmp_path: Path) -> RunFolder:
    """A copy of the recorded run that a test may change."""
    return load_run(shutil.copytree(recorded, tmp_path / "run"))


def page_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def payload_of(run: RunFolder, layers: list[str] | None = None) -> dict:
    """The payload as the written page holds it, every array decoded."""
    return report.page_payload(report.render_page(report_content.read_content(run, layers or run.layers)))


# ---- packing ------------------------------------------------------------------------------------------------------


def test_quantised_coordinates_come_back_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    frames = rng.normal(0.0, 7.0, (4, 500, 2)).astype(np.float32)
    frames[1, 3] = np.nan
    frames[2, 7, 0] = np.inf
    (x0, x1), (y0, y1) = common_limits(list(frames))
    limits = (x0, x1, y0, y1)
    codes = report_pack.quantise(frames, limits)
    assert codes.dtype == np.uint16
    back = report_pack.dequantise(codes, limits)
    finite = np.isfinite(frames).all(axis=-1)
    half_step = np.array([x1 - x0, y1 - y0]) / report_pack.COORD_STEPS / 2
    assert np.all(np.abs(back[finite] - frames[finite]) <= half_step * (1 + 1e-6))
    assert (codes[~finite] == report_pack.NOT_DRAWN).all() and np.isnan(back[~finite]).all()


def test_quantised_codes_span_the_limits() -> None:
    codes = report_pack.quantise(np.array([[0.0, -2.0], [10.0, 2.0], [5.0, 0.0]]), (0.0, 10.0, -2.0, 2.0))
    assert codes.tolist() == [[0, 0], [65534, 65534], [32767, 32767]]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.float32])
def test_packed_arrays_come_back_exactly_from_the_page_s_tags(dtype: type) -> None:
    array = (np.arange(60).reshape(3, 4, 5) * 3).astype(dtype)
    blobs = report_pack.Blobs()
    ref = blobs.array(array)
    assert ref["dtype"] == np.dtype(dtype).name and ref["shape"] == [3, 4, 5] and ref["encoding"] == "gzip"
    page = f'<script type="application/json" id="{report.PAYLOAD_TAG}">{json.dumps({"a": ref})}</script>{blobs.html()}'
    np.testing.assert_array_equal(report.page_payload(page)["a"], array)


def test_frames_stored_as_deltas_come_back_exactly_and_pack_smaller_when_points_hold_still() -> None:
    import gzip

    rng = np.random.default_rng(3)
    codes = rng.integers(0, 65535, (6, 5000, 2), dtype=np.uint16)
    for frame in range(1, 6):  # most points barely move, as in an aligned map
        codes[frame, :4000] = codes[frame - 1, :4000] + rng.integers(0, 3, (4000, 2), dtype=np.uint16)
    codes[3, 10] = report_pack.NOT_DRAWN  # a point a frame does not draw, then drawn again
    codes[4, 10] = 0
    raw = report_pack.delta_planes(codes)
    np.testing.assert_array_equal(report_pack.undo_delta_planes(raw, codes.shape), codes)
    assert len(gzip.compress(raw)) < 0.6 * len(gzip.compress(codes.tobytes()))
    with pytest.raises(ValueError, match="delta_planes packs uint16 frames"):
        report_pack.delta_planes(codes.astype(np.float32))


def test_predictions_pack_to_class_and_confidence_bytes() -> None:
    rng = np.random.default_rng(1)
    frames = [rng.dirichlet(np.ones(10), 200).astype(np.float32) for _ in range(3)]
    predicted, confidence = report_content.pack_predictions(frames)
    assert predicted.dtype == np.uint8 and confidence.dtype == np.uint8 and predicted.shape == (3, 200)
    stacked = np.stack(frames)
    np.testing.assert_array_equal(predicted, stacked.argmax(axis=-1))
    assert np.all(np.abs(confidence / 255 - stacked.max(axis=-1)) <= 0.5 / 255 + 1e-6)


def test_payload_holds_the_run_folder_s_maps_labels_and_predictions(run: RunFolder) -> None:
    data = payload_of(run)
    labels = run.read_array("probe/labels.npy")
    np.testing.assert_array_equal(data["probe"]["labels"], labels)
    for layer in data["layers"]:
        codes = layer["probe"]
        assert codes.shape == (3, len(labels), 2)  # epochs 0..2
        maps = [run.read_array(f"maps/{layer['name']}/{epoch_file(epoch)}") for epoch in range(3)]
        x0, x1, y0, y1 = layer["limits"]
        step = np.array([x1 - x0, y1 - y0]) / report_pack.COORD_STEPS
        assert np.all(np.abs(report_pack.dequantise(codes, layer["limits"]) - np.stack(maps)) <= step)
        tests = layer["test"]
        assert tests.shape == (3, 100, 2)
    predicted = data["probe"]["predicted"]
    np.testing.assert_array_equal(predicted[2], run.predictions(2).argmax(axis=1))
    confusion = data["confusion"]
    assert confusion.shape == (3, 10, 10) and confusion.sum(axis=(1, 2)).tolist() == [300, 300, 300]
    assert np.trace(confusion[2]) == np.sum(predicted[2] == labels)


def test_thumbnails_are_stored_once_in_atlases_of_a_fixed_count(run: RunFolder, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    from PIL import Image

    monkeypatch.setattr(report_pack, "ATLAS_IMAGES", 128)  # 300 probe images: atlases of 128, 128 and 44
    atlases = payload_of(run)["probe"]["atlases"]
    assert atlases["tile"] == [8, 8] and atlases["perAtlas"] == 128 and len(atlases["sheets"]) == 3
    images = run.read_array("probe/images.npy")
    for index in (0, 37, 200, 299):  # atlas index // 128, tile at row (index % 128) // columns
        sheet = np.asarray(Image.open(io.BytesIO(atlases["sheets"][index // 128])))
        row, column = divmod(index % 128, atlases["columns"])
        np.testing.assert_array_equal(sheet[row * 8:(row + 1) * 8, column * 8:(column + 1) * 8], images[index])


# ---- the page -----------------------------------------------------------------------------------------------------


def test_report_is_one_self_contained_file_written_in_the_run_folder(run: RunFolder) -> None:
    path = report.write_report(run)
    assert path == run.path / "report.html"
    page = page_text(path)
    assert "Bokeh" in page and "layerlapseStart" in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page), "resources must be inlined"
    assert not list(run.path.glob(".report.html.tmp-*"))
    assert "function makePointLayer" in page and 'getContext("webgl"' in page  # the points' own WebGL layer
    assert f'id="{report.PAYLOAD_TAG}"' in page and 'id="layerlapse-blob-0"' in page


def test_report_lists_every_layer_and_writes_elsewhere_when_asked(run: RunFolder, tmp_path: Path) -> None:
    default = run.path / "report.html"
    before = default.stat().st_mtime_ns if default.exists() else None
    only_flat = report.write_report(run, tmp_path / "flat.html", layers=["flat1"])
    assert payload_of(run, ["flat1"])["layers"][0]["name"] == "flat1"
    assert only_flat.is_file() and (default.stat().st_mtime_ns if default.exists() else None) == before
    assert [layer["name"] for layer in payload_of(run)["layers"]] == ["hidden", "flat1"]


def test_page_shows_the_frame_figures_and_the_test_accuracy(run: RunFolder) -> None:
    data = payload_of(run)
    assert data["epochFigures"][0].startswith("epoch 0 (untrained) · probe accuracy")
    assert "validation accuracy" in data["epochFigures"][2]
    assert "trust" in data["layers"][0]["figures"][1] and "vs last frame" in data["layers"][0]["figures"][1]
    page = page_text(report.write_report(run))
    assert f"test accuracy {run.manifest['test']['accuracy']:.4f}" in page


# ---- the size budget ----------------------------------------------------------------------------------------------


def test_over_the_budget_a_stratified_subsample_is_shown_said_and_warned(run: RunFolder, tmp_path: Path) -> None:
    full = report.write_report(run, tmp_path / "full.html").stat().st_size
    content = report_content.read_content(run, run.layers)
    few = len(report.render_page(report_budget.subsample(content, 30)).encode())
    budget_mb = (full + few) / 2 / report_budget.MB  # room for about half of the points
    with pytest.warns(ReportSizeWarning, match=r"showing [\d,]+ of 300 probe points.*size budget") as caught:
        path = report.write_report(run, tmp_path / "small.html", size_budget_mb=budget_mb)
    assert path.stat().st_size <= budget_mb * report_budget.MB
    shown = int(re.search(r"showing ([\d,]+) of 300", str(caught[0].message)).group(1).replace(",", ""))
    assert 0 < shown < 300
    assert f"showing {shown:,} of 300 probe points" in page_text(path)
    assert f"(size budget {budget_mb:g} MB)" in page_text(path)
    assert "raise size_budget_mb" in str(caught[0].message)


def test_subsample_keeps_every_class_in_proportion_and_is_seeded(run: RunFolder) -> None:
    content = report_content.read_content(run, run.layers)
    smaller = report_budget.subsample(content, 150)
    labels = content.probe.labels
    assert len(smaller.probe) == 150
    for label in range(10):
        assert abs(np.sum(smaller.probe.labels == label) - np.sum(labels == label) / 2) <= 1
    assert smaller.test is not None and len(smaller.test) == 50  # the test points in the same share
    again = report_budget.stratified_rows(labels, 150, content.seed)
    np.testing.assert_array_equal(again, report_budget.stratified_rows(labels, 150, content.seed))
    assert not np.array_equal(again, report_budget.stratified_rows(labels, 150, content.seed + 1))
    assert np.all(np.diff(again) > 0)
    np.testing.assert_array_equal(smaller.probe.coords["hidden"], content.probe.coords["hidden"][:, again])
    # the page names each point by its row in the run folder, also in a subsample
    np.testing.assert_array_equal(report.page_payload(report.render_page(smaller))["probe"]["rows"], again)
    assert report.page_payload(report.render_page(content))["probe"]["rows"] is None


def test_a_budget_smaller_than_the_page_itself_is_refused(run: RunFolder, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"size_budget_mb=0.5 is too small for this run.*larger budget"):
        report.write_report(run, tmp_path / "tiny.html", size_budget_mb=0.5)
    with pytest.raises(ConfigError, match="positive number of megabytes"):
        report.write_report(run, tmp_path / "zero.html", size_budget_mb=0)
    assert not (tmp_path / "tiny.html").exists()


# ---- escaping -----------------------------------------------------------------------------------------------------


def test_hostile_class_and_dataset_names_never_appear_as_markup(run: RunFolder) -> None:
    run.manifest["dataset"]["class_names"] = HOSTILE_NAMES + [str(digit) for digit in range(4, 10)]
    run.manifest["dataset"]["name"] = "<script>window.__xss=3</script>"
    run.commit()
    page = page_text(report.write_report(run))
    for raw in ["<img src=x", "<svg onload", "<script>window.__xss", "</script><img"]:
        assert raw not in page
    assert f"<title>layerlapse · {html.escape('<script>window.__xss=3</script>', quote=False)}" in page
    assert payload_of(run)["classNames"][:4] == HOSTILE_NAMES  # the page gets the names themselves, as data


# ---- errors and what is missing ---------------------------------------------------------------------------------


def forget_files(run: RunFolder, prefix: str) -> None:
    for relpath in [relpath for relpath in run.manifest["files"] if relpath.startswith(prefix)]:
        run.forget(relpath)
        (run.path / relpath).unlink()
    run.commit()


def test_a_layer_without_maps_gives_one_line_with_the_fix(run: RunFolder) -> None:
    forget_files(run, "maps/flat1/")
    with pytest.raises(RunFolderError, match=r"has no maps for layer 'flat1': map it with `layerlapse render .*` "
                                             r"first") as error:
        report.write_report(run)
    assert "\n" not in str(error.value)
    assert report.write_report(run, layers=["hidden"]).is_file()


def test_an_unknown_layer_is_named_with_the_recorded_ones(run: RunFolder) -> None:
    with pytest.raises(ConfigError, match=r"^layer 'end' was not recorded in .*: it holds hidden, flat1$"):
        report.write_report(run, layers=["end"])


def test_an_unknown_layer_of_a_run_with_many_layers_is_one_short_line() -> None:
    from layerlapse.errors import not_recorded

    recorded = [f"bert.encoder.layer.{k}.attention.output.dense" for k in range(40)]
    message = str(not_recorded(["bert.encoder.layer.7.attention.output.dens"], recorded, "runs/bert"))
    assert len(message) < 200 and "did you mean 'bert.encoder.layer.7.attention.output.dense'?" in message
    assert message.endswith("it holds 40 layers (manifest.json's \"layers\")")


def test_epochs_not_mapped_yet_are_left_out_and_said(run: RunFolder) -> None:
    for layer in run.layers:
        forget_files(run, f"maps/{layer}/{epoch_file(2)}")
    data = payload_of(run)
    assert data["epochs"] == [0, 1] and data["layers"][0]["probe"].shape[0] == 2
    note = f"epoch 2 is recorded but not mapped yet: `layerlapse render {run.path}` maps them"
    assert note in report_content.read_content(run, run.layers).notes
    assert "epoch 2 is recorded but not mapped yet" in page_text(report.write_report(run))


def test_a_run_without_history_has_no_curves_and_says_so(run: RunFolder) -> None:
    run.manifest["history"] = []
    run.commit()
    page = page_text(report.write_report(run))
    assert "this run has no training history, so the page has no accuracy and loss curves" in page
    assert "layerlapse-accuracy" not in page and "layerlapse-loss" not in page


def test_a_run_without_images_or_test_probe_still_reports(run: RunFolder) -> None:
    forget_files(run, "probe/images.npy")
    forget_files(run, "test/probe/")
    data = payload_of(run)
    assert data["probe"]["atlases"] is None and data["test"] is None
    assert report.write_report(run).is_file()


# ---- no torch ------------------------------------------------------------------------------------------------------


def test_writing_a_report_does_not_import_torch(recorded: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        import layerlapse.report.page
        from layerlapse.store.run import load_run
        layerlapse.report.page.write_report(load_run({str(recorded)!r}), {str(tmp_path / 'r.html')!r})
        assert "torch" not in sys.modules, "torch was imported"
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.html").is_file()


def test_the_contract_names_every_key_the_payload_carries(run: RunFolder) -> None:
    """js/contract.js, the page's data contract, against what the page really carries: neither can drift."""
    from test_report_code import contract_properties

    data = payload_of(run)
    assert set(contract_properties("Payload")) == set(data)
    assert set(contract_properties("PackedPoints")) == set(data["probe"]) == set(data["test"])
    assert set(contract_properties("Atlases")) == set(data["probe"]["atlases"])
    assert set(contract_properties("PayloadLayer")) == set(data["layers"][0])
    assert set(contract_properties("PackedArray")) == set(report_pack.Blobs().array(np.zeros((2, 3), np.uint16),
                                                                                       frames_delta=True))
    assert all(set(measure) <= set(contract_properties("ColorMeasure")) for measure in data["colorBy"])
    # a comparison's strip items carry their caption and title too (tests/comparison holds those)
    assert set(contract_properties("StripItem")) - {"caption", "title"} == set(data["strips"]["hardest"][0])
    assert set(contract_properties("LayerMeasures")) == set(next(iter(data["measures"]["layers"].values())))


# ---- dynamics, the data map, layer measures, compare -------------------------------------------------------------


def test_payload_packs_each_image_s_dynamics_in_one_byte_each(run: RunFolder) -> None:
    from layerlapse.measures.dynamics import cartography_regions, probe_dynamics

    found = probe_dynamics(run)
    packed = payload_of(run)["probe"]["dynamics"]
    assert all(values.dtype == np.uint8 and values.shape == (300,) for values in packed.values())
    assert np.all(np.abs(packed["confidence"] / 255 - found.confidence) <= 0.5 / 255 + 1e-6)
    variability = packed["variability"] / 255 * report_content.VARIABILITY_MAX
    assert np.all(np.abs(variability - found.variability) <= 0.5 / 510 + 1e-6)
    assert np.all(np.abs(packed["correctness"] / 255 - found.correctness) <= 0.5 / 255 + 1e-6)
    np.testing.assert_array_equal(packed["firstLearned"], np.where(found.first_learned < 0, 0, found.first_learned + 1))
    np.testing.assert_array_equal(packed["forgetting"], found.forgetting_events)
    np.testing.assert_array_equal(packed["region"], cartography_regions(found.confidence, found.variability))
    keys = [option["key"] for option in payload_of(run)["colorBy"]]
    assert keys == ["confidence", "variability", "correctness", "firstLearned", "forgetting"]


def test_a_run_whose_images_hold_still_keeps_the_fixed_cut_offs_and_the_report_names_the_same_codes() -> None:
    from layerlapse.measures import dynamics

    confidence = np.array([0.99, 0.80, 0.74, 0.50, 0.26, 0.25, 0.05, 0.90, 0.10])
    variability = np.array([0.01, 0.19, 0.05, 0.30, 0.10, 0.10, 0.02, 0.20, 0.25])
    easy, ambiguous, hard = (dynamics.REGIONS[key] for key in ("easy", "ambiguous", "hard"))
    assert list(dynamics.cartography_regions(confidence, variability)) == [easy, easy, 0, ambiguous, 0, hard, hard,
                                                                           ambiguous, ambiguous]
    assert {key: code for key, (code, _) in report_content.REGIONS.items()} == dynamics.REGIONS


def rising_from_chance(run: RunFolder) -> SampleDynamics:
    """Dynamics of the run's probe as in a run that starts near chance: every image's true class at 0.1 at the first
    trained snapshot, and anywhere from 0.3 to 0.99 at the second, so that most vary by more than 0.2."""
    from layerlapse.measures.dynamics import sample_dynamics

    labels = run.probe_labels()
    probabilities = np.full((2, len(labels), 10), 0.1)
    probabilities[1] = 0.0
    later = np.random.default_rng(5).uniform(0.3, 0.99, len(labels))
    probabilities[1, np.arange(len(labels)), labels] = later
    probabilities[1, np.arange(len(labels)), (labels + 1) % 10] = 1 - later
    return sample_dynamics(probabilities, labels, snapshots=np.array([1, 2]))


def test_the_page_states_the_run_s_regions_counts_them_and_draws_their_borders(run: RunFolder,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import layerlapse.measures.dynamics
    from bokeh.models import Segment

    from layerlapse.measures.dynamics import cartography_regions, region_counts, region_cut_offs

    found = rising_from_chance(run)
    monkeypatch.setattr(layerlapse.measures.dynamics, "probe_dynamics", lambda folder: found)
    cut_offs = region_cut_offs(found.variability)
    counts = region_counts(cartography_regions(found.confidence, found.variability))
    assert cut_offs.follows_the_run  # the run's thirds, not the fixed 0.2
    data = payload_of(run)
    assert data["regionCutOffs"]["definition"] == cut_offs.definition()
    assert data["regionCutOffs"]["counts"] == counts
    np.testing.assert_array_equal(data["probe"]["dynamics"]["region"],
                                  cartography_regions(found.confidence, found.variability))
    options = layout_model(run, "layerlapse-region").options
    assert options[1:] == [("easy", f"easy to learn ({counts['easy']})"),
                           ("ambiguous", f"ambiguous ({counts['ambiguous']})"),
                           ("hard", f"hard to learn ({counts['hard']})")]
    segments = [renderer.data_source.data for renderer in layout_model(run, "layerlapse-data-map").renderers
                if isinstance(renderer.glyph, Segment)]
    upright = {x0 for data in segments for x0, x1 in zip(data["x0"], data["x1"]) if x0 == x1}
    # the run's two cut-offs (as the payload rounds them), and the fixed one they moved past, dotted
    assert upright == {round(cut_offs.ambiguous_from, 4), round(cut_offs.steady_below, 4), 0.2}


def test_test_points_carry_the_figures_colours_and_the_toggle_counts_them(run: RunFolder) -> None:
    from layerlapse.render import figures as render

    data = payload_of(run)
    assert data["marks"] == {"testEdge": render.TEST_EDGE_COLOR, "misclassified": render.MISCLASSIFIED_COLOR,
                             "halo": render.MISCLASSIFIED_HALO_COLOR}
    assert data["testImages"] == run.manifest["test"]["size"] == 360 and data["test"]["n"] == 100
    assert layout_model(run, "layerlapse-show-test").label == "test points (100 of 360)"
    forget_files(run, "test/probe/")
    assert layout_model(run, "layerlapse-show-test").label == "no test points"


def test_subsample_keeps_the_dynamics_with_their_points(run: RunFolder) -> None:
    content = report_content.read_content(run, run.layers)
    smaller = report_budget.subsample(content, 150)
    rows = report_budget.stratified_rows(content.probe.labels, 150, content.seed)
    for name, values in content.probe.dynamics.items():
        np.testing.assert_array_equal(smaller.probe.dynamics[name], values[rows])
    data = report.page_payload(report.render_page(smaller))
    np.testing.assert_array_equal(data["probe"]["dynamics"]["confidence"],
                                  content.probe.dynamics["confidence"][rows])
    # a strip names the page's points: its images the subsample kept, at their place among them
    for item in data["strips"]["hardest"]:
        assert rows[item["i"]] in {row["index"] for row in content.strips["hardest"]}


def test_strips_list_what_layerlapse_dynamics_lists(run: RunFolder) -> None:
    from layerlapse.measures.dynamics import summary

    listed = summary(run, report_content.STRIP_SIZE)
    data = payload_of(run)
    assert [item["i"] for item in data["strips"]["hardest"]] == [row["index"] for row in listed["hardest"]]
    assert [item["i"] for item in data["strips"]["forgotten"]] == [
        row["index"] for row in listed["most_forgotten"] if row["forgetting_events"] > 0]


def layout_model(run: RunFolder, name: str, layers: list[str] | None = None):  # noqa: ANN201
    from bokeh.document import Document

    root = report.build_layout(report_content.read_content(run, layers or run.layers), Document())
    return root.select_one({"name": name})


def test_a_run_without_predictions_colours_by_class_only_and_has_no_data_map(run: RunFolder) -> None:
    forget_files(run, "predictions/")
    content = report_content.read_content(run, run.layers)
    assert content.color_measures == [] and content.probe.dynamics is None and content.strips == {}
    assert [value for value, _ in layout_model(run, "layerlapse-color-by").options] == ["class"]
    page = page_text(report.write_report(run))
    assert "layerlapse-data-map" not in page and "layerlapse-hardest" not in page


def test_predictions_that_do_not_fit_leave_out_the_dynamics_with_a_note(run: RunFolder,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import layerlapse.measures.dynamics

    def unfit(folder: RunFolder) -> None:
        raise RunFolderError(f"run folder {folder.path}: its stored predictions do not fit its probe labels")

    monkeypatch.setattr(layerlapse.measures.dynamics, "probe_dynamics", unfit)
    content = report_content.read_content(run, run.layers)
    assert content.color_measures == [] and content.probe.dynamics is None
    [note] = [note for note in content.notes if "dynamics" in note]
    assert note.startswith("the page has no per-image dynamics (colouring, data map): run folder") and "\n" not in note


def test_a_run_with_one_layer_has_nothing_to_compare_with(run: RunFolder) -> None:
    compare = layout_model(run, "layerlapse-compare", ["hidden"])
    assert compare.options == [("none", "none")] and compare.disabled
    both = layout_model(run, "layerlapse-compare")
    assert both.options == [("none", "none"), ("flat1", "flat1")] and not both.disabled


def hand_made_measures(snapshots: int, layers: list[str]) -> dict:
    """layerlapse.measures.layers.layer_measures's schema, filled by hand."""
    def layer(offset: float) -> dict:
        return {"knn_accuracy": [0.5 + offset] * snapshots, "linear_probe_accuracy": [0.6] * snapshots,
                "cka_to_previous": [None] + [0.9 - offset] * (snapshots - 1),
                "neighbors_kept": [None] + [0.5] * (snapshots - 1),
                "cka": [[1.0 if a == b else 0.8 for b in range(snapshots)] for a in range(snapshots)],
                "largest_change": [{"snapshot": 1, "title": "Epoch 1", "cka_change": 0.41, "neighbors_kept": 0.5},
                                   {"snapshot": 2, "title": "Epoch 2", "cka_change": 0.1, "neighbors_kept": None}],
                "left_out": [0] * snapshots}

    return {"sample_size": 300, "sample_seed": 43, "knn_k": 10, "cka_sample_size": 300,
            "snapshots": list(range(snapshots)), "titles": [f"epoch {s}" for s in range(snapshots)],
            "layer_order": layers, "layers": {name: layer(0.1 * k) for k, name in enumerate(layers)},
            "cka_between_layers": None}


def test_the_layer_measures_reach_the_page_per_frame(run: RunFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    import layerlapse.measures.layers

    monkeypatch.setattr(layerlapse.measures.layers, "layer_measures", lambda folder: hand_made_measures(3, run.layers))
    measures = payload_of(run)["measures"]
    assert measures["knnK"] == 10 and list(measures["layers"]) == ["hidden", "flat1"]
    flat = measures["layers"]["flat1"]
    assert flat["knn"] == pytest.approx([0.6] * 3) and flat["change"][0] is None
    assert flat["change"][1:] == pytest.approx([0.2, 0.2]) and flat["cka"][0] == [1.0, 0.8, 0.8]
    assert measures["layers"]["hidden"]["largest"] == ("hidden changed most at epoch 1 (1 − CKA 0.41), "
                                                       "epoch 2 (1 − CKA 0.10)")
    assert "layerlapse-cka" in page_text(report.write_report(run))


def test_without_layer_measures_the_page_has_no_measures_panel(run: RunFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    import layerlapse.measures.layers

    monkeypatch.setattr(layerlapse.measures.layers, "layer_measures", lambda folder: None)
    assert payload_of(run)["measures"] is None
    page = page_text(report.write_report(run))
    assert "layerlapse-cka" not in page and "layerlapse-measures-source" not in page


def test_the_curves_leave_room_for_the_marker_at_either_end_and_keep_their_legend_off_the_lines(run: RunFolder
                                                                                                ) -> None:
    last = run.epochs_complete
    for name in ("layerlapse-accuracy", "layerlapse-loss"):
        plot = layout_model(run, name)
        assert (plot.x_range.start, plot.x_range.end) == (-0.5, last + 0.5)  # epoch 0 has no point, yet a marker
        assert plot.above and plot.above[-1].orientation == "horizontal"  # the legend, above the plot
        assert not plot.center or all(type(item).__name__ != "Legend" for item in plot.center)


def test_long_class_names_are_shortened_in_the_legend_and_the_confusion_matrix(run: RunFolder) -> None:
    assert report_style.short_name("seven") == "seven"
    assert report_style.short_name("a very long class name indeed") == "a very long cla…"
    assert len(report_style.short_name("x" * 40)) == report_style.CLASS_NAME_CHARS
    run.manifest["dataset"]["class_names"][0] = "the longest class name anyone ever gave"
    legend = layout_model(run, "layerlapse-map").legend[0]
    assert legend.items[0].label.value == "the longest cla…"
    confusion = layout_model(run, "layerlapse-confusion-plot")
    assert confusion.xaxis[0].major_label_overrides[0] == "the longest cla…"
