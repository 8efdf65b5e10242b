"""Tests for a layer's timeline of frames: each frame's map and measures, carrying on after a stored frame, and the
worker process, which must give the very frames the main process would.

The run folder is written through RunFolder with made-up activations (two layers, three epochs of 300 digits each),
so no network is trained; the worker reads them from activations/<layer>/epoch_NNN.npy as it does in a real run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from layerlapse.maps import faithfulness as metrics
from layerlapse.config import RunConfig
from layerlapse.errors import MapWarning
from layerlapse.store.layout import epoch_file
from layerlapse.store.run import RunFolder, load_run
from layerlapse._util.threads import training_threads
from layerlapse.maps.timeline import BackgroundMapper, Frame, LayerTimeline, WorkerSpec, map_whole_run, measure_frame

N_POINTS, N_NEIGHBORS, SEED = 300, 15, 0
LAYERS = ("hidden", "flat1")
EPOCHS = (0, 1, 2)
FRAME_KEYS = {"trustworthiness", "continuity", "knn_preservation"}
CHANGE_KEYS = {"procrustes_disparity", "map_neighbors_kept", "layer_neighbors_kept", "temporal_correlation"}


def made_up_activations() -> dict[tuple[str, int], np.ndarray]:
    """A layer's float16 activations per epoch: the digits through random weights that drift from epoch to epoch."""
    digits = load_digits().data[:N_POINTS] / 16.0
    rng = np.random.default_rng(0)
    out = {}
    for layer, width in zip(LAYERS, (32, 16)):
        start, drift = rng.normal(size=(64, width)), rng.normal(size=(64, width))
        for epoch in EPOCHS:
            out[layer, epoch] = np.tanh(digits @ (start + 0.4 * epoch * drift) / 4.0).astype(np.float16)
    return out


@pytest.fixture(scope="module")
def run_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = RunConfig(dataset="digits", epochs=len(EPOCHS) - 1, layers=LAYERS, probe=N_POINTS, n_neighbors=N_NEIGHBORS)
    dataset = {"name": "digits", "class_names": [str(digit) for digit in range(10)], "probe_size": N_POINTS}
    run = RunFolder.create(tmp_path_factory.mktemp("timeline") / "run", config, dataset)
    for (layer, epoch), values in made_up_activations().items():
        run.write_array(f"activations/{layer}/{epoch_file(epoch)}", values)
    run.commit()
    return run.path


