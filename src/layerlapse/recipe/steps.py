"""The recipe's steps after recording: map (`recipe.mapping`) → measure → draw → report. Each step reads and writes the run folder,
so any step can be redone on its own: `layerlapse render` maps (if needed) and draws a stored run without torch.

Recording (`layerlapse.reference.experiment`, a Recorder, a framework's callback) stands above these steps and calls
them to complete a run (`complete_run`); nothing here imports a recorder or the built-in loop, so no import comes back
round.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from ..config import REPORT_BUDGET_MB
from ..errors import RunBusyError, RunFolderError
from ..maps.faithfulness import caption as quality_caption
from ..maps.faithfulness import short_caption
from ..measures.dynamics import SampleDynamics, probe_dynamics, test_probe_dynamics
from ..measures.layers import check_sample_size, measure_run, what_changed_when
from ..render import figures as render
from ..render.captions import frame_caption
from ..report import page as report
from ..store import layout
from ..store.atomic import atomic_output
from ..store.history import curve_axis
from ..store.run import RunFolder
from .._util.progress import note, progress_bar
from .mapping import MapAlongside, map_run


def complete_run(run: RunFolder, alongside: MapAlongside | None = None, *, show_progress: bool | None = None) -> None:
    """The recipe's end for a recorded run: wait for the maps made alongside training, map what is missing, draw
    every picture and the report, and commit the run as complete. `show_progress` None (a Recorder's or a
    callback's finish): bars and notes, down to where the report is, only when stderr is a terminal, so a training
    script run by hand says what its last minute waits for while its logs and a notebook stay as they were."""
    show_progress = sys.stderr.isatty() if show_progress is None else show_progress
    try:
        with run.noting_failure():
            if isinstance(alongside, MapAlongside):
                alongside.finish(run, show_progress=show_progress)
            map_run(run, show_progress=show_progress)
            render_run(run, show_progress=show_progress)
        run.commit("complete")
        note(f"wrote {run.local(layout.REPORT)}: open it in any browser, offline", enabled=show_progress)
    finally:
        if isinstance(alongside, MapAlongside):
            alongside.stop()


def render_run(run: RunFolder, *, show_progress: bool = True, measure_sample: int | None = None) -> list[Path]:
    """Draw every picture of the run from its folder: samples, frames and GIF per layer, curves, test set, the
    per-image dynamics and the layer measures (on `measure_sample` probe images, default 2,000), metrics, report.

    Every layer must be mapped (`map_run`) first. What is drawn replaces what an earlier call drew.

    Parameters
    ----------
    run : RunFolder
        The run, from `load_run`; its lock is taken while it is written.
    show_progress : bool, default True
        Progress bars and notes on stderr.
    measure_sample : int, optional
        The probe images the layer measures (k-NN and linear-probe accuracy, CKA) are computed on, a seeded
        stratified sample; None: 2,000, or the whole probe when smaller.

    Returns
    -------
    list of pathlib.Path
        Every file written, `report.html` last.

    Examples
    --------
    The run of `run_experiment`'s example, drawn again with its layers measured on 500 images:

    >>> from layerlapse import load_run, render_run
    >>> written = render_run(load_run("runs/digits"), measure_sample=500, show_progress=False)
    >>> written[-1].name
    'report.html'
    """
    with run.writing():
        class_names = run.class_names
        labels = run.probe_labels()
        if measure_sample is not None:  # a wrong size is said before anything is drawn
            check_sample_size(measure_sample, len(labels))
        maps = {layer: _checked_maps(run, layer, len(labels)) for layer in run.layers}  # all inputs before drawing
        for folder in layout.DRAWN_FOLDERS:  # a folder that links out is refused now, not after the note below
            run.local(folder)
        # said once, also where no bar is drawn (a log): after the maps, this is what a run waits for (20 s for the
        # demo's digits, most of it measuring the layers)
        note("drawing the frames and figures, measuring the layers, writing the report", enabled=show_progress)
        written = []
        if run.has(layout.PROBE_IMAGES):
            written.append(render.draw_samples(run.read_array(layout.PROBE_IMAGES), labels, class_names,
                                               run.local(layout.figure("samples"))))
        for position, layer in enumerate(run.layers):
            written += _draw_layer(run, layer, maps[layer], labels, class_names, main=position == 0,
                                   show_progress=show_progress)
        written += _draw_layers_together(run, maps, labels, class_names, show_progress)
        if run.history:
            x, _, x_label = curve_axis(run.manifest, run.history)
            written.append(render.draw_curves(run.history, run.local(layout.figure("curves")), x=x, x_label=x_label))
        if run.manifest["test"] is not None:
            written.append(_draw_confusion(run, class_names))
        written += _draw_dynamics(run, show_progress)
        measured = measure_run(run, sample_size=measure_sample, show_progress=show_progress)
        written += _draw_layer_measures(run, measured)
        written.append(render.write_json(_metrics(run, measured), run.local(layout.METRICS)))
        written.append(report.write_report(run))
        for path in written:
            run.add_file(path.relative_to(run.path).as_posix())
        run.commit()
    return written


def _draw_dynamics(run: RunFolder, show_progress: bool) -> list[Path]:
    """The probe's per-image dynamics (dynamics/probe.npz, no pickle) and the data map drawn from them; a run
    without trained predictions says so once and draws everything else."""
    try:
        found = probe_dynamics(run)
    except RunFolderError as error:  # predictions that are not the probe classes' scores: said, the rest drawn
        note(str(error), enabled=show_progress)
        return []
    if found is None:
        note("no per-image dynamics: the run has fewer than two trained snapshots with stored predictions",
             enabled=show_progress)
        return []
    written = [_save_dynamics(run, found, layout.DYNAMICS_PROBE)]
    try:
        test_probe = test_probe_dynamics(run)
    except RunFolderError as error:
        note(str(error), enabled=show_progress)
        test_probe = None
    if test_probe is not None:
        written.append(_save_dynamics(run, test_probe, layout.DYNAMICS_TEST_PROBE))
    first, last = int(found.snapshots[0]), int(found.snapshots[-1])
    span = f"{run.snapshot_title(first)} to {run.snapshot_title(last)}"
    written.append(render.draw_data_map(found.confidence, found.variability, found.correctness,
                                        run.local(layout.figure("data_map")), snapshots=span.lower()))
    return written


def _save_dynamics(run: RunFolder, found: SampleDynamics, relpath: str) -> Path:
    with atomic_output(run.local(relpath)) as temporary, open(temporary, "wb") as out:
        np.savez(out, **found.as_arrays())  # plain arrays: read back with allow_pickle=False
    return run.local(relpath)


def _draw_layer_measures(run: RunFolder, measured: dict | None) -> list[Path]:
    """dynamics/layers.json: each layer's measures per snapshot (layerlapse.measures.layers)."""
    if measured is None:
        return []
    written = [render.write_json(measured, run.local(layout.DYNAMICS_LAYERS))]
    run.add_file(layout.DYNAMICS_LAYERS)  # listed now: the report drawn next reads it instead of measuring again
    written.append(render.draw_cka(measured, run.local(layout.figure("cka"))))
    written.append(render.draw_layer_measures(measured, run.local(layout.figure("layer_measures"))))
    return written


def _draw_layers_together(run: RunFolder, maps: dict[str, dict[int, np.ndarray]], labels: np.ndarray,
                          class_names: list[str], show_progress: bool) -> list[Path]:
    """With two or more layers: figures/layers.png (layers × a handful of snapshots) and the lapse of every layer
    side by side (lapse_layers.gif / .mp4), each panel with its own faithfulness caption."""
    if len(run.layers) < 2:
        return []
    epochs = sorted(set.intersection(*(set(by_epoch) for by_epoch in maps.values())))
    titles = {epoch: run.snapshot_title(epoch) for epoch in epochs}
    captions = {(layer, epoch): quality_caption(run.frame_measures(layer, epoch)) for layer in maps for epoch in epochs}
    chosen = render.choose_snapshots(epochs)
    short = {(layer, epoch): short_caption(run.frame_measures(layer, epoch)) for layer in maps for epoch in chosen}
    written = [render.draw_layer_grid({layer: {e: by_epoch[e] for e in chosen} for layer, by_epoch in maps.items()},
                                      labels, class_names, chosen, titles, run.local(layout.figure("layers")),
                                      captions=short)]
    limits = {layer: render.common_limits(list(by_epoch.values())) for layer, by_epoch in maps.items()}
    folder = run.local("frames")
    frames = []
    try:
        with progress_bar("drawing the layers side by side", len(epochs), enabled=show_progress) as advance:
            for epoch in epochs:
                frames.append(render.draw_layers_frame(
                    {layer: by_epoch[epoch] for layer, by_epoch in maps.items()}, labels, class_names, limits,
                    folder / layout.side_by_side_frame_name(epoch), title=titles[epoch],
                    captions={layer: captions[(layer, epoch)] for layer in maps}))
                advance(1)
        name = layout.side_by_side_name(run.layers)
        written += [render.write_gif(frames, run.local(layout.lapse(name, False, ".gif"))),
                    render.write_mp4(frames, run.local(layout.lapse(name, False, ".mp4")))]
    finally:
        for frame in frames:  # the GIF and MP4 are what is kept
            frame.unlink(missing_ok=True)
    return written


def write_run_report(run: RunFolder, path: str | os.PathLike | None = None, *, size_budget_mb: float = REPORT_BUDGET_MB,
                     layers: list[str] | None = None) -> Path:
    """The run's interactive report.html (or `path`); listed in the manifest when it is inside the run folder.
    A report written elsewhere leaves the run folder alone, so it needs no lock and works on a read-only run."""
    report.check_settings(run, size_budget_mb, layers)  # before the lock: a wrong setting changes nothing
    inside = path is None or Path(path).resolve().parent == run.path.resolve()
    if not inside:
        return report.write_report(run, path, size_budget_mb=size_budget_mb, layers=layers)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(run.writing())
        except RunBusyError as busy:  # a running run: its report can still be written outside it, with no lock
            raise RunBusyError(f"run folder {busy.folder} is being written by another process ({busy.holder}): "
                               "write the report outside it (`layerlapse report RUN --out now.html`), or wait for "
                               "the run to finish", busy.folder, busy.holder) from None
        name = "report.html" if path is None else Path(path).name
        written = report.write_report(run, run.local(name), size_budget_mb=size_budget_mb, layers=layers)
        run.add_file(name)
        run.commit()
    return written


def _checked_maps(run: RunFolder, layer: str, n_points: int) -> dict[int, np.ndarray]:
    """The layer's stored maps by epoch, each checked to hold one 2-D position per probe image."""
    maps = {}
    for epoch in range(run.epochs_complete + 1):
        relpath = layout.map_file(layer, epoch)
        if run.has(relpath):
            maps[epoch] = run.read_xy(relpath, n_points)
    if not maps:
        raise RunFolderError(f"run folder {run.path} has no maps for layer {layer!r}: map it with "
                             f"`layerlapse render {run.path}` (needs umap-learn)")
    return maps


def _draw_layer(run: RunFolder, layer: str, maps: dict[int, np.ndarray], labels: np.ndarray, class_names: list[str],
                *, main: bool, show_progress: bool) -> list[Path]:
    """Frames and GIF of one layer: the first layer's at frames/ and lapse.gif, others' under their own name."""
    frames_dir = layout.frames_folder(layer, main)
    epochs = list(maps)
    frames = []
    limits = render.common_limits(list(maps.values()))  # fixed axes, so a point moves only when its map does
    with progress_bar(f"drawing {layer}", len(epochs), enabled=show_progress) as advance:
        for epoch in epochs:
            title = run.snapshot_title(epoch) if main else f"{run.snapshot_title(epoch)} · {layer}"
            frames.append(render.draw_frame(maps[epoch], labels, class_names,
                                            run.local(layout.frame(frames_dir, epoch)),
                                            title=title, caption=frame_caption(run, layer, epoch, len(labels)),
                                            limits=limits, test=_test_probe_on(run, layer, epoch)))
            advance(1)
    written = [*frames, render.write_gif(frames, run.local(layout.lapse(layer, main, ".gif"))),
               render.write_mp4(frames, run.local(layout.lapse(layer, main, ".mp4")))]
    if run.has(layout.test_map(layer)):
        last = epochs[-1]
        test_xy = run.read_array(layout.test_map(layer))
        test = render.PlacedTestPoints(test_xy, run.labels(layout.TEST_LABELS, count=len(test_xy)),
                                       _predicted(run, layout.TEST_PREDICTIONS, len(test_xy)), seed=_seed(run))
        written.append(render.draw_train_test(
            maps[last], labels, test, class_names, run.local(layout.figure("train_test", None if main else layer)),
            title=f"{run.snapshot_title(last)}: training map and test set"))
    return written


def _test_probe_on(run: RunFolder, layer: str, epoch: int) -> render.PlacedTestPoints | None:
    """The test probe placed on a layer's frame of `epoch`, with what the network predicted for it then; None where
    the run recorded none."""
    relpath = layout.test_probe_map(layer, epoch)
    if not run.has(relpath) or not run.has(layout.TEST_PROBE_LABELS):
        return None
    xy = run.read_array(relpath)
    return render.PlacedTestPoints(xy, run.labels(layout.TEST_PROBE_LABELS, count=len(xy)),
                                   _predicted(run, layout.test_probe_predictions(epoch), len(xy)), seed=_seed(run))


def _seed(run: RunFolder) -> int:
    return int((run.manifest.get("config") or {}).get("seed", 0))  # a user's own run may store no config


def _predicted(run: RunFolder, relpath: str, n_images: int) -> np.ndarray | None:
    """The classes predicted in a stored predictions file, or None where it is missing or is not one score per
    class for each of `n_images` images (a user's run that stored other outputs: nothing is marked misclassified)."""
    if not run.has(relpath):
        return None
    scores = run.read_array(relpath)
    if scores.shape != (n_images, len(run.class_names)):
        return None
    return scores.argmax(axis=1)


def _draw_confusion(run: RunFolder, class_names: list[str]) -> Path:
    probabilities = run.read_array(layout.TEST_PREDICTIONS)
    labels = run.labels(layout.TEST_LABELS, count=len(probabilities))
    if probabilities.ndim != 2 or probabilities.shape[1] != len(class_names):
        raise RunFolderError(f"run folder {run.path} is damaged: test/predictions.npy holds {probabilities.shape} "
                             f"probabilities for {len(class_names)} classes; restore it, or record the run again "
                             "with --force")
    matrix = render.confusion_matrix(labels, probabilities.argmax(axis=1), len(class_names))
    accuracy = run.manifest["test"]["accuracy"]
    return render.draw_confusion(matrix, class_names, run.local(layout.figure("confusion")),
                                 title=f"Test set: accuracy {accuracy:.4f}")


def _metrics(run: RunFolder, measured: dict | None) -> dict:
    test = run.manifest["test"]
    return {"dataset": run.manifest["dataset"].get("name"), "layers": run.layers,
            "probe_size": run.manifest["dataset"]["probe_size"], "epochs": run.epochs_complete,
            "test_accuracy": None if test is None else test["accuracy"],
            "test_loss": None if test is None else test["loss"], "history": run.history,
            "what_changed_when": None if measured is None else what_changed_when(measured),
            "layer_measures": measured}
