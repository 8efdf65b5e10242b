"""Probe inputs as real models take them, in batches on the model's device, and the outputs they give back.

A probe may be a tensor or numpy array (`model(x)`), a tuple or list of tensors (`model(*x)`), a dict of tensors
(`model(**x)`, as Hugging Face models take them), a `Dataset` or a `DataLoader`. A dataset's or loader's items may
carry their labels: `(x, y)` pairs, or dicts with a "labels" (or "label") entry, as Hugging Face datasets have them.
The probe must be the same inputs in the same order at every snapshot, so a loader that shuffles is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence
from torch.utils.data import DataLoader, Dataset, RandomSampler

from ..errors import ConfigError
from ..store.images import as_thumbnails
from .rows import mask_does_not_fit, sequence_reduction_refused

LABEL_KEYS = ("labels", "label")
# a dict probe's entries that may hold its items' texts beside its tensors (as a tokenised dataset keeps them)
TEXT_KEYS = ("text", "texts")
# modules whose outputs are (N, C, *space), channels first: "mean" averages the space, never the channels
CHANNELS_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.modules.pooling._MaxPoolNd,
                  nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
                  nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm,
                  nn.Dropout2d, nn.Dropout3d)


class ProbeInputs:
    """A fixed set of model inputs: how many, their labels when they carry them, and their batches on a device."""

    def __init__(self, data: Any, *, what: str = "probe", batch_size: int = 250) -> None:
        self.what = what
        self.batch_size = batch_size
        self.labels: np.ndarray | None = None
        self._thumbnail_source: torch.Tensor | None = None
        self.texts: list[str] | None = None  # the items' own texts, where a dict probe carries them
        if isinstance(data, DataLoader):
            self._check_order(data)
            self.kind, self.data = "loader", data
            self._count_and_label()
        elif isinstance(data, Dataset):
            self.kind, self.data = "loader", DataLoader(data, batch_size=batch_size, shuffle=False)
            self._count_and_label()
        elif isinstance(data, Mapping):
            data, self.texts = split_texts(data)
            tensors = {key: _as_tensor(value, f"{what}[{key!r}]") for key, value in data.items()}
            self.kind, self.data = "kwargs", tensors
            self.length = _common_length(tensors.values(), what)
            self._thumbnail_source = tensors.get("pixel_values")  # Hugging Face's name for images
        elif isinstance(data, (tuple, list)):
            tensors = [_as_tensor(value, f"{what}[{position}]") for position, value in enumerate(data)]
            self.kind, self.data = "args", tensors
            self.length = _common_length(tensors, what)
        else:
            self.kind, self.data = "tensor", _as_tensor(data, what)
            self.length = len(self.data) if self.data.dim() else 0
            self._thumbnail_source = self.data
        if self.length == 0:
            raise ConfigError(f"the {what} is empty: give at least one input")

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"ProbeInputs({self.what}, {self.kind}, {self.length:,} inputs)"

    def batches(self, device: torch.device, channels_last: bool = False
                ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any], int]]:
        """(args, kwargs, rows) per batch, on `device`: call the model as `model(*args, **kwargs)`."""
        if self.kind == "loader":
            for batch in self.data:
                inputs, _ = split_labels(batch)
                if isinstance(inputs, Mapping):
                    inputs, _ = split_texts(inputs)
                yield _call_form(_to_device(inputs, device), channels_last)
            return
        for start in range(0, self.length, self.batch_size):
            rows = slice(start, start + self.batch_size)
            if self.kind == "tensor":
                yield _call_form(to_float_images(self.data[rows], device, channels_last), channels_last)
            elif self.kind == "args":
                yield tuple(_to_device(t[rows], device) for t in self.data), {}, len(self.data[0][rows])
            else:
                batch = {key: _to_device(t[rows], device) for key, t in self.data.items()}
                yield (), batch, len(next(iter(batch.values())))

    def thumbnails(self) -> np.ndarray | None:
        """The inputs as uint8 (N, H, W) images for the pictures, when they are single-channel images."""
        return None if self._thumbnail_source is None else thumbnails(self._thumbnail_source)

    def _check_order(self, loader: DataLoader) -> None:
        if isinstance(loader.sampler, RandomSampler) or getattr(loader.batch_sampler, "shuffle", False):
            raise ConfigError(f"the {self.what} DataLoader shuffles: a probe must be the same inputs in the same "
                              "order at every snapshot; pass a DataLoader with shuffle=False (or the Dataset)")

    def _count_and_label(self) -> None:
        """One pass over the loader without the model: how many inputs, their labels, and the images."""
        count, labels, images, texts = 0, [], [], []
        for batch in self.data:
            inputs, batch_labels = split_labels(batch)
            if isinstance(inputs, Mapping):
                inputs, batch_texts = split_texts(inputs)
                texts.extend(batch_texts or ())
            rows = _batch_length(inputs)
            count += rows
            if batch_labels is not None:
                y = torch.as_tensor(batch_labels).detach().cpu()
                labels.append((y[:, 0] if y.dim() == 2 and y.shape[1] == 1 else y).numpy())
            if isinstance(inputs, Mapping):
                inputs = inputs.get("pixel_values")
            if isinstance(inputs, torch.Tensor):
                images.append(inputs.detach().cpu())
        self.length = count
        if labels and sum(map(len, labels)) == count:
            self.labels = np.concatenate(labels)
        if images and sum(map(len, images)) == count and _looks_like_images(images[0]):
            self._thumbnail_source = torch.cat(images)
        if texts and len(texts) == count:
            self.texts = texts


def split_texts(inputs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """A dict of inputs as (the model's inputs, the items' texts or None): a "text" (or "texts") entry that holds
    strings, not tensors, is the items' texts, kept beside the tensors and never given to the model."""
    key = next((key for key in TEXT_KEYS if key in inputs and _strings(inputs[key])), None)
    if key is None:
        return dict(inputs), None
    return {k: v for k, v in inputs.items() if k != key}, list(inputs[key])


