"""Tests for the recipe (record → map → draw): what each step reads and writes in the run folder.

One real run on scikit-learn's digits with two recorded layers and a small probe (so UMAP takes seconds) is shared
by the tests; tests that change a run work on a copy of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from layerlapse import RunConfig, load_run, map_run, place_points, render_run, run_experiment
from layerlapse.capture import Recorder
from layerlapse.reference.data import load_dataset
from layerlapse.errors import ConfigError, RunFolderError
from layerlapse.reference.models import build_model
from layerlapse.store.run import RunFolder

CONFIG = RunConfig(dataset="digits", epochs=2, layers=("hidden", "flat1"), probe=300, n_neighbors=15)
FEATURES = {"hidden": 512, "flat1": 128}  # flat1 on 8×8 digits: 32 channels × 2 × 2


def mtimes(folder: Path, under: str) -> dict[str, int]:
    return {path.relative_to(folder).as_posix(): path.stat().st_mtime_ns for path in sorted((folder / under).rglob("*"))
            if path.is_file()}


def unlist(folder: Path, *relpaths: str) -> None:
    """Take files out of a run as if they had never been written: from the manifest and from the disk."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for relpath in relpaths:
        del manifest["files"][relpath]
        (folder / relpath).unlink()
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "run"
    finished = run_experiment(CONFIG, out, show_progress=False)
    assert finished.status == "complete"
    return out


