"""Per-sample dynamics against their definitions on hand-made cases (dataset cartography, forgetting events)."""

import json

import numpy as np
import pytest

from layerlapse.measures.dynamics import NOT_YET, sample_dynamics


def probabilities_from(right: list[list[int]], true_probability: list[list[float]] | None = None,
                       classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Snapshots × images of right (1) or wrong (0), as probabilities with label 0 for every image: a right image
    gives class 0 the stated probability (default 0.8), a wrong one gives class 1 the larger share."""
    right = np.asarray(right, dtype=bool)
    t, n = right.shape
    p = np.zeros((t, n, classes))
    given = np.where(right, 0.8, 0.2) if true_probability is None else np.asarray(true_probability)
    p[:, :, 0] = given
    p[:, :, 1] = 1 - given
    assert ((p.argmax(axis=2) == 0) == right).all()
    return p.astype(np.float16), np.zeros(n, dtype=np.int64)


def test_forgetting_events_first_learned_and_learned_from() -> None:
    # columns: images; rows: snapshots 1..5
    right = [[0, 1, 0, 1, 0],
             [1, 0, 0, 1, 1],
             [0, 1, 0, 1, 1],
             [1, 0, 0, 1, 1],
             [1, 1, 0, 1, 1]]
    p, labels = probabilities_from(right)
    d = sample_dynamics(p, labels, snapshots=np.arange(1, 6))
    np.testing.assert_array_equal(d.forgetting_events, [1, 2, 0, 0, 0])
    np.testing.assert_array_equal(d.first_learned, [2, 1, NOT_YET, 1, 2])
    np.testing.assert_array_equal(d.learned_from, [4, 5, NOT_YET, 1, 2])
    np.testing.assert_array_equal(d.never_learned, [False, False, True, False, False])
    np.testing.assert_array_equal(d.unforgettable, [False, False, False, True, True])
    np.testing.assert_allclose(d.correctness, [3 / 5, 3 / 5, 0, 1, 4 / 5])


def test_an_image_wrong_at_the_last_snapshot_has_not_stayed_learned() -> None:
    p, labels = probabilities_from([[1], [1], [0]])
    d = sample_dynamics(p, labels)
    assert d.first_learned[0] == 0 and d.learned_from[0] == NOT_YET and d.forgetting_events[0] == 1


def test_confidence_and_variability_are_the_mean_and_population_std_of_the_true_class() -> None:
    true = [[0.9, 0.2], [0.6, 0.3], [0.3, 0.4]]
    p, labels = probabilities_from([[1, 0], [1, 0], [0, 0]], true_probability=true)
    d = sample_dynamics(p, labels)
    expected = np.asarray(true, dtype=np.float16).astype(np.float64)
    np.testing.assert_allclose(d.confidence, expected.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(d.variability, expected.std(axis=0, ddof=0), rtol=1e-6)


def test_labels_pick_each_images_own_class() -> None:
    p = np.array([[[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]])  # one snapshot, two images
    d = sample_dynamics(p, np.array([1, 2]))
    np.testing.assert_allclose(d.confidence, [0.7, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(d.correctness, [1.0, 0.0])
    np.testing.assert_array_equal(d.never_learned, [False, True])


def test_the_fields_are_plain_arrays_for_an_npz_without_pickle(tmp_path) -> None:
    p, labels = probabilities_from([[1, 0], [0, 1]])
    arrays = sample_dynamics(p, labels).as_arrays()
    np.savez(tmp_path / "d.npz", **arrays)
    with np.load(tmp_path / "d.npz", allow_pickle=False) as loaded:
        assert set(loaded.files) == set(arrays)


@pytest.mark.parametrize("shape, labels, message", [
    ((4, 3), [0, 0, 0, 0], "must be (snapshots, images, classes)"),
    ((2, 4, 3), [0, 0, 0], "4 images have predictions but (3,) labels were given"),
    ((2, 2, 3), [0, 3], "labels must be class indices 0..2"),
    ((0, 2, 3), [0, 1], "no snapshots"),
])
def test_shapes_that_do_not_fit_are_refused_with_the_fix(shape, labels, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sample_dynamics(np.full(shape, 1 / 3), np.asarray(labels))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A real run folder: a tiny digits run, trained for two epochs."""
    from layerlapse.config import RunConfig
    from run_helpers import recorded_and_drawn
    from layerlapse.store.run import load_run

    path = tmp_path_factory.mktemp("dynamics") / "run"
    config = RunConfig(dataset="digits", epochs=2, probe=300, test_probe=0, map_method="pca")
    recorded_and_drawn(config, path)
    return load_run(path)


def test_a_stored_runs_dynamics_leave_out_the_untrained_snapshot(digits_run) -> None:
    from layerlapse.measures.dynamics import probe_dynamics

    run = digits_run
    d = probe_dynamics(run)
    np.testing.assert_array_equal(d.snapshots, [1, 2])
    stacked = np.stack([run.predictions(1), run.predictions(2)])
    expected = sample_dynamics(stacked, run.probe_labels(), snapshots=np.array([1, 2]))
    np.testing.assert_array_equal(d.forgetting_events, expected.forgetting_events)
    np.testing.assert_allclose(d.confidence, expected.confidence)
    assert len(d.confidence) == 300


def test_the_dynamics_command_lists_the_hardest_and_most_forgotten_images(digits_run) -> None:
    import json
    import subprocess
    import sys

    from layerlapse.measures.dynamics import cartography_regions, probe_dynamics, region_counts, region_cut_offs

    command = [sys.executable, "-m", "layerlapse", "dynamics", str(digits_run.path), "--top", "3"]
    table = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "hardest" in table.stdout and "most forgotten" in table.stdout and "latest learned" in table.stdout
    found = json.loads(subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=120).stdout)
    d = probe_dynamics(digits_run)
    assert found["images"] == 300 and found["snapshots"] == [1, 2]
    assert [row["index"] for row in found["hardest"]] == list(np.argsort(d.confidence, kind="stable")[:3])
    assert found["never_learned"] == int(d.never_learned.sum())
    assert found["regions"]["counts"] == region_counts(cartography_regions(d.confidence, d.variability))
    assert found["regions"]["definition"] == region_cut_offs(d.variability).definition()
    assert max(row["forgetting_events"] for row in found["most_forgotten"]) == int(d.forgetting_events.max())
    assert [row["snapshot"] for row in found["largest_change"]["hidden"]] in ([1, 2], [2, 1])
    measured = json.loads((digits_run.path / "dynamics" / "layers.json").read_text())["layers"]["hidden"]
    assert found["layer_accuracy"]["hidden"]["knn_accuracy"] == measured["knn_accuracy"][-1]
    assert f"layer hidden at Epoch 2: k-NN accuracy {measured['knn_accuracy'][-1]:.3f} (k = 10)" in table.stdout


