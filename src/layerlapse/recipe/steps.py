"""The recipe's steps after recording: map → measure → draw → report. Each step reads and writes the run folder,
so any step can be redone on its own: `layerlapse render` maps (if needed) and draws a stored run without torch.

Recording (`layerlapse.reference.experiment`, a Recorder, a framework's callback) stands above these steps and calls
them to complete a run (`complete_run`); nothing here imports a recorder or the built-in loop, so no import comes back
round.
"""

from __future__ import annotations

import contextlib

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..store import layout
from ..render import figures as render
from ..render.captions import frame_caption
from ..report import page as report
from ..store.atomic import atomic_output, write_bytes
from ..measures.dynamics import SampleDynamics, probe_dynamics, test_probe_dynamics
from ..measures.layers import check_sample_size, measure_run, what_changed_when
from ..config import REPORT_BUDGET_MB
from ..errors import RunBusyError, RunFolderError
from ..maps.jitcache import map_code_on_disk
from .._util.progress import note, progress_bar
from ..maps.faithfulness import QUALITY_K, QUALITY_SAMPLE
from ..maps.faithfulness import caption as quality_caption
from ..maps.faithfulness import short_caption
from ..maps.backend import resolve_backend
from ..maps.project import LEGACY_METHODS, check_method, place_points
from ..store.blocks import npy_bytes
from ..store.history import curve_axis
from ..store.run import RunFolder, json_bytes
from ..maps.timeline import BackgroundMapper, Frame, LayerTimeline, WorkerSpec, map_whole_run

COMPILING = "compiling the map's code first (first run only, about a minute)"
POLL_SECONDS = 0.05  # how often the wait after training looks for the worker's next frame


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


class MapAlongside:
    """Called after each recorded epoch: feeds it to a worker process and stores the frames the worker has sent."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.worker: BackgroundMapper | None = None
        # the frames submitted and not yet stored, as (snapshot, layer) in the order the worker maps them
        self.waiting_for: list[tuple[int, str]] = []
        self.heard_from = False  # whether the worker has sent a frame: its first one compiles the map's code

    def __call__(self, run: RunFolder, epoch: int) -> None:
        # a resumed run keeps the method its maps were made with
        self.method = _stored_method(run) or run.config.map_method
        if self.method == "aligned-umap":  # maps the whole run at once, after training
            return
        if self.worker is None:
            if _stored_method(run) is None:
                run.manifest["maps"] = _maps_info(run, self.method)
            resume_from = {layer: mapped for layer in run.layers
                           if (mapped := _mapped_through(run, run, layer)) >= 0}
            self.worker = BackgroundMapper(WorkerSpec(
                str(run.path), run.layers, int(run.manifest["dataset"]["probe_size"]), self.method,
                run.config.n_neighbors, run.config.seed, resume_from, _map_backend(run, self.method)))
            for earlier in range(min(resume_from.values(), default=-1) + 1, epoch):
                self._submit(run, earlier)  # epochs recorded before this process started
        self._submit(run, epoch)
        self._store(run, self.worker.finished_frames())

    def _submit(self, run: RunFolder, epoch: int) -> None:
        self.worker.submit(epoch)
        self.waiting_for += [(epoch, layer) for layer in run.layers]  # the worker maps every layer of an epoch

    def _store(self, run: RunFolder, frames: list[Frame]) -> None:
        _store_frames(run, frames, run, self.method)
        stored = {(frame.epoch, frame.layer) for frame in frames}
        self.waiting_for = [frame for frame in self.waiting_for if frame not in stored]
        self.heard_from = self.heard_from or bool(frames)

    def finish(self, run: RunFolder, *, show_progress: bool) -> None:
        """Wait for the frames still being mapped, saying which; if the worker failed, map_run maps what is missing
        here."""
        if self.worker is None:
            return
        self._wait_saying_what_for(run, show_progress)
        self._store(run, self.worker.finished_frames(wait=True))
        if self.worker.error:
            note(f"the mapping worker stopped ({self.worker.error.splitlines()[0]}); mapping the rest here",
                 enabled=show_progress)

    def _wait_saying_what_for(self, run: RunFolder, show_progress: bool) -> None:
        """Store each frame as it comes and name the one waited for next ("mapping snapshot 9 of 16 …"), and why the
        worker's first frame takes long on a first run. The worker is polled: finished_frames(wait=True) gives every
        frame at once, at the end."""
        named = None
        self._store(run, self.worker.finished_frames())
        while self.waiting_for and not self.worker.error:  # an error: map_run maps the rest in this process
            if self.waiting_for[0] != named:
                named = self.waiting_for[0]
                note(_mapping_line(run, *named), enabled=show_progress)
                if not self.heard_from and _first_map_compiles(run, self.method):
                    note(COMPILING, enabled=show_progress)
            frames = self.worker.finished_frames()
            if frames:
                self._store(run, frames)
            else:
                time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()


def _mapping_line(run: RunFolder, snapshot: int, layer: str) -> str:
    """"mapping snapshot 9 of 16 (epoch 8, layer hidden)": counted from 1, as a person counts what is left."""
    title = run.snapshot_title(snapshot)
    return (f"mapping snapshot {snapshot + 1} of {run.epochs_complete + 1} ({title[:1].lower()}{title[1:]}, "
            f"layer {layer})")


def _first_map_compiles(run: RunFolder, method: str) -> bool:
    """Whether a process's first umap-learn map will compile its numba code now: a method that runs umap-learn, and
    none of that code in numba's disk cache yet (layerlapse.maps.jitcache; a cache it cannot read claims nothing)."""
    uses_umap_learn = method != "pca" and _map_backend(run, method) == "umap-learn"
    return uses_umap_learn and map_code_on_disk() is False


