"""The layers a Recorder hooks, and what it takes from them: finding them by name (the error names the closest),
warning of a reduction seldom meant, the model's class scores among its outputs, and copying a batch's rows into
the snapshot's array."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, RecordingWarning, unknown_layer
from .probe import first_tensor


def find_layers(model: nn.Module, names: Iterable[str],
                listing: str = "model.named_modules()") -> dict[str, nn.Module]:
    """The named modules, or a LayerNotFoundError that names the closest matches and how to list the rest
    (`listing`)."""
    modules = dict(model.named_modules())
    modules.pop("", None)
    unknown = next((name for name in names if name not in modules), None)
    if unknown is not None:
        raise unknown_layer(unknown, list(modules), listing)
    return {name: modules[name] for name in names}


def warn_of_a_first_step(modules: dict[str, nn.Module], reduce: dict[str, str],
                          select: dict[str, Any]) -> None:
    """reduce='first' on a recurrent layer's sequence keeps its state after one step: the first input alone. A
    choice, but seldom the one meant (an LSTM over an image's rows read its first row)."""
    for name, module in modules.items():
        if reduce[name] == "first" and isinstance(module, nn.RNNBase) and not module.bidirectional \
                and select[name] in (None, 0):
            warnings.warn(f"reduce='first' records recurrent layer {name!r} after its first step, which has read the "
                          "first input only: reduce='last' records it after the whole sequence", RecordingWarning,
                          stacklevel=3)


def class_scores(output: Any) -> torch.Tensor | None:
    """The model's class scores (N, classes): the output itself, its `logits`, or its first tensor."""
    if isinstance(output, Mapping) and "logits" in output:
        output = output["logits"]
    elif hasattr(output, "logits") and isinstance(output.logits, torch.Tensor):
        output = output.logits
    try:
        tensor = first_tensor(output)
    except ConfigError:
        return None
    return tensor if tensor.dim() == 2 and tensor.is_floating_point() else None


def copy_into(target: np.ndarray, values: torch.Tensor) -> None:
    """`values` written into the rows `target` of a preallocated array, cast and flattened per sample in one pass."""
    torch.from_numpy(target).view(values.shape).copy_(values)


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
