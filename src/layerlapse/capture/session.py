"""One recording session, framework-free: what every way of training needs from layerlapse, written once.

The built-in loop, a user's own PyTorch loop (`Recorder`) and the Lightning, Keras and Hugging Face callbacks are thin
adapters over `RecordingSession`: they say when training starts, when a step or an epoch ends and when it finishes,
and hand it a `Capture` (something that runs the probe through the model and returns numpy arrays). The session
decides when a snapshot is due (`Schedule`), numbers the snapshots, writes them with the test probe into the run
folder, commits each one, stores a `nan` metric as null with a note, records the final test set, and notes a
failure so the run can be resumed. It never imports torch, Keras or transformers.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError, RunFolderError
from ..store import layout
from ..store.blocks import largest_finite_magnitude
from ..store.history import in_step_order, snapshot_labels
from ..store.texts import checked_texts
from .spec import Schedule
from .values import as_number, checked_labels, json_safe
from .._util.threads import training_threads

if TYPE_CHECKING:
    from ..store.run import RunFolder

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: larger activations are stored as float32
STEP_KEYS = ("step", "epoch")  # what labels a snapshot besides its number


@dataclass
class Captured:
    """What the model made of one set of inputs: each layer's activations (one row per input) and, when the model's
    output is class scores, the class probabilities."""

    activations: dict[str, np.ndarray]
    probabilities: np.ndarray | None = None

    def __repr__(self) -> str:
        layers = ", ".join(f"{name}: {array.shape[1]} {array.dtype}" for name, array in self.activations.items())
        n = len(next(iter(self.activations.values()))) if self.activations else 0
        return f"Captured(rows={n}, layers={{{layers}}}, probabilities={self.probabilities is not None})"


class Capture(Protocol):
    """Runs inputs through a model and returns numpy arrays: the torch `Recorder` and the Keras callback are two."""

    layers: list[str]

    def capture(self, which: str) -> Captured:
        """The activations of "probe", "test_probe" or "test_set" (each given when the capture was made)."""

    def layer_info(self) -> dict[str, dict[str, Any]]:
        """Per layer: the output's shape per sample, how it was reduced to a row, which output was taken."""


def yield_cores_while_mapping(on: bool = True) -> None:
    """Have training give the mapping worker a core while, and only while, it maps (off by default).

    Every loop that records through a `Recorder` follows (the built-in one, your own, Lightning, Hugging Face; Keras
    on torch). On 2 cores it took the reference run from 630 s to 572 s, but a seeded run's trained weights then
    depend, in their last bits, on when the worker happened to map, so a resumed run no longer equals the
    uninterrupted one. Process-wide; call it before training.

    Parameters
    ----------
    on : bool
        True to yield a core while the worker maps, False for the default (the training keeps its threads).
    """
    if not isinstance(on, bool):
        raise ConfigError(f"yield_cores_while_mapping takes True or False, got {on!r}")
    training_threads.yield_cores = on



@dataclass
class Inputs:
    """What a session records besides activations: labels, class names, thumbnails and texts of the probe, and of the test
    probe and test set when there are any. Checked once, before anything is written."""

    labels: np.ndarray
    class_names: list[str]
    thumbnails: np.ndarray | None = None
    test_probe_labels: np.ndarray | None = None
    test_probe_thumbnails: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    indices: np.ndarray | None = None
    test_probe_indices: np.ndarray | None = None
    texts: list[str] | None = None  # one per probe item (store.texts), where the run was given them
    tokens: dict[str, list] | None = None  # a run of tokens: each point's item, position and token (capture.tokens)

    def __post_init__(self) -> None:
        self.labels = checked_labels(self.labels, "labels", self.class_names)
        if self.texts is not None:
            self.texts = checked_texts(self.texts, len(self.labels))
        if self.test_probe_labels is not None:
            self.test_probe_labels = checked_labels(self.test_probe_labels, "test probe labels", self.class_names)
        if self.test_labels is not None:
            self.test_labels = checked_labels(self.test_labels, "test set labels", self.class_names)


def _whole(method: Callable) -> Callable:
    """A change of the run made whole, between two of the maps the storer thread stores as the mapping worker sends
    them (recipe.mapping): the run's write lock is held through it."""
    @functools.wraps(method)
    def holding_the_write_lock(self: RecordingSession, *args: Any, **kwargs: Any) -> Any:
        with self._started().write_lock:
            return method(self, *args, **kwargs)
    return holding_the_write_lock