def _strings(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "US" or value.dtype == object and all(isinstance(v, (str, bytes)) for v in value)
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, (str, bytes)) for v in value)


def split_labels(batch: Any) -> tuple[Any, Any]:
    """A loader's batch as (model inputs, labels or None): `(x, y)` pairs and dicts with a "labels" entry carry
    labels; anything else is all input."""
    if isinstance(batch, Mapping):
        key = next((key for key in LABEL_KEYS if key in batch), None)
        if key is None:
            return dict(batch), None
        return {k: v for k, v in batch.items() if k != key}, batch[key]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        inputs = batch[0] if len(batch) == 2 else tuple(batch[:-1])
        return inputs, batch[-1]
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return batch[0], None
    return batch, None


def first_tensor(output: Any, select: int | str | None = None, where: str = "output") -> torch.Tensor:
    """The tensor a module's output holds: itself, the one `select`ed (a position or a key), or by default the first
    tensor in a tuple, list, dict or Hugging Face ModelOutput (a PackedSequence as its padded tensor)."""
    found = first_output(output, select, where)
    return pad_packed_sequence(found, batch_first=True)[0] if isinstance(found, PackedSequence) else found


def first_output(output: Any, select: int | str | None = None, where: str = "output") -> torch.Tensor | PackedSequence:
    """As `first_tensor`, but a PackedSequence (a recurrent layer's output for packed inputs) as it is: it knows
    where each input's sequence ends."""
    if select is not None:
        try:
            chosen = output[select]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(f"{where} has no entry {select!r}: it holds {describe_output(output)}; choose one of "
                              "those with output=...") from None
        return first_output(chosen, None, where)
    if isinstance(output, (torch.Tensor, PackedSequence)):  # a PackedSequence is a tuple: checked before tuples
        return output
    values = list(output.values()) if isinstance(output, Mapping) else output \
        if isinstance(output, (tuple, list)) else []
    for value in values:
        if isinstance(value, torch.Tensor) or isinstance(value, (tuple, list, Mapping)):
            try:
                return first_output(value, None, where)
            except ConfigError:
                continue
    raise ConfigError(f"{where} holds no tensor ({describe_output(output)}): record a layer whose output is a "
                      "tensor, or select one with output=...")


def not_one_row_per_input(name: str, module: nn.Module, shape: tuple[int, ...], batch: int,
                          select: int | str | None) -> ConfigError:
    """The error for a recorded output whose first dimension is not the batch, with the fix that fits it."""
    output = f"the {'selected ' if select is not None else ''}output of layer {name!r} has shape {shape}"
    if isinstance(module, nn.RNNBase) and select not in (None, 0):
        return ConfigError(f"{output}: a recurrent layer's hidden state is (layers, batch, features); record its "
                           "sequence (output=0) with reduce='last' instead")
    if len(shape) == 3 and shape[1] == batch:
        return ConfigError(f"{output}, (steps, batch, features) for a batch of {batch}: make the layer "
                           "batch_first=True, or select an output with one row per input (output=...)")
    return ConfigError(f"{output}, whose first dimension is not the batch of {batch}: select an output with one "
                       "row per input (output=...)")


