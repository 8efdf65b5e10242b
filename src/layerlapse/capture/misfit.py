"""Inputs that do not fit a model: where its forward pass failed, and what the layer that failed takes.

A probe of the wrong image size passes the first convolution and fails at the first Linear; naming the first layer
then blamed one the batch fits. `failed_in` runs the failing pass again with hooks that follow which module is
entered and which returns, so the error names the module whose forward raised. Hooks are added only then: the
passes that succeed pay nothing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

# what torch says when an input does not fit a layer (shapes, sizes, dimensions, channels, dtypes, arguments)
SHAPE_WORDS = re.compile(r"shape|size|dimension|channels|expected|mat1|must match|dtype|argument|index out of range",
                         re.IGNORECASE)


class LayerTrail:
    """Which named modules a forward pass is inside (entered, not yet returned) and which returned last."""

    def __init__(self) -> None:
        self.inside: list[tuple[str, nn.Module]] = []
        self.returned: str | None = None

    def __repr__(self) -> str:
        return f"LayerTrail(inside={[name for name, _ in self.inside]}, returned={self.returned!r})"

    @contextlib.contextmanager
    def following(self, model: nn.Module) -> Iterator[LayerTrail]:
        """Follows the passes of `model` in the block, through hooks on its named modules, removed after it."""
        handles = []
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_pre_hook(self._entered(name)))
                handles.append(module.register_forward_hook(self._returned(name)))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def describe(self, model: nn.Module) -> str:
        """Where the pass failed, in words: the innermost module it was inside, and what that module takes."""
        if self.inside:
            name, module = self.inside[-1]
            return f"layer {name!r} ({layer_takes(module)})"
        after = f"after layer {self.returned!r}" if self.returned else "before any layer"
        return f"{type(model).__name__}.forward itself, {after}"

    def _entered(self, name: str) -> Callable[..., None]:
        def enter(module: nn.Module, inputs: Any) -> None:
            self.inside.append((name, module))
        return enter

    def _returned(self, name: str) -> Callable[..., None]:
        def leave(module: nn.Module, inputs: Any, output: Any) -> None:
            if self.inside and self.inside[-1][0] == name:
                self.inside.pop()
            self.returned = name
        return leave


def failed_in(model: nn.Module, forward: Callable[[], Any]) -> str:
    """Where `forward` (a pass of `model` that has just failed) fails, in words: it is run once more, followed."""
    trail = LayerTrail()
    with trail.following(model), contextlib.suppress(Exception):
        forward()
    return trail.describe(model)


def layer_takes(module: nn.Module) -> str:
    """A module's type and, for the layers whose inputs are fixed by their weights, what they take."""
    kind = type(module).__name__
    if isinstance(module, nn.Linear):
        return f"{kind}, takes {module.in_features} features per input"
    if isinstance(module, nn.modules.conv._ConvNd):
        dims = len(module.kernel_size)
        space = ", ".join("HWD"[:dims]) if dims > 1 else "L"
        return f"{kind}, takes (N, {module.in_channels}, {space}) inputs"
    if isinstance(module, nn.Embedding):
        return f"{kind}, takes integer token ids below {module.num_embeddings}"
    if isinstance(module, nn.RNNBase):
        return f"{kind}, takes {module.input_size} features per step"
    return kind


def describe_batch(args: tuple, kwargs: dict) -> str:
    def one(value: Any) -> str:
        return f"shape {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}" \
            if isinstance(value, torch.Tensor) else type(value).__name__
    parts = [one(value) for value in args] + [f"{key}={one(value)}" for key, value in kwargs.items()]
    return ", ".join(parts)


def first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