def measure(layer_sample: np.ndarray, xy_sample: np.ndarray, previous: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """A frame's measures alone, as LayerTimeline stores them (the sample kept for the next frame left out)."""
    return measure_frame(layer_sample, xy_sample, previous)[0]


def spec(run_path: Path, method: str, *, layers: tuple[str, ...] = LAYERS,
         resume_from: dict[str, int] | None = None) -> WorkerSpec:
    return WorkerSpec(str(run_path), list(layers), N_POINTS, method, N_NEIGHBORS, SEED, resume_from or {})


def in_process(run_path: Path, method: str) -> list[Frame]:
    """Every epoch of every layer mapped here, in the order the worker sends them (epoch by epoch)."""
    run = load_run(run_path)
    timelines = {layer: LayerTimeline(layer, N_POINTS, method=method, n_neighbors=N_NEIGHBORS, seed=SEED)
                 for layer in LAYERS}
    return [timelines[layer].next(epoch, run.activations(layer, epoch)) for epoch in EPOCHS for layer in LAYERS]


def mapped_both_ways(run_path: Path, method: str) -> tuple[list[Frame], list[Frame], str | None]:
    """(frames of a worker process, the same frames mapped here, the worker's error); the worker maps while this
    process does, so the two pay umap-learn's start-up side by side."""
    worker = BackgroundMapper(spec(run_path, method))
    try:
        for epoch in EPOCHS:
            worker.submit(epoch)
        here = in_process(run_path, method)
        return worker.finished_frames(wait=True), here, worker.error
    finally:
        worker.stop()


def without_seconds(quality: dict) -> dict:
    return {key: value for key, value in quality.items() if key != "seconds"}


def assert_same_frames(got: list[Frame], expected: list[Frame]) -> None:
    assert [(frame.layer, frame.epoch) for frame in got] == [(frame.layer, frame.epoch) for frame in expected]
    for frame, reference in zip(got, expected):
        assert np.array_equal(frame.xy, reference.xy, equal_nan=True), (frame.layer, frame.epoch)
        assert without_seconds(frame.quality) == without_seconds(reference.quality), (frame.layer, frame.epoch)


@pytest.fixture(scope="module")
def aligned(run_path: Path) -> tuple[list[Frame], list[Frame], str | None]:
    return mapped_both_ways(run_path, "aligned")


@pytest.fixture(scope="module")
def pca(run_path: Path) -> tuple[list[Frame], list[Frame], str | None]:
    return mapped_both_ways(run_path, "pca")


@pytest.fixture(scope="module")
def activations() -> dict[tuple[str, int], np.ndarray]:
    return made_up_activations()


# ---- frames made here --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["aligned", "pca"])
def test_each_frame_is_a_float32_map_with_its_measures_notes_and_seconds(method: str,
                                                                        request: pytest.FixtureRequest) -> None:
    frames = request.getfixturevalue(method)[1]
    for frame in frames:
        assert frame.xy.shape == (N_POINTS, 2) and frame.xy.dtype == np.float32 and np.isfinite(frame.xy).all()
        # nothing worked around; the aligned map may say that slow drift freed points
        assert all("slow drift" in note for note in frame.quality["notes"])
        assert isinstance(frame.quality["seconds"], float) and frame.quality["seconds"] >= 0
        expected = FRAME_KEYS if frame.epoch == 0 else FRAME_KEYS | CHANGE_KEYS
        assert set(frame.quality) == expected | {"notes", "seconds"}
        assert all(0 <= frame.quality[key] <= 1 for key in expected - {"temporal_correlation"})
        assert frame.quality.get("temporal_correlation") is None or -1 <= frame.quality["temporal_correlation"] <= 1
        assert frame.quality["trustworthiness"] > 0.8  # digits through a tanh layer map well in 2-D


def test_a_frame_is_measured_on_its_layer_and_map_and_on_the_frame_before(aligned: tuple,
                                                                          activations: dict) -> None:
    frames = {(frame.layer, frame.epoch): frame for frame in aligned[1]}
    before, after = frames["hidden", 0], frames["hidden", 1]
    expected = measure(activations["hidden", 1].astype(np.float32), after.xy,
                       (activations["hidden", 0].astype(np.float32), before.xy))
    assert without_seconds(after.quality) == {**expected, "notes": []}
    assert after.quality["layer_neighbors_kept"] < 1.0  # the made-up layer does move


def test_rows_that_are_not_finite_are_left_unmapped_and_noted(activations: dict) -> None:
    x = activations["hidden", 0].astype(np.float32)
    x[3, 0], x[50, 7], x[299] = np.nan, np.inf, -np.inf
    timeline = LayerTimeline("hidden", N_POINTS, method="pca", seed=SEED)
    with pytest.warns(MapWarning, match="3 of 300 points"):
        frame = timeline.next(0, x)
    assert np.isnan(frame.xy[[3, 50, 299]]).all() and np.isfinite(np.delete(frame.xy, [3, 50, 299], axis=0)).all()
    assert frame.quality["notes"] == ["3 of 300 points have NaN or infinite activations and are not drawn"]
    keep = np.isfinite(x).all(axis=1)
    assert without_seconds(frame.quality) == {**measure(x[keep], frame.xy[keep], None), "notes": frame.quality["notes"]}


def test_quality_is_measured_on_the_seeded_subsample_of_a_large_probe() -> None:
    n = metrics.QUALITY_SAMPLE + 200
    x = np.random.default_rng(1).normal(size=(n, 6)).astype(np.float32)
    frame = LayerTimeline("hidden", n, method="pca", seed=4).next(0, x)
    sample = metrics.quality_sample(n, seed=4)
    assert len(sample) == metrics.QUALITY_SAMPLE
    assert without_seconds(frame.quality) == {**measure(x[sample], frame.xy[sample], None), "notes": []}


# ---- measure -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_frames(activations: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    layer_before, layer_after = (activations["flat1", epoch].astype(np.float32) for epoch in (0, 1))
    xy_before, xy_after = (PCA(2, random_state=0).fit_transform(x).astype(np.float32)
                           for x in (layer_before, layer_after))
    return layer_before, layer_after, xy_before, xy_after


def rounded(quality: dict) -> dict:
    return {key: round(value, 6) for key, value in quality.items()}


def test_measure_skips_rows_that_are_not_finite_here_or_in_the_frame_before(two_frames: tuple) -> None:
    layer_before, layer_after, xy_before, xy_after = (array.copy() for array in two_frames)
    layer_after[5, 2] = np.nan
    xy_after[17] = np.inf
    layer_before[40, 0] = -np.inf
    xy_before[41] = np.nan
    quality = measure(layer_after, xy_after, (layer_before, xy_before))
    here = np.ones(N_POINTS, bool)
    here[[5, 17]] = False
    both = here.copy()
    both[[40, 41]] = False
    assert quality == {**rounded(metrics.frame_quality(layer_after[here], xy_after[here])),
                       **rounded(metrics.change_quality(layer_before[both], layer_after[both], xy_before[both],
                                                        xy_after[both]))}
    assert all(np.isfinite(value) for value in quality.values())


def test_measure_frame_reuses_the_last_frame_s_neighbourhoods_only_over_the_same_rows(two_frames: tuple) -> None:
    layer_before, layer_after, xy_before, xy_after = two_frames
    _, kept = measure_frame(layer_before, xy_before, None)
    assert kept.found is not None and kept.usable.all()
    reused, _ = measure_frame(layer_after, xy_after, kept)
    assert reused == measure(layer_after, xy_after, (layer_before, xy_before))
    # a row lost in this frame: the kept neighbourhoods are of other rows, so they are found again
    xy_lost = xy_after.copy()
    xy_lost[3] = np.nan
    assert measure_frame(layer_after, xy_lost, kept)[0] == measure(layer_after, xy_lost, (layer_before, xy_before))


def test_measure_rounds_to_six_decimals(two_frames: tuple) -> None:
    layer_before, layer_after, xy_before, xy_after = two_frames
    quality = measure(layer_after, xy_after, (layer_before, xy_before))
    assert set(quality) == FRAME_KEYS | CHANGE_KEYS
    assert all(value == round(value, 6) for value in quality.values())


def test_a_map_where_every_point_is_in_one_place_has_no_measures(two_frames: tuple) -> None:
    layer_before, layer_after, xy_before, _ = two_frames
    flat = np.ones((N_POINTS, 2), dtype=np.float32)
    assert measure(layer_after, flat, None) == {}
    assert measure(layer_after, flat, (layer_before, xy_before)) == {}
    all_nan = np.full((N_POINTS, 2), np.nan, dtype=np.float32)
    assert measure(layer_after, all_nan, None) == {}


def test_after_a_flat_frame_only_the_frame_s_own_measures_are_given(two_frames: tuple) -> None:
    layer_before, layer_after, _, xy_after = two_frames
    flat = np.zeros((N_POINTS, 2), dtype=np.float32)
    assert set(measure(layer_after, xy_after, (layer_before, flat))) == FRAME_KEYS


# ---- carrying on after a stored frame ----------------------------------------------------------------------------
def test_continue_from_makes_the_next_pca_frame_turn_onto_the_given_map(activations: dict) -> None:
    x = activations["hidden", 1]
    plain = LayerTimeline("hidden", N_POINTS, method="pca", seed=SEED).next(1, x).xy
    angle = np.radians(70.0)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
    stored = plain @ turn + np.float32(40.0)  # the same map turned and moved: what a stored frame may look like
    timeline = LayerTimeline("hidden", N_POINTS, method="pca", seed=SEED)
    timeline.continue_from(x, stored)
    frame = timeline.next(2, x)
    np.testing.assert_allclose(frame.xy, stored, atol=1e-3)
    assert not np.allclose(plain, stored, atol=1.0)
    # and it is measured against the stored frame: nothing moved
    assert frame.quality["procrustes_disparity"] == pytest.approx(0.0, abs=1e-6)
    assert frame.quality["map_neighbors_kept"] == 1.0 and frame.quality["layer_neighbors_kept"] == 1.0


@pytest.mark.parametrize("method", ["aligned", "pca"])
def test_continuing_from_a_stored_frame_gives_the_frames_of_an_uninterrupted_timeline(
        method: str, request: pytest.FixtureRequest, run_path: Path) -> None:
    uninterrupted = [frame for frame in request.getfixturevalue(method)[1] if frame.layer == "hidden"]
    run = load_run(run_path)
    resumed = LayerTimeline("hidden", N_POINTS, method=method, n_neighbors=N_NEIGHBORS, seed=SEED)
    resumed.continue_from(run.activations("hidden", 0), uninterrupted[0].xy)
    frames = [resumed.next(epoch, run.activations("hidden", epoch)) for epoch in EPOCHS[1:]]
    assert_same_frames(frames, uninterrupted[1:])


def test_map_whole_run_with_pca_gives_a_measured_frame_per_epoch(pca: tuple, run_path: Path) -> None:
    run = load_run(run_path)
    frames = map_whole_run("flat1", list(EPOCHS), [run.activations("flat1", epoch) for epoch in EPOCHS],
                           method="pca", n_neighbors=N_NEIGHBORS, seed=SEED)
    assert_same_frames(frames, [frame for frame in pca[1] if frame.layer == "flat1"])
    assert set(frames[0].quality) == FRAME_KEYS | {"notes", "seconds"}
    assert all(set(frame.quality) == FRAME_KEYS | CHANGE_KEYS | {"notes", "seconds"} for frame in frames[1:])
    assert len({frame.quality["seconds"] for frame in frames}) == 1  # the run's time shared out


def test_next_accepts_activations_of_any_shape_per_point_as_the_mapper_does(activations: dict) -> None:
    x = activations["hidden", 0].astype(np.float32)
    flat_frame = LayerTimeline("hidden", N_POINTS, method="pca", seed=SEED).next(0, x)
    frame = LayerTimeline("hidden", N_POINTS, method="pca", seed=SEED).next(0, x.reshape(N_POINTS, 2, 4, 4))
    assert_same_frames([frame], [flat_frame])


# ---- the worker process ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["aligned", "pca"])
def test_the_worker_gives_the_frames_this_process_gives(method: str, request: pytest.FixtureRequest) -> None:
    from_worker, here, error = request.getfixturevalue(method)
    assert error is None
    assert len(from_worker) == len(EPOCHS) * len(LAYERS)
    assert_same_frames(from_worker, here)


def test_a_worker_resumed_from_stored_maps_carries_on_as_this_process_would(pca: tuple, run_path: Path,
                                                                          tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_path, copy)
    run = load_run(copy)
    for frame in pca[1]:
        if frame.epoch == 0:  # the maps of epoch 0 were stored before the run stopped
            run.write_array(f"maps/{frame.layer}/{epoch_file(0)}", frame.xy)
    run.commit()
    worker = BackgroundMapper(spec(copy, "pca", resume_from={layer: 0 for layer in LAYERS}))
    try:
        for epoch in EPOCHS[1:]:
            worker.submit(epoch)
        frames = worker.finished_frames(wait=True)
    finally:
        worker.stop()
    assert worker.error is None
    assert_same_frames(frames, [frame for frame in pca[1] if frame.epoch > 0])


def test_the_worker_raises_its_flag_while_it_maps_and_training_watches_it(run_path: Path) -> None:
    """The flag the training threads follow (layerlapse._util.threads): up during a map, down once the frame is sent,
    and no longer watched once the worker stops."""
    worker = BackgroundMapper(spec(run_path, "aligned"))
    try:
        assert worker.share in training_threads.shares and not worker.share.busy
        worker.submit(EPOCHS[0])
        seen_busy, deadline = False, time.monotonic() + 120
        while not seen_busy and time.monotonic() < deadline and worker._process.is_alive():
            seen_busy = worker.share.busy
            time.sleep(0.002)
        frames = worker.finished_frames(wait=True)
        assert seen_busy and not worker.share.busy
        assert [frame.epoch for frame in frames] == [EPOCHS[0]] * len(LAYERS)
    finally:
        worker.stop()
    assert worker.share not in training_threads.shares


def test_a_worker_that_cannot_read_a_layer_reports_the_error_and_ends(run_path: Path) -> None:
    worker = BackgroundMapper(spec(run_path, "pca", layers=("hidden", "missing")))
    try:
        worker.submit(0)
        frames = worker.finished_frames(wait=True)  # returns: the worker says it is done after its error
        assert [(frame.layer, frame.epoch) for frame in frames] == [("hidden", 0)]
        assert worker.error is not None and worker.error.startswith("FileNotFoundError: ")
        assert "missing" in worker.error.splitlines()[0] and "epoch_000.npy" in worker.error.splitlines()[0]
        worker._process.join(timeout=10)
        assert not worker._process.is_alive()
        worker.submit(1)  # a finished worker takes no more epochs
        assert worker.finished_frames(wait=True) == []
    finally:
        worker.stop()


def test_stop_ends_the_worker_process(run_path: Path) -> None:
    worker = BackgroundMapper(spec(run_path, "pca"))
    assert worker._process.is_alive()
    worker.stop()
    assert not worker._process.is_alive() and worker._process.exitcode is not None
    worker.submit(0)
    assert worker.finished_frames(wait=True) == [] and worker.error is None


def test_waiting_on_a_worker_that_was_killed_returns(run_path: Path) -> None:
    worker = BackgroundMapper(spec(run_path, "pca"))
    try:
        os.kill(worker._process.pid, signal.SIGKILL)
        worker._process.join(timeout=10)
        assert not worker._process.is_alive()
        waiting = threading.Thread(target=worker.finished_frames, kwargs={"wait": True}, daemon=True)
        waiting.start()
        waiting.join(timeout=3)
        assert not waiting.is_alive()
    finally:
        worker.stop()


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("unread_frames", [0, 30], ids=["idle", "with frames nobody read"])
def test_a_worker_whose_main_process_was_killed_ends_by_itself(run_path: Path, unread_frames: int) -> None:
    # 30 epochs of both layers are more than a pipe holds: the worker must not wait at exit to flush them
    script = (f"import time\nfrom layerlapse.maps.timeline import BackgroundMapper, WorkerSpec\n"
              f"worker = BackgroundMapper(WorkerSpec({str(run_path)!r}, {list(LAYERS)!r}, {N_POINTS}, 'pca', 15, 0, "
              f"{{}}))\nfor _ in range({unread_frames}):\n    worker.submit(0)\n"
              "print(worker._process.pid, flush=True)\n"
              f"while {unread_frames} and worker._results.empty():\n    time.sleep(0.1)\n"
              "time.sleep(3)\nprint('mapped', flush=True)\ntime.sleep(120)\n")
    main = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(main.stdout.readline())
        assert main.stdout.readline().strip() == "mapped"
        main.kill()  # SIGKILL: no chance to stop the worker
        main.wait(timeout=10)
        deadline = time.monotonic() + 60  # it maps what it was sent first
        while _running(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(worker_pid)
    finally:
        main.kill()
        main.stdout.close()