def describe_output(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, Mapping):
        return "a dict with " + ", ".join(repr(key) for key in output)
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of {len(output)}: " + ", ".join(
            f"[{position}] {describe_output(value)}" for position, value in enumerate(output))
    return type(output).__name__


@dataclass(frozen=True)
class LayerOutput:
    """A recorded layer's output for one batch, batch first, with what says where each input's sequence ends."""

    tensor: torch.Tensor
    lengths: torch.Tensor | None = None  # per input, its real steps, when a PackedSequence says so
    attention_mask: torch.Tensor | None = None  # (N, tokens) of the batch, when the probe gives one
    unit: str = "token"  # what the sequence's positions are: tokens, or a recurrent layer's steps
    bidirectional: bool = False  # a recurrent layer's features: the forward direction's, then the backward's

    def ends_by(self, how: str) -> str | None:
        """What says where each input's sequence ends, for reduction `how`, in the caption's words."""
        if self.lengths is not None and how in ("mean", "last"):
            return "sequence lengths"
        if how == "last" and self.attention_mask is not None or how == "mean" and self.masks_tokens():
            return "attention mask"
        return None

    def masks_tokens(self) -> bool:
        """Whether the batch's attention mask says which of this output's tokens are real: a sequence output of
        as many tokens as the mask (a layer that pooled or resized its tokens is not masked)."""
        mask, output = self.attention_mask, self.tensor
        return mask is not None and output.dim() == 3 and mask.dim() == 2 and mask.shape == output.shape[:2]


def layer_output(found: torch.Tensor | PackedSequence, module: nn.Module, *, sequence: bool,
                 attention_mask: torch.Tensor | None = None) -> LayerOutput:
    """`found` (what `first_output` took from the layer's output) batch first: a PackedSequence padded, with its
    lengths; the sequence of a module made with batch_first=False (RNN, LSTM, GRU, attention, transformer layers:
    (steps, batch, features)) transposed. `sequence`: `found` is the module's first output, its sequence."""
    recurrent = sequence and isinstance(module, nn.RNNBase)
    unit, bidirectional = ("step", bool(module.bidirectional)) if recurrent else ("token", False)
    if isinstance(found, PackedSequence):
        tensor, lengths = pad_packed_sequence(found, batch_first=True)
        return LayerOutput(tensor, lengths.to(tensor.device), None, unit, bidirectional)
    if sequence and getattr(module, "batch_first", True) is False and found.dim() == 3:
        found = found.transpose(0, 1)
    mask = attention_mask if attention_mask is not None and attention_mask.dim() == 2 else None
    return LayerOutput(found, None, mask, unit, bidirectional)


def reduce_rows(layer: LayerOutput, how: str, channels_first: bool, name: str) -> torch.Tensor:
    """A batch of a layer's outputs as one row per input: as it is (to be flattened by the copy into the row array,
    which reads a channels_last map in place), averaged over space or tokens, or the first or last token. Outputs
    of 4-D and more and `channels_first` ones are (N, C, *space); other 3-D outputs are sequences (N, tokens,
    features)."""
    output = layer.tensor
    if how == "flatten" and layer.lengths is not None:
        raise ConfigError(f"reduce='flatten' of the packed sequences of layer {name!r} would give each batch its "
                          "own width: use reduce='last', 'mean' or 'first' for it")
    if output.dim() <= 2 or how == "flatten":
        return output
    if how == "mean":
        return _mean(layer, channels_first)
    if channels_first or output.dim() != 3:
        raise sequence_reduction_refused(how, name, tuple(output.shape[1:]))
    if how == "first":
        if layer.masks_tokens():  # left padding: the first real token, not a pad token
            return output[torch.arange(len(output), device=output.device),
                          first_real_positions(layer.attention_mask).to(output.device)]
        return output[:, 0]
    return _last(layer, name)


def _mean(layer: LayerOutput, channels_first: bool) -> torch.Tensor:
    output = layer.tensor
    if layer.lengths is not None:  # over each input's own steps: the padding after them is zeros
        return output.float().sum(dim=1) / layer.lengths.unsqueeze(1)
    if not channels_first and layer.masks_tokens():  # over each input's real tokens, not its padding
        real = (layer.attention_mask != 0).to(output.device, torch.float32).unsqueeze(2)
        return (output.float() * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)
    dims = tuple(range(2, output.dim())) if channels_first else tuple(range(1, output.dim() - 1))
    return output.float().mean(dim=dims)


