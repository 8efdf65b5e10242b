"""The recipe: record (train + capture + store) → map → draw. Each step reads and writes the run folder, so any
step can be redone on its own: `layerlapse render` maps (if needed) and draws a stored run without torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import render
from .config import RunConfig
from .errors import RunFolderError
from .progress import note, progress_bar
from .project import place_points, umap_map
from .store import RunFolder, epoch_file


def run_experiment(config: RunConfig, out: str | os.PathLike, *, data_dir: str | None = None, force: bool = False,
                   resume: bool = False, show_progress: bool = True) -> RunFolder:
    """Train, record, map and draw: the whole reference experiment into the run folder `out`."""
    from .train import record_run  # torch is only needed here

    run = record_run(config, str(out), data_dir=data_dir, force=force, resume=resume, show_progress=show_progress)
    with run.noting_failure():
        map_run(run, show_progress=show_progress)
        render_run(run, show_progress=show_progress)
    run.commit("complete")
    return run


def map_run(run: RunFolder, *, show_progress: bool = True) -> None:
    """UMAP every recorded epoch of every layer that has no map yet; place the test set on the final map."""
    config = run.config
    epochs = range(run.epochs_complete + 1)
    missing = [(layer, epoch) for layer in run.layers for epoch in epochs if not run.has(_map_path(layer, epoch))]
    with progress_bar("mapping", len(missing), enabled=show_progress) as advance:
        for layer, epoch in missing:
            xy = umap_map(run.activations(layer, epoch), n_neighbors=config.n_neighbors, seed=config.seed)
            run.write_array(_map_path(layer, epoch), xy)
            run.commit()
            advance(1)
    if run.manifest["test"] is not None:
        for layer in run.layers:
            if not run.has(_test_map_path(layer)):
                _place_test_set(run, layer)
    run.manifest["maps"] = {"method": "umap", "n_neighbors": config.n_neighbors, "seed": config.seed,
                            "test_placement": "kernel-weighted mean of the 10 nearest probe points in the layer's space"}
    run.commit()


def _place_test_set(run: RunFolder, layer: str) -> None:
    last = run.epochs_complete
    placed = place_points(run.activations(layer, last), run.read_array(_map_path(layer, last)),
                          run.read_array(f"test/activations/{layer}.npy"))
    run.write_array(_test_map_path(layer), placed)
    run.commit()


def render_run(run: RunFolder, *, show_progress: bool = True) -> list[Path]:
    """Draw every picture of the run from its folder: samples, frames and GIF per layer, curves, test set, metrics."""
    class_names = run.manifest["dataset"]["class_names"]
    labels = run.read_array("probe/labels.npy")
    written = []
    if run.has("probe/images.npy"):
        written.append(render.draw_samples(run.read_array("probe/images.npy"), labels, class_names,
                                           run.path / "figures/samples.png"))
    for position, layer in enumerate(run.layers):
        written += _draw_layer(run, layer, labels, class_names, main=position == 0, show_progress=show_progress)
    if run.history:
        written.append(render.draw_curves(run.history, run.path / "figures/curves.png"))
    if run.manifest["test"] is not None:
        written.append(_draw_confusion(run, class_names))
    written.append(render.write_json(_metrics(run), run.path / "metrics.json"))
    for path in written:
        run.add_file(path.relative_to(run.path).as_posix())
    run.commit()
    return written


def _draw_layer(run: RunFolder, layer: str, labels: np.ndarray, class_names: list[str], *, main: bool,
                show_progress: bool) -> list[Path]:
    """Frames and GIF of one layer: the first layer's at frames/ and lapse.gif, others' under their own name."""
    frames_dir = run.path / "frames" if main else run.path / "frames" / layer
    suffix = "" if main else f"_{layer}"
    epochs = [epoch for epoch in range(run.epochs_complete + 1) if run.has(_map_path(layer, epoch))]
    if not epochs:
        raise RunFolderError(f"run folder {run.path} has no maps for layer {layer!r}: map it with "
                             f"`layerlapse render {run.path}` (needs umap-learn)")
    frames = []
    with progress_bar(f"drawing {layer}", len(epochs), enabled=show_progress) as advance:
        for epoch in epochs:
            title = f"Epoch {epoch}" if main else f"Epoch {epoch} · {layer}"
            frames.append(render.draw_frame(run.read_array(_map_path(layer, epoch)), labels, class_names,
                                            frames_dir / epoch_file(epoch, ".png"), title=title,
                                            caption=_caption(run, layer, epoch, len(labels))))
            advance(1)
    written = [*frames, render.write_gif(frames, run.path / f"lapse{suffix}.gif")]
    if run.has(_test_map_path(layer)):
        last = epochs[-1]
        written.append(render.draw_train_test(
            run.read_array(_map_path(layer, last)), labels, run.read_array(_test_map_path(layer)), class_names,
            run.path / f"figures/train_test{suffix}.png", title=f"Epoch {last}: training map and test set"))
    return written


def _caption(run: RunFolder, layer: str, epoch: int, n_points: int) -> str:
    row = next((row for row in run.history if row.get("epoch") == epoch), {})
    if epoch == 0:
        accuracy = " · untrained"
    elif "val_acc" in row:
        accuracy = f" · validation accuracy {row['val_acc']:.4f}"
    else:
        accuracy = ""
    return f"layer {layer} · {n_points:,} probe images · UMAP{accuracy}"


def _draw_confusion(run: RunFolder, class_names: list[str]) -> Path:
    predicted = run.read_array("test/predictions.npy").argmax(axis=1)
    matrix = render.confusion_matrix(run.read_array("test/labels.npy"), predicted, len(class_names))
    accuracy = run.manifest["test"]["accuracy"]
    return render.draw_confusion(matrix, class_names, run.path / "figures/confusion.png",
                                 title=f"Test set: accuracy {accuracy:.4f}")


def _metrics(run: RunFolder) -> dict:
    test = run.manifest["test"]
    return {"dataset": run.manifest["dataset"].get("name"), "layers": run.layers,
            "probe_size": run.manifest["dataset"]["probe_size"], "epochs": run.epochs_complete,
            "test_accuracy": None if test is None else test["accuracy"],
            "test_loss": None if test is None else test["loss"], "history": run.history}


def _map_path(layer: str, epoch: int) -> str:
    return f"maps/{layer}/{epoch_file(epoch)}"


def _test_map_path(layer: str) -> str:
    return f"maps/{layer}/test.npy"
