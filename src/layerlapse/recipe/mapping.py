"""The map step of the recipe: each recorded snapshot mapped to 2-D, in a worker while training goes on
(`MapAlongside`) or all at once after it (`map_run`), every frame stored with its faithfulness measures and the test
points placed on it. Reads and writes the run folder only, without torch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable

import numpy as np

from ..errors import RunFolderError
from ..maps.backend import resolve_backend
from ..maps.faithfulness import QUALITY_K, QUALITY_SAMPLE
from ..maps.jitcache import map_code_on_disk
from ..maps.project import LEGACY_METHODS, check_method, place_points
from ..maps.timeline import BackgroundMapper, Frame, LayerTimeline, WorkerSpec, map_whole_run
from ..store import layout
from ..store.atomic import write_bytes
from ..store.blocks import npy_bytes
from ..store.run import RunFolder, json_bytes
from .._util.progress import note, progress_bar

COMPILING = "compiling the map's code first (first run only, about a minute)"
POLL_SECONDS = 0.05  # how often the wait after training looks for the worker's next frame
STORER_POLL_SECONDS = 0.2  # how often, while training goes on, the storer thread looks for the worker's frames


class MapAlongside:
    """Called after each recorded epoch: feeds it to a worker process and stores the frames the worker has sent."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.worker: BackgroundMapper | None = None
        # the frames submitted and not yet stored, as (snapshot, layer) in the order the worker maps them
        self.waiting_for: list[tuple[int, str]] = []
        self.heard_from = False  # whether the worker has sent a frame: its first one compiles the map's code
        # A thread stores each frame as the worker sends it, so a snapshot's map is in the run folder (and on a
        # live page, `layerlapse watch`) while the next epoch trains, not only when the next snapshot records.
        self._storer: threading.Thread | None = None
        self._stop_storing = threading.Event()
        self._storer_error: BaseException | None = None
        self._receiving = threading.Lock()  # the worker's queue is read by one thread at a time
        # called with the run, under its write lock, after the storer thread stored frames (a live display)
        self.on_stored: Callable[[RunFolder], None] | None = None

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
            self._storer = threading.Thread(target=self._store_as_they_come, args=(run,), daemon=True,
                                            name="layerlapse-map-storer")
            self._storer.start()
        self._raise_storer_error()
        self._submit(run, epoch)

    def _store_as_they_come(self, run: RunFolder) -> None:
        """The storer thread: each frame into the run folder as the worker sends it, between two of the training
        thread's changes (the run's write lock)."""
        try:
            while not self._stop_storing.is_set():
                if not self._store_finished(run):
                    self._stop_storing.wait(STORER_POLL_SECONDS)
        except BaseException as error:  # raised again in the training thread, at its next snapshot or the end
            self._storer_error = error

    def _store_finished(self, run: RunFolder) -> bool:
        with self._receiving:
            frames = self.worker.finished_frames()
        if frames:
            with run.write_lock:
                self._store(run, frames)
                if self.on_stored is not None:
                    self.on_stored(run)
        return bool(frames)

    def _stop_storer(self) -> None:
        self._stop_storing.set()
        if self._storer is not None:
            self._storer.join()
            self._storer = None

    def _raise_storer_error(self) -> None:
        if self._storer_error is not None:
            error, self._storer_error = self._storer_error, None
            raise error

    def _submit(self, run: RunFolder, epoch: int) -> None:
        with run.write_lock:
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
        self._stop_storer()  # from here this thread stores what comes
        self._raise_storer_error()
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
        self._stop_storer()
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