def _last(layer: LayerOutput, name: str) -> torch.Tensor:
    """Each input's last real token or step; of a bidirectional recurrent layer, its forward direction's last step
    and its backward direction's first (where each direction has read the whole sequence)."""
    output = layer.tensor
    positions = None if layer.lengths is None else layer.lengths - 1
    if layer.attention_mask is not None:
        if layer.attention_mask.shape[1] != output.shape[1]:
            raise mask_does_not_fit(name, layer.attention_mask.shape[1], tuple(output.shape[1:]))
        positions = last_real_positions(layer.attention_mask)
    if positions is None:
        last = output[:, -1]
    else:
        last = output[torch.arange(len(output), device=output.device), positions.to(output.device)]
    if not layer.bidirectional:
        return last
    half = output.shape[2] // 2
    return torch.cat([last[:, :half], output[:, 0, half:]], dim=1)


def first_real_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Per row of an attention mask, its first real token's position (0 for a row of no real token)."""
    return (attention_mask != 0).int().argmax(dim=1)


def last_real_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Per row of an attention mask (1 for a real token, 0 for padding, on either side), its last real token's
    position; the last position for a row of no real token."""
    real = attention_mask != 0
    tokens = real.shape[1]
    from_the_end = real.flip(1).int().argmax(dim=1)  # the first real token from the end
    return torch.where(real.any(dim=1), tokens - 1 - from_the_end, tokens - 1)


def to_float_images(batch: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 (N, H, W) images become float (N, 1, H, W) in [0, 1]; other tensors pass through."""
    if batch.dtype == torch.uint8:
        batch = batch.float().div_(255.0)
        if batch.dim() == 3:
            batch = batch.unsqueeze(1)
    batch = batch.to(device, non_blocking=True)
    return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch


def thumbnails(images: torch.Tensor) -> np.ndarray | None:
    """Single-channel images as uint8 (N, H, W) for the pictures: uint8 as they are, floats scaled from their own
    range (so normalised inputs look like images too); None for anything else."""
    images = images.detach().cpu()
    if not _looks_like_images(images):
        return None
    if images.dim() == 3 and images.dtype == torch.uint8:
        return images.numpy()  # kept whatever its size, as recorded runs always kept them
    # every other kind as the Keras callback's are made (store.images): integer maps are scaled as floats
    return as_thumbnails(images.numpy() if images.dtype == torch.uint8 else images.float().numpy(),
                         channels_last=False)


def _looks_like_images(x: torch.Tensor) -> bool:
    if x.dim() == 4 and x.shape[1] == 1:
        return x.shape[2] <= 128 and x.shape[3] <= 128
    return x.dim() == 3 and x.shape[1] <= 128 and x.shape[2] <= 128 and x.is_floating_point() or \
        (x.dim() == 3 and x.dtype == torch.uint8)


def _call_form(inputs: Any, channels_last: bool) -> tuple[tuple[Any, ...], dict[str, Any], int]:
    if isinstance(inputs, Mapping):
        return (), dict(inputs), _batch_length(inputs)
    if isinstance(inputs, tuple):
        return inputs, {}, _batch_length(inputs)
    if isinstance(inputs, torch.Tensor) and channels_last and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return (inputs,), {}, _batch_length(inputs)


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_to_device(item, device) for item in value)
    return value


def _batch_length(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return len(inputs)
    if isinstance(inputs, Mapping):
        return _batch_length(next(iter(inputs.values())))
    if isinstance(inputs, (tuple, list)) and inputs:
        return _batch_length(inputs[0])
    raise ConfigError(f"a probe batch holds no tensor ({describe_output(inputs)}): the probe's items must be "
                      "tensors, (inputs, label) pairs or dicts of tensors")


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(f"the {what} is {type(value).__name__}, which is not a tensor ({error}): give a tensor, "
                          "a numpy array, a tuple or dict of them, a Dataset or a DataLoader") from None


def _common_length(tensors: Any, what: str) -> int:
    lengths = {len(tensor) if tensor.dim() else 0 for tensor in tensors}
    if len(lengths) != 1:
        raise ConfigError(f"the {what}'s tensors hold different numbers of inputs ({sorted(lengths)}): give one "
                          "row per input in each")
    return lengths.pop()
