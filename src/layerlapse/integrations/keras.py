"""The Keras 3 callback: the article's own `model.fit`, recorded into a run folder.

    from layerlapse.integrations.keras import LayerlapseCallback

    callback = LayerlapseCallback(layers=["hidden"], probe=x_probe, labels=y_probe, out="runs/keras",
                                  class_names=[str(d) for d in range(10)], test_set=x_test, test_labels=y_test)
    model.fit(x_train, y_train, epochs=15, validation_split=0.2, callbacks=[callback])
    # runs/keras: activations every epoch, maps, frames, lapse.gif, report.html — complete

Named layers of a Functional or Sequential model are recorded through a second model that shares their weights and
outputs what they output (`keras.Model(model.inputs, [model.get_layer(name).output, ...])`), run with `predict`
on the probe at the start of training (the untrained network), after every epoch (or every N optimizer steps:
`every=N`, or log-spaced steps: `every="log"`), and on the test set at the end; then the run is mapped and drawn.

The same code runs on every Keras 3 backend (TensorFlow, JAX, PyTorch: set `KERAS_BACKEND` before importing keras);
everything it hands layerlapse is numpy. Keras outputs are channels-last: `reduce="mean"` averages a conv layer's
(H, W, C) output over H and W and a sequence's (tokens, features) over the tokens; `reduce="first"` takes a
sequence's first token, `reduce="last"` its last (the last real one by the probe's "attention_mask", when the probe
is a dict that has one). The model's output, when it holds one score per class, gives the predictions: as they are
when they are already probabilities (a softmax output), softmaxed when they are logits.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..capture.rows import describe_reduction, mask_does_not_fit, sequence_reduction_refused
from ..capture.session import FLOAT16_MAX, Captured, Inputs, RecordingSession
from ..capture.spec import RecordingSpec
from ..config import RunConfig
from ..errors import ConfigError, RunFolderError, unknown_layer
from ..store.images import as_thumbnails
from .._util.threads import training_threads
from . import IntegrationError, check_version, require  # noqa: F401 - IntegrationError: what users catch

MINIMUM_KERAS = (3, 0)
# Keras' names for the metrics layerlapse's curves and captions know as acc and val_acc
METRIC_NAMES = {name: "acc" for name in ("accuracy", "categorical_accuracy", "sparse_categorical_accuracy")}
METRIC_NAMES.update({f"val_{name}": "val_acc" for name in METRIC_NAMES})
# layers whose outputs are (N, *space, channels): "mean" averages the space, "first" is refused
SPATIAL_WORDS = ("Conv", "Pooling", "UpSampling", "ZeroPadding", "Cropping")


def check_keras_version(version: str) -> None:
    """Refuse Keras 2 (whose models have no backend-free `keras.ops`, and whose callbacks differ) with the fix."""
    check_version("Keras", version, "keras", MINIMUM_KERAS, " (it runs on TensorFlow, JAX or PyTorch)")


# the version is checked below, with Keras 3's own words; Keras runs on the backend KERAS_BACKEND names, TensorFlow
# when unset, and with layerlapse torch is already installed
keras = require("keras", "keras", (), what="Keras", when_it_fails="set KERAS_BACKEND=torch (layerlapse's torch) or "
                "jax, or install the backend it names")
check_keras_version(keras.__version__)


class LayerlapseCallback(keras.callbacks.Callback):
    """Records what named layers of a Keras model output for a fixed probe while `model.fit` trains it.

    `probe` is the model's input for the probe (an array, or a list or dict of arrays for a model of several
    inputs) and `labels` its class indices (one-hot rows are taken too); `test_probe` (with `test_probe_labels`) is
    recorded beside it at every snapshot, and `test_set` (with `test_labels`) once, after the last epoch.
    `reduce` ("flatten", "mean", "first", "last"; one for every layer or a dict per layer) turns an output of more
    than one dimension per input into a row. `every` is "epoch" (the default), a number of optimizer steps, or "log".
    `draw=False` stops after recording (`layerlapse render RUN` maps and draws later). A fit that was stopped can be
    continued in the same run folder: `resume=True`, and `model.fit(..., initial_epoch=...)` from your checkpoint.

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
        `resume=True` continues a stopped run (with `model.fit(..., initial_epoch=...)`).
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
        super().__init__()
        self.spec = RecordingSpec.for_callback(locals())  # checked now, before any training
        self.layers = list(self.spec.layers)
        self.out = self.spec.out
        self.dataset = dataset
        self.schedule = self.spec.schedule
        self.batch_size = batch_size
        self.force, self.resume, self.draw = force, bool(resume), draw
        self.reduce = self.spec.reductions
        if "tokens" in self.reduce.values():
            raise ConfigError("reduce='tokens' (a point per token) is recorded from PyTorch models (the Recorder, the "
                              "Lightning and Hugging Face callbacks), not yet from Keras: use 'mean' or 'first'")
        self._select = self.spec.outputs
        self._inputs = {"probe": _model_inputs(probe, "probe")}
        for which, data in (("test_probe", test_probe), ("test_set", test_set)):
            if data is not None:
                self._inputs[which] = _model_inputs(data, which.replace("_", " "))
        if class_names is None:
            raise ConfigError("a run of your own data needs its class names: pass class_names=[...] (one name per "
                              "class index)")
        self.inputs = Inputs(
            self._labels("probe", labels, "labels"), [str(name) for name in class_names],
            _thumbnails(self._inputs["probe"]), self._labels("test_probe", test_probe_labels, "test_probe_labels"),
            _thumbnails(self._inputs.get("test_probe")), self._labels("test_set", test_labels, "test_labels"),
            texts=texts)
        self._training = dict(training or {})
        self._config = config
        self.config = self._run_config(self._training)  # checked now, before any training: the probe's size and all
        self.session: RecordingSession | None = None
        self._submodel: Any = None
        self._spatial: dict[str, bool] = {}  # per layer: whether its outputs are (N, *space, channels)
        self._info: dict[str, dict[str, Any]] = {}
        self._step = 0
        self._epoch = 0
        self._finished = False

    def __repr__(self) -> str:
        return (f"LayerlapseCallback(layers={self.layers}, probe={len(self.inputs.labels):,}, out={self.out!r}, "
                f"{self.schedule.describe()})")

    # ---- the events of training ------------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        if self._finished:
            raise RunFolderError(f"this LayerlapseCallback finished its run in {self.out} when the last fit ended: "
                                 "give the next fit a new callback (another out=, or force=True to record again)")
        self._submodel = self._recording_model(self.model)
        self._step = _optimizer_steps(self.model)
        if self.session is None:
            self.session = self._new_session()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        if self.session.run is None:  # the first epoch of this fit (`initial_epoch` when it continues training)
            self._guarded(self.session.start, step=self._step if self.schedule.by_steps else None, epoch=epoch)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if keras.backend.backend() == "torch":  # torch's threads follow the mapping worker (layerlapse._util.threads)
            training_threads.fit()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._step += 1
        if self.schedule.by_steps and self.schedule.due_at_step(self._step):
            self._guarded(self.session.step_end, self._step, epoch=self._epoch + 1, metrics=keras_metrics(logs))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._guarded(self.session.epoch_end, epoch + 1, metrics=keras_metrics(logs))

    def on_train_end(self, logs: dict | None = None) -> None:
        session, self._finished = self.session, True
        with session.aborting_on_error():
            if session.run is None:  # a fit of no epochs: the network as it is, and the test set
                session.start(step=self._step if self.schedule.by_steps else None, epoch=self._epoch)
            session.finish()
        session.complete(draw=self.draw)

    def close(self) -> None:
        """After a fit that raised (Keras has no event for it): mark the run failed, so `resume=True` continues it,
        and give back its lock and mapping worker."""
        if self.session is not None and not self._finished:
            self._finished = True
            self.session.abort()

    def state_dict(self) -> dict[str, Any]:
        """Where the run stands: its folder and the snapshots it holds (resume with `resume=True`)."""
        return self.session.state_dict() if self.session is not None else {"out": self.out, "snapshots_complete": -1}

    # ---- the Capture the session runs ------------------------------------------------------------------------------
    def capture(self, which: str) -> Captured:
        """The recorded layers' outputs for the probe, the test probe or the test set, one row per input, and the
        class probabilities when the model's output is class scores."""
        model = self.model  # on JAX, reading it brings the trained weights back to the model mid-epoch
        # on the torch backend, predict leaves the shared layers in eval mode: a snapshot mid-epoch puts training back
        was_training = model.training if keras.backend.backend() == "torch" else None
        try:
            outputs = self._submodel.predict(self._inputs[which], batch_size=self.batch_size, verbose=0)
        finally:
            if was_training is not None:
                model.train(was_training)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        activations = {}
        inputs = self._inputs[which]
        mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None  # where each input's tokens end
        for name, values in zip(self.layers, outputs):
            activations[name] = self._rows(name, np.asarray(values), mask)
        scores = outputs[len(self.layers)] if len(outputs) > len(self.layers) else None
        if scores is None:
            return Captured(activations)
        return Captured(activations, class_probabilities(np.asarray(scores), len(self.inputs.class_names)))

    def layer_info(self) -> dict[str, dict[str, Any]]:
        return {name: dict(info) for name, info in self._info.items()}

    # ---- inside ----------------------------------------------------------------------------------------------------
    def _recording_model(self, model: Any) -> Any:
        """A model of the same weights that outputs the recorded layers' outputs and then the model's own output."""
        names = [layer.name for layer in model.layers]
        unknown = next((name for name in self.layers if name not in names), None)
        if unknown is not None:
            raise unknown_layer(unknown, names, "model.summary()", model="the Keras model")
        self._spatial = {name: any(word in type(model.get_layer(name)).__name__ for word in SPATIAL_WORDS)
                         for name in self.layers}
        try:
            layer_outputs = [model.get_layer(name).output for name in self.layers]
        except (AttributeError, ValueError) as error:
            raise _no_symbolic_outputs(model, error) from None
        outputs = [_selected_output(output, self._select[name], name)
                   for name, output in zip(self.layers, layer_outputs)]
        try:
            return keras.Model(model.inputs, [*outputs, model.outputs[0]])
        except (AttributeError, ValueError) as error:
            raise _no_symbolic_outputs(model, error) from None

    def _rows(self, name: str, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        spatial = values.ndim > 3 or self._spatial[name]
        how = self.reduce[name]
        rows = reduce_rows(values, how, spatial, name, mask)
        recurrent = any(word in type(self.model.get_layer(name)).__name__ for word in ("RNN", "LSTM", "GRU"))
        masked = mask is not None and not spatial and values.ndim == 3 and np.shape(mask) == values.shape[:2]
        caption = describe_reduction(how, values.shape[1:], spatial, unit="step" if recurrent else "token",
                                     by="attention mask" if mask is not None and how == "last"
                                     or masked and how == "mean" else None)
        finite = rows[np.isfinite(rows)]
        fits = not finite.size or float(np.abs(finite).max()) <= FLOAT16_MAX
        self._info[name] = {"shape": list(values.shape[1:]), "columns": int(rows.shape[1]),
                            "reduction": self.reduce[name],
                            "caption": caption,
                            "output": "layer.output" if self._select[name] is None else repr(self._select[name]),
                            "dtype": "float16" if fits else "float32"}
        return rows

    def _new_session(self) -> RecordingSession:
        training = {**self._stated_by_keras(), **self._training}
        config = self._run_config(training)
        session = RecordingSession(self.out, self, self.inputs, config, dataset={"name": self.dataset,
                                                                                 "source": "keras"},
                                   training=training, schedule=self.schedule, force=self.force, resume=self.resume,
                                   live=self.spec.live)
        if self.draw:
            from ..recipe.mapping import MapAlongside  # map each snapshot in a worker while training goes on

            session.on_snapshot = MapAlongside(config.map_method)
        return session

    def _run_config(self, training: dict[str, Any]) -> RunConfig:
        from ..capture.session import own_run_config

        test_probe = self.inputs.test_probe_labels
        return own_run_config(self._config, self.dataset, self.layers, len(self.inputs.labels),
                              None if test_probe is None else len(test_probe), training)

    def _stated_by_keras(self) -> dict[str, Any]:
        """What the fit itself says about its training: framework, optimizer, learning rate, epochs, batch size and
        validation split."""
        stated: dict[str, Any] = {"framework": f"keras {keras.__version__} ({keras.backend.backend()})"}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            stated["optimizer"] = type(optimizer).__name__
            try:
                rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                stated["learning_rate"] = float(f"{rate:.7g}")  # as it was given, not its float32 rounding
            except (TypeError, ValueError, AttributeError):
                pass  # a schedule Keras cannot give as one number
        epochs = (self.params or {}).get("epochs")
        if isinstance(epochs, int) and epochs > 0:
            stated["epochs"] = epochs
        return {**stated, **fit_arguments(self.model)}

    def _labels(self, which: str, labels: Any, argument: str) -> np.ndarray | None:
        data = self._inputs.get(which)
        what = which.replace("_", " ")
        if labels is None:
            if data is not None:
                raise ConfigError(f"the {what} needs labels: pass {argument}=... (one class index per input)")
            return None
        if data is None:
            raise ConfigError(f"{argument} were given without the {what}: pass {which}=... (its inputs) as well")
        labels = class_indices(labels)
        if len(labels) != _length(data):
            raise ConfigError(f"the {what} labels hold {len(labels):,} entries but the {what} {_length(data):,} "
                              "inputs: give one label per input")
        return labels

    def _guarded(self, event: Any, *args: Any, **kwargs: Any) -> Any:
        """A session event; when it fails, the run is aborted (marked failed, resumable; its lock given back)."""
        try:
            with self.session.aborting_on_error():
                return event(*args, **kwargs)
        except BaseException:
            self._finished = True
            raise


def fit_arguments(model: Any) -> dict[str, Any]:
    """The batch size and validation split of the `model.fit` that is running, where they are known. Keras tells
    callbacks only the epochs and steps (`Callback.params`), so they are read from the running fit's own frame: the
    batch size its data adapter batches by (Keras' default, 32, when fit names none; none for a dataset that hides
    it), the split only when Keras held it out (it ignores the split when fit is given validation_data too)."""
    fit = _running_fit(model)
    if fit is None:
        return {}
    stated: dict[str, Any] = {}
    batch_size = getattr(getattr(fit["epoch_iterator"], "data_adapter", None), "batch_size", None)
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0:
        stated["batch_size"] = batch_size
    split = fit.get("validation_split")
    if isinstance(split, float) and 0.0 < split < 1.0 and _held_out(split, fit.get("x"), fit.get("val_x")):
        stated["validation_split"] = split
    return stated


def _running_fit(model: Any) -> dict[str, Any] | None:
    """The local variables of Keras' `fit` of `model` that called this callback (the same names on every backend
    that trains: TensorFlow, JAX, PyTorch); None when there is none (a callback called by hand)."""
    frame = sys._getframe(1)
    try:
        while frame is not None:
            if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model \
                    and "epoch_iterator" in frame.f_locals:
                return dict(frame.f_locals)
            frame = frame.f_back
        return None
    finally:
        del frame  # a frame held here would keep every caller's locals alive


def _held_out(split: float, train: Any, validation: Any) -> bool:
    """Whether Keras made `validation` by holding out `split` of the fit's data: its rule keeps the first
    floor(rows x (1 - split)) rows for training and the rest for validation."""
    kept, held = _rows(train), _rows(validation)
    return kept is not None and held is not None and kept == math.floor((kept + held) * (1.0 - split))


def _rows(data: Any) -> int | None:
    """The number of rows of an array, or of the first array of a list or dict of them; None for anything else."""
    try:
        first = keras.tree.flatten(data)[0]
        return int(first.shape[0])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def keras_metrics(logs: dict[str, Any] | None) -> dict[str, float]:
    """Keras' logs as the history's metrics: accuracy as acc and val_accuracy as val_acc (so the curves and
    captions find them); only numbers."""
    metrics = {}
    for key, value in (logs or {}).items():
        try:
            metrics[METRIC_NAMES.get(key, key)] = float(np.asarray(value))
        except (TypeError, ValueError):
            continue  # not one number (a per-class array, text): not a curve
    return metrics


def class_probabilities(scores: np.ndarray, n_classes: int) -> np.ndarray | None:
    """The model's output as class probabilities: as it is when its rows already are (a softmax output), softmaxed
    when they are logits; one sigmoid column becomes two for two classes. None when it is not one score per class."""
    if scores.ndim != 2 or scores.dtype.kind != "f":
        return None
    scores = scores.astype(np.float32)
    if scores.shape[1] == 1 and n_classes == 2:
        positive = scores[:, 0] if _within(scores, 0.0, 1.0) else 1 / (1 + np.exp(-scores[:, 0]))
        return np.stack([1 - positive, positive], axis=1).astype(np.float32)
    if scores.shape[1] != n_classes:
        return None
    if _within(scores, 0.0, 1.0) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def reduce_rows(values: np.ndarray, how: str, spatial: bool, layer: str,
                attention_mask: np.ndarray | None = None) -> np.ndarray:
    """A layer's channels-last outputs as one row per input: flattened, averaged over space or tokens (every axis
    but the first and the last; a sequence's real tokens only, by `attention_mask`), or a sequence's first or last
    token (the first and last real ones by `attention_mask`)."""
    if values.ndim <= 2 or how == "flatten":
        return values.reshape(len(values), -1)
    mask = None if attention_mask is None else np.asarray(attention_mask) != 0
    masked = mask is not None and not spatial and values.ndim == 3 and mask.shape == values.shape[:2]
    if how == "mean":
        if masked:
            real = mask[:, :, None].astype(np.float32)
            return (values * real).sum(axis=1, dtype=np.float32) / np.maximum(real.sum(axis=1), 1)
        return values.mean(axis=tuple(range(1, values.ndim - 1)), dtype=np.float32)
    if spatial or values.ndim != 3:
        raise sequence_reduction_refused(how, layer, tuple(values.shape[1:]))
    if how == "first":
        return values[np.arange(len(values)), mask.argmax(axis=1)] if masked else values[:, 0]
    if mask is None:
        return values[:, -1]
    if mask.ndim != 2 or mask.shape[1] != values.shape[1]:
        raise mask_does_not_fit(layer, mask.shape[-1], tuple(values.shape[1:]))
    last = np.where(mask.any(axis=1), mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1), mask.shape[1] - 1)
    return values[np.arange(len(values)), last]