@pytest.fixture
def run_copy(two_layer_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(two_layer_run, copy)
    return copy


# --- what a run holds -----------------------------------------------------------------------------------------------


def test_the_first_layer_draws_the_main_lapse_and_others_draw_under_their_name(two_layer_run: Path) -> None:
    out = two_layer_run
    for frames, gif, train_test in [("frames", "lapse.gif", "figures/train_test.png"),
                                    ("frames/flat1", "lapse_flat1.gif", "figures/train_test_flat1.png")]:
        names = sorted(path.name for path in (out / frames).glob("*.png"))
        assert names == ["epoch_000.png", "epoch_001.png", "epoch_002.png"], frames
        with Image.open(out / gif) as image:
            assert image.n_frames == 3
        assert (out / train_test).is_file()
    assert not (out / "frames/hidden").exists()
    for name in ("samples", "curves", "confusion"):
        assert (out / f"figures/{name}.png").is_file()


@pytest.mark.parametrize("layer", ["hidden", "flat1"])
def test_every_epoch_of_every_layer_is_recorded_and_mapped(two_layer_run: Path, layer: str) -> None:
    run = load_run(two_layer_run)
    for epoch in range(3):
        activations = run.activations(layer, epoch)
        assert activations.shape == (300, FEATURES[layer]) and activations.dtype == np.float16
        xy = run.read_array(f"maps/{layer}/epoch_{epoch:03d}.npy")
        assert xy.shape == (300, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    assert run.read_array(f"test/activations/{layer}.npy").shape == (360, FEATURES[layer])
    assert run.read_array(f"maps/{layer}/test.npy").shape == (360, 2)


def test_the_map_settings_reach_umap_and_the_manifest(two_layer_run: Path) -> None:
    manifest = json.loads((two_layer_run / "manifest.json").read_text())
    assert manifest["maps"]["method"] == "aligned"
    assert manifest["maps"]["n_neighbors"] == 15 and manifest["maps"]["seed"] == 0
    assert manifest["layers"] == ["hidden", "flat1"]
    assert manifest["dataset"]["probe_size"] == 300


@pytest.mark.parametrize("layer", ["hidden", "flat1"])
def test_the_test_set_is_placed_on_the_last_epoch_s_map(two_layer_run: Path, layer: str) -> None:
    run = load_run(two_layer_run)
    test_activations = run.read_array(f"test/activations/{layer}.npy")
    placed = run.read_array(f"maps/{layer}/test.npy")
    on_last = place_points(run.activations(layer, 2), run.read_array(f"maps/{layer}/epoch_002.npy"), test_activations)
    on_first = place_points(run.activations(layer, 0), run.read_array(f"maps/{layer}/epoch_000.npy"), test_activations)
    assert np.array_equal(placed, on_last)
    assert not np.allclose(placed, on_first)


def test_metrics_json_sums_up_the_run(two_layer_run: Path) -> None:
    run = load_run(two_layer_run)
    metrics = json.loads((two_layer_run / "metrics.json").read_text())
    predicted = run.read_array("test/predictions.npy").argmax(axis=1)
    accuracy = float((predicted == run.read_array("test/labels.npy")).mean())
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["test_loss"] == run.manifest["test"]["loss"]
    assert metrics["layers"] == ["hidden", "flat1"] and metrics["probe_size"] == 300 and metrics["epochs"] == 2
    assert metrics["history"] == run.history and len(run.history) == 2


# --- each step on its own -------------------------------------------------------------------------------------------


def test_map_run_on_a_mapped_run_computes_nothing(run_copy: Path) -> None:
    before = mtimes(run_copy, "maps")
    map_run(load_run(run_copy), show_progress=False)
    assert mtimes(run_copy, "maps") == before


def test_map_run_maps_only_what_is_missing_and_gives_the_same_maps(run_copy: Path) -> None:
    missing = ["maps/flat1/epoch_002.npy", "maps/hidden/test.npy"]
    originals = {relpath: (run_copy / relpath).read_bytes() for relpath in missing}
    unlist(run_copy, *missing)
    kept = {relpath: stamp for relpath, stamp in mtimes(run_copy, "maps").items()}
    run = load_run(run_copy)
    map_run(run, show_progress=False)
    for relpath, data in originals.items():
        assert (run_copy / relpath).read_bytes() == data, f"{relpath}: a seeded map is the same map"
        assert run.has(relpath)
    after = mtimes(run_copy, "maps")
    kept.pop("maps/flat1/quality.json")  # the new frame's measures are added to it
    kept.pop("maps/flat1/test/epoch_002.npy")  # and the test probe placed on it again
    assert {relpath: after[relpath] for relpath in kept} == kept
    load_run(run_copy)  # the new files are listed with their checksums


def test_a_missing_frame_is_mapped_again_with_every_frame_after_it(run_copy: Path) -> None:
    later = ["maps/hidden/epoch_001.npy", "maps/hidden/epoch_002.npy"]
    originals = {relpath: (run_copy / relpath).read_bytes() for relpath in later}
    unlist(run_copy, later[0])  # an aligned frame starts from the one before, so epoch 2 is redone after epoch 1
    map_run(load_run(run_copy), show_progress=False)
    for relpath, data in originals.items():
        assert (run_copy / relpath).read_bytes() == data


def test_maps_made_alongside_training_equal_maps_made_afterwards(two_layer_run: Path, run_copy: Path) -> None:
    maps = [f"maps/{layer}/epoch_{epoch:03d}.npy" for layer in FEATURES for epoch in range(3)]
    unlist(run_copy, *maps, "maps/hidden/quality.json", "maps/flat1/quality.json")
    map_run(load_run(run_copy), show_progress=False)
    for relpath in maps:
        assert (run_copy / relpath).read_bytes() == (two_layer_run / relpath).read_bytes(), relpath


@pytest.mark.parametrize("layer", ["hidden", "flat1"])
def test_every_frame_is_measured_and_the_measures_are_stored(two_layer_run: Path, layer: str) -> None:
    quality = load_run(two_layer_run).read_json(f"maps/{layer}/quality.json")
    assert quality["method"] == "aligned" and quality["k"] == 10 and quality["sample_size"] == 3000
    assert sorted(quality["frames"]) == ["0", "1", "2"]
    for epoch, frame in quality["frames"].items():
        assert 0.5 < frame["trustworthiness"] <= 1 and 0.5 < frame["continuity"] <= 1
        assert 0 <= frame["knn_preservation"] <= 1 and frame["seconds"] > 0
        assert all("slow drift" in note for note in frame["notes"])  # nothing worked around
        changes = {"procrustes_disparity", "map_neighbors_kept", "layer_neighbors_kept", "temporal_correlation"}
        assert changes <= set(frame) if epoch != "0" else not changes & set(frame)


def test_each_frame_s_caption_names_the_method_and_its_measures(two_layer_run: Path) -> None:
    from layerlapse.render.captions import frame_caption

    caption = frame_caption(load_run(two_layer_run), "hidden", 2, 300)
    first, second = caption.split("\n")
    assert first.startswith("layer hidden · 300 probe images · map: aligned UMAP (layerlapse) · validation accuracy")
    assert second.startswith("trust 0.") and "vs last frame: map kept" in second


def test_another_method_maps_the_stored_run_again_without_training(run_copy: Path) -> None:
    before = {relpath: (run_copy / relpath).read_bytes() for relpath in ["maps/hidden/epoch_001.npy"]}
    run = load_run(run_copy)
    map_run(run, method="pca", show_progress=False)
    render_run(run, show_progress=False)
    run = load_run(run_copy)
    assert run.manifest["maps"]["method"] == "pca"
    assert run.read_json("maps/hidden/quality.json")["method"] == "pca"
    pca = run.read_array("maps/hidden/epoch_001.npy")
    assert pca.tobytes() != before["maps/hidden/epoch_001.npy"] and np.isfinite(pca).all()
    assert sorted(path.name for path in (run_copy / "maps/hidden").iterdir()) == [
        "epoch_000.npy", "epoch_001.npy", "epoch_002.npy", "quality.json", "test", "test.npy"]


@pytest.mark.parametrize("layer", ["hidden", "flat1"])
def test_the_test_probe_is_placed_on_every_frame_by_the_placement_rule(two_layer_run: Path, layer: str) -> None:
    run = load_run(two_layer_run)
    labels = run.read_array("test/probe/labels.npy")
    assert len(labels) == 360  # digits has 360 test images, fewer than the default 1,000
    for epoch in range(3):
        placed = run.read_array(f"maps/{layer}/test/epoch_{epoch:03d}.npy")
        expected = place_points(run.activations(layer, epoch), run.read_array(f"maps/{layer}/epoch_{epoch:03d}.npy"),
                                run.read_array(f"test/probe/activations/{layer}/epoch_{epoch:03d}.npy"))
        np.testing.assert_array_equal(placed, expected)
        assert run.read_array(f"test/probe/predictions/epoch_{epoch:03d}.npy").shape == (360, 10)


def test_render_run_redraws_every_derived_file(two_layer_run: Path, run_copy: Path) -> None:
    derived = [relpath for relpath in json.loads((run_copy / "manifest.json").read_text())["files"]
               if relpath.startswith(("figures/", "frames/", "lapse", "dynamics/"))
               or relpath in ("metrics.json", "report.html")]
    # samples, curves, confusion, data map; two train_test; three frames, a GIF and an MP4 per layer; the probe's and
    # the test probe's dynamics, the layer measures and their two figures; the layer grid, the side-by-side GIF and
    # MP4 (its frames are not kept); metrics.json; the report
    assert len(derived) == 4 + 2 + 2 * (3 + 2) + 3 + 2 + 3 + 1 + 1
    assert {"figures/layers.png", "lapse_layers.gif", "lapse_layers.mp4"} <= set(derived)
    assert not [path for path in (run_copy / "frames").iterdir() if path.name.startswith(".")]
    for relpath in derived:
        (run_copy / relpath).unlink()
    written = render_run(load_run(run_copy), show_progress=False)
    assert sorted(path.relative_to(run_copy).as_posix() for path in written) == sorted(derived)
    for relpath in derived:
        assert (run_copy / relpath).is_file()
    with Image.open(run_copy / "frames/flat1/epoch_002.png") as redrawn, \
            Image.open(two_layer_run / "frames/flat1/epoch_002.png") as first:
        assert np.array_equal(np.asarray(redrawn.convert("RGB")), np.asarray(first.convert("RGB")))
    assert list(run_copy.rglob(".*.tmp-*")) == []


def test_render_run_without_maps_says_how_to_make_them(run_copy: Path) -> None:
    unlist(run_copy, *[f"maps/flat1/epoch_{epoch:03d}.npy" for epoch in range(3)])
    run = load_run(run_copy)
    pattern = r"has no maps for layer 'flat1': map it with `layerlapse render "
    with pytest.raises(RunFolderError, match=pattern) as caught:
        render_run(run, show_progress=False)
    assert "\n" not in str(caught.value)


def test_a_training_set_too_small_for_the_map_fails_before_training(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"n_neighbors.*40") as caught:
        run_experiment(RunConfig(dataset="digits", epochs=1, train_subset=30), out, show_progress=False)
    assert "\n" not in str(caught.value)
    assert not out.exists()


def test_the_readme_s_own_loop_with_a_run_folder_turns_into_pictures(tmp_path: Path) -> None:
    dataset = load_dataset("digits")
    x_probe = dataset.x_train[:300]
    config = RunConfig(dataset="digits", epochs=2, probe=300, n_neighbors=15)
    run = RunFolder.create(tmp_path / "own", config, {"name": "digits", "class_names": list(dataset.class_names),
                                                      "probe_size": 300})
    torch.manual_seed(0)
    model = build_model((8, 8), 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(dataset.x_train).float().div(255).unsqueeze(1)
    y = torch.from_numpy(dataset.y_train)
    with Recorder(model, layers=["hidden"], probe=x_probe, labels=dataset.y_train[:300], run=run) as rec:
        rec.snapshot(0)
        for epoch in range(1, 3):
            for start in range(0, 300, 100):  # the user's own training loop (a few steps are enough here)
                loss = torch.nn.functional.cross_entropy(model(x[start:start + 100]), y[start:start + 100])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            rec.snapshot(epoch)
    map_run(run, show_progress=False)
    render_run(run, show_progress=False)
    assert sorted(path.name for path in (tmp_path / "own/frames").glob("*.png")) == \
        ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert (tmp_path / "own/lapse.gif").is_file()



def test_mapping_alongside_training_uses_the_method_the_run_was_recorded_with(tmp_path: Path) -> None:
    from layerlapse.recipe.mapping import MapAlongside
    from layerlapse.reference.train import record_run

    config = RunConfig(dataset="digits", epochs=1, probe=300, n_neighbors=15, map_method="pca", test_probe=0)
    alongside = MapAlongside("aligned")  # as a resumed command's own default would ask
    try:
        run = record_run(config, str(tmp_path / "run"), show_progress=False, on_epoch=alongside)
        alongside.finish(run, show_progress=False)
    finally:
        alongside.stop()
    assert run.manifest["maps"]["method"] == "pca"
    assert run.has("maps/hidden/epoch_000.npy") and run.has("maps/hidden/epoch_001.npy")
    assert not run.has("test/probe/labels.npy")  # --test-probe 0 records none
