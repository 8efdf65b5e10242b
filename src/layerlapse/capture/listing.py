"""What `layerlapse layers` needs: a user's model by its import name, and its layers with their output shapes.

The output shapes come from one forward pass of example inputs: zeros of the shape given, as floats, or as integer
token ids for a model that takes them (one with an Embedding, or one that refused floats for their kind), or as
keyword inputs (`model(input_ids=..., attention_mask=...)`, as Hugging Face models take them).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .modes import evaluating
from .misfit import LayerTrail, first_line
from .probe import first_tensor

INPUT_DTYPES = ("auto", "float", "long")
# torch's words when a tensor of the wrong kind reaches a layer: floats where token ids go, or ids where floats do
WRONG_DTYPE = re.compile(r"\bLong\b|\bInt\b|\bFloat\b|dtype|scalar type|indices")


class _PassFailed(Exception):
    """The example pass raised `error` in the place `where` says."""

    def __init__(self, error: BaseException, where: str) -> None:
        super().__init__(str(error))
        self.error, self.where = error, where


def layer_table(model: nn.Module, input_shape: tuple[int, ...] | None, *, dtype: str = "auto",
                keywords: Sequence[str] = ()) -> list[tuple[str, str, tuple[int, ...] | None]]:
    """(name, module type, output shape per input) for every named module, from one forward pass of example inputs
    of `input_shape` (`example_inputs`); shapes are None without a shape or for modules the pass did not reach. A
    module that returns a tuple or dict shows its first tensor's shape. `layerlapse layers --model ...` prints it.

    Parameters
    ----------
    model : torch.nn.Module
        The network whose named modules are listed (the names `Recorder(layers=...)` takes).
    input_shape : tuple of int or None
        One input's shape, without the batch (e.g. `(1, 28, 28)`, or `(16,)` for 16 token ids); None lists names
        and types only, without running the model.
    dtype : "auto", "float" or "long"
        The example inputs' kind: "auto" is token ids for a model with an Embedding, else floats, and the other kind
        when the model refuses the first for its kind.
    keywords : sequence of str
        Input names to pass the example inputs by (`model(input_ids=..., attention_mask=...)`), for a model that
        takes them by keyword; none passes one positional input.

    Returns
    -------
    list of (name, type, shape)
        One row per named module, in `named_modules()` order.

    Examples
    --------
    >>> from torch import nn
    >>> from layerlapse import layer_table
    >>> layer_table(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (4,))
    [('0', 'Linear', (3,)), ('1', 'ReLU', (3,))]
    """
    if dtype not in INPUT_DTYPES:
        raise ConfigError(f"the input dtype must be one of {', '.join(INPUT_DTYPES)} (--input-dtype), got {dtype!r}")
    named = [(name, module) for name, module in model.named_modules() if name]
    shapes = {} if input_shape is None else _shapes_of_a_pass(model, tuple(input_shape), dtype, keywords)
    return [(name, type(module).__name__, shapes.get(name) if input_shape is not None else None)
            for name, module in named]


def _shapes_of_a_pass(model: nn.Module, input_shape: tuple[int, ...], dtype: str,
                      keywords: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Each module's output shape in a pass of example inputs of `dtype`; "auto" is token ids for a model with an
    Embedding, else floats, and the other kind when the model refuses the first for its kind."""
    kinds = [dtype] if dtype != "auto" else \
        ["long", "float"] if any(isinstance(module, nn.Embedding) for module in model.modules()) else ["float", "long"]
    for kind in kinds:
        try:
            return _output_shapes(model, input_shape, kind, keywords)
        except _PassFailed as failed:
            if kind != kinds[-1] and WRONG_DTYPE.search(str(failed.error)):
                continue
            given = f"{', '.join(keywords)} of shape {input_shape}" if keywords else \
                f"inputs of shape {input_shape} as {'token ids' if kind == 'long' else 'floats'}"
            raise ConfigError(f"the model does not take {given}: it failed in {failed.where}; torch said: "
                              f"{first_line(failed.error)}") from None
    return {}


def example_inputs(input_shape: tuple[int, ...], dtype: str, keywords: Sequence[str] = (),
                   device: torch.device | str = "cpu") -> tuple[tuple[Any, ...], dict[str, Any]]:
    """One input of `input_shape` as `model(*args, **kwargs)` takes it: zeros of `dtype` ("float" or "long"), or by
    keyword one tensor per name, each of that shape: a name ending in "ids" or "mask" is long, and a mask is all ones
    (every token real)."""
    def example(name: str | None) -> torch.Tensor:
        integers = dtype == "long" or (name or "").endswith(("ids", "mask"))
        fill = 1 if (name or "").endswith("mask") else 0
        return torch.full((1, *input_shape), fill, dtype=torch.long if integers else torch.float32, device=device)

    if not keywords:
        return (example(None),), {}
    return (), {name: example(name) for name in keywords}


def _output_shapes(model: nn.Module, input_shape: tuple[int, ...], dtype: str,
                   keywords: Sequence[str]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def hook_for(name: str):
        def keep_shape(module: nn.Module, inputs: object, output: Any) -> None:
            with contextlib.suppress(ConfigError):
                shapes[name] = tuple(first_tensor(output).shape[1:])
        return keep_shape

    args, kwargs = example_inputs(input_shape, dtype, keywords, _model_device(model))
    handles = [module.register_forward_hook(hook_for(name)) for name, module in model.named_modules() if name]
    trail = LayerTrail()
    try:
        with evaluating(model), torch.no_grad(), trail.following(model):
            model(*args, **kwargs)
    except (RuntimeError, TypeError, ValueError, IndexError) as error:
        raise _PassFailed(error, trail.describe(model)) from None
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def load_model(spec: str) -> nn.Module:
    """The model `package.module:factory` names: a module attribute that is a model, or a function or class that
    returns one when called without arguments. The current folder is searched first, as `python -m` would."""
    import importlib
    import sys

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"--model must be package.module:factory (a function, class or model in that module), "
                          f"got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"cannot import {module_name!r} for --model ({error}): run from the folder that holds it, "
                          "or install its package") from None
    factory = getattr(module, attribute, None)
    if factory is None:
        close = difflib.get_close_matches(attribute, [name for name in dir(module) if not name.startswith("_")], 3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(f"{module_name} has no {attribute!r}{hint}: name a function, class or model in it")
    model = factory if isinstance(factory, nn.Module) or not callable(factory) else factory()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{spec} gave {type(model).__name__}, not a torch.nn.Module: name a function or class that "
                          "returns your model")
    return model
