"""The map backends (layerlapse.maps.backend): the choice, its errors, and the torchdr backend keeping the aligned
map's promises on CPU with the real library: a faithful first frame, a warm start that holds still what did not
change and moves what did, the Procrustes turn onto the last frame, and new points placed as on any map."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from layerlapse.maps import faithfulness as metrics
from layerlapse.cli import app
from layerlapse.config import RunConfig
from layerlapse.errors import ConfigError
from layerlapse.maps.backend import load_backend, resolve_backend
from layerlapse.maps.project import EpochMapper, MapState, place_points, procrustes_onto

N_NEIGHBORS = 15


def clustered(n: int = 360, n_clusters: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters in 20 dimensions, well apart: any faithful map keeps them apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, 20)) * 5
    labels = np.arange(n) % n_clusters
    return (centres[labels] + rng.normal(size=(n, 20))).astype(np.float32), labels


@pytest.fixture(scope="module")
def one_thread():
    """One thread for torch, as the mapping worker has (threadpool_limits(1)): two spinning thread pools on a busy
    2-core machine make TorchDR's iterations many times slower."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def torchdr_frames(one_thread):
    """A torchdr mapper's first frame of a clustered set, and the mapper that made it (cold fits take seconds)."""
    pytest.importorskip("torchdr", reason="TorchDR is a development extra: pip install -e '.[dev]'")
    x, labels = clustered()
    mapper = EpochMapper("aligned", n_neighbors=N_NEIGHBORS, seed=0, backend="torchdr")
    first = mapper.next(x)
    return x, labels, mapper, first


def after(mapper: EpochMapper) -> EpochMapper:
    """A torchdr mapper that continues from `mapper`'s frame, leaving `mapper` as it is for the other tests."""
    state = MapState(xy=mapper.state.xy.copy(), knn=mapper.state.knn.copy(), usable=mapper.state.usable.copy())
    return EpochMapper("aligned", n_neighbors=N_NEIGHBORS, seed=0, backend="torchdr", state=state)


def test_the_torchdr_backend_maps_a_small_set(torchdr_frames) -> None:
    x, labels, mapper, first = torchdr_frames
    assert type(mapper.backend).__name__ == "TorchDRBackend"
    assert first.shape == (len(x), 2) and first.dtype == np.float32 and np.isfinite(first).all()
    # the clusters stay apart on the map: every point's nearest map neighbours are of its own cluster, nearly all
    nearest = metrics.neighbor_indices(first, k=10)
    assert (labels[nearest] == labels[:, None]).mean() > 0.97


def test_its_faithfulness_is_in_umap_learn_s_range(torchdr_frames) -> None:
    x, _, _, first = torchdr_frames
    reference = EpochMapper("aligned", n_neighbors=N_NEIGHBORS, seed=0, backend="umap-learn").next(x)
    theirs, ours = metrics.frame_quality(x, reference), metrics.frame_quality(x, first)
    assert ours["trustworthiness"] >= theirs["trustworthiness"] - 0.02, (ours, theirs)
    assert ours["continuity"] >= theirs["continuity"] - 0.02, (ours, theirs)
    assert ours["knn_preservation"] >= theirs["knn_preservation"] - 0.05, (ours, theirs)


def test_the_warm_start_holds_every_point_when_the_layer_does_not_change(torchdr_frames) -> None:
    x, _, mapper, first = torchdr_frames
    same = after(mapper).next(x)
    extent = np.ptp(first, axis=0).max()
    assert np.abs(same - first).max() < 1e-5 * extent


def test_points_whose_neighbours_changed_move_and_the_others_hold(torchdr_frames) -> None:
    x, labels, mapper, first = torchdr_frames
    # half of cluster 0 joins cluster 1 in the layer: only those points' neighbourhoods change
    moved = np.flatnonzero(labels == 0)[::2]
    changed = x.copy()
    changed[moved] = x[labels == 1][: len(moved)] + 0.1
    xy = after(mapper).next(changed)
    centre_0 = first[(labels == 0)].mean(axis=0)
    centre_1 = first[(labels == 1)].mean(axis=0)
    landed = xy[moved]
    assert (np.linalg.norm(landed - centre_1, axis=1) < np.linalg.norm(landed - centre_0, axis=1)).all()
    # the other clusters' neighbourhoods did not change: they keep their shape exactly (the whole frame is turned
    # onto the last one, so they may turn with it)
    others = labels >= 2
    extent = np.ptp(first, axis=0).max()
    assert np.abs(procrustes_onto(xy[others], first[others]) - first[others]).max() < 1e-5 * extent


def test_a_warm_frame_is_turned_onto_the_last_one(torchdr_frames) -> None:
    x, _, mapper, first = torchdr_frames
    rng = np.random.default_rng(1)
    drifted = x + rng.normal(scale=0.5, size=x.shape).astype(np.float32)
    xy = after(mapper).next(drifted)
    # the Procrustes turn is done: turning the frame onto the last one again changes nothing, and the centres match
    assert np.allclose(procrustes_onto(xy, first), xy, atol=1e-4 * np.ptp(first))
    assert np.allclose(xy.mean(axis=0), first.mean(axis=0), atol=1e-4 * np.ptp(first))


def test_it_leaves_the_process_s_random_generators_as_they_were(torchdr_frames) -> None:
    """TorchDR seeds the global generators; a training that maps in its own process must not be reseeded."""
    import random

    import torch

    x, _, mapper, _ = torchdr_frames
    random.seed(11), np.random.seed(11), torch.manual_seed(11)
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    after(mapper).next(x + 0.01)
    assert random.getstate() == before[0]
    assert np.array_equal(np.random.get_state()[1], before[1]) and torch.equal(torch.get_rng_state(), before[2])


