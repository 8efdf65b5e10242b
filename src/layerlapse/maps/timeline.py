"""A layer's frames, epoch after epoch: each map with its faithfulness measures, in this process or in a worker
process that maps epoch t while the training loop runs epoch t+1.

The worker is fed from the run folder (it reads the activation files the training loop committed) and sends frames
back; only the main process writes to the run folder, so the manifest has one writer.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import time
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import faithfulness as metrics
from ..store.blocks import finite_rows, float32_rows
from .._util.threads import CoreShare, limit_worker_threads, training_threads, worker_environment
from .project import DEFAULT_BACKEND, DEFAULT_METHOD, EpochMapper, MapState, map_epochs



@dataclass
class Frame:
    layer: str
    epoch: int
    xy: np.ndarray
    quality: dict[str, Any] = field(default_factory=dict)  # measures, "notes" and "seconds"


class LayerTimeline:
    """Maps one layer's epochs in order and measures each frame on a fixed seeded subsample."""

    def __init__(self, layer: str, n_points: int, *, method: str = DEFAULT_METHOD, n_neighbors: int = 40,
                 seed: int = 0, backend: str = DEFAULT_BACKEND) -> None:
        self.layer, self.method = layer, method
        # aligned-umap maps the whole run at once (map_whole_run); its timeline only measures
        self.mapper = None if method == "aligned-umap" else EpochMapper(method, n_neighbors=n_neighbors, seed=seed,
                                                                         backend=backend)
        self.sample = metrics.quality_sample(n_points, seed)
        self._previous: SampledFrame | None = None  # the last frame's sampled activations and map

    def continue_from(self, activations: np.ndarray, xy: np.ndarray, earlier: Sequence[np.ndarray] = ()) -> None:
        """Carry on after a stored frame (a resumed run): its map is the next frame's start. `earlier`, the
        activations of the frames before it from the run's first, lets the aligned map find again which
        neighbours each point was last fitted to (`EpochMapper.replay`); without them it starts counting afresh."""
        activations = float32_rows(activations)
        xy = np.asarray(xy, dtype=np.float32)
        usable = finite_rows(activations) & np.isfinite(xy).all(axis=1)
        if earlier:
            self.mapper.replay([*earlier, activations])
        if not earlier or not np.array_equal(self.mapper.state.usable, usable):
            self.mapper.state = MapState(knn=None, usable=usable)
            self.mapper.previous_activations = activations
        self.mapper.state.xy = xy
        self._previous = SampledFrame(activations[self.sample], xy[self.sample])

    def next(self, epoch: int, activations: np.ndarray) -> Frame:
        """The frame of `activations` (n, features), any float dtype; a memory-mapped snapshot becomes float32 a
        block at a time, so it is never in memory twice."""
        activations = float32_rows(activations)
        started = time.perf_counter()
        xy = self.mapper.next(activations)
        seconds = time.perf_counter() - started
        return self._measured(epoch, activations, xy, self.mapper.notes, seconds)

    def _measured(self, epoch: int, activations: np.ndarray, xy: np.ndarray, notes: list[str],
                  seconds: float | None) -> Frame:
        layer_sample, xy_sample = activations[self.sample], xy[self.sample]
        quality, self._previous = measure_frame(layer_sample, xy_sample, self._previous)
        quality["notes"] = list(notes)
        if seconds is not None:
            quality["seconds"] = round(seconds, 3)
        return Frame(self.layer, epoch, xy, quality)


@dataclass
class SampledFrame:
    """A frame's sampled rows as the next frame's measures compare with them: the activations, the map and, when
    they were measured, the rows that were usable and their neighbourhoods (so they are not found twice)."""

    layer: np.ndarray
    xy: np.ndarray
    usable: np.ndarray | None = None
    found: metrics.Neighbourhoods | None = None


