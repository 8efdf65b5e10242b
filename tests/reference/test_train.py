"""Tests for the built-in training loop: the Keras-like split, evaluation, checkpoints, repeatability and resume.

Everything trains the real network on scikit-learn's bundled digits on the CPU. The resume tests kill a real
`python -m layerlapse run` process and continue its run folder.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error
import torch
from typer.testing import CliRunner

from layerlapse import RunConfig, load_run, record_run
from layerlapse.capture import Recorder
from layerlapse.cli import app
from layerlapse.reference.models import build_model
from layerlapse.reference.train import (evaluate, images_to_tensor, make_optimizer, prepare_model, rows_in_probe,
                              split_validation, validation_from_probabilities)

runner = CliRunner()
# small enough that seven UMAP maps take seconds, not minutes
CONFIG = RunConfig(dataset="digits", epochs=6, probe=300, n_neighbors=15)
RUN_ARGS = ["run", "--dataset", "digits", "--epochs", "6", "--probe", "300", "--neighbors", "15", "--quiet"]
RECORDED = ("probe/", "activations/", "predictions/", "test/")


# --- helpers --------------------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != ".layerlapse-lock"}  # the lock names its last writer


def without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def epochs_complete(folder: Path) -> int:
    try:
        return int(manifest(folder)["epochs_complete"])
    except (FileNotFoundError, ValueError, KeyError):  # not written yet
        return -1


def start_run(out: Path, tmp_path: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9")
    return subprocess.Popen([sys.executable, "-m", "layerlapse", *RUN_ARGS, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(process: subprocess.Popen[str], out: Path, epoch: int, timeout: float = 240) -> int:
    """Poll the manifest until `epoch` is complete; returns the epochs complete then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = epochs_complete(out)
        if done >= epoch:
            return done
        if process.poll() is not None:
            pytest.fail(f"the run ended before epoch {epoch}: exit {process.returncode}\n{process.stderr.read()}")
        time.sleep(0.005)
    process.kill()
    process.communicate()
    pytest.fail(f"epoch {epoch} did not finish within {timeout} s")


def layerlapse(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "layerlapse", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


# --- the validation split -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 100, 1000, 60_000])
def test_split_validation_holds_out_the_last_fifth_of_a_seeded_shuffle(n: int) -> None:
    train, validation = split_validation(n, 0.2, seed=7)
    assert len(train) == math.floor(n * 0.8) and len(validation) == n - math.floor(n * 0.8)
    assert np.intersect1d(train, validation).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, validation])), np.arange(n))
    order = np.random.default_rng(7).permutation(n)
    assert np.array_equal(np.concatenate([train, validation]), order)  # the tail of the shuffled order


def test_split_validation_is_deterministic_and_the_seed_matters() -> None:
    first, second = split_validation(1000, 0.2, seed=3), split_validation(1000, 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    other = split_validation(1000, 0.2, seed=4)
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("n", [1437, 1001])
def test_split_validation_sizes_match_keras_when_n_is_not_a_multiple_of_five(n: int) -> None:
    train, validation = split_validation(n, 0.2, seed=0)
    assert len(train) == int(math.floor(n * (1.0 - 0.2)))  # keras.src.trainers.data_adapters.array_slicing
    assert len(validation) == n - len(train)


# --- the optimizer --------------------------------------------------------------------------------------------------


def keras_adam_steps(start: np.ndarray, gradients: list[np.ndarray], lr: float = 1e-3) -> np.ndarray:
    """Keras' Adam (keras.optimizers.Adam, defaults), written out in float64 from its update rule."""
    beta1, beta2, epsilon = 0.9, 0.999, 1e-7
    param, m, v = start.astype(np.float64), np.zeros_like(start, np.float64), np.zeros_like(start, np.float64)
    for t, gradient in enumerate(gradients, start=1):
        m = beta1 * m + (1 - beta1) * gradient
        v = beta2 * v + (1 - beta2) * gradient**2
        lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        param = param - lr_t * m / (np.sqrt(v) + epsilon)
    return param


@pytest.mark.parametrize("scale", [1.0, 1e-6])  # at 1e-6, sqrt(v) is near epsilon and where it is added matters
def test_the_optimizer_steps_as_keras_adam_does(scale: float) -> None:
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 5)).astype(np.float32)
    gradients = [(rng.normal(size=start.shape) * scale).astype(np.float32) for _ in range(40)]
    layer = torch.nn.Linear(5, 6, bias=False)
    layer.weight.data = torch.from_numpy(start.copy())
    optimizer = make_optimizer(layer, 1e-3)
    for gradient in gradients:
        layer.weight.grad = torch.from_numpy(gradient)
        optimizer.step()
    expected = keras_adam_steps(start, gradients)
    np.testing.assert_allclose(layer.weight.detach().numpy(), expected, rtol=0, atol=2e-6)
    torch_default = torch.optim.Adam(torch.nn.Linear(5, 6, bias=False).parameters())  # the difference is visible
    assert torch_default.defaults["eps"] != 1e-7