def class_indices(labels: Any) -> np.ndarray:
    """Labels as class indices: one-hot rows (as `keras.utils.to_categorical` makes them) become the index of
    their 1, an (N, 1) column its values; anything else is checked by the session as it is."""
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim == 2 and array.size and np.isin(array, (0, 1)).all() and (array.sum(axis=1) == 1).all():
        return array.argmax(axis=1)
    return array


def _model_inputs(data: Any, what: str) -> Any:
    """The probe as `predict` takes it: an array, a list of arrays (several inputs), or a dict of them. A tuple
    becomes a list, since `predict` reads a tuple as (inputs, labels)."""
    if isinstance(data, Mapping):
        inputs: Any = {key: np.asarray(value) for key, value in data.items()}
    elif isinstance(data, (tuple, list)):
        inputs = [np.asarray(value) for value in data]
    else:
        inputs = np.asarray(data)
    lengths = {len(array) if array.ndim else 0 for array in _arrays(inputs)}
    if len(lengths) != 1:
        raise ConfigError(f"the {what}'s arrays hold different numbers of inputs ({sorted(lengths)}): give one row "
                          "per input in each")
    if lengths == {0}:
        raise ConfigError(f"the {what} is empty: give at least one input")
    return inputs


def _arrays(inputs: Any) -> list[np.ndarray]:
    return list(inputs.values()) if isinstance(inputs, dict) else inputs if isinstance(inputs, list) else [inputs]


