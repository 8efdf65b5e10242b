"""Recording what chosen layers output for a fixed probe set: forward hooks, snapshots as numpy arrays.

The same `Recorder` serves the built-in training loop and users' own loops:

    with Recorder(model, layers=["hidden"], probe=x_probe, run=run) as rec:
        rec.snapshot(0)
        for epoch in range(1, epochs + 1):
            train_one_epoch(...)
            rec.snapshot(epoch)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .errors import LayerNotFoundError
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
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], probe: torch.Tensor | np.ndarray, *,
                 labels: np.ndarray | Sequence[int] | None = None, run: RunFolder | None = None,
                 batch_size: int = 1000, device: torch.device | str | None = None,
                 channels_last: bool = False) -> None:
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
        if not self._handles:
            raise RuntimeError("this Recorder is closed: create a new one to record more snapshots")
        activations, probabilities, shapes = self.run_probe(self.probe)
        snapshot = Snapshot(epoch, activations, probabilities, shapes)
        if self.run is not None:
            self._write(snapshot, metrics)
        return snapshot

    def _write(self, snapshot: Snapshot, metrics: dict[str, float] | None) -> None:
        from .store import epoch_file

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
        chunks: dict[str, list[np.ndarray]] = {name: [] for name in self.layers}
        probability_chunks, shapes = [], {}
        try:
            with evaluating(self.model), torch.no_grad():
                for start in range(0, len(inputs), self.batch_size):
                    batch = _to_float_images(inputs[start:start + self.batch_size], self.device, self.channels_last)
                    self._batch_outputs.clear()
                    logits = self.model(batch)
                    probability_chunks.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
                    for name in self.layers:
                        output = self._batch_outputs[name]
                        shapes[name] = tuple(output.shape[1:])
                        chunks[name].append(output.reshape(len(batch), -1).to(torch.float16).cpu().numpy())
        finally:
            self._batch_outputs.clear()
        activations = {name: np.concatenate(parts) for name, parts in chunks.items()}
        return activations, np.concatenate(probability_chunks), shapes


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