def test_the_dynamics_command_refuses_a_bad_top_and_a_run_without_trained_predictions(digits_run, tmp_path) -> None:
    import shutil
    import subprocess
    import sys

    from cli_helpers import assert_error

    command = [sys.executable, "-m", "layerlapse", "dynamics"]
    assert_error(subprocess.run([*command, str(digits_run.path), "--top", "0"], capture_output=True, text=True,
                                timeout=120), r"--top must be at least 1, got 0")
    # the same run with its trained snapshots' predictions unlisted: as a user's run that recorded only activations
    copy = tmp_path / "run"
    shutil.copytree(digits_run.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"] = {key: value for key, value in manifest["files"].items()
                         if not key.startswith("predictions/") or key.endswith("epoch_000.npy")}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    for name in ("epoch_001.npy", "epoch_002.npy"):
        (copy / "predictions" / name).unlink()
    assert_error(subprocess.run([*command, str(copy)], capture_output=True, text=True, timeout=120),
                 r"fewer than two trained snapshots with stored predictions, so there are no dynamics: record at "
                 r"least two")
    # render still draws everything else, and says once why there is no data map
    from layerlapse.recipe.steps import render_run
    from layerlapse.store.run import load_run

    (copy / "figures" / "data_map.png").unlink()
    (copy / "dynamics" / "probe.npz").unlink()
    run = load_run(copy)
    with run.writing():
        for name in ("figures/data_map.png", "dynamics/probe.npz"):
            run.forget(name)
        run.commit()
    written = [path.name for path in render_run(run, show_progress=False)]
    run.close()
    assert "curves.png" in written and "data_map.png" not in written and "probe.npz" not in written


