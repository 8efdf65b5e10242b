"""Recording what chosen layers output for a fixed probe set: forward hooks, snapshots as numpy arrays.

The same `Recorder` serves the built-in training loop and users' own loops:

    with Recorder(model, layers=["hidden"], probe=x_probe, run=run) as rec:
        rec.snapshot(0)
        for epoch in range(1, epochs + 1):
            train_one_epoch(...)
            rec.snapshot(epoch)
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .errors import LayerNotFoundError
from .memory import keep_freed_memory
from .models import SameConv2d
from .modes import evaluating

if TYPE_CHECKING:
    from .store import RunFolder


@dataclass
class Snapshot:
    """What the probe set looked like to the network at one epoch."""

    epoch: int
    activations: dict[str, np.ndarray]  # layer name -> (n_probe, features), float16
    probabilities: np.ndarray  # (n_probe, n_classes), float32
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per-sample output shape before flattening

    def __repr__(self) -> str:
        layers = ", ".join(f"{name}: {array.shape[1]}" for name, array in self.activations.items())
        return f"Snapshot(epoch={self.epoch}, probe={len(self.probabilities)}, layers={{{layers}}})"


def find_layers(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    """The named modules, or a LayerNotFoundError that lists what exists and the closest matches."""
    modules = dict(model.named_modules())
    modules.pop("", None)
    found = {}
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise LayerNotFoundError(f"unknown layer {name!r}{hint}: the model has {', '.join(modules)}; "
                                     "see `layerlapse layers`")
        found[name] = modules[name]
    return found


class Recorder:
    """Forward hooks on named layers; `snapshot(epoch)` runs the probe set and returns (and stores) activations.

    A snapshot runs in eval() mode under no_grad, then restores the mode the model was in. Activations are
    flattened per sample and copied to the CPU as float16; the probe's class probabilities are kept as float32.
    Hooks are removed by `close()` or on leaving the `with` block.

    `batch_size` 250 (was 1000) measured 2× faster on a 2-core CPU: the reference network's largest per-batch tensor
    (250×32×29×29 float32, 27 MB) fits under the 32 MB up to which glibc can serve blocks from its heap, and in the
    32 MB L3. Creating a Recorder also has glibc keep freed blocks for the next batch (`layerlapse.memory`, once per
    process; LAYERLAPSE_KEEP_FREED_MEMORY=0 leaves it alone): without it, batches page-faulted on fresh memory and a
    snapshot took twice as long (bench/memory.py).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], probe: torch.Tensor | np.ndarray, *,
                 labels: np.ndarray | Sequence[int] | None = None, run: RunFolder | None = None,
                 batch_size: int = 250, device: torch.device | str | None = None,
                 channels_last: bool = False) -> None:
        keep_freed_memory()  # snapshots in half the time: no page faults on every batch (layerlapse.memory)
        self.model = model
        self.layers = list(dict.fromkeys(layers))  # a name given twice is recorded once
        self.probe = torch.as_tensor(probe)
        self.run = run
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and len(self.labels) != len(self.probe):
            raise ValueError(f"labels has {len(self.labels)} entries but the probe {len(self.probe)} images: "
                             "give one label per probe image")
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.channels_last = channels_last
        self._modules = find_layers(model, self.layers)
        self._batch_outputs: dict[str, torch.Tensor] = {}
        self._handles = [module.register_forward_hook(self._hook(name)) for name, module in self._modules.items()]

    def __repr__(self) -> str:
        return f"Recorder(layers={self.layers}, probe={len(self.probe)}, open={bool(self._handles)})"

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, name: str):
        def keep_output(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            self._batch_outputs[name] = output
        return keep_output

    def snapshot(self, epoch: int, metrics: dict[str, float] | None = None) -> Snapshot:
        """Run the probe set through the model and record every chosen layer.

        With a run folder, the snapshot is written there and the epoch committed as complete, with `metrics`
        (loss, acc, val_loss, val_acc, seconds: whichever you have) as its row of the history.
        """
        snapshot = self.take(epoch)
        if self.run is not None:
            self.store(snapshot, metrics)
        return snapshot

    def take(self, epoch: int) -> Snapshot:
        """Run the probe set through the model, without writing anything: `store` it when its metrics are known."""
        if not self._handles:
            raise RuntimeError("this Recorder is closed: create a new one to record more snapshots")
        activations, probabilities, shapes = self.run_probe(self.probe)
        return Snapshot(epoch, activations, probabilities, shapes)

    def store(self, snapshot: Snapshot, metrics: dict[str, float] | None = None) -> None:
        """Write a snapshot to the run folder and commit its epoch as complete, with `metrics` as its history row."""
        from .store import epoch_file

        if self.run is None:
            raise ValueError("this Recorder has no run folder to store in: create it with run=RunFolder(...)")
        if not self.run.has("probe/labels.npy"):
            if self.labels is None:
                raise ValueError("a Recorder that writes to a run folder needs the probe's labels: "
                                 "pass labels=... (one class index per probe image)")
            self.run.write_probe(self.labels, _thumbnails(self.probe))
        for name, values in snapshot.activations.items():
            self.run.write_array(f"activations/{name}/{epoch_file(snapshot.epoch)}", values)
        self.run.write_array(f"predictions/{epoch_file(snapshot.epoch)}", snapshot.probabilities)
        row = None if metrics is None else {"epoch": snapshot.epoch, **metrics}
        self.run.record_epoch(snapshot.epoch, row)

    def run_probe(self, inputs: torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, tuple]]:
        """The hooked layers' outputs and the class probabilities for `inputs`, in eval mode."""
        if len(inputs) == 0:
            raise ValueError("no inputs to run: the probe is empty")
        activations: dict[str, np.ndarray] = {}
        probabilities, shapes = None, {}
        try:
            # no_grad, not inference_mode: no faster here (measured), and inference tensors a model caches in its
            # forward pass would break its training afterwards
            with evaluating(self.model), torch.no_grad(), _padding_only_the_border(self.model):
                for start in range(0, len(inputs), self.batch_size):
                    batch = _to_float_images(inputs[start:start + self.batch_size], self.device, self.channels_last)
                    rows = slice(start, start + len(batch))
                    self._batch_outputs.clear()
                    logits = self.model(batch)
                    if probabilities is None:
                        probabilities = np.empty((len(inputs), logits.shape[1]), dtype=np.float32)
                    _copy_into(probabilities[rows], torch.softmax(logits.float(), dim=1))
                    for name in self.layers:
                        output = self._batch_outputs[name]
                        if name not in activations:
                            shapes[name] = tuple(output.shape[1:])
                            activations[name] = np.empty((len(inputs), math.prod(shapes[name])), dtype=np.float16)
                        if output.device.type != "cpu":
                            output = output.to(torch.float16)  # half the bytes to move
                        _copy_into(activations[name][rows], output)
        finally:
            self._batch_outputs.clear()
        return activations, probabilities, shapes


