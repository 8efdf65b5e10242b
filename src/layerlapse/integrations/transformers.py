"""The Hugging Face `Trainer` callback: a fine-tuning run recorded into a run folder.

    from layerlapse.integrations.transformers import LayerlapseCallback

    callback = LayerlapseCallback(layers=["vit.layers.11"], probe=probe_dataset, out="runs/vit",
                                  reduce="first")              # the [CLS] token of each probe image
    Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, callbacks=[callback]).train()
    # runs/vit: the layer's outputs every epoch, maps, frames, lapse.gif, report.html — complete

Layers are named as `model.named_modules()` names them ("vit.layers.11" in transformers 5, "vit.encoder.layer.11"
in 4.x; `layerlapse layers --model package.module:factory` lists them); the torch `Recorder` hooks them, so a layer
that returns a tuple or a `ModelOutput` gives its first tensor (or the one `output=` selects) and the model's
`logits` give the predictions. The probe is what the model takes: a dict of tensors (`model(**probe)`; a "labels"
entry is taken as the labels), a Dataset of such dicts (as `datasets` gives them, with their "labels") or any form
`layerlapse.capture.probe` takes. Class names default to the model's `config.id2label`.

A snapshot is committed once the metrics of its epoch (or step) are logged: at the next epoch or step, at a
checkpoint, or at the end, whichever comes first, and before `load_best_model_at_end` swaps the weights; its
activations are those of the network when the epoch ended, since nothing trains in between. Only the main process
(`state.is_world_process_zero`) records; the others do nothing. A run resumed from a checkpoint
(`trainer.train(resume_from_checkpoint=...)`) continues the same run folder. Models whose weights are sharded
across processes (FSDP, DeepSpeed ZeRO-3) cannot be run on the main process alone and are not supported.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..capture.spec import RecordingSpec
from ..config import RunConfig
from ..errors import ConfigError
from . import require

transformers = require("transformers", "transformers", (4, 40), what="transformers")

# what the Trainer logs that is not a metric of the model
_NOT_METRICS = ("epoch", "step", "total_flos")
_NOT_METRIC_ENDINGS = ("_runtime", "_per_second")


class LayerlapseCallback(transformers.TrainerCallback):
    """Records what named modules of a transformers model output for a fixed probe while a `Trainer` trains it.

    The settings are the `Recorder`'s (`layerlapse.capture.Recorder`): `labels` when the probe does not carry them,
    `test_probe` and `test_set` with their labels, `every` ("epoch", a number of optimizer steps, or "log"), `reduce`
    ("flatten", "mean" over tokens, "first" token, "last" token: the last real one by the probe's "attention_mask";
    one for all layers or a dict per layer), `output` (which entry of a tuple or ModelOutput a layer's output
    gives). `resume` is decided by the Trainer unless given: a training resumed from a checkpoint continues the run
    folder, a new one creates it (`force=True` replaces an old one).
    After a `train()` that raised, `close()` marks the run failed (resumable) and gives back its lock.

    These are the recording spec, the same as the `Recorder`'s and every callback's, in the same order:
    `layerlapse.RecordingSpec` documents each.

    Parameters
    ----------
    layers, probe, labels, out : the first four, positional or by name
        The layers to record, the fixed probe inputs, their class indices (unless the probe carries them) and the run
        folder (needed here).
    texts, class_names, dataset, test_probe, test_probe_labels, test_set, test_labels : optional, by name
        One text (or caption) per probe item, shown in the report; the classes' names, the data's name, and test
        inputs (drawn on every frame; recorded once after training) with their labels.
    every, reduce, output, tokenizer, batch_size, training, config, force, resume, draw, live : optional, by name
        When snapshots are taken, how a layer's output becomes a row, the map's settings and how the run ends.
        `live=True` in a notebook shows the lapse under the cell, each snapshot added as it is mapped.
        `resume` None (the default): continue the run when the Trainer resumes from a checkpoint.
    """

    def __init__(self, layers: Sequence[str] | str, probe: Any, labels: Any = None,
                 out: str | os.PathLike | None = None, *,
                 texts: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                 dataset: str = "own data", test_probe: Any = None, test_probe_labels: Any = None,
                 test_set: Any = None, test_labels: Any = None, every: str | int = "epoch",
                 reduce: str | dict[str, str] = "flatten", output: int | str | dict[str, int | str] | None = None,
                 tokenizer: Any = None,
                 batch_size: int = 250, training: dict[str, Any] | None = None, config: RunConfig | None = None,
                 force: bool = False, resume: bool | None = None, draw: bool = True, live: bool = False) -> None:
        # a dict probe's "labels" entry is its labels, as the model's own batches carry them
        probe, labels = _labels_from(probe, labels)
        test_probe, test_probe_labels = _labels_from(test_probe, test_probe_labels, "test_probe_labels")
        test_set, test_labels = _labels_from(test_set, test_labels, "test_labels")
        self.spec = RecordingSpec.for_callback(locals())  # checked now, before any training
        self.layers = list(self.spec.layers)
        self.out = self.spec.out
        self.schedule = self.spec.schedule
        self.resume = resume
        self.draw = draw
        self._training = dict(training or {})
        self.recorder: Any = None  # the Recorder, made when training begins (it needs the model)
        self._pending: dict[str, int] | None = None  # the snapshot due, taken once its metrics are logged
        self._logged = 0  # the log_history entries the snapshots so far have taken their metrics from

    def __repr__(self) -> str:
        return f"LayerlapseCallback(layers={self.layers}, out={self.out!r}, {self.schedule.describe()})"

    # ---- the events of training ------------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        from ..capture.recorder import Recorder

        if model is None:
            raise ValueError("the Trainer gave the callback no model at on_train_begin: use a transformers Trainer")
        resume = self.resume if self.resume is not None else state.global_step > 0
        # the Trainer's tokenizer names a run of tokens' tokens, unless one was given
        tokenizer = self.spec.tokenizer if self.spec.tokenizer is not None else \
            kwargs.get("processing_class", kwargs.get("tokenizer"))
        spec = self.spec.replace(resume=resume, training={**_stated_by_trainer(args, state), **self._training},
                                 class_names=self.spec.class_names or _class_names(model), tokenizer=tokenizer)
        self.recorder = Recorder.from_spec(model, spec, source="transformers")
        self._logged = len(state.log_history)
        if self.recorder.session is None:  # no labels: the Recorder says what to pass
            self._guarded(self.recorder.start)
        self._guarded(self.recorder.session.start, step=state.global_step if self.schedule.by_steps else None,
                      epoch=round(state.epoch or 0))

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._take_pending(state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is None or not self.schedule.by_steps:
            return
        if self.schedule.due_at_step(state.global_step):
            self._take_pending(state)
            self._pending = {"step": state.global_step, "epoch": max(1, math.ceil(state.epoch or 0))}

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._take_pending(state)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is None or self.schedule.by_steps:
            return
        self._take_pending(state)
        self._pending = {"epoch": round(state.epoch)}

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._take_pending(state)  # the checkpoint and the run folder then agree on where training stands

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and "train_runtime" in logs:  # the summary of train(): before load_best_model_at_end swaps weights
            self._take_pending(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        self._take_pending(state)
        recorder, self.recorder = self.recorder, None
        # the final network (a last snapshot under a step schedule when its step was not due), the test set, then
        # maps, frames, GIF and report: the run is complete
        recorder.finish(step=state.global_step, epoch=round(state.epoch or 0),
                        metrics=logged_metrics(state.log_history[self._logged:]))

    def close(self) -> None:
        """After a `train()` that raised (the Trainer has no event for it): mark the run failed, so a resumed
        training continues it, and give back its lock, hooks and mapping worker."""
        if self.recorder is not None:
            self._stop(interrupted=False)

    def state_dict(self) -> dict[str, Any]:
        """Where the run stands: its folder and the snapshots it holds."""
        session = None if self.recorder is None else self.recorder.session
        return session.state_dict() if session is not None else {"out": self.out, "snapshots_complete": -1}

    # ---- inside ----------------------------------------------------------------------------------------------------
    def _take_pending(self, state: Any) -> None:
        if self._pending is None or self.recorder is None:
            return
        label, self._pending = self._pending, None
        metrics = logged_metrics(state.log_history[self._logged:])
        self._logged = len(state.log_history)
        if "step" in label:
            self._guarded(self.recorder.step_end, label["step"], epoch=label["epoch"], metrics=metrics)
        else:
            self._guarded(self.recorder.epoch_end, label["epoch"], metrics=metrics)

    def _guarded(self, event: Any, *args: Any, **kwargs: Any) -> Any:
        """A recording event; when it fails, the run is aborted (marked failed, resumable; its lock given back)."""
        try:
            return event(*args, **kwargs)
        except BaseException as error:
            self._stop(interrupted=isinstance(error, KeyboardInterrupt))
            raise

    def _stop(self, *, interrupted: bool) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder.session is not None:
            recorder.session.abort(interrupted=interrupted)
        recorder.close()


def logged_metrics(entries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The latest value of each metric the Trainer logged: the training loss as loss, `eval_accuracy` as val_acc
    and the other `eval_` metrics as `val_` ones (so the curves and captions find them); no timings or counters."""
    metrics: dict[str, float] = {}
    for entry in entries:
        for key, value in entry.items():
            if key in _NOT_METRICS or key.endswith(_NOT_METRIC_ENDINGS) or key.startswith("train_"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if key.startswith("eval_"):
                key = "val_" + key[len("eval_"):]
            metrics[{"accuracy": "acc", "val_accuracy": "val_acc"}.get(key, key)] = float(value)
    return metrics


def _labels_from(data: Any, labels: Any, argument: str = "labels") -> tuple[Any, Any]:
    """A dict probe's "labels" (or "label") entry taken out as its labels, as the model's own batches carry them;
    labels given also as `argument` must be the same."""
    key = next((key for key in ("labels", "label") if key in data), None) if isinstance(data, Mapping) else None
    if key is None:
        return data, labels
    if labels is not None and not np.array_equal(_as_array(labels), _as_array(data[key])):
        raise ConfigError(f"{argument}= differs from the {key!r} entry of the dict it labels: give the labels one "
                          f"way, in the dict or as {argument}=")
    return {name: value for name, value in data.items() if name != key}, data[key] if labels is None else labels


def _as_array(values: Any) -> np.ndarray:
    return np.asarray(values.cpu() if hasattr(values, "cpu") else values)


def _class_names(model: Any) -> list[str] | None:
    """The model's own class names (`config.id2label`), when it has one per class."""
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    try:
        return [str(id2label[index]) for index in range(len(id2label))]
    except KeyError:
        return None


def _stated_by_trainer(args: Any, state: Any) -> dict[str, Any]:
    """What the TrainingArguments say about the training: framework, batch size, learning rate, epochs, seed."""
    stated: dict[str, Any] = {"framework": f"transformers {transformers.__version__} Trainer",
                              "optimizer": str(getattr(args.optim, "value", args.optim)),
                              "learning_rate": float(args.learning_rate), "seed": int(args.seed),
                              "batch_size": int(args.per_device_train_batch_size * max(1, args.world_size)
                                                * args.gradient_accumulation_steps)}
    epochs = float(args.num_train_epochs)
    if (args.max_steps is None or args.max_steps <= 0) and epochs.is_integer() and epochs >= 1:
        stated["epochs"] = int(epochs)
    return stated
