"""The recipe: record (train + capture + store) → map → draw. Each step reads and writes the run folder, so any
step can be redone on its own: `layerlapse render` maps (if needed) and draws a stored run without torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import render, report
from .config import RunConfig
from .errors import RunFolderError
from .progress import note, progress_bar
from .metrics import QUALITY_K, QUALITY_SAMPLE
from .metrics import caption as quality_caption
from .project import check_method, place_points
from .store import RunFolder, epoch_file
from .timeline import QUALITY_FILE, BackgroundMapper, Frame, LayerTimeline, WorkerSpec, map_whole_run


def run_experiment(config: RunConfig, out: str | os.PathLike, *, data_dir: str | None = None, force: bool = False,
                   resume: bool = False, show_progress: bool = True, background: bool = True) -> RunFolder:
    """Train, record, map and draw: the whole reference experiment into the run folder `out`.

    With `background`, a worker process maps epoch t while epoch t+1 trains, so the run waits only for the last map.
    """
    from .train import record_run  # torch is only needed here

    alongside = MapAlongside(config.map_method) if background and config.map_method != "aligned-umap" else None
    try:
        run = record_run(config, str(out), data_dir=data_dir, force=force, resume=resume,
                         show_progress=show_progress, on_epoch=alongside)
        with run.noting_failure():
            if alongside is not None:
                alongside.finish(run, show_progress=show_progress)
            map_run(run, show_progress=show_progress)
            render_run(run, show_progress=show_progress)
        run.commit("complete")
        return run
    finally:
        if alongside is not None:
            alongside.stop()


class MapAlongside:
    """Called after each recorded epoch: feeds it to a worker process and stores the frames the worker has sent."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.worker: BackgroundMapper | None = None

    def __call__(self, run: RunFolder, epoch: int) -> None:
        self.method = run.config.map_method  # a resumed run keeps the method it was recorded with
        if self.method == "aligned-umap":  # maps the whole run at once, after training
            return
        if self.worker is None:
            _use_method(run, self.method)
            resume_from = {layer: mapped for layer in run.layers if (mapped := _mapped_through(run, layer)) >= 0}
            self.worker = BackgroundMapper(WorkerSpec(
                str(run.path), run.layers, int(run.manifest["dataset"]["probe_size"]), self.method,
                run.config.n_neighbors, run.config.seed, resume_from))
            for earlier in range(min(resume_from.values(), default=-1) + 1, epoch):
                self.worker.submit(earlier)  # epochs recorded before this process started
        self.worker.submit(epoch)
        _store_frames(run, self.worker.finished_frames())

    def catch_up(self, run: RunFolder) -> None:
        """Wait for the frames of every epoch submitted so far and store them; the worker stays for later epochs."""
        if self.worker is not None:
            _store_frames(run, self.worker.caught_up())

    def finish(self, run: RunFolder, *, show_progress: bool) -> None:
        """Wait for the frames still being mapped; if the worker failed, map_run maps what is missing here."""
        if self.worker is None:
            return
        _store_frames(run, self.worker.finished_frames(wait=True))
        if self.worker.error:
            note(f"the mapping worker stopped ({self.worker.error.splitlines()[0]}); mapping the rest here",
                 enabled=show_progress)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()


def map_run(run: RunFolder, *, method: str | None = None, show_progress: bool = True) -> None:
    """Map every recorded epoch of every layer that has no map yet (all of them again for another method), with
    each frame's faithfulness measures; place the test set on the final map."""
    stored = run.manifest.get("maps", {}).get("method")
    method = method or LEGACY_METHODS.get(stored, stored) or run.config.map_method
    _use_method(run, method)
    config = run.config
    todo = {layer: list(range(_mapped_through(run, layer) + 1, run.epochs_complete + 1)) for layer in run.layers}
    with progress_bar(f"mapping ({method})", sum(map(len, todo.values())), enabled=show_progress) as advance:
        for layer, epochs in todo.items():
            if not epochs:
                continue
            if method == "aligned-umap":  # one joint fit over every epoch
                epochs = list(range(run.epochs_complete + 1))
                frames = map_whole_run(layer, epochs, [run.activations(layer, e) for e in epochs], method=method,
                                       n_neighbors=config.n_neighbors, seed=config.seed)
                _store_frames(run, frames)
                advance(len(epochs))
                continue
            timeline = LayerTimeline(layer, len(run.read_array("probe/labels.npy")), method=method,
                                     n_neighbors=config.n_neighbors, seed=config.seed)
            if epochs[0] > 0:
                timeline.continue_from(run.activations(layer, epochs[0] - 1), run.read_array(_map_path(layer, epochs[0] - 1)))
            for epoch in epochs:
                _store_frames(run, [timeline.next(epoch, run.activations(layer, epoch))])
                advance(1)
    if run.manifest["test"] is not None:
        for layer in run.layers:
            if not run.has(_test_map_path(layer)):
                _place_test_set(run, layer)
    run.commit()


def _use_method(run: RunFolder, method: str) -> None:
    """Record the method in the manifest; maps made with another method are unlisted, then deleted."""
    check_method(method, len(run.read_array("probe/labels.npy")), run.config.n_neighbors)
    stored = run.manifest.get("maps")
    if stored and LEGACY_METHODS.get(stored.get("method"), stored.get("method")) == method:
        stored["method"] = method
        return
    stale = [relpath for relpath in run.manifest["files"] if relpath.startswith("maps/")]
    for relpath in stale:
        run.forget(relpath)
    run.manifest["maps"] = {"method": method, "n_neighbors": run.config.n_neighbors, "seed": run.config.seed,
                            "quality": {"k": QUALITY_K, "sample": QUALITY_SAMPLE},
                            "test_placement": "kernel-weighted mean of the 10 nearest probe points in the layer's space"}
    run.commit()
    for relpath in stale:
        (run.path / relpath).unlink(missing_ok=True)