def measure_frame(layer_sample: np.ndarray, xy_sample: np.ndarray,
                  previous: SampledFrame | tuple[np.ndarray, np.ndarray] | None
                  ) -> tuple[dict[str, Any], SampledFrame]:
    """What `LayerTimeline` stores as a frame's quality: its measures (`frame_quality`, and `change_quality` against
    `previous`, the frame before) on the sampled rows that are finite in the layer and on the map (and in the frame
    before), rounded to six decimals; and this frame's sample as the next frame's `previous`, its neighbourhoods
    kept so that the next frame does not find them again."""
    current = SampledFrame(layer_sample, xy_sample)
    usable = np.isfinite(layer_sample).all(axis=1) & np.isfinite(xy_sample).all(axis=1)
    if _flat(xy_sample[usable]):
        return {}, current
    if usable.sum() > 2 * metrics.QUALITY_K + 1:
        current.usable, current.found = usable, metrics.neighbourhoods(layer_sample[usable], xy_sample[usable])
    quality: dict[str, Any] = metrics.frame_quality(layer_sample[usable], xy_sample[usable], known=current.found)
    if previous is not None:
        before = previous if isinstance(previous, SampledFrame) else SampledFrame(*previous)
        both = usable & np.isfinite(before.layer).all(axis=1) & np.isfinite(before.xy).all(axis=1)
        if not _flat(before.xy[both]):
            same_rows = (before.found is not None and current.found is not None
                         and np.array_equal(before.usable, both) and np.array_equal(usable, both))
            quality.update(metrics.change_quality(before.layer[both], layer_sample[both], before.xy[both],
                                                  xy_sample[both], known=(before.found, current.found)
                                                  if same_rows else None))
    return {key: None if value is None else round(value, 6) for key, value in quality.items()}, current


def _flat(xy: np.ndarray) -> bool:
    return len(xy) == 0 or bool(np.all(xy == xy[0]))


def map_whole_run(layer: str, epochs: list[int], activations: list[np.ndarray], *, method: str, n_neighbors: int,
                  seed: int) -> list[Frame]:
    """Every epoch at once (AlignedUMAP needs them together), then measured in order."""
    started = time.perf_counter()
    frames, notes = map_epochs(method, activations, n_neighbors=n_neighbors, seed=seed)
    seconds = (time.perf_counter() - started) / max(len(frames), 1)
    timeline = LayerTimeline(layer, len(activations[0]), method=method, n_neighbors=n_neighbors, seed=seed)
    return [timeline._measured(epoch, float32_rows(x), xy, note, seconds)
            for epoch, x, xy, note in zip(epochs, activations, frames, notes)]


# ---- the worker process ------------------------------------------------------------------------------------------
@dataclass
class WorkerSpec:
    """What the worker needs to map a run's layers: where the files are and how to map them."""

    run_path: str
    layers: list[str]
    n_points: int
    method: str
    n_neighbors: int
    seed: int
    resume_from: dict[str, int]  # layer -> last epoch already mapped and stored (its map is the next start)
    backend: str = DEFAULT_BACKEND  # what runs the aligned map (layerlapse.maps.backend)


def _activation_path(run_path: str, layer: str, epoch: int) -> Path:
    return Path(run_path) / "activations" / layer / f"epoch_{epoch:03d}.npy"


def _map_path(run_path: str, layer: str, epoch: int) -> Path:
    return Path(run_path) / "maps" / layer / f"epoch_{epoch:03d}.npy"