def _copy_into(target: np.ndarray, values: torch.Tensor) -> None:
    """`values` written into the rows `target` of a preallocated array, cast and flattened per sample in one pass."""
    torch.from_numpy(target).view(values.shape).copy_(values)


@contextlib.contextmanager
def _padding_only_the_border(model: nn.Module) -> Iterator[None]:
    """The model's SameConv2d layers, for the block, pad by writing their input and then zeros only around it.

    F.pad first fills the whole padded tensor with zeros, an extra pass over the largest tensors of the reference
    network: 6-17 % of a snapshot's CPU time in torch.profiler (more while other processes load the memory), ~1 %
    this way. The padded tensor is the same, bit for bit, and hooks see the same inputs and outputs; a subclass, or a
    layer whose forward was replaced, keeps its own forward.
    """
    patched = [module for module in model.modules() if type(module) is SameConv2d and "forward" not in vars(module)]
    for module in patched:
        module.forward = functools.partial(_conv_padding_the_border, module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward


def _conv_padding_the_border(conv: SameConv2d, x: torch.Tensor) -> torch.Tensor:
    return conv._conv_forward(_pad_border(x, conv._pad), conv.weight, conv.bias)


def _pad_border(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """F.pad(x, pad) with zeros, for (N, C, H, W) tensors, as F.pad lays it out, without zeroing the interior first."""
    if x.dim() != 4:
        return F.pad(x, pad)
    left, right, top, bottom = pad
    n, c, h, w = x.shape
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format
    out = torch.empty((n, c, top + h + bottom, left + w + right), dtype=x.dtype, device=x.device, memory_format=layout)
    out[:, :, top:top + h, left:left + w] = x
    out[:, :, :top].zero_()
    out[:, :, top + h:].zero_()
    out[:, :, top:top + h, :left].zero_()
    out[:, :, top:top + h, left + w:].zero_()
    return out


def _to_float_images(batch: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 (N, H, W) images become float (N, 1, H, W) in [0, 1]; float tensors pass through."""
    if batch.dtype == torch.uint8:
        batch = batch.float().div_(255.0)
    if batch.dim() == 3:
        batch = batch.unsqueeze(1)
    batch = batch.to(device, non_blocking=True)
    return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch


def _thumbnails(probe: torch.Tensor) -> np.ndarray | None:
    """The probe as uint8 (N, H, W) images for the pictures, when it is single-channel images."""
    images = probe.detach().cpu()
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dim() != 3:
        return None
    if images.dtype != torch.uint8:
        images = (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return images.numpy()


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def stratified_probe(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset whose class proportions match `labels`; None takes every index."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    chosen, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed)
    return np.sort(chosen)


def layer_table(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, module type, output shape per sample) for every named module, from one forward pass of zeros."""
    shapes: dict[str, tuple[int, ...]] = {}
    named = [(name, module) for name, module in model.named_modules() if name]

    def hook_for(name: str):
        def keep_shape(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape[1:])
        return keep_shape

    handles = [module.register_forward_hook(hook_for(name)) for name, module in named]
    try:
        with evaluating(model), torch.no_grad():
            model(torch.zeros((1, *input_shape), device=_model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return [(name, type(module).__name__, shapes.get(name, ())) for name, module in named]