def test_render_stores_the_dynamics_without_pickle_and_draws_the_data_map(digits_run) -> None:
    from PIL import Image

    from layerlapse.measures.dynamics import probe_dynamics

    run = digits_run
    assert "dynamics/probe.npz" in run.manifest["files"] and "figures/data_map.png" in run.manifest["files"]
    with np.load(run.path / "dynamics" / "probe.npz", allow_pickle=False) as stored:
        expected = probe_dynamics(run)
        for name, values in expected.as_arrays().items():
            np.testing.assert_array_equal(stored[name], values)
    assert Image.open(run.path / "figures" / "data_map.png").size == (800, 704)


def test_predictions_that_do_not_fit_the_labels_are_a_one_line_run_folder_error(digits_run, tmp_path) -> None:
    import shutil

    from layerlapse.measures.dynamics import probe_dynamics
    from layerlapse.errors import RunFolderError
    from layerlapse.store.run import load_run

    copy = tmp_path / "run"
    shutil.copytree(digits_run.path, copy)
    run = load_run(copy)
    with run.writing():
        for index in (1, 2):  # scores for 3 classes where the probe has 10
            run.write_array(f"predictions/epoch_{index:03d}.npy", np.full((300, 3), 1 / 3, dtype=np.float32))
        run.commit()
    with pytest.raises(RunFolderError, match=r"its stored probe predictions do not fit its labels, so there are no "
                                             r"per-image dynamics \(labels must be class indices 0..2"):
        probe_dynamics(run)
    run.close()


# ---- the data map's regions, on hand-made runs whose answer is known -----------------------------------------------


SNAPSHOTS = 15