def map_run(run: RunFolder, *, method: str | None = None, show_progress: bool = True) -> None:
    """Map every recorded epoch of every layer that has no map yet, with each frame's faithfulness measures, and
    place the test set on the final map. Another method than the run's maps every epoch again, all or nothing:
    the inputs are checked first, the new maps are written beside the old ones and swapped in only when every
    layer is done, so a failure leaves the last good maps in place.

    The maps go to `maps/<layer>/epoch_NNN.npy` with `quality.json` beside them; `layerlapse render` calls this,
    then `render_run`, which draws them.

    Parameters
    ----------
    run : RunFolder
        The run, from `load_run`; its lock is taken while it is written (a run still recording elsewhere is
        refused).
    method : str, optional
        "aligned", "independent", "aligned-umap" or "pca"; None keeps the method the run's maps were made with
        (the run's `map_method` when it has none yet).
    show_progress : bool, default True
        A progress bar and notes on stderr.

    Examples
    --------
    The run of `run_experiment`'s example, mapped again by PCA and drawn:

    >>> from layerlapse import load_run, map_run, render_run
    >>> run = load_run("runs/digits")
    >>> map_run(run, method="pca", show_progress=False)
    >>> run.manifest["maps"]["method"]
    'pca'
    >>> written = render_run(run, show_progress=False)
    """
    with run.writing():
        stored = _stored_method(run)
        method = method or stored or run.config.map_method
        labels = run.probe_labels()
        check_method(method, len(labels), run.config.n_neighbors)
        _check_activations(run, len(labels))
        if stored is not None and stored != method and any(key.startswith("maps/") for key in run.manifest["files"]):
            _redraw(run, method, len(labels), show_progress)
            return
        if stored != method:
            run.manifest["maps"] = _maps_info(run, method)
            run.commit()
        _map_missing(run, run, method, len(labels), show_progress)
        run.commit()


def _redraw(run: RunFolder, method: str, n_points: int, show_progress: bool) -> None:
    stage = MapStage(run)
    try:
        _map_missing(run, stage, method, n_points, show_progress)
        run.swap_maps(stage.files, _maps_info(run, method))
    finally:
        stage.discard()


def _map_missing(run: RunFolder, target: RunFolder | MapStage, method: str, n_points: int,
                 show_progress: bool) -> None:
    """Map the epochs of each layer that `target` has no maps for yet, then place the test set."""
    config = run.config
    todo = {layer: list(range(_mapped_through(run, target, layer) + 1, run.epochs_complete + 1))
            for layer in run.layers}
    if any(todo.values()) and _first_map_compiles(run, method):
        note(COMPILING, enabled=show_progress)
    with progress_bar(f"mapping ({method})", sum(map(len, todo.values())), enabled=show_progress) as advance:
        for layer, epochs in todo.items():
            if not epochs:
                continue
            if method == "aligned-umap":  # one joint fit over every epoch
                epochs = list(range(run.epochs_complete + 1))
                # AlignedUMAP holds every epoch at once anyway: read whole, not as one open memory map per epoch
                whole = [run.read_array(layout.activations(layer, e)) for e in epochs]
                frames = map_whole_run(layer, epochs, whole, method=method, n_neighbors=config.n_neighbors,
                                       seed=config.seed)
                _store_frames(run, frames, target, method)
                advance(len(epochs))
                continue
            timeline = LayerTimeline(layer, n_points, method=method, n_neighbors=config.n_neighbors,
                                     seed=config.seed, backend=_map_backend(run, method))
            if epochs[0] > 0:
                timeline.continue_from(run.activations(layer, epochs[0] - 1),
                                       target.read_array(layout.map_file(layer, epochs[0] - 1)),
                                       [run.activations(layer, e) for e in range(epochs[0] - 1)])
            for epoch in epochs:
                _store_frames(run, [timeline.next(epoch, run.activations(layer, epoch))], target, method)
                advance(1)
    if run.manifest["test"] is not None:
        for layer in run.layers:
            if not target.has(layout.test_map(layer)):
                _place_test_set(run, layer, target)


