"""Layer measures over a real run folder: each figure against the measure computed another way on the same rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from layerlapse.store import layout
from layerlapse.errors import ConfigError
from layerlapse.measures.representation import linear_cka, measure_sample, probe_accuracies


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory):
    """A tiny digits run recording two layers for three epochs (test probe on), drawn by the pipeline."""
    from layerlapse.config import RunConfig
    from run_helpers import recorded_and_drawn
    from layerlapse.store.run import load_run

    path = tmp_path_factory.mktemp("measures") / "run"
    config = RunConfig(dataset="digits", epochs=3, probe=300, test_probe=100, map_method="pca",
                       layers=("hidden", "end"))
    recorded_and_drawn(config, path)
    return load_run(path)


def _copy(run, tmp_path):
    from layerlapse.store.run import load_run

    shutil.copytree(run.path, tmp_path / "run")
    return load_run(tmp_path / "run")


def test_every_measure_matches_its_definition_on_the_stored_sample(two_layer_run) -> None:
    from layerlapse.measures.layers import measure_run

    run = two_layer_run
    measured = measure_run(run)
    sample = measure_sample(300, run.config.seed)
    assert measured["sample_size"] == 300 and measured["cka_sample_size"] == 300 and measured["knn_k"] == 10
    assert measured["snapshots"] == [0, 1, 2, 3] and measured["layer_order"] == ["hidden", "end"]
    labels = run.probe_labels()[sample]
    for layer in ("hidden", "end"):
        found = measured["layers"][layer]
        rows = [run.activations(layer, s)[sample].astype(np.float32) for s in range(4)]
        for s in range(4):
            expected = probe_accuracies(rows[s], labels, run.config.seed)
            assert found["knn_accuracy"][s] == expected["knn_accuracy"]
            assert found["linear_probe_accuracy"][s] == expected["linear_probe_accuracy"]
            for t in range(4):  # one Gram-matrix product against the feature-space formula, pair by pair
                assert found["cka"][s][t] == pytest.approx(linear_cka(rows[s], rows[t]), abs=2e-5)
        assert found["cka_to_previous"][0] is None
        assert found["cka_to_previous"][1:] == [found["cka"][s - 1][s] for s in range(1, 4)]
        assert found["neighbors_kept"][1:] == [run.frame_measures(layer, s)["layer_neighbors_kept"]
                                               for s in range(1, 4)]
        changes = found["largest_change"]
        assert [c["cka_change"] for c in changes] == sorted((c["cka_change"] for c in changes), reverse=True)
        assert {c["snapshot"] for c in changes} == {1, 2, 3}
        assert found["left_out"] == [0, 0, 0, 0]
    between = np.array(measured["cka_between_layers"])
    assert between.shape == (4, 2, 2)
    for s in range(4):
        assert between[s, 0, 1] == pytest.approx(linear_cka(run.activations("hidden", s)[sample],
                                                            run.activations("end", s)[sample]), abs=2e-5)
        assert between[s, 0, 1] == between[s, 1, 0] and between[s, 0, 0] == pytest.approx(1.0)


def test_render_stores_the_measures_and_names_what_changed_when(two_layer_run) -> None:
    run = two_layer_run
    assert {layout.DYNAMICS_LAYERS, layout.DYNAMICS_TEST_PROBE} <= set(run.manifest["files"])
    stored = json.loads((run.path / layout.DYNAMICS_LAYERS).read_text())
    metrics = json.loads((run.path / layout.METRICS).read_text())
    assert metrics["layer_measures"] == stored
    assert metrics["what_changed_when"] == {layer: stored["layers"][layer]["largest_change"]
                                            for layer in ("hidden", "end")}
    from layerlapse.measures.dynamics import sample_dynamics

    stacked = np.stack([run.read_array(layout.test_probe_predictions(s)) for s in (1, 2, 3)])
    expected = sample_dynamics(stacked, run.labels(layout.TEST_PROBE_LABELS), snapshots=np.array([1, 2, 3]))
    with np.load(run.path / layout.DYNAMICS_TEST_PROBE, allow_pickle=False) as test_probe:
        assert test_probe["confidence"].shape == (100,)
        for name, values in expected.as_arrays().items():  # the test probe's own predictions and labels
            np.testing.assert_array_equal(test_probe[name], values)


def test_the_stored_measures_are_reused_only_while_they_fit_the_run(two_layer_run, tmp_path, monkeypatch) -> None:
    from layerlapse.measures import layers as measures

    run = _copy(two_layer_run, tmp_path)
    stored = measures.layer_measures(run)
    monkeypatch.setattr(measures, "measure_run", lambda *args, **kwargs: pytest.fail("measured again"))
    assert measures.layer_measures(run) == stored
    monkeypatch.undo()
    with run.writing():  # measures of another run's snapshots are not this run's
        run.write_json(layout.DYNAMICS_LAYERS, {**stored, "snapshots": [0, 1]})
        run.commit()
    assert measures.layer_measures(run)["snapshots"] == [0, 1, 2, 3]
    assert measures.layer_measures(run, sample_size=120)["sample_size"] == 120
    run.close()


def test_rows_that_are_not_finite_are_left_out_and_counted(two_layer_run, tmp_path) -> None:
    from layerlapse.measures.layers import measure_run

    run = _copy(two_layer_run, tmp_path)
    broken = run.activations("hidden", 2).astype(np.float32)
    broken[[5, 17]] = np.nan
    with run.writing():
        run.write_array(layout.activations("hidden", 2), broken)
        run.commit()
    found = measure_run(run)["layers"]["hidden"]
    assert found["left_out"] == [0, 0, 2, 0] and found["cka_left_out"] == 2
    keep = np.ones(300, bool)
    keep[[5, 17]] = False
    for s, t in ((0, 3), (1, 2), (2, 3)):  # every pair leaves the same rows out, also where both are finite
        x, y = (run.activations("hidden", e).astype(np.float32)[keep] for e in (s, t))
        assert found["cka"][s][t] == pytest.approx(linear_cka(x, y), abs=2e-5)
    assert found["knn_accuracy"][2] == probe_accuracies(broken, run.probe_labels(), run.config.seed)["knn_accuracy"]
    run.close()


def test_a_layer_of_one_column_and_a_constant_layer_are_measured(two_layer_run, tmp_path) -> None:
    from layerlapse.measures.layers import measure_run

    run = _copy(two_layer_run, tmp_path)
    with run.writing():
        for s in range(4):
            column = run.activations("end", s).astype(np.float32)[:, :1]
            run.write_array(layout.activations("end", s), column if s else np.zeros_like(column))
        run.commit()
    found = measure_run(run)["layers"]["end"]
    assert found["cka"][0] == [None, None, None, None]  # a constant representation has no CKA
    assert found["cka"][1][1] == pytest.approx(1.0) and 0.0 <= found["cka"][1][2] <= 1.0
    assert 0.0 <= found["knn_accuracy"][3] <= 1.0 and 0.0 <= found["linear_probe_accuracy"][3] <= 1.0
    run.close()


def test_the_gram_matrices_are_made_smaller_to_fit_the_memory_they_may_take(two_layer_run, monkeypatch) -> None:
    from layerlapse.measures import layers as measures

    monkeypatch.setattr(measures, "CKA_MEMORY", 4 * 2 * 4 * 100 ** 2)  # room for 100 rows, 2 layers, 4 snapshots
    found = measures.measure_run(two_layer_run)
    assert found["cka_sample_size"] == 100 and found["sample_size"] == 300
    assert found["layers"]["hidden"]["cka"][3][3] == pytest.approx(1.0)


def test_a_sample_larger_than_the_probe_is_refused_before_anything_is_drawn(two_layer_run, tmp_path) -> None:
    from cli_helpers import assert_error

    from layerlapse.measures.layers import layer_measures
    from layerlapse.recipe.steps import render_run

    run = _copy(two_layer_run, tmp_path)
    with pytest.raises(ConfigError, match=r"the measures' sample size 5,000 is larger than the probe \(300 images\): "
                                          r"give 300 or fewer"):
        layer_measures(run, sample_size=5000)
    with pytest.raises(ConfigError, match=r"must be a whole number of probe images of 4 or more, got 2"):
        render_run(run, show_progress=False, measure_sample=2)
    before = (run.path / "manifest.json").read_bytes()
    run.close()
    result = subprocess.run([sys.executable, "-m", "layerlapse", "render", str(run.path), "--measure-sample", "301"],
                            capture_output=True, text=True, timeout=300)
    assert_error(result, r"sample size 301 is larger than the probe \(300 images\): give 300 or fewer")
    assert (run.path / "manifest.json").read_bytes() == before


def test_a_growing_run_measured_again_gives_what_measuring_afresh_gives(two_layer_run, tmp_path, monkeypatch) -> None:
    """The live page measures a run at each new snapshot, keeping what it measured of the earlier ones (measures.memo):
    the run with a snapshot fewer, then whole, measured with the memo, equals the whole run measured without it."""
    from layerlapse.measures import layers as layer_module
    from layerlapse.measures.layers import measure_run
    from layerlapse.measures.memo import SnapshotMemo
    from layerlapse.store.run import RunFolder

    earlier = _copy(two_layer_run, tmp_path)
    last = earlier.epochs_complete
    earlier.manifest["epochs_complete"] = last - 1
    earlier.manifest["files"] = {relpath: digest for relpath, digest in earlier.manifest["files"].items()
                                 if not relpath.endswith(layout.epoch_file(last))}
    monkeypatch.setattr(layer_module, "MEMO", SnapshotMemo())
    assert measure_run(earlier)["snapshots"] == list(range(last))  # the memo holds every snapshot but the last
    kept = measure_run(RunFolder.open(two_layer_run.path, verify=False))
    monkeypatch.setattr(layer_module, "MEMO", SnapshotMemo(max_bytes=0))  # keeps nothing: measured afresh
    fresh = measure_run(RunFolder.open(two_layer_run.path, verify=False))
    assert json.dumps(kept, sort_keys=True) == json.dumps(fresh, sort_keys=True)
