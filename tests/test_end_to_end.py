"""End to end through the library, as the README shows it: `run_experiment(RunConfig(...), folder)`, then
`load_run(folder)`. Digits offline; MNIST (a subset) when LAYERLAPSE_DATA holds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from layerlapse import RunConfig, load_run, run_experiment

FIGURES = ["figures/samples.png", "figures/curves.png", "figures/train_test.png", "figures/confusion.png"]


def knn_accuracy(xy: np.ndarray, labels: np.ndarray) -> float:
    """How well a point's neighbours on the 2-D map predict its class (5-fold cross-validated)."""
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=10), xy, labels, cv=5).mean())


def assert_complete_run_folder(out: Path, epochs: int) -> None:
    for relpath in [*FIGURES, "lapse.gif", "lapse.mp4", "report.html", "metrics.json", "history.jsonl",
                    "manifest.json", f"checkpoints/epoch_{epochs:03d}.pt", "maps/hidden/test.npy"]:
        assert (out / relpath).is_file(), relpath
    for epoch in range(epochs + 1):
        for relpath in (f"frames/epoch_{epoch:03d}.png", f"activations/hidden/epoch_{epoch:03d}.npy",
                        f"predictions/epoch_{epoch:03d}.npy", f"maps/hidden/epoch_{epoch:03d}.npy"):
            assert (out / relpath).is_file(), relpath
    with Image.open(out / "lapse.gif") as gif:
        assert gif.n_frames == epochs + 1
    assert len(iio.imread(out / "lapse.mp4", index=None)) == epochs + 1  # one video frame per epoch
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["epochs_complete"] == epochs
    on_disk = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json", ".layerlapse-lock"}
    assert list(out.rglob(".*.tmp-*")) == []


def test_digits_end_to_end_the_last_map_separates_the_classes(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "digits"
    finished = run_experiment(RunConfig(dataset="digits", epochs=8, probe=500, n_neighbors=15), out,
                              show_progress=False)
    assert finished.status == "complete"
    assert_complete_run_folder(out, 8)
    run = load_run(out)
    assert repr(run).startswith(f"RunFolder({str(out)!r}, status='complete', epochs_complete=8")
    labels = run.read_array("probe/labels.npy")
    assert len(labels) == 500 and np.bincount(labels).min() >= 45  # stratified: about 50 of each digit
    untrained = knn_accuracy(run.read_array("maps/hidden/epoch_000.npy"), labels)
    trained = knn_accuracy(run.read_array("maps/hidden/epoch_008.npy"), labels)
    assert trained > 0.9, f"the last map separates the classes poorly: kNN accuracy {trained:.3f}"
    assert trained > untrained, (untrained, trained)
    assert run.manifest["test"]["accuracy"] > 0.85
    assert run.history[-1]["val_acc"] > run.history[0]["val_acc"]
    # the test set lands among its own class on the final map
    test_xy, test_labels = run.read_array("maps/hidden/test.npy"), run.read_array("test/labels.npy")
    knn = KNeighborsClassifier(n_neighbors=10).fit(run.read_array("maps/hidden/epoch_008.npy"), labels)
    assert knn.score(test_xy, test_labels) > 0.85


@pytest.mark.slow
def test_mnist_subset_end_to_end(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "mnist"
    config = RunConfig(dataset="mnist", epochs=2, train_subset=2000, probe=500, n_neighbors=15)
    finished = run_experiment(config, out, show_progress=False)  # MNIST found through $LAYERLAPSE_DATA
    assert finished.status == "complete"
    assert_complete_run_folder(out, 2)
    run = load_run(out)
    dataset = run.manifest["dataset"]
    assert dataset["name"] == "mnist" and dataset["image_shape"] == [28, 28]
    assert dataset["train_size"] == 2000 and dataset["test_size"] == 10_000 and dataset["probe_size"] == 500
    assert Path(dataset["source"]).resolve() == (mnist_root / "mnist").resolve()
    assert run.activations("hidden", 2).shape == (500, 512)
    assert run.read_array("maps/hidden/test.npy").shape == (10_000, 2)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] == run.manifest["test"]["accuracy"]
    assert metrics["test_accuracy"] > 0.8
    assert [row["epoch"] for row in metrics["history"]] == [1, 2]
