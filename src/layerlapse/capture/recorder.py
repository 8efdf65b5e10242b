"""Recording what chosen layers output for a fixed probe set: forward hooks, snapshots as numpy arrays.

The same `Recorder` serves the built-in training loop and users' own loops:

    with Recorder(model, layers=["hidden"], probe=x_probe, run=run) as rec:
        rec.snapshot(0)
        for epoch in range(1, epochs + 1):
            train_one_epoch(...)
            rec.snapshot(epoch)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..config import RunConfig
from ..errors import ConfigError
from ..store.blocks import release_pages
from .._util.memory import keep_freed_memory
from .._util.threads import fit_training_threads
from .layers import class_scores, copy_into, find_layers, model_device, warn_of_a_first_step
from .misfit import SHAPE_WORDS, describe_batch, failed_in, first_line
from .modes import evaluating
from .inputs import labels_of, probe_texts
from .probe import (CHANNELS_FIRST, LayerOutput, ProbeInputs, first_output, layer_output, not_one_row_per_input,
                    reduce_rows)
from .rows import describe_reduction
from .session import Captured, Inputs, RecordingSession, own_run_config
from .spec import RecordingSpec
from .tokens import TOKENS, real_tokens, rows_per_token, token_items, token_layers, token_points, tokens_as_inputs

if TYPE_CHECKING:
    from ..store.run import RunFolder


@dataclass
class Snapshot:
    """What the probe set looked like to the network at one epoch."""

    epoch: int
    # layer name -> (n_probe, features), float16 (float32 where it overflows); recording into a run folder, a
    # read-only memory map of the run's file (written a batch at a time, never whole in memory)
    activations: dict[str, np.ndarray]
    probabilities: np.ndarray | None  # (n_probe, n_classes), float32; None when the output is not class scores
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per-sample output shape before flattening

    def __repr__(self) -> str:
        layers = ", ".join(f"{name}: {array.shape[1]}" for name, array in self.activations.items())
        n = len(next(iter(self.activations.values()))) if self.activations else 0
        return f"Snapshot(epoch={self.epoch}, probe={n}, layers={{{layers}}})"


class Recorder:
    """Forward hooks on named layers of a PyTorch model; snapshots of what they output for a fixed probe.

    In your own loop, with a run folder (`out`), it records the whole lapse:

        rec = Recorder(model, layers=["fc1"], probe=probe_loader, out="runs/mine", class_names=names,
                       test_probe=test_loader, test_set=test_loader)
        rec.start()                                   # the untrained network
        for epoch in range(1, epochs + 1):
            loss = train_one_epoch(...)
            rec.epoch_end(epoch, metrics={"loss": loss})
        run = rec.finish()                            # test set, maps, frames, GIF, report: complete

    `every` takes snapshots every N optimizer steps (call `rec.step_end(step)` after each) or at log-spaced steps
    ("log") instead of every epoch. Without `out` (or `run`), `snapshot(epoch)` returns the activations and writes
    nothing. The probe may be a tensor, an array, a tuple or dict of tensors, a Dataset or a DataLoader (labels are
    taken from it when it yields them; see `layerlapse.capture.probe`). A recorded module may return a tensor, a
    tuple, a list, a dict or a ModelOutput: the first tensor is taken unless `output` selects one (a position or a
    key; one for all layers or a dict per layer). Outputs of more than one dimension per input are reduced to a row
    by `reduce`: "flatten" (the default), "mean" (over space for conv maps, over tokens for sequences), "first"
    (the first token) or "last" (the last real token or step: by the probe's `attention_mask` when it has one, by
    the lengths of a PackedSequence; a recurrent layer's natural summary). The sequences of a layer made with
    batch_first=False are taken batch first. Activations are stored as float16, or float32 for a layer whose values
    do not fit.
    Recording into a run folder, each snapshot is written a batch at a time straight into the run's file and its
    activations are memory-mapped from it (read-only), so memory does not grow with the probe or the layer's width.

    A snapshot runs in eval() mode under no_grad on the model's device, then restores the mode the model was in;
    hooks are removed by `close()` (or leaving a `with` block). `batch_size` 250 measured 2× faster than 1000 on a
    2-core CPU for the reference network (its largest batch tensor stays under glibc's 32 MB heap threshold and in
    L3); creating a Recorder also has glibc keep freed blocks for the next batch (`layerlapse._util.memory`).

    The parameters from `layers` to `draw` are the recording spec (`layerlapse.capture.spec.RecordingSpec`), the
    same, in the same order, as every framework callback's.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its layers are hooked, its weights never changed.
    layers : str or list of str
        Names from `model.named_modules()` (`layerlapse layers --model ...` lists them with output shapes).
    probe : tensor, array, tuple, dict, Dataset or DataLoader
        The fixed inputs recorded at every snapshot, run in batches on the model's device (a loader: no shuffling).
    labels : array-like of int, optional
        One class index per probe input, unless the probe yields `(input, label)` pairs or dicts with "labels".
    out : path, optional
        The run folder to record into; without it (or `run`), `snapshot()` returns arrays and writes nothing.
    texts : list of str, optional
        One text per probe item (the item itself for a text model, or a caption), shown in the report and exported.
    class_names : list of str, optional
        One name per class index (legend, report, confusion matrix); default "0", "1", ….
    dataset : str
        Your data's name, stored in the manifest.
    test_probe, test_probe_labels : optional
        Test inputs placed on every frame (same forms as `probe`), and their labels where they carry none.
    test_set, test_labels : optional
        Test inputs recorded once at `finish()` for the confusion matrix and test accuracy, and their labels.
    every : "epoch", "log" or int
        When snapshots are taken: after every epoch (`epoch_end`), at log-spaced steps, or every N optimizer steps
        (`step_end`).
    reduce : "flatten", "mean", "first", "last" or "tokens", or a dict per layer
        How an output of more than one dimension per input becomes a row ("tokens": a point per real token).
    output : int, str or dict per layer, optional
        Which output of a layer that returns several to record (a position or a key); default the first tensor.
    tokenizer : tokenizer or list of str, optional
        For reduce="tokens": turns the probe's `input_ids` into the tokens' text.
    batch_size : int
        Inputs per forward pass of a snapshot.
    training : dict, optional
        The settings your loop used (batch size, learning rate, …), stored in the manifest.
    config : RunConfig, optional
        The map's settings (neighbours, seed, method); default the reference run's.
    force : bool
        Replace a finished run already in `out` (only files that run provably wrote).
    resume : bool, optional
        Continue the interrupted run in `out` after its last committed snapshot; None or False start afresh.
    draw : bool
        Whether `finish()` maps and draws the run (else `layerlapse render RUN` does it later).
    live : bool
        In a notebook, show the lapse under the cell and add each snapshot as it is mapped (else a warning).
    run : RunFolder, optional
        An open run folder to record into instead of `out`.
    device : torch.device or str, optional
        Where the probe runs; default the model's device.
    channels_last : bool
        Run the probe in channels-last memory format (as a model trained that way expects).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str] | str, probe: Any, labels: Any = None,
                 out: str | os.PathLike | None = None, *,
                 texts: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                 dataset: str = "own data", test_probe: Any = None, test_probe_labels: Any = None,
                 test_set: Any = None, test_labels: Any = None, every: str | int = "epoch",
                 reduce: str | dict[str, str] = "flatten", output: int | str | dict[str, int | str] | None = None,
                 tokenizer: Any = None,
                 batch_size: int = 250, training: dict[str, Any] | None = None, config: RunConfig | None = None,
                 force: bool = False, resume: bool | None = None, draw: bool = True, live: bool = False,
                 run: RunFolder | None = None, device: torch.device | str | None = None,
                 channels_last: bool = False) -> None:
        self.spec = RecordingSpec.from_arguments(locals())  # checked once, as every callback's is
        keep_freed_memory()  # snapshots in half the time: no page faults on every batch (layerlapse._util.memory)
        self.model = model
        self.layers = list(self.spec.layers)
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else model_device(model)
        self.channels_last, self.draw = channels_last, draw
        self._modules = find_layers(model, self.layers)
        self._reduce = self.spec.reductions
        self._select = self.spec.outputs
        warn_of_a_first_step(self._modules, self._reduce, self._select)
        self._inputs = {"probe": ProbeInputs(probe, what="probe", batch_size=batch_size)}
        for which, data in (("test_probe", test_probe), ("test_set", test_set)):
            if data is not None:
                self._inputs[which] = ProbeInputs(data, what=which.replace("_", " "), batch_size=batch_size)
        self.labels = labels_of(self._inputs["probe"], "probe", labels)
        # a run of tokens (reduce="tokens"): its points are the probe's real tokens, not its items
        self._tokens = token_points(self._inputs["probe"], tokenizer, test_inputs=[
            which.replace("_", " ") for which in self._inputs if which != "probe"]) if token_layers(self._reduce) else None
        self._real: torch.Tensor | None = None  # the batch's real tokens, during a snapshot of a run of tokens
        self._info: dict[str, dict[str, Any]] = {}
        self._batch_outputs: dict[str, Any] = {}
        self._attention_mask: torch.Tensor | None = None  # the batch's, during a snapshot: where its tokens end
        self._capturing = False  # the hooks keep outputs only during a snapshot, never a training batch's graph
        # layers whose values do not fit float16: stored as float32 from the first batch that overflows on (the
        # pass then starts again, so the snapshot is as if float32 from its start)
        self._wide: set[str] = set()
        self._spool: RunFolder | None = None  # where snapshots are written a batch at a time (spool_into)
        self._handles = [module.register_forward_hook(self._hook(name)) for name, module in self._modules.items()]
        # the training threads' rule while a mapping worker maps (layerlapse._util.threads), before each forward pass
        self._handles.append(model.register_forward_pre_hook(fit_training_threads))
        self.session: RecordingSession | None = None
        self._run = run
        if out is not None or run is not None:
            try:
                if self.labels is not None or run is None:  # a given run may be used for run_probe alone
                    self._recording()
            except BaseException:
                self.close()
                raise

    @classmethod
    def from_spec(cls, model: nn.Module, spec: RecordingSpec, *, run: RunFolder | None = None,
                  device: torch.device | str | None = None, channels_last: bool = False,
                  source: str = "own loop") -> Recorder:
        """A Recorder of `model` for a spec made before the model was at hand (as a callback's is).

        Parameters
        ----------
        model : torch.nn.Module
            The network to hook.
        spec : RecordingSpec
            What to record, when and where to.
        run, device, channels_last
            As for `Recorder`.
        source : str
            What recorded the run, stated in the manifest's "dataset" entry ("lightning", "transformers").
        """
        recorder = cls(model, **spec.arguments(), run=run, device=device, channels_last=channels_last)
        if recorder.session is not None:  # made, not yet opened: the folder is created with this entry
            recorder.session.dataset["source"] = source
        return recorder

    @property
    def probe(self) -> Any:
        return self._inputs["probe"].data

    @property
    def run(self) -> RunFolder | None:
        if self.session is not None and self.session.run is not None:
            return self.session.run
        return self._run

    def __repr__(self) -> str:
        return f"Recorder(layers={self.layers}, probe={len(self._inputs['probe'])}, open={bool(self._handles)})"

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hooks (the run folder, if any, stays as last committed)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._spool = None

    def spool_into(self, run: RunFolder | None) -> None:
        """Write each probe pass's activations a batch at a time into files inside `run` (which `run.write_array`
        moves into place when the snapshot is committed) rather than into arrays in memory: a snapshot of a wide
        layer then never sits whole in memory, and `Snapshot.activations` are memory-mapped.

        Parameters
        ----------
        run : RunFolder or None
            The run folder being recorded; None keeps the arrays in memory.
        """
        self._spool = run

    def _hook(self, name: str):
        def keep_output(module: nn.Module, inputs: object, output: Any) -> None:
            if self._capturing:
                self._batch_outputs[name] = output
        return keep_output

    # ---- the events of training (a run folder: `out` or `run`) -------------------------------------------------------
    def start(self) -> RunFolder:
        """Create the run folder (or reopen it with resume=True) and record the network as it is now."""
        return self._recording().start()

    def step_end(self, step: int, *, epoch: int | None = None, metrics: dict[str, Any] | None = None) -> bool:
        """Call after every optimizer step: records when the schedule (`every`) says so; returns whether it did.

        Parameters
        ----------
        step : int
            Optimizer steps so far (1 after the first).
        epoch : int, optional
            The epoch the step is in, stored beside the step (frames then say "Step 512 · epoch 2").
        metrics : dict, optional
            Numbers to store in the history row of a snapshot taken now (loss, acc, …).
        """
        return self._recording().step_end(step, epoch=epoch, metrics=metrics)

    def epoch_end(self, epoch: int, *, step: int | None = None, metrics: dict[str, Any] | None = None) -> bool:
        """Call after every epoch: records under the default schedule; returns whether it did.

        Parameters
        ----------
        epoch : int
            Epochs so far (1 after the first).
        step : int, optional
            Optimizer steps so far, stored beside the epoch.
        metrics : dict, optional
            The epoch's numbers (loss, acc, val_loss, val_acc, …: whichever you have): the history's row, which the
            curves and the report plot. Under a step schedule they join the row of the epoch's last step.
        """
        return self._recording().epoch_end(epoch, step=step, metrics=metrics)

    def finish(self, *, draw: bool | None = None, step: int | None = None, epoch: int | None = None,
               metrics: dict[str, Any] | None = None) -> RunFolder:
        """Record the test set (if given), then map every snapshot and draw the frames, GIF, figures and report;
        the run is then complete and its lock given back; in a terminal it says on stderr what it waits for and,
        last, where the report is.

        Parameters
        ----------
        draw : bool, optional
            False stops after recording (`layerlapse render RUN` maps and draws later); default the Recorder's own.
        step, epoch, metrics : optional
            Under a step schedule, the final network's step (and epoch): a last snapshot, with `metrics` as its
            history row, when that step was not due.

        Returns
        -------
        RunFolder
            The complete run.
        """
        session = self._recording()
        try:
            with session.aborting_on_error():
                session.finish(step=step, epoch=epoch, metrics=metrics)
            return session.complete(draw=self.draw if draw is None else draw)
        finally:
            self.close()

    # ---- snapshots ------------------------------------------------------------------------------------------------
    def snapshot(self, epoch: int | None = None, metrics: dict[str, Any] | None = None, *,
                 step: int | None = None) -> Snapshot:
        """Run the probe through the model and record every chosen layer now. With a run folder, the snapshot is
        written and committed with `metrics` as its history row; snapshots go forward (a repeated or earlier epoch
        or step is an error), and the first one need not be the untrained network.

        Parameters
        ----------
        epoch : int, optional
            The snapshot's epoch (without a run folder, just its label).
        metrics : dict, optional
            The snapshot's history row.
        step : int, optional
            The snapshot's optimizer step (needed under a step schedule).
        """
        if self._writes:
            self.spool_into(self._opened_run())  # written into the run folder as it is taken
        snapshot = self.take(epoch if epoch is not None else -1)
        if self._writes:
            self.store(snapshot, metrics, step=step)
        return snapshot

    def take(self, epoch: int) -> Snapshot:
        """Run the probe set through the model, without committing anything: `store` it when its metrics are known.
        (Recording into a run folder, the arrays go into temp files there, listed only once stored.)

        Parameters
        ----------
        epoch : int
            The snapshot's epoch label (-1: none).
        """
        captured = self.capture("probe")
        return Snapshot(epoch, captured.activations, captured.probabilities,
                        {name: tuple(info["shape"]) for name, info in self._info.items()})

    def store(self, snapshot: Snapshot, metrics: dict[str, Any] | None = None, *, step: int | None = None,
              extra: Any = None) -> int:
        """Write a snapshot to the run folder and commit it, with `metrics` as its history row; return its number.

        Parameters
        ----------
        snapshot : Snapshot
            What `take` returned.
        metrics : dict, optional
            The snapshot's history row.
        step : int, optional
            The snapshot's optimizer step.
        extra : callable, optional
            `extra(run, index)` writes more files (a checkpoint) into the same commit.
        """
        session = self._recording()
        self._opened_run()
        epoch = snapshot.epoch if snapshot.epoch >= 0 else None
        if epoch is None and step is None and session.schedule.by_steps:
            raise ConfigError("this Recorder takes snapshots by step: pass step=... (or call step_end(step))")
        return session.snapshot(step=step, epoch=epoch, metrics=metrics,
                                     captured=Captured(snapshot.activations, snapshot.probabilities), extra=extra)

    def capture(self, which: str = "probe") -> Captured:
        """The activations of the probe, the test probe or the test set, as numpy arrays.

        Parameters
        ----------
        which : "probe", "test_probe" or "test_set"
            Which of the inputs given to the Recorder.
        """
        inputs = self._inputs.get(which)
        if inputs is None:
            raise ValueError(f"this Recorder was given no {which.replace('_', ' ')}")
        activations, probabilities, _ = self.run_probe(inputs)
        return Captured(activations, probabilities)

    def layer_info(self) -> dict[str, dict[str, Any]]:
        return {name: dict(info) for name, info in self._info.items()}

    def inputs(self, which: str = "probe") -> ProbeInputs | None:
        """The probe's (or the test probe's, the test set's) inputs, as given; None when not given.

        Parameters
        ----------
        which : "probe", "test_probe" or "test_set"
            Which inputs.
        """
        return self._inputs.get(which)

    def recording_session(self) -> RecordingSession:
        """The session that writes this Recorder's run folder (a callback may give it another capture, such as the
        shares of several processes)."""
        return self._recording()

    def run_probe(self, inputs: Any) -> tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, tuple]]:
        """The hooked layers' outputs (one row per input) and the class probabilities for `inputs` (any probe form),
        in eval mode; probabilities are None when the model's output is not (inputs, classes) scores.

        Parameters
        ----------
        inputs : any probe form
            The inputs to run (a tensor, array, tuple, dict, Dataset or DataLoader, or a `ProbeInputs`).
        """
        if not self._handles:
            raise RuntimeError("this Recorder is closed: create a new one to record more snapshots")
        if not isinstance(inputs, ProbeInputs):
            inputs = ProbeInputs(inputs, batch_size=self.batch_size)
        n = len(inputs)
        items = token_items(inputs) if self._tokens is not None else None  # the item of each token row
        activations: dict[str, np.ndarray] = {}
        probabilities: np.ndarray | None = None
        scores = True
        start = row = 0
        overflowed: list[str] = []
        self._capturing = True
        try:
            # no_grad, not inference_mode: no faster here (measured), and inference tensors a model caches in its
            # forward pass would break its training afterwards
            with evaluating(self.model), torch.no_grad():
                for args, kwargs, rows_in_batch in inputs.batches(self.device, self.channels_last):
                    rows = slice(start, start + rows_in_batch)
                    self._batch_outputs.clear()
                    self._attention_mask = kwargs.get("attention_mask")  # where each input's tokens end
                    logits = self._forward(inputs, args, kwargs)
                    if scores:
                        logits = class_scores(logits)
                        scores = logits is not None and len(logits) == rows_in_batch
                    if scores:
                        if probabilities is None:
                            probabilities = np.empty((n, logits.shape[1]), dtype=np.float32)
                        copy_into(probabilities[rows], torch.softmax(logits.float(), dim=1))
                    else:
                        probabilities = None
                    if items is not None:
                        self._real = real_tokens(kwargs)
                    layer_rows = rows if items is None else slice(row, row + int(self._real.sum()))
                    overflowed = [name for name in self.layers if self._keep_rows(
                        activations, name, layer_rows, n if items is None else len(items), rows_in_batch)]
                    if overflowed:
                        break
                    start, row = start + rows_in_batch, layer_rows.stop
        finally:
            self._capturing = False
            self._batch_outputs.clear()
            self._attention_mask = self._real = None
        if overflowed:  # values beyond float16's range (or infinite ones): such a layer is float32 from now on
            self._wide.update(overflowed)
            activations.clear()  # the float16 files go (a spooled file is deleted with its array)
            return self.run_probe(inputs)
        if start != n:
            raise ConfigError(f"the {inputs.what} gave {start:,} inputs where it gave {n:,} before: a probe must be "
                              "the same inputs at every snapshot (a DataLoader without shuffle or drop_last)")
        if items is not None and probabilities is not None:
            probabilities = probabilities[items]  # each token carries its item's prediction
        return activations, probabilities, {name: tuple(self._info[name]["shape"]) for name in self.layers}

    def _forward(self, inputs: ProbeInputs, args: tuple, kwargs: dict) -> Any:
        try:
            return self.model(*args, **kwargs)
        except (RuntimeError, TypeError, ValueError, IndexError) as error:
            if not SHAPE_WORDS.search(str(error)):
                raise  # not a probe that does not fit: the model's own error, as it is
            where = failed_in(self.model, lambda: self.model(*args, **kwargs))
            raise ConfigError(f"the {inputs.what} does not fit the model: a batch of {describe_batch(args, kwargs)} "
                              f"failed in {where}; torch said: {first_line(error)}") from None

    def _keep_rows(self, activations: dict[str, np.ndarray], name: str, rows: slice, n: int, batch: int) -> bool:
        """One batch of a layer's output, reduced to rows and copied into its array (float16, or float32 once a
        value does not fit float16). True when the batch held a value float16 cannot: the pass must be redone."""
        if name not in self._batch_outputs:
            raise ConfigError(f"layer {name!r} did not run in the model's forward pass: record a layer the model "
                              "uses (see `layerlapse layers`)")
        layer = self._layer_output(name, batch)
        tensor = layer.tensor
        # torch's images are (N, C, H, W): 4-D and larger outputs are always channels first; a 3-D one is a
        # sequence (N, tokens, features) unless a conv, pooling or norm layer made it (N, C, L)
        channels_first = tensor.dim() >= 4 or isinstance(self._modules[name], CHANNELS_FIRST)
        how = self._reduce[name]
        values = rows_per_token(tensor, self._real, name) if how == TOKENS else \
            reduce_rows(layer, how, channels_first, name)
        columns = values[0].numel() if len(values) else 0
        if name not in activations:
            activations[name] = self._empty((n, columns), np.float32 if name in self._wide else np.float16)
            self._info[name] = {"shape": list(tensor.shape[1:]), "columns": int(columns), "reduction": how,
                                "caption": describe_reduction(how, tuple(tensor.shape[1:]), channels_first,
                                                              unit=layer.unit, by=layer.ends_by(how),
                                                              bidirectional=layer.bidirectional),
                                "output": "first tensor" if self._select[name] is None else repr(self._select[name])}
        target = activations[name]
        if values.device.type != "cpu" and target.dtype == np.float16:
            values = values.to(torch.float16)  # half the bytes to move (an overflow is caught just below)
        copy_into(target[rows], values)
        self._info[name]["dtype"] = str(target.dtype)
        # a batch's check, on its float16 rows only (a few MB): a whole-snapshot check would read a spooled file back
        overflowed = target.dtype == np.float16 and bool(np.isinf(target[rows]).any())
        release_pages(target)  # written rows go to the file; the process keeps none of them
        return overflowed

    def _layer_output(self, name: str, batch: int) -> LayerOutput:
        """The batch's output of layer `name`, batch first, with what says where its sequences end; an output whose
        first dimension is not the batch is refused, saying which dimension is."""
        select = self._select[name]
        found = first_output(self._batch_outputs[name], select, where=f"the output of layer {name!r}")
        layer = layer_output(found, self._modules[name], sequence=select in (None, 0),
                             attention_mask=self._attention_mask)
        tensor = layer.tensor
        if tensor.dim() == 0 or len(tensor) != batch:
            raise not_one_row_per_input(name, self._modules[name], tuple(tensor.shape), batch, select)
        return layer

    def _empty(self, shape: tuple[int, int], dtype: type) -> np.ndarray:
        """A layer's array for one pass: in the run folder being recorded (spool_into), else in memory."""
        return self._spool.empty_array(shape, dtype) if self._spool is not None else np.empty(shape, dtype=dtype)

    # ---- inside ------------------------------------------------------------------------------------------------------
    @property
    def _writes(self) -> bool:
        """Whether this Recorder writes a run folder (it was given `out` or `run`)."""
        return self.spec.out is not None or self._run is not None

    def _session(self) -> RecordingSession:
        spec, run = self.spec, self._run
        if self.labels is None:
            raise ConfigError("a Recorder that writes a run folder needs the probe's labels: pass labels=... (one "
                              "class index per probe input), or a Dataset/DataLoader that yields (input, label)")
        test_probe = labels_of(self._inputs.get("test_probe"), "test_probe", spec.test_probe_labels)
        test = labels_of(self._inputs.get("test_set"), "test_set", spec.test_labels)
        for which, labels in (("test_probe", test_probe), ("test_set", test)):
            if which in self._inputs and labels is None:
                raise ConfigError(f"the {which.replace('_', ' ')} needs labels: pass {which}_labels=... (or "
                                  f"{'test_labels' if which == 'test_set' else 'test_probe_labels'}), or a "
                                  "Dataset/DataLoader that yields (input, label)")
        if run is not None:
            names = run.class_names or [str(c) for c in range(int(np.max(self.labels)) + 1)]
            if run.epochs_complete < 0:  # a run made for this Recorder records the Recorder's layers
                run.manifest["layers"] = list(self.layers)
                run.manifest["config"]["layers"] = list(self.layers)
            config, out = run.config, str(run.path)
        else:
            names = list(spec.class_names) if spec.class_names is not None else None
            if names is None:
                raise ConfigError("a run of your own data needs its class names: pass class_names=[...] (one name "
                                  "per class index)")
            config, out = own_run_config(spec.config, spec.dataset, self.layers, len(self._tokens or self.labels),
                                         None if test_probe is None else len(test_probe), spec.training), spec.out
        dataset = {"name": spec.dataset, "source": "own loop"}
        if self._tokens is None:
            inputs = Inputs(self.labels, names, self._inputs["probe"].thumbnails(), test_probe,
                            self._inputs["test_probe"].thumbnails() if "test_probe" in self._inputs else None, test,
                            texts=probe_texts(spec.texts, self._inputs["probe"].texts))
        else:  # the run's points are tokens: the manifest says so, and of how many items
            inputs, dataset["points"] = tokens_as_inputs(self._tokens, self.labels, names), TOKENS
            dataset["items"] = len(self.labels)
        session = RecordingSession(str(out), self, inputs, config, dataset=dataset,
                                   training=dict(spec.training or {}), schedule=spec.schedule, force=spec.force,
                                   resume=bool(spec.resume), run=run, live=spec.live)
        if run is None and self.draw:
            from ..recipe.mapping import MapAlongside  # map each snapshot in a worker while training goes on

            session.on_snapshot = MapAlongside(config.map_method)
        return session

    def _opened_run(self) -> RunFolder:
        session = self._recording()
        if session.run is None:
            session.run = session._open()
        return session.run

    def _recording(self) -> RecordingSession:
        if self.session is None and self._writes:
            self.session = self._session()
        if self.session is None:
            raise ValueError("this Recorder writes no run folder: create it with out=\"runs/NAME\" (and the "
                             "probe's labels and class_names) to record the lapse")
        return self.session