def test_new_points_are_placed_on_its_map_one_by_one_as_in_a_batch(torchdr_frames) -> None:
    x, _, _, first = torchdr_frames
    new, _ = clustered(n=40, seed=5)
    together = place_points(x, first, new)
    alone = np.vstack([place_points(x, first, new[i:i + 1]) for i in range(len(new))])
    assert np.array_equal(together, alone) and np.isfinite(together).all()
    assert np.array_equal(place_points(x, first, x[:5]), first[:5])  # a known point takes its own place


def test_the_umap_learn_backend_is_the_default_where_there_is_no_gpu() -> None:
    from layerlapse.maps.torchdr import cuda_present

    expected = "umap-learn" if not cuda_present() else resolve_backend("auto")
    assert resolve_backend("auto") == expected
    assert type(EpochMapper("aligned").backend).__name__ == ("UmapLearnBackend" if expected == "umap-learn"
                                                             else "TorchDRBackend")
    assert type(EpochMapper("pca").backend).__name__ == "UmapLearnBackend"  # only the aligned map has a choice


def test_an_unknown_backend_is_named_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown map backend 'cuml': choose one of auto, umap-learn, torchdr"):
        RunConfig(map_backend="cuml")
    with pytest.raises(ConfigError, match=r"unknown map backend 'torch-dr': choose one of auto, umap-learn, "
                                          r"torchdr \(did you mean 'torchdr'\?\)"):
        RunConfig(map_backend="torch-dr")
    with pytest.raises(ConfigError, match=r"unknown map backend 'gpu': choose one of auto, umap-learn, torchdr$"):
        EpochMapper("aligned", backend="gpu")


def test_a_backend_for_another_method_than_aligned_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--map-backend torchdr runs the aligned map only, got --map pca: use "
                                          r"--map aligned or leave --map-backend at auto"):
        RunConfig(map_method="pca", map_backend="torchdr")
    with pytest.raises(ConfigError, match=r"--map-backend torchdr runs the aligned map only, got --map independent"):
        EpochMapper("independent", backend="torchdr")


def test_without_torchdr_the_error_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchdr", None)  # an import of it fails, as where it is not installed
    with pytest.raises(ConfigError, match=r"^--map-backend torchdr needs TorchDR: pip install "
                                          r"'layerlapse\[torchdr\]' \(or pip install torchdr faiss-cpu\)$"):
        load_backend("torchdr")


def test_its_neighbours_are_the_exact_ones_itself_first() -> None:
    """Against scikit-learn's exact search, the oracle."""
    pytest.importorskip("torchdr", reason="TorchDR is a development extra: pip install -e '.[dev]'")
    from sklearn.neighbors import NearestNeighbors

    from layerlapse.maps.torchdr import TorchDRBackend

    x = np.random.default_rng(3).normal(size=(500, 12)).astype(np.float32)
    indices, distances = TorchDRBackend().neighbors(x, 10, seed=0)
    expected_distances, expected = NearestNeighbors(n_neighbors=10).fit(x).kneighbors(x)
    assert (indices[:, 0] == np.arange(len(x))).all()
    assert np.array_equal(indices, expected)
    assert np.allclose(distances, expected_distances, atol=1e-4)


def test_without_faiss_a_large_set_is_refused_before_memory_runs_out(monkeypatch) -> None:
    pytest.importorskip("torchdr", reason="TorchDR is a development extra: pip install -e '.[dev]'")
    from layerlapse.maps.torchdr import TorchDRBackend

    monkeypatch.setitem(sys.modules, "faiss", None)  # an import of it fails, as where it is not installed
    backend = TorchDRBackend()
    with pytest.raises(ConfigError, match=r"^--map-backend torchdr without faiss would hold all 20,001² distances in "
                                          r"memory \(up to 20,000 points it may\): pip install faiss-cpu$"):
        backend.neighbors(np.zeros((20_001, 2), np.float32), 15, seed=0)
    indices, distances = backend.neighbors(clustered(n=60)[0], 5, seed=0)  # a small set: torch's own search
    assert indices.shape == (60, 5) and (indices[:, 0] == np.arange(60)).all() and (distances[:, 0] == 0).all()


def test_the_cli_refuses_a_bad_backend_before_training(tmp_path) -> None:
    result = CliRunner().invoke(app, ["run", "--map-backend", "rapids", "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, ConfigError)
    assert "unknown map backend 'rapids': choose one of auto, umap-learn, torchdr" in str(result.exception)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # trains the digits network and draws a run: about a minute on a busy 2-core machine
def test_a_run_records_the_backend_its_aligned_maps_were_made_with(tmp_path) -> None:
    from layerlapse.recipe.mapping import map_run
    from layerlapse.store.run import load_run

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--dataset", "digits", "--epochs", "1", "--probe", "300", "--neighbors",
                                      "15", "--map", "pca", "--test-probe", "0", "--device", "cpu", "--out", str(out),
                                      "--quiet"])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    run = load_run(out)
    assert run.config.map_backend == "auto" and run.manifest["maps"]["backend"] is None
    map_run(run, method="aligned", show_progress=False)  # as `layerlapse render --map aligned` does
    assert load_run(out).manifest["maps"]["backend"] == resolve_backend("auto")