def run_of(*groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (snapshots × images × 2 classes, label 0) from groups of true-class probability curves, each
    group (snapshots × images)."""
    true = np.concatenate(groups, axis=1)
    return np.stack([true, 1 - true], axis=2), np.zeros(true.shape[1], dtype=np.int64)


def steady(level: float, n: int, seed: int = 0) -> np.ndarray:
    """n images whose true class's probability stays near `level` at every snapshot."""
    noise = np.random.default_rng(seed).normal(0, 0.01, (SNAPSHOTS, n))
    return np.clip(level + noise, 0.001, 0.999)


def swinging(n: int) -> np.ndarray:
    """n images right and wrong by turns (0.9, 0.1, 0.9, ...), each starting at its own phase."""
    t = np.arange(SNAPSHOTS)[:, None] + np.arange(n)[None, :]
    return np.where(t % 2 == 0, 0.9, 0.1)


def rising_from_chance(learned_at: np.ndarray) -> np.ndarray:
    """Images whose true class's probability rises from chance (0.1) to 0.99, each about its own snapshot."""
    t = np.arange(SNAPSHOTS)[:, None]
    return 0.1 + 0.89 / (1 + np.exp(-1.5 * (t - np.asarray(learned_at)[None, :])))


def regions_of(probabilities: np.ndarray, labels: np.ndarray) -> tuple[list[str], object]:
    from layerlapse.measures.dynamics import REGIONS, cartography_regions, region_cut_offs

    found = sample_dynamics(probabilities, labels)
    names = {code: name for name, code in REGIONS.items()} | {0: "none"}
    cut_offs = region_cut_offs(found.variability)
    return [names[int(code)] for code in cartography_regions(found.confidence, found.variability)], cut_offs


def test_a_run_whose_images_hold_still_keeps_the_fixed_cut_offs() -> None:
    p, labels = run_of(steady(0.95, 40), steady(0.05, 20, seed=1), swinging(10), steady(0.5, 5, seed=2))
    regions, cut_offs = regions_of(p, labels)
    assert regions == ["easy"] * 40 + ["hard"] * 20 + ["ambiguous"] * 10 + ["none"] * 5
    assert (cut_offs.ambiguous_from, cut_offs.steady_below) == (0.2, 0.2) and not cut_offs.follows_the_run
    assert cut_offs.definition() == ("ambiguous = variability ≥ 0.200; easy / hard to learn = variability < 0.200 "
                                     "and confidence ≥ 0.75 / ≤ 0.25: fixed cut-offs, as only 10 of the 75 images "
                                     "(13%) vary by ≥ 0.2")


def test_a_run_rising_from_chance_puts_no_more_than_half_its_images_in_one_region() -> None:
    from layerlapse.measures.dynamics import AMBIGUOUS_VARIABILITY, region_counts

    learned_at = np.random.default_rng(0).uniform(0.5, 6.0, 200)  # the demo's: most learned in the first epochs
    p, labels = run_of(rising_from_chance(np.sort(learned_at)), steady(0.05, 6))
    found = sample_dynamics(p, labels)
    assert (found.variability >= AMBIGUOUS_VARIABILITY).mean() > 0.85  # what the fixed cut-off called ambiguous
    regions, cut_offs = regions_of(p, labels)
    counts = region_counts(np.array([{"none": 0, "easy": 1, "ambiguous": 2, "hard": 3}[r] for r in regions]))
    assert max(counts.values()) <= len(regions) / 2, counts
    assert regions[:20] == ["easy"] * 20  # learned first: confidently right over the run
    assert regions[180:200] == ["ambiguous"] * 20  # learned last: swung from wrong to right
    assert regions[200:] == ["hard"] * 6  # never learned
    assert cut_offs.follows_the_run and cut_offs.ambiguous_from > cut_offs.steady_below > AMBIGUOUS_VARIABILITY
    assert cut_offs.definition().endswith("vary by ≥ 0.2, the fixed cut-off, so the cut-offs follow the run's own "
                                          "thirds of variability, as dataset cartography selects by thirds")
    assert f"{int((found.variability >= 0.2).sum())} of the 206 images" in cut_offs.definition()


def test_a_run_whose_images_all_swing_calls_them_all_ambiguous_and_says_so() -> None:
    p, labels = run_of(swinging(30))
    regions, cut_offs = regions_of(p, labels)
    assert regions == ["ambiguous"] * 30
    assert "30 of the 30 images (100%) vary by ≥ 0.2" in cut_offs.definition()


def test_a_run_whose_images_nearly_all_swing_states_it_beside_the_thirds() -> None:
    swing = np.random.default_rng(4).uniform(0.30, 0.40, 30)  # each image swings by its own ± around 0.5
    p, labels = run_of(0.5 + (swinging(30) - 0.5) / 0.4 * swing[None, :])
    regions, cut_offs = regions_of(p, labels)
    assert regions.count("ambiguous") == 10  # the run's most varying third
    assert "30 of the 30 images (100%) vary by ≥ 0.2, the fixed cut-off" in cut_offs.definition()


@pytest.mark.parametrize("confidence, variability, message", [
    ([0.5, 0.5], [0.1], "confidence has 2 images but variability 1: pass the two measures of the same images"),
    ([0.5, 1.5], [0.1, 0.1], r"confidence must lie in \[0, 1\] \(it is computed from probabilities\), found 1.5"),
    ([0.5], [0.7], r"variability must lie in \[0, 0.5\] \(it is computed from probabilities\), found 0.7"),
    ([[0.5]], [0.1], r"confidence must be one value per image, shape \(n,\), got \(1, 1\)"),
])
def test_regions_of_measures_that_do_not_fit_are_refused_with_the_fix(confidence, variability, message) -> None:
    from layerlapse.measures.dynamics import cartography_regions

    with pytest.raises(ValueError, match=message):
        cartography_regions(np.asarray(confidence), np.asarray(variability))
