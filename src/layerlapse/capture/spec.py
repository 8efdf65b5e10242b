"""One recording spec: what a recording takes, written once and taken the same way by every way of recording.

`Recorder(model, layers, probe, labels, out, *, ...)` and the Lightning, Keras and Hugging Face callbacks
(`LayerlapseCallback(layers, probe, labels, out, *, ...)`) have the same parameters in the same order, each with
the same default (tests/capture/test_spec.py holds them to `RecordingSpec`'s fields); each turns its arguments into a
`RecordingSpec`, checked here once, before any training. A user who knows one knows all.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError
from .rows import REDUCTIONS

# the parameters a front end takes positionally, in this order; the others are keyword-only
POSITIONAL = ("layers", "probe", "labels", "out")


@dataclass(frozen=True)
class Schedule:
    """When snapshots are taken: at the start and after every epoch (`"epoch"`, the default), every N optimizer steps
    (an int N), or at log-spaced steps 0, 1, 2, 4, 8, … (`"log"`, as studies of early training need)."""

    every: str | int = "epoch"

    def __post_init__(self) -> None:
        if self.every in ("epoch", "log"):
            return
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"every must be 'epoch', 'log' or a whole number of optimizer steps of at least 1, "
                              f"got {self.every!r}")

    @property
    def by_steps(self) -> bool:
        return self.every != "epoch"

    def due_at_step(self, step: int) -> bool:
        """Whether a snapshot is due after `step` optimizer steps (0 is the start)."""
        if self.every == "epoch":
            return False
        if self.every == "log":
            return step == 0 or step & (step - 1) == 0
        return step % int(self.every) == 0

    def describe(self) -> str:
        if self.every == "epoch":
            return "every epoch"
        if self.every == "log":
            return "at log-spaced steps (0, 1, 2, 4, 8, …)"
        return f"every {self.every} optimizer steps"


@dataclass(frozen=True, eq=False)  # eq=False: a spec holds tensors, which do not compare to one truth value
class RecordingSpec:
    """What to record, when, and where to.

    Parameters
    ----------
    layers : str or list of str
        The layers to record, by name (a PyTorch model's `named_modules()`, a Keras model's layer names;
        `layerlapse layers --model ...` lists a PyTorch model's with their output shapes). A name given twice is
        recorded once.
    probe : tensor, array, tuple, dict, Dataset or DataLoader
        The fixed inputs recorded at every snapshot, in batches (a loader must not shuffle or drop its last batch).
    labels : array-like of int, optional
        One class index per probe input, unless the probe yields `(input, label)` pairs or carries "labels".
    out : path, optional
        The run folder to record into. A Recorder without one only returns arrays from `snapshot()`; a callback
        needs one.
    texts : list of str, optional
        One text per probe item, in the probe's order: the item itself for a text model, or a short caption for any
        other data. The report shows it on hover, on a pinned point and in the lists and strips (as text, escaped),
        the Parquet tables carry it, `layerlapse dynamics` prints it. Each is kept to 1,000 characters. A dict probe
        may carry them itself, as a "text" entry of strings beside its tensors.
    class_names : list of str, optional
        One name per class index (legend, report, confusion matrix); a Hugging Face model's `id2label` by default.
    dataset : str
        Your data's name, stored in the run's manifest.
    test_probe, test_probe_labels : optional
        Test inputs placed on every frame (the same forms as `probe`), and their labels where they carry none.
    test_set, test_labels : optional
        Test inputs recorded once, after training, for the confusion matrix and test accuracy, and their labels.
    every : "epoch", "log" or int
        When snapshots are taken: at the start and after every epoch, at log-spaced optimizer steps (0, 1, 2, 4,
        …), or every N optimizer steps.
    reduce : "flatten", "mean", "first", "last" or "tokens", or a dict per layer
        How an output of more than one dimension per input becomes a row: flattened, averaged over space or tokens,
        its first token, or its last real token or step. "tokens" makes the run's points the probe's real tokens,
        one row each (padding left out; at most 20,000; every layer of the run per token; `tokenizer` names them).
    output : int, str or dict per layer, optional
        Which output of a layer that returns several to record (a position or a key); the first by default.
    tokenizer : tokenizer or list of str, optional
        For reduce="tokens": what turns the probe's `input_ids` into the tokens' text (a Hugging Face tokenizer,
        or a list of token strings by id).
    batch_size : int
        Inputs per forward pass of a snapshot.
    training : dict, optional
        The settings your training used (batch size, learning rate, …), stored in the manifest beside what the
        framework states itself.
    config : RunConfig, optional
        The map's settings (neighbours, seed, method); the reference run's by default.
    force : bool
        Replace a finished run already in `out` (only files that run provably wrote).
    resume : bool, optional
        Continue the interrupted run in `out` after its last committed snapshot (True), or start afresh (False).
        None, the default: continue when the framework resumes from a checkpoint (Lightning's `ckpt_path`, the
        Trainer's `resume_from_checkpoint`), else start afresh.
    draw : bool
        Whether the end of training maps and draws the run (frames, GIF, figures, report); with False the run is
        complete as recorded and `layerlapse render RUN` draws it later.
    live : bool
        In a notebook, show the lapse under the cell (the widget of `layerlapse.show`) and add each snapshot to it
        as it is mapped; outside one, a warning says so and the recording goes on without it.
    """

    layers: Sequence[str] | str
    probe: Any
    labels: Any = None
    out: str | os.PathLike | None = None
    texts: Any = None
    class_names: Sequence[str] | None = None
    dataset: str = "own data"
    test_probe: Any = None
    test_probe_labels: Any = None
    test_set: Any = None
    test_labels: Any = None
    every: str | int = "epoch"
    reduce: str | Mapping[str, str] = "flatten"
    output: int | str | Mapping[str, int | str] | None = None
    tokenizer: Any = None
    batch_size: int = 250
    training: Mapping[str, Any] | None = None
    config: RunConfig | None = None
    force: bool = False
    resume: bool | None = None
    draw: bool = True
    live: bool = False

    def __post_init__(self) -> None:
        layers = [self.layers] if isinstance(self.layers, str) else list(self.layers)
        if not layers or not all(isinstance(name, str) and name for name in layers):
            raise ConfigError(f"layers must name at least one layer, as a name or a list of names, got "
                              f"{self.layers!r}: e.g. layers=['fc1']")
        object.__setattr__(self, "layers", tuple(dict.fromkeys(layers)))  # a repeat is one
        if isinstance(self.labels, (str, os.PathLike)):  # an older call's third argument was the run folder
            raise ConfigError(f"labels is {os.fspath(self.labels)!r}, text where class indices go: the run folder is "
                              "the fourth argument, (layers, probe, labels, out), or out=...")
        if self.out is not None:
            object.__setattr__(self, "out", os.fspath(self.out))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(name) for name in self.class_names))
        Schedule(self.every)  # a bad `every` is refused now, before any training
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a whole number of at least 1, got {self.batch_size!r}")
        per_layer(self.reduce, self.layers, "reduce", REDUCTIONS)
        per_layer(self.output, self.layers, "output")
        for which, argument in (("test_probe", "test_probe_labels"), ("test_set", "test_labels")):
            if getattr(self, argument) is not None and getattr(self, which) is None:
                raise ConfigError(f"{argument} were given without the {which.replace('_', ' ')}: pass {which}=... "
                                  "(its inputs) as well")

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> RecordingSpec:
        """The spec of a front end's call, from its arguments by name.

        Parameters
        ----------
        arguments : mapping
            The call's arguments by name (the front end's `locals()`); names that are not the spec's are ignored.
        """
        return cls(**{name: arguments[name] for name in FIELDS})

    @classmethod
    def for_callback(cls, arguments: Mapping[str, Any]) -> RecordingSpec:
        """The spec of a framework callback's call: as `from_arguments`, and a callback always records into a run
        folder.

        Parameters
        ----------
        arguments : mapping
            The callback's arguments by name (its `locals()`).
        """
        spec = cls.from_arguments(arguments)
        if spec.out is None:
            raise ConfigError("the layerlapse callback needs a run folder to record into: pass out=\"runs/NAME\"")
        return spec

    def arguments(self) -> dict[str, Any]:
        """The spec as keyword arguments, for `Recorder(model, **spec.arguments())`."""
        return {name: getattr(self, name) for name in FIELDS}

    def replace(self, **changes: Any) -> RecordingSpec:
        return dataclasses.replace(self, **changes)

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.every)

    @property
    def reductions(self) -> dict[str, str]:
        """How each layer's output becomes a row."""
        return per_layer(self.reduce, self.layers, "reduce", REDUCTIONS)

    @property
    def outputs(self) -> dict[str, int | str | None]:
        """Which of each layer's outputs is recorded (None: the first)."""
        return per_layer(self.output, self.layers, "output")

    def __repr__(self) -> str:  # the probe as its size, not as a tensor's thousands of numbers
        where = "no run folder" if self.out is None else f"out={self.out!r}"
        return f"RecordingSpec(layers={list(self.layers)}, {where}, {Schedule(self.every).describe()})"


FIELDS = tuple(field.name for field in dataclasses.fields(RecordingSpec))


def per_layer(value: Any, layers: Sequence[str], name: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A setting given for all layers or as a dict per layer, as a dict per layer (unnamed layers: "flatten" for a
    choice among `allowed`, else None); a one-line error for a layer not recorded or a value not allowed."""
    chosen = value if isinstance(value, Mapping) else {layer: value for layer in layers}
    unknown = sorted(set(chosen) - set(layers), key=str)
    if unknown:
        raise ConfigError(f"{name} names layers that are not recorded ({', '.join(map(repr, unknown))}): give it "
                          f"for the recorded layers {list(layers)}")
    values = {layer: chosen.get(layer, "flatten" if allowed else None) for layer in layers}
    for layer, how in values.items():
        if allowed is not None and how not in allowed:
            raise ConfigError(f"{name} for layer {layer!r} must be one of {', '.join(allowed)}, got {how!r}")
    return values