def _mapped_through(run: RunFolder, layer: str) -> int:
    """The last epoch e such that epochs 0..e of the layer all have maps (-1 when epoch 0 has none)."""
    epoch = -1
    while epoch < run.epochs_complete and run.has(_map_path(layer, epoch + 1)):
        epoch += 1
    return epoch


def _store_frames(run: RunFolder, frames: list[Frame]) -> None:
    for frame in frames:
        quality = _quality(run, frame.layer)
        quality["frames"][str(frame.epoch)] = frame.quality
        run.write_array(_map_path(frame.layer, frame.epoch), frame.xy)
        run.write_json(f"maps/{frame.layer}/{QUALITY_FILE}", quality)
        test_probe = f"test/probe/activations/{frame.layer}/{epoch_file(frame.epoch)}"
        if run.has(test_probe):  # the test images recorded at this epoch, placed on its frame
            placed = place_points(run.activations(frame.layer, frame.epoch), frame.xy, run.read_array(test_probe))
            run.write_array(f"maps/{frame.layer}/test/{epoch_file(frame.epoch)}", placed)
        run.commit()


def _quality(run: RunFolder, layer: str) -> dict:
    relpath = f"maps/{layer}/{QUALITY_FILE}"
    if run.has(relpath):
        return run.read_json(relpath)
    return {"method": run.manifest["maps"]["method"], "k": QUALITY_K, "sample_size": QUALITY_SAMPLE,
            "sample_seed": run.config.seed, "frames": {}}


def _place_test_set(run: RunFolder, layer: str) -> None:
    last = run.epochs_complete
    placed = place_points(run.activations(layer, last), run.read_array(_map_path(layer, last)),
                          run.read_array(f"test/activations/{layer}.npy"))
    run.write_array(_test_map_path(layer), placed)
    run.commit()


def frame_quality(run: RunFolder, layer: str, epoch: int) -> dict:
    """The stored measures and notes of one frame ({} when the run has none)."""
    relpath = f"maps/{layer}/{QUALITY_FILE}"
    return run.read_json(relpath)["frames"].get(str(epoch), {}) if run.has(relpath) else {}


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
    written.append(report.write_report(run))
    for path in written:
        run.add_file(path.relative_to(run.path).as_posix())
    run.commit()
    return written


def write_run_report(run: RunFolder, path: str | os.PathLike | None = None, *, size_budget_mb: float = 25.0,
                     layers: list[str] | None = None) -> Path:
    """The run's interactive report.html (or `path`); listed in the manifest when it is inside the run folder."""
    written = report.write_report(run, path, size_budget_mb=size_budget_mb, layers=layers)
    if written.resolve().parent == run.path.resolve():
        run.add_file(written.name)
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
    maps = {epoch: run.read_array(_map_path(layer, epoch)) for epoch in epochs}
    limits = render.common_limits(list(maps.values()))  # fixed axes, so a point moves only when its map does
    with progress_bar(f"drawing {layer}", len(epochs), enabled=show_progress) as advance:
        for epoch in epochs:
            title = f"Epoch {epoch}" if main else f"Epoch {epoch} · {layer}"
            frames.append(render.draw_frame(maps[epoch], labels, class_names, frames_dir / epoch_file(epoch, ".png"),
                                            title=title, caption=_caption(run, layer, epoch, len(labels)),
                                            limits=limits))
            advance(1)
    written = [*frames, render.write_gif(frames, run.path / f"lapse{suffix}.gif"),
               render.write_mp4(frames, run.path / f"lapse{suffix}.mp4")]
    if run.has(_test_map_path(layer)):
        last = epochs[-1]
        written.append(render.draw_train_test(
            run.read_array(_map_path(layer, last)), labels, run.read_array(_test_map_path(layer)), class_names,
            run.path / f"figures/train_test{suffix}.png", title=f"Epoch {last}: training map and test set"))
    return written


def _caption(run: RunFolder, layer: str, epoch: int, n_points: int) -> str:
    """Two lines under a frame: what it shows, then how faithful it is (the stored measures and notes)."""
    row = next((row for row in run.history if row.get("epoch") == epoch), {})
    if epoch == 0:
        accuracy = " · untrained"
    elif "val_acc" in row:
        accuracy = f" · validation accuracy {row['val_acc']:.4f}"
    else:
        accuracy = ""
    method = run.manifest.get("maps", {}).get("method", "umap")
    quality = frame_quality(run, layer, epoch)
    second = " · ".join(filter(None, [quality_caption(quality), *quality.get("notes", [])]))
    first = f"layer {layer} · {n_points:,} probe images · map: {METHOD_LABELS.get(method, method)}{accuracy}"
    return f"{first}\n{second}" if second else first


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


LEGACY_METHODS = {"umap": "independent"}  # the name runs recorded before there was a choice
METHOD_LABELS = {"aligned": "aligned UMAP (layerlapse)", "independent": "UMAP per epoch (the article's)",
                 "aligned-umap": "umap-learn AlignedUMAP", "pca": "PCA"}


def _map_path(layer: str, epoch: int) -> str:
    return f"maps/{layer}/{epoch_file(epoch)}"


def _test_map_path(layer: str) -> str:
    return f"maps/{layer}/test.npy"