@pytest.mark.parametrize("fresh", [True, False])  # restored into a new optimizer, or into one that stepped on
def test_a_restored_optimizer_continues_keras_epsilon_from_its_step(fresh: bool) -> None:
    rng = np.random.default_rng(1)
    start = rng.normal(size=(3, 4)).astype(np.float32)
    gradients = [(rng.normal(size=start.shape) * 1e-6).astype(np.float32) for _ in range(20)]
    layer = torch.nn.Linear(4, 3, bias=False)
    layer.weight.data = torch.from_numpy(start.copy())
    optimizer = make_optimizer(layer, 1e-3)
    for gradient in gradients[:10]:
        layer.weight.grad = torch.from_numpy(gradient)
        optimizer.step()
    saved = {"model": copy.deepcopy(layer.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}
    if fresh:
        layer = torch.nn.Linear(4, 3, bias=False)
        optimizer = make_optimizer(layer, 1e-3)
    else:
        for gradient in gradients[:5]:  # a detour that the restore must undo, step count included
            layer.weight.grad = torch.from_numpy(gradient)
            optimizer.step()
    layer.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    for gradient in gradients[10:]:
        layer.weight.grad = torch.from_numpy(gradient)
        optimizer.step()
    np.testing.assert_allclose(layer.weight.detach().numpy(), keras_adam_steps(start, gradients), rtol=0, atol=2e-6)


# --- evaluation -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    from layerlapse.reference.data import load_dataset

    dataset = load_dataset("digits")
    return images_to_tensor(dataset.x_test, torch.device("cpu")), torch.from_numpy(dataset.y_test)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_runs_in_eval_mode_and_restores_the_mode(digits_batch, training: bool) -> None:
    x, y = digits_batch
    torch.manual_seed(0)
    model = build_model((8, 8), 10)
    model.train(training)
    first = evaluate(model, x, y)
    second = evaluate(model, x, y)  # dropout on would make two passes differ
    assert model.training is training
    assert all(module.training is training for module in model.modules())
    assert first[0] == second[0] and np.array_equal(first[2], second[2])
    loss, accuracy, probabilities = first
    assert probabilities.shape == (len(y), 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert accuracy == pytest.approx(float((probabilities.argmax(1) == y.numpy()).mean()), abs=1e-6)
    expected_loss = -np.log(probabilities[np.arange(len(y)), y.numpy()]).mean()
    assert loss == pytest.approx(float(expected_loss), rel=1e-4)


def test_evaluate_keeps_a_mixed_mode(digits_batch) -> None:
    x, y = digits_batch
    model = build_model((8, 8), 10).train()
    model.drop1.eval()
    evaluate(model, x[:50], y[:50])
    assert model.training and model.drop2.training and not model.drop1.training


def test_validation_from_the_probe_s_probabilities_is_the_validation_pass(digits_batch) -> None:
    x, y = digits_batch
    torch.manual_seed(0)
    model = build_model((8, 8), 10)
    loss, accuracy, _ = evaluate(model, x, y)
    with Recorder(model, ["hidden"], x) as recorder:
        probabilities = recorder.take(1).probabilities
    from_probe = validation_from_probabilities(probabilities, y.numpy())
    assert from_probe[1] == accuracy
    assert from_probe[0] == pytest.approx(loss, rel=1e-6)


def test_validation_from_probabilities_stays_finite_when_the_true_class_underflows() -> None:
    probabilities = np.array([[1.0, 0.0], [0.25, 0.75]], dtype=np.float32)
    loss, accuracy = validation_from_probabilities(probabilities, np.array([1, 1]))
    # a probability of 0 counts as float32's smallest normal number: -log(1.18e-38) = 87.3
    assert loss == pytest.approx((-math.log(np.finfo(np.float32).tiny) - math.log(0.75)) / 2)
    assert accuracy == 0.5


def test_rows_in_probe_finds_each_wanted_index_or_says_none() -> None:
    probe = np.array([1, 3, 4, 7, 9])
    np.testing.assert_array_equal(rows_in_probe(probe, np.array([9, 1, 4]), 10), [4, 0, 2])
    assert rows_in_probe(probe, np.array([9, 2]), 10) is None
    assert rows_in_probe(probe, np.array([], dtype=np.int64), 10) is None


def test_a_run_whose_probe_holds_the_validation_images_records_the_same_history(tmp_path: Path) -> None:
    """--probe all takes validation from the snapshot instead of a second pass: the same figures, to ~1e-7."""
    config = dataclasses.replace(CONFIG, epochs=2)
    every = load_run(record_run(dataclasses.replace(config, probe=None), str(tmp_path / "all"),
                                show_progress=False).path)
    some = load_run(record_run(config, str(tmp_path / "some"), show_progress=False).path)
    for row_all, row_some in zip(every.history, some.history, strict=True):
        assert (row_all["loss"], row_all["acc"], row_all["val_acc"]) == (row_some["loss"], row_some["acc"],
                                                                         row_some["val_acc"])
        assert row_all["val_loss"] == pytest.approx(row_some["val_loss"], rel=1e-6)


# --- repeatability and checkpoints ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six epochs without a break (recording only: comparing needs no maps)."""
    folder = tmp_path_factory.mktemp("uninterrupted") / "run"
    record_run(CONFIG, str(folder), show_progress=False)
    return folder


@pytest.fixture(scope="module")
def short_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same settings and seed, two epochs only."""
    folder = tmp_path_factory.mktemp("twin") / "run"
    record_run(dataclasses.replace(CONFIG, epochs=2), str(folder), show_progress=False)
    return folder


def test_two_runs_with_the_same_seed_record_the_same_epochs(uninterrupted: Path, short_twin: Path) -> None:
    """Same seed, same history and byte-identical files, whatever the number of epochs asked for."""
    assert without_seconds(manifest(short_twin)["history"]) == without_seconds(manifest(uninterrupted)["history"][:2])
    twin = files(short_twin)
    long = files(uninterrupted)
    shared = [relpath for relpath in twin if relpath.startswith(("probe/", "activations/", "predictions/"))]
    assert len(shared) == 3 + 3 + 3  # probe images, indices, labels; epochs 0-2 of activations and predictions
    for relpath in shared:
        assert twin[relpath] == long[relpath], f"{relpath} differs between two runs with the same seed"


def test_the_seed_reaches_the_training_and_the_data_seed_the_probe(short_twin: Path, tmp_path: Path) -> None:
    other = record_run(dataclasses.replace(CONFIG, epochs=1, seed=1), str(tmp_path / "r"), show_progress=False)
    first = load_run(short_twin)
    # another seed trains otherwise on the same probe: runs of several seeds compare item by item
    np.testing.assert_array_equal(first.probe_indices(), other.probe_indices())
    assert first.history[0]["loss"] != other.history[0]["loss"]
    elsewhere = record_run(dataclasses.replace(CONFIG, epochs=1, data_seed=1), str(tmp_path / "d"),
                           show_progress=False)
    assert not np.array_equal(first.probe_indices(), elsewhere.probe_indices())


def test_a_run_recorded_before_data_seed_reads_its_seed_as_its_data_seed() -> None:
    from layerlapse.config import RunConfig

    old = {key: value for key, value in dataclasses.replace(CONFIG, seed=3).to_dict().items() if key != "data_seed"}
    assert RunConfig.from_dict(old).data_seed == 3  # so a resumed old run records the probe it started with


def test_only_the_newest_checkpoint_is_kept_and_listed(short_twin: Path) -> None:
    assert sorted(path.name for path in (short_twin / "checkpoints").iterdir()) == ["epoch_002.pt"]
    assert [relpath for relpath in manifest(short_twin)["files"] if relpath.startswith("checkpoints/")] == \
        ["checkpoints/epoch_002.pt"]


def test_the_checkpoint_loads_without_unpickling_and_reproduces_the_last_epoch(short_twin: Path) -> None:
    state = torch.load(short_twin / "checkpoints/epoch_002.pt", map_location="cpu", weights_only=True)
    assert set(state) == {"model", "optimizer"}
    assert state["optimizer"]["state"], "the optimizer's moments are saved for --resume"
    model = prepare_model(build_model((8, 8), 10), torch.device("cpu"))  # as the training loop lays it out
    model.load_state_dict(state["model"])
    run = load_run(short_twin)
    probe = images_to_tensor(run.read_array("probe/images.npy"), torch.device("cpu"))
    with Recorder(model, ["hidden"], probe) as recorder:
        snapshot = recorder.snapshot(2)
    assert np.array_equal(snapshot.activations["hidden"], run.activations("hidden", 2))
    assert np.array_equal(snapshot.probabilities, run.predictions(2))


def test_history_rows_hold_every_metric(uninterrupted: Path) -> None:
    history = manifest(uninterrupted)["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    for row in history:
        assert set(row) == {"snapshot", "epoch", "loss", "acc", "val_loss", "val_acc", "seconds"}
        assert row["snapshot"] == row["epoch"]  # the built-in loop snapshots every epoch from the start
        assert all(math.isfinite(value) for value in row.values())
        assert 0 <= row["acc"] <= 1 and 0 <= row["val_acc"] <= 1 and row["seconds"] > 0
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["val_acc"] > history[0]["val_acc"]  # it learns
    lines = (uninterrupted / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history


# --- resume ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resumed_after_sigkill(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The issue's acceptance test, scaled down: SIGKILL a run during epoch 3 (or just after), then --resume it."""
    tmp_path = tmp_path_factory.mktemp("killed")
    out = tmp_path / "run"
    process = start_run(out, tmp_path)
    try:
        done_at_kill = wait_for_epoch(process, out, 2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    kept = [f"{folder}/epoch_{epoch:03d}.npy" for folder in ("activations/hidden", "predictions")
            for epoch in range(3)] + ["probe/indices.npy", "probe/labels.npy", "probe/images.npy"]
    before = {relpath: (sha256(out / relpath), (out / relpath).stat().st_mtime_ns) for relpath in kept}
    history_before = manifest(out)["history"]
    result = runner.invoke(app, [*RUN_ARGS, "--out", str(out), "--resume"])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return {"out": out, "done_at_kill": done_at_kill, "before": before, "history_before": history_before}


def test_resume_after_sigkill_completes_the_run(resumed_after_sigkill: dict) -> None:
    out = resumed_after_sigkill["out"]
    final = manifest(out)
    assert final["status"] == "complete"
    assert final["epochs_complete"] == 6
    assert [row["epoch"] for row in final["history"]] == [1, 2, 3, 4, 5, 6]
    for epoch in range(7):
        for relpath in (f"activations/hidden/epoch_{epoch:03d}.npy", f"predictions/epoch_{epoch:03d}.npy",
                        f"maps/hidden/epoch_{epoch:03d}.npy", f"frames/epoch_{epoch:03d}.png"):
            assert (out / relpath).is_file(), relpath
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == ["epoch_006.pt"]
    assert list(out.rglob(".*.tmp-*")) == []
    on_disk = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    assert set(final["files"]) == on_disk - {"manifest.json", ".layerlapse-lock"}  # nothing unlisted is left
    load_run(out)  # every checksum holds


def test_resume_leaves_the_files_of_finished_epochs_untouched(resumed_after_sigkill: dict) -> None:
    # training is repeatable, so a run started over would write the same bytes: the write times and the
    # seconds in the history tell a continued run from a restarted one
    out = resumed_after_sigkill["out"]
    after = {relpath: (sha256(out / relpath), (out / relpath).stat().st_mtime_ns)
             for relpath in resumed_after_sigkill["before"]}
    assert after == resumed_after_sigkill["before"]
    history = manifest(out)["history"]
    done = resumed_after_sigkill["done_at_kill"]
    assert history[:done] == resumed_after_sigkill["history_before"][:done]


def test_a_resumed_run_equals_an_uninterrupted_one(resumed_after_sigkill: dict, uninterrupted: Path) -> None:
    out = resumed_after_sigkill["out"]
    assert manifest(out)["config"] == manifest(uninterrupted)["config"]
    assert without_seconds(manifest(out)["history"]) == without_seconds(manifest(uninterrupted)["history"])
    assert manifest(out)["test"] == manifest(uninterrupted)["test"]
    resumed, straight = files(out), files(uninterrupted)
    for relpath, data in straight.items():
        if relpath.startswith(RECORDED):
            assert resumed[relpath] == data, f"{relpath} differs after the resume"
    assert resumed["activations/hidden/epoch_006.npy"] == straight["activations/hidden/epoch_006.npy"]


def test_resume_of_a_complete_run_points_to_render(resumed_after_sigkill: dict, tmp_path: Path) -> None:
    out = resumed_after_sigkill["out"]
    before = files(out)
    result = layerlapse(*RUN_ARGS, "--out", out, "--resume", cwd=tmp_path)
    assert_error(result, rf"the run in {re.escape(str(out))} is already complete: redraw it with "
                         rf"`layerlapse render {re.escape(str(out))}`")
    assert files(out) == before


@pytest.mark.parametrize("exists", [True, False])
def test_resume_where_there_is_no_run(tmp_path: Path, main_here, exists: bool) -> None:
    out = tmp_path / "nothing"
    if exists:
        out.mkdir()
    result = main_here(*RUN_ARGS, "--out", out, "--resume")
    assert_error(result, rf"{re.escape(str(out))} holds no manifest\.json")
    assert (list(out.iterdir()) == []) if exists else not out.exists()


@pytest.fixture(scope="module")
def stopped_by_sigterm(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A run sent SIGTERM once its first epoch is complete."""
    tmp_path = tmp_path_factory.mktemp("sigterm")
    out = tmp_path / "run"
    process = start_run(out, tmp_path)
    try:
        wait_for_epoch(process, out, 1)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), out


def test_sigterm_stops_a_run_and_leaves_it_interrupted_and_whole(stopped_by_sigterm) -> None:
    _, out = stopped_by_sigterm
    stopped = manifest(out)
    assert stopped["status"] == "interrupted"
    assert 1 <= stopped["epochs_complete"] < 6
    assert not (out / "lapse.gif").exists()  # it stopped before mapping and drawing
    assert list(out.rglob(".*.tmp-*")) == []
    load_run(out)  # whole: every listed file matches its checksum


def test_sigterm_exits_130_with_the_resume_hint(stopped_by_sigterm) -> None:
    result, _ = stopped_by_sigterm
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        "interrupted: continue the run with the same command and --resume"


def test_reopening_an_interrupted_run_marks_it_running_again(tmp_path: Path) -> None:
    from layerlapse.config import RunConfig
    from layerlapse.store.run import RunFolder
    from layerlapse.capture.session import reopen_for_resume as _reopen_for_resume

    run = RunFolder.create(tmp_path / "run", RunConfig(dataset="digits"), {"name": "digits"})
    run.commit("interrupted")
    (tmp_path / "run" / "activations" / "hidden").mkdir(parents=True)
    (tmp_path / "run" / "activations" / "hidden" / "epoch_000.npy").write_bytes(b"half")  # after the last commit
    (tmp_path / "run" / "activations" / "notes.txt").write_text("mine")  # not a name layerlapse writes
    run.close()
    reopened = _reopen_for_resume(str(tmp_path / "run"))
    assert reopened.status == "running"
    assert RunFolder.open(tmp_path / "run").status == "running"
    assert not (tmp_path / "run" / "activations" / "hidden" / "epoch_000.npy").exists()
    assert (tmp_path / "run" / "activations" / "notes.txt").read_text() == "mine"