def _length(inputs: Any) -> int:
    return len(_arrays(inputs)[0])


def _thumbnails(inputs: Any) -> np.ndarray | None:
    """Single-channel images, (N, H, W, 1) or (N, H, W), as uint8 (N, H, W) for the pictures (store.images)."""
    return as_thumbnails(inputs, channels_last=True) if isinstance(inputs, np.ndarray) else None


def _within(values: np.ndarray, low: float, high: float) -> bool:
    return bool(values.size) and float(values.min()) >= low and float(values.max()) <= high


def _optimizer_steps(model: Any) -> int:
    """The optimizer steps taken so far (kept in a saved model, so a resumed fit counts on)."""
    optimizer = getattr(model, "optimizer", None)
    try:
        return int(keras.ops.convert_to_numpy(optimizer.iterations))
    except (AttributeError, TypeError, ValueError):
        return 0


def _no_symbolic_outputs(model: Any, error: Exception) -> ConfigError:
    return ConfigError(f"the layers of {type(model).__name__} have no symbolic outputs to record ({error}): the "
                       "callback records layers of a Functional or Sequential Keras model; build yours with "
                       "keras.Input(...) and the functional API")


def _selected_output(output: Any, select: int | str | None, name: str) -> Any:
    """The output of layer `name` to record: the one `select` names (a position or a key) of a layer with several
    (an RNN's return_state, a dict), else the first; a one-line error for a position or key it lacks."""
    if isinstance(output, dict):
        keys = list(output)
        key = keys[0] if select is None else select
        if key not in output:
            raise ConfigError(f"output={select!r} is not an output of layer {name!r}: it has {keys}")
        return output[key]
    if isinstance(output, (list, tuple)):
        index = 0 if select is None else select
        if not isinstance(index, int) or not -len(output) <= index < len(output):
            raise ConfigError(f"output={select!r} is not an output of layer {name!r}: it has {len(output)}, "
                              f"positions 0 to {len(output) - 1}")
        return output[index]
    if select not in (None, 0):
        raise ConfigError(f"output={select!r} is not an output of layer {name!r}: it has one (output=0)")
    return output