def _mapped(path: Path) -> np.ndarray:
    """A committed snapshot, memory-mapped: the frame reads it a block at a time (see `LayerTimeline.next`)."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _worker_main(spec: WorkerSpec, jobs: Any, results: Any, share: CoreShare) -> None:
    """Map each epoch sent on `jobs` for every layer, in order; send Frames (or an error text) on `results`. The
    share's flag is up while it maps, for the training's thread rule (`layerlapse._util.threads`)."""
    try:
        limit_worker_threads()
        timelines = {layer: LayerTimeline(layer, spec.n_points, method=spec.method, n_neighbors=spec.n_neighbors,
                                          seed=spec.seed, backend=spec.backend) for layer in spec.layers}
        for layer, epoch in spec.resume_from.items():
            timelines[layer].continue_from(_mapped(_activation_path(spec.run_path, layer, epoch)),
                                           np.load(_map_path(spec.run_path, layer, epoch)),
                                           [_mapped(_activation_path(spec.run_path, layer, e)) for e in range(epoch)])
        while (epoch := _next_job(jobs)) is not None:
            for layer, timeline in timelines.items():
                with share.mapping():
                    frame = timeline.next(epoch, _mapped(_activation_path(spec.run_path, layer, epoch)))
                results.put(frame)
    except BaseException as error:  # the main process decides what to do; it maps in-process instead
        results.put(f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
    finally:
        if _parent_alive():
            results.put(None)
        else:  # frames nobody will read fill the pipe; waiting to flush them at exit would hang forever
            results.cancel_join_thread()


def _next_job(jobs: Any) -> int | None:
    """The next epoch to map; None to stop, also when the main process has died (killed with SIGKILL, say), so an
    orphaned worker does not wait forever holding its parent's output pipes."""
    while True:
        try:
            return jobs.get(timeout=1.0)
        except queue.Empty:
            if not _parent_alive():
                return None


def _parent_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


class BackgroundMapper:
    """A worker process that maps each committed epoch while training goes on."""

    def __init__(self, spec: WorkerSpec) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
        self._jobs, self._results = context.Queue(), context.Queue()
        self.share = CoreShare(context)
        self._process = context.Process(target=_worker_main, args=(spec, self._jobs, self._results, self.share),
                                        daemon=True, name="layerlapse-mapper")
        with _main_script_hidden(), worker_environment():
            self._process.start()
        training_threads.watch(self.share)
        self.error: str | None = None
        self._done = False

    def submit(self, epoch: int) -> None:
        if not self._done:
            self._jobs.put(epoch)

    def finished_frames(self, *, wait: bool = False) -> list[Frame]:
        """Frames done so far; with `wait`, every frame submitted (the worker is then stopped)."""
        if wait and not self._done:
            self._jobs.put(None)
        frames: list[Frame] = []
        while not self._done and self._receive(frames, block=wait):
            pass
        if self._done:
            self._process.join(timeout=10)
        return frames

    def _receive(self, frames: list[Frame], *, block: bool) -> bool:
        """Take one result into `frames`; False when there is nothing more to take now."""
        try:
            item = self._results.get(block=block, timeout=1.0 if block else None)
        except queue.Empty:
            if block and self._process.is_alive():
                return True  # still working: ask again
            if block or not self._process.is_alive():  # killed from outside: it will send nothing more
                self.error = self.error or f"the worker process ended with exit code {self._process.exitcode}"
                self._done = True
            return False
        if item is None:
            self._done = True
        elif isinstance(item, str):
            self.error = item
        else:
            frames.append(item)
        return True

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
        self._done = True
        training_threads.forget(self.share)  # the training threads it had before
        for pipe in (self._jobs, self._results):  # their feeder threads and semaphores, now rather than at exit
            pipe.close()
            pipe.cancel_join_thread()


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """While the worker starts: spawn would run the parent's main script again in the child (as `__mp_main__`),
    which re-runs a user's training script that has no `if __name__ == "__main__":` guard. The worker needs nothing
    from it, so the script's name is hidden from multiprocessing for the start and put back at once."""
    main = sys.modules.get("__main__")
    hidden = {name: getattr(main, name) for name in ("__spec__", "__file__") if hasattr(main, name)}
    try:
        for name in hidden:
            delattr(main, name) if name == "__file__" else setattr(main, name, None)
        yield
    finally:
        for name, value in hidden.items():
            setattr(main, name, value)