def _check_activations(run: RunFolder, n_points: int) -> None:
    """Before any map is written: every epoch's activations of every layer are whole arrays of one row per probe
    image (read from their headers, so a truncated or swollen file is found without mapping anything)."""
    for layer in run.layers:
        for epoch in range(run.epochs_complete + 1):
            relpath = layout.activations(layer, epoch)
            shape, _ = run.array_header(relpath)
            if len(shape) != 2 or shape[0] != n_points:
                raise RunFolderError(f"run folder {run.path} is damaged: {relpath} holds an array of shape {shape} "
                                     f"where one row per probe image ({n_points:,}) belongs; restore it, or record "
                                     "the run again with --force")


class MapStage:
    """Where a redraw writes: each layer's new maps in maps/.new-<layer>/ beside the old ones, listed here until
    RunFolder.swap_maps puts them in place. Reads and writes as a RunFolder does, for the map files only."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.folders = {layer: run.stage_maps(layer) for layer in run.layers}
        self.files: dict[str, dict[str, str]] = {layer: {} for layer in run.layers}

    def _where(self, relpath: str) -> tuple[str, str]:
        _, layer, name = relpath.split("/", 2)  # maps/<layer>/<name>
        return layer, name

    def has(self, relpath: str) -> bool:
        layer, name = self._where(relpath)
        return name in self.files[layer]

    def write_array(self, relpath: str, array: np.ndarray) -> None:
        self._write(relpath, npy_bytes(array))

    def write_json(self, relpath: str, obj: object) -> None:
        self._write(relpath, json_bytes(obj))

    def _write(self, relpath: str, data: bytes) -> None:
        layer, name = self._where(relpath)
        write_bytes(self.folders[layer] / name, data)
        self.files[layer][name] = hashlib.sha256(data).hexdigest()

    def read_array(self, relpath: str) -> np.ndarray:
        layer, name = self._where(relpath)
        return np.load(self.folders[layer] / name, allow_pickle=False)

    def read_json(self, relpath: str) -> dict:
        layer, name = self._where(relpath)
        return json.loads((self.folders[layer] / name).read_text())

    def commit(self) -> None:
        """Nothing is the run's until the swap."""

    def discard(self) -> None:
        """Drop whatever the swap did not take (all of it, after a failure)."""
        for folder in self.folders.values():
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)


def _stored_method(run: RunFolder) -> str | None:
    stored = run.manifest.get("maps", {}).get("method")
    return LEGACY_METHODS.get(stored, stored)


def _map_backend(run: RunFolder, method: str) -> str:
    """What runs the run's aligned maps: the backend its stored maps were made with (a resumed run or a redraw
    continues with it), else the run's setting as this machine resolves it ('auto': layerlapse.maps.backend)."""
    if method != "aligned":
        return "umap-learn"  # the other methods are one library's own fit
    maps = run.manifest.get("maps", {})
    if _stored_method(run) == "aligned" and maps.get("backend") is not None:
        return str(maps["backend"])
    return resolve_backend(run.config.map_backend)


def _maps_info(run: RunFolder, method: str) -> dict:
    return {"method": method, "backend": _map_backend(run, method) if method == "aligned" else None,
            "n_neighbors": run.config.n_neighbors, "seed": run.config.seed,
            "quality": {"k": QUALITY_K, "sample": QUALITY_SAMPLE},
            "test_placement": "kernel-weighted mean of the 10 nearest probe points in the layer's space"}


def _mapped_through(run: RunFolder, target: RunFolder | MapStage, layer: str) -> int:
    """The last epoch e such that epochs 0..e of the layer all have maps in `target` (-1 when epoch 0 has none)."""
    epoch = -1
    while epoch < run.epochs_complete and target.has(layout.map_file(layer, epoch + 1)):
        epoch += 1
    return epoch


def _store_frames(run: RunFolder, frames: list[Frame], target: RunFolder | MapStage | None = None,
                  method: str | None = None) -> None:
    target = run if target is None else target
    for frame in frames:
        quality = _quality(run, target, frame.layer, method)
        quality["frames"][str(frame.epoch)] = frame.quality
        target.write_array(layout.map_file(frame.layer, frame.epoch), frame.xy)
        target.write_json(layout.quality(frame.layer), quality)
        test_probe = layout.test_probe_activations(frame.layer, frame.epoch)
        if run.has(test_probe):  # the test images recorded at this epoch, placed on its frame
            placed = place_points(run.activations(frame.layer, frame.epoch), frame.xy, run.read_array(test_probe))
            target.write_array(layout.test_probe_map(frame.layer, frame.epoch), placed)
        target.commit()


def _quality(run: RunFolder, target: RunFolder | MapStage, layer: str, method: str | None) -> dict:
    relpath = layout.quality(layer)
    if target.has(relpath):
        return target.read_json(relpath)
    return {"method": method or run.manifest["maps"]["method"], "k": QUALITY_K, "sample_size": QUALITY_SAMPLE,
            "sample_seed": run.config.seed, "frames": {}}


def _place_test_set(run: RunFolder, layer: str, target: RunFolder | MapStage) -> None:
    last = run.epochs_complete
    placed = place_points(run.activations(layer, last), target.read_array(layout.map_file(layer, last)),
                          run.read_array(layout.test_activations(layer)))
    target.write_array(layout.test_map(layer), placed)
    target.commit()


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