@dataclass
class RecordingSession:
    """Records a training run into a run folder: `start()`, then `step_end(step)` after optimizer steps and
    `epoch_end(epoch, metrics)` after epochs (whichever the schedule uses; the other is a no-op), then `finish()`.

    `on_snapshot(run, index)` is called after each snapshot is committed (the pipeline maps it there, alongside
    training). A session given `resume=True` continues the run in `out` after its last committed snapshot. The run
    ends one of two ways, the same for every framework: `complete(draw=...)` or `abort(interrupted=...)`.

    Parameters
    ----------
    out : str
        The run folder to create (or, resuming, to reopen).
    capture : Capture
        What runs inputs through the model: a `Recorder`, the Keras callback, the ranks of a DDP fit.
    inputs : Inputs
        The probe's labels, class names and thumbnails, and the test probe's and test set's when given.
    config : RunConfig
        The settings stored in the manifest (layers, map method, neighbours, seed).
    dataset : dict
        The manifest's "dataset" entry besides class names and probe size (its name, where it came from).
    training : dict
        The training's settings, stored in the manifest as given (JSON-safe).
    schedule : Schedule
        When snapshots are taken.
    force : bool
        Replace a finished run already in `out`.
    resume : bool
        Continue the interrupted run in `out`.
    on_snapshot : callable, optional
        Called as `on_snapshot(run, index)` after each snapshot is committed.
    run : RunFolder, optional
        An open run folder to record into instead of creating one in `out`.
    live : bool
        Show the lapse under the notebook cell and add each snapshot as it is mapped (`layerlapse.notebook.live`).
    """

    out: str
    capture: Capture
    inputs: Inputs
    config: RunConfig
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)
    force: bool = False
    resume: bool = False
    on_snapshot: Callable[[RunFolder, int], None] | None = None
    run: RunFolder | None = None
    live: bool = False
    _display: Any = field(default=None, init=False, repr=False)  # the live widget (layerlapse.notebook.live)
    _recorded_before: int = field(default=-1, init=False, repr=False)  # the last snapshot an earlier process made
    _latest_step: int | None = field(default=None, init=False, repr=False)  # the last step step_end was told
    _aborted: bool = field(default=False, init=False, repr=False)

    def __repr__(self) -> str:
        where = "not started" if self.run is None else f"{self.run.epochs_complete + 1} snapshots"
        return f"RecordingSession({self.out!r}, layers={self.capture.layers}, {self.schedule.describe()}, {where})"

    # ---- the events of training ------------------------------------------------------------------------------------
    def start(self, *, step: int | None = None, epoch: int = 0) -> RunFolder:
        """Create the run folder (or reopen it to resume) and take the first snapshot, of the network as it is
        (step 0 and epoch 0 unless said otherwise).

        Parameters
        ----------
        step : int, optional
            The first snapshot's optimizer step (0 under a step schedule when not given).
        epoch : int
            The first snapshot's epoch (a resumed fit's own).
        """
        if self.run is None:
            self.run = self._open()
        if self.run.epochs_complete < 0:
            if step is None and self.schedule.by_steps:
                step = 0
            self.snapshot(step=step, epoch=epoch)
        return self.run

    def step_end(self, step: int, *, epoch: int | None = None, metrics: dict[str, Any] | None = None) -> bool:
        """After `step` optimizer steps: a snapshot when the schedule has one due. Returns whether one was taken.

        Parameters
        ----------
        step : int
            Optimizer steps so far.
        epoch : int, optional
            The epoch the step is in.
        metrics : dict, optional
            The history row of a snapshot taken now.
        """
        if self.schedule.by_steps:
            self._latest_step = step if self._latest_step is None else max(step, self._latest_step)
        if not self.schedule.by_steps or not self.schedule.due_at_step(step) or self._recorded(step=step):
            return False
        self.snapshot(step=step, epoch=epoch, metrics=metrics)
        return True

    def epoch_end(self, epoch: int, *, step: int | None = None, metrics: dict[str, Any] | None = None) -> bool:
        """After epoch `epoch` (1 after the first): a snapshot, under the default schedule. Returns whether one was
        taken. Under a step schedule the metrics join the history at the epoch's last step (`step`, else the last
        one `step_end` was told), in the row of a snapshot at that step or in a row of their own.

        Parameters
        ----------
        epoch : int
            Epochs so far.
        step : int, optional
            Optimizer steps so far.
        metrics : dict, optional
            The epoch's numbers.
        """
        if self.schedule.by_steps:
            if metrics:
                self._add_metrics(metrics, epoch, step)
            return False
        if self._recorded(epoch=epoch):
            return False
        self.snapshot(step=step, epoch=epoch, metrics=metrics)
        return True

    @_whole
    def snapshot(self, *, step: int | None = None, epoch: int | None = None, metrics: dict[str, Any] | None = None,
                 captured: Captured | None = None, extra: Callable[[RunFolder, int], None] | None = None) -> int:
        """Record one snapshot now, labelled by `step` and/or `epoch`, and commit it with `metrics` as its history
        row; returns its number. `captured` is a probe run the caller already made (to share it with validation);
        `extra(run, index)` writes more files (a checkpoint) into the same commit.

        Parameters
        ----------
        step, epoch : int, optional
            The snapshot's labels; neither: plainly the next epoch.
        metrics : dict, optional
            The snapshot's history row.
        captured : Captured, optional
            A probe run made already; by default the capture runs the probe now.
        extra : callable, optional
            Writes more files into the snapshot's commit.
        """
        run = self._started()
        index = run.epochs_complete + 1
        label = self._check_order(step, epoch, index)
        spool_into(self.capture, run)
        captured = captured if captured is not None else self.capture.capture("probe")
        self._check_captured(captured, "probe", len(self.inputs.labels))
        if index == 0:
            self._write_inputs(run)
        if self.inputs.test_probe_labels is not None:
            test = self.capture.capture("test_probe")
            self._check_captured(test, "test probe", len(self.inputs.test_probe_labels))
            for layer, values in test.activations.items():
                run.write_array(layout.test_probe_activations(layer, index), values, storage_dtype(values))
            if test.probabilities is not None:
                run.write_array(layout.test_probe_predictions(index), test.probabilities)
        for layer, values in captured.activations.items():
            run.write_array(layout.activations(layer, index), values, storage_dtype(values))
        if captured.probabilities is not None:
            run.write_array(layout.predictions(index), captured.probabilities)
        if extra is not None:
            extra(run, index)
        if label is not None:
            run.manifest["snapshots"] = [*snapshot_labels(run.manifest, index), label]
        self._note_layers(run)
        run.record_epoch(index, self._history_row(index, metrics))
        if self.on_snapshot is not None:
            self.on_snapshot(run, index)
        self._show_live(run)
        return index

    @_whole
    def finish(self, *, test_metrics: dict[str, float] | None = None, step: int | None = None,
               epoch: int | None = None, metrics: dict[str, Any] | None = None) -> RunFolder:
        """The final test set (when one was given) run through the last network and recorded; the run stays open
        (status running) for the pipeline to map and draw it. Under a step schedule, a `step` that was not due gets a
        last snapshot, so the lapse ends with the trained network.

        Parameters
        ----------
        test_metrics : dict, optional
            The test set's loss and accuracy when the model's output is not class scores to compute them from.
        step, epoch : int, optional
            The final network's step (and epoch), under a step schedule.
        metrics : dict, optional
            The history row of that last snapshot, where one is taken.
        """
        run = self._started()
        if self.schedule.by_steps and step is not None:
            last = snapshot_labels(run.manifest)[-1] if run.epochs_complete >= 0 else {}
            if step > last.get("step", -1):
                self.snapshot(step=step, epoch=epoch, metrics=metrics)
        if self.inputs.test_labels is not None and run.manifest["test"] is None:
            spool_into(self.capture, run)
            test = self.capture.capture("test_set")
            self._check_captured(test, "test set", len(self.inputs.test_labels))
            run.write_array(layout.TEST_LABELS, self.inputs.test_labels)
            for layer, values in test.activations.items():
                run.write_array(layout.test_activations(layer), values, storage_dtype(values))
            summary = dict(test_metrics or {})
            if test.probabilities is not None:
                run.write_array(layout.TEST_PREDICTIONS, test.probabilities)
                loss, accuracy = loss_and_accuracy(test.probabilities, self.inputs.test_labels)
                summary = {"loss": loss, "accuracy": accuracy, **summary}
            if {"loss", "accuracy"} <= set(summary):
                run.manifest["test"] = {"loss": summary["loss"], "accuracy": summary["accuracy"],
                                        "size": len(self.inputs.test_labels)}
            run.commit()
        return run

    def complete(self, *, draw: bool = True) -> RunFolder:
        """The end of a recorded run: mapped, measured, drawn and committed complete (the recipe's last steps), or,
        with `draw=False`, committed complete as recorded (`layerlapse render RUN` maps and draws it later). The
        run's lock and mapping worker are given back whatever happens; a failure aborts the run (`abort`).

        Parameters
        ----------
        draw : bool
            Map, measure and draw the run (True), or leave that to `layerlapse render RUN`.
        """
        run = self._started()
        try:
            with self.aborting_on_error():
                if draw:
                    from ..recipe.steps import complete_run  # the recipe's last steps: map, measure, draw, report

                    complete_run(run, self.on_snapshot)
                else:
                    run.commit("complete")
            self._show_live(run, done=True)
        finally:
            self._stop_mapping()
            run.close()
        return run

    def _show_live(self, run: RunFolder, done: bool = False) -> None:
        """With `live`: the widget under the notebook cell, shown at the first snapshot and given each new map."""
        if self.live:
            from ..notebook.live import live_display  # capture stands above the notebook; anywidget loads only here

            self._display = live_display(run, self._display, done=done)
            if getattr(self.on_snapshot, "on_stored", False) is None:  # the maps' storer thread: shown as stored
                self.on_snapshot.on_stored = self._show_live

    def abort(self, *, interrupted: bool = False) -> None:
        """The one way a recording ends early, for every framework: the run is marked interrupted (Ctrl-C) or failed
        on top of its last commit, so it can be resumed; its mapping worker stops and its lock is given back. Doing
        it again does nothing.

        Parameters
        ----------
        interrupted : bool
            The status to leave: "interrupted" (Ctrl-C) or else "failed".
        """
        if self.run is not None and not self._aborted:
            self._aborted = True
            try:
                self.run._try_commit("interrupted" if interrupted else "failed")
            finally:
                self.run.close()
        self._stop_mapping()

    @contextlib.contextmanager
    def aborting_on_error(self) -> Iterator[None]:
        """A recording event: when it raises (Ctrl-C too), the run is aborted before the error goes on."""
        try:
            yield
        except BaseException as error:
            self.abort(interrupted=isinstance(error, KeyboardInterrupt))
            raise

    def _stop_mapping(self) -> None:
        stop = getattr(self.on_snapshot, "stop", None)  # the mapping worker alongside training, when there is one
        if stop is not None:
            stop()

    # ---- resuming ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a framework's checkpoint keeps so a resumed fit continues this run folder (see `resume`)."""
        last = self.run.epochs_complete if self.run is not None else -1
        return {"out": str(self.out), "snapshots_complete": last}

    # ---- inside ------------------------------------------------------------------------------------------------------
    def _open(self) -> RunFolder:
        from ..store.run import RunFolder

        if self.resume and (Path(self.out) / layout.MANIFEST).is_file():
            run = reopen_for_resume(self.out)
            self._recorded_before = run.epochs_complete
            return run
        dataset = {**self.dataset, "class_names": list(self.inputs.class_names),
                   "probe_size": int(len(self.inputs.labels))}
        run = RunFolder.create(self.out, self.config, dataset, force=self.force)
        if self.training:
            run.manifest["training"] = json_safe(self.training, "training")
        if self.schedule.by_steps:
            run.manifest["schedule"] = {"every": self.schedule.every}
        run.commit()
        return run

    def _started(self) -> RunFolder:
        if self.run is None:
            raise RuntimeError("the recording session has not started: call start() before the first epoch")
        return self.run

    def _recorded(self, *, step: int | None = None, epoch: int | None = None) -> bool:
        """Whether this step's or epoch's snapshot was recorded before this session resumed the run: a resumed fit
        replays the events since its checkpoint, and those snapshots are kept as they are. A snapshot this session
        took is not skipped: recording it again is an error (`_check_order`), never a silent drop."""
        run = self._started()
        labels = run.manifest.get("snapshots")
        if labels:
            key, value = ("step", step) if step is not None else ("epoch", epoch)
            return any(label.get(key) == value for label in labels[:self._recorded_before + 1])
        return epoch is not None and epoch <= self._recorded_before

    def _check_order(self, step: int | None, epoch: int | None, index: int) -> dict[str, int] | None:
        """The label of snapshot `index` ({"step", "epoch"}), or None when it is plainly epoch `index`; a one-line
        error for a snapshot that repeats or goes back, never a silent overwrite."""
        run = self._started()
        for name, value in (("step", step), ("epoch", epoch)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be a whole number of at least 0, got {value!r}")
        labelled = bool(run.manifest.get("snapshots"))
        if step is None and epoch is None:
            if labelled:
                raise ConfigError("this run labels its snapshots by step or epoch: pass step=... or epoch=...")
            epoch = index
        last = snapshot_labels(run.manifest, index)[-1] if index > 0 else {}
        for name, value in (("step", step), ("epoch", epoch)):
            before = last.get(name)
            if value is None or before is None:
                continue
            if value < before:
                raise RunFolderError(f"a snapshot at {name} {value} comes after {name} {before} in {run.path}: "
                                     "snapshots go forward in training; record them in order")
            if value == before and (name == "step" or step is None):
                raise RunFolderError(f"{name} {value} is already recorded (snapshot {index - 1}) in {run.path}: "
                                     f"record each {name} once, or start a new run (force=True) to record it again")
        label = {key: value for key, value in (("step", step), ("epoch", epoch)) if value is not None}
        return None if not labelled and label == {"epoch": index} else label

    def _check_captured(self, captured: Captured, what: str, rows: int) -> None:
        for layer in self.capture.layers:
            values = captured.activations.get(layer)
            if values is None or values.ndim != 2 or len(values) != rows:
                shape = None if values is None else values.shape
                raise RunFolderError(f"the {what}'s activations of layer {layer!r} are {shape}, where one row per "
                                     f"input ({rows:,}) belongs: the {what} changed between snapshots; give a fixed "
                                     "probe (a DataLoader with shuffle=False)")

    def _write_inputs(self, run: RunFolder) -> None:
        inputs = self.inputs
        run.write_probe(inputs.labels, inputs.thumbnails, inputs.indices, inputs.texts)
        if inputs.tokens is not None:
            run.write_json(layout.PROBE_TOKENS, inputs.tokens)
        if inputs.test_probe_labels is not None:
            if inputs.test_probe_indices is not None:
                run.write_array(layout.TEST_PROBE_INDICES, inputs.test_probe_indices)
            run.write_array(layout.TEST_PROBE_LABELS, inputs.test_probe_labels)
            if inputs.test_probe_thumbnails is not None:
                run.write_array(layout.TEST_PROBE_IMAGES, inputs.test_probe_thumbnails)

    def _note_layers(self, run: RunFolder) -> None:
        info = self.capture.layer_info()
        if info and run.manifest.get("layer_info") != info:
            run.manifest["layer_info"] = json_safe(info, "layer_info")

    def _clean_metrics(self, metrics: dict[str, Any], index: int) -> dict[str, float | None]:
        """Metrics as JSON numbers: nan and inf become null, with a note in the manifest; the run goes on."""
        clean: dict[str, float | None] = {}
        for key, value in metrics.items():
            number = as_number(key, value)
            if number is not None and not math.isfinite(number):
                self._note(f"snapshot {index}: {key} was {number} (stored as null)")
                number = None
            clean[str(key)] = number
        return clean

    def _history_row(self, index: int, metrics: dict[str, Any] | None) -> dict[str, Any] | None:
        """Snapshot `index`'s history row: its number, step and epoch, its metrics, and the epoch-end metrics already
        recorded at its step; None for a snapshot with no metrics at all (no empty row on the curves)."""
        run = self._started()
        label = snapshot_labels(run.manifest, index + 1)[index]
        at_step = next((row for row in run.history if "snapshot" not in row and "step" in label
                        and row.get("step") == label["step"]), {})
        clean = self._clean_metrics(metrics or {}, index)
        if not clean and not at_step:
            return None
        return {**at_step, "snapshot": index, **label, **_unlabelled(clean)}

    def _add_metrics(self, metrics: dict[str, Any], epoch: int, step: int | None) -> None:
        """Under a step schedule: an epoch's metrics join the history at the epoch's last step, in the row of the
        snapshot at that step or in a row of their own ("step", "epoch", metrics), kept in step order."""
        run = self._started()
        if run.epochs_complete < 0:
            return
        if step is None:
            step = self._latest_step if self._latest_step is not None else snapshot_labels(run.manifest)[-1].get("step")
        extra = {**_unlabelled(self._clean_metrics(metrics, run.epochs_complete)), "epoch_end": epoch}
        rows = run.history
        if step is None:  # snapshots labelled by epoch alone: the metrics join the last snapshot's row
            index = run.epochs_complete
            key, value, new = "snapshot", index, {"snapshot": index, **snapshot_labels(run.manifest)[index]}
        else:
            key, value, new = "step", step, {"step": step, "epoch": epoch}
        position = next((i for i, row in enumerate(rows) if row.get(key) == value), None)
        if position is not None:
            rows[position] = {**rows[position], **extra}
        else:
            rows.append({**new, **extra})
            in_step_order(rows)
        run.manifest["history"] = rows
        run.write_history()
        run.commit()

    def _note(self, text: str) -> None:
        run = self._started()
        notes = run.manifest.setdefault("notes", [])
        if text not in notes:
            notes.append(text)


def _unlabelled(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics named like the history's own labels (a user's "epoch" or "step") keep their value as metric_<name>."""
    return {f"metric_{key}" if key in ("snapshot", "epoch", "step") else key: value for key, value in metrics.items()}


def own_run_config(config: RunConfig | None, dataset: str, layers: list[str], probe_size: int,
                   test_probe_size: int | None, training: dict[str, Any] | None) -> RunConfig:
    """The settings of a run recorded from a user's loop: their data's name, their layers and probe, the training
    settings they state (batch size, learning rate, epochs, validation split) and the map settings (from `config`
    when given)."""
    base = config or RunConfig(loop="own")
    stated = {key: value for key, value in (training or {}).items()
              if key in ("epochs", "batch_size", "learning_rate", "validation_split", "seed")}
    values = {**base.to_dict(), "loop": "own", "dataset": dataset, "layers": list(layers), "probe": probe_size,
              "test_probe": test_probe_size or 0, "train_subset": None, "validation_split": None, "device": "auto",
              "epochs": None, "batch_size": None, "learning_rate": None, **stated}
    return RunConfig.from_dict(values)


def storage_dtype(values: np.ndarray) -> np.dtype:
    """How activations are stored: float16, half the bytes, unless a value would not fit (|x| > 65504, which
    float16 turns into inf): then float32, never a silent inf. Values that are not floats are stored as float32.
    Read a block of rows at a time (a snapshot may be a memory-mapped file of hundreds of MB)."""
    if values.dtype == np.float16 or values.dtype.kind != "f":
        return np.dtype(np.float16 if values.dtype == np.float16 else np.float32)
    return np.dtype(np.float32 if largest_finite_magnitude(values) > FLOAT16_MAX else np.float16)


def spool_into(capture: Capture, run: RunFolder) -> None:
    """Have a capture that can (the torch Recorder) write its arrays a batch at a time into files inside `run`,
    which the run then moves into place, instead of holding them whole in memory."""
    spool = getattr(capture, "spool_into", None)  # optional: the Keras callback captures in memory
    if spool is not None:
        spool(run)


def loss_and_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy from class probabilities (what the logits give, to ~1e-7)."""
    labels = np.asarray(labels, dtype=np.int64)
    true_class = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    loss = float(np.mean(-np.log(np.maximum(true_class, np.finfo(np.float32).tiny))))
    return loss, float(np.mean(probabilities.argmax(axis=1) == labels))


def reopen_for_resume(out: str | os.PathLike) -> RunFolder:
    """The run in `out`, locked, checked, rid of what a killed writer left after the last commit, running again."""
    from ..store.run import RunFolder

    run = RunFolder.open_for_writing(out)  # the lock first: a second --resume stops here
    try:
        if run.status == "complete":
            raise RunFolderError(f"the run in {out} is already complete: redraw it with `layerlapse render {out}`, "
                                 "or record it again with --force")
        run.discard_uncommitted()
        run.commit("running")
    except BaseException:
        run.close()
        raise
    return run
