"""The values a user hands a recording, checked or made storable: the labels (class indices that name a class),
the metrics (plain numbers), and the settings they state (as JSON). Moved out of session.py, which they serve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError


def checked_labels(labels: Any, what: str, class_names: list[str]) -> np.ndarray:
    """Class indices, one per input, each naming a class; else the one-line ConfigError that says what to pass."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ConfigError(f"{what} must be one whole-number class index per input, got {array.dtype} of shape "
                          f"{array.shape}: pass class indices (0, 1, 2, …), not one-hot rows or names")
    if len(array) and (array.min() < 0 or array.max() >= len(class_names)):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise ConfigError(f"{what} hold class {bad} but class_names names {len(class_names)} classes: give a name "
                          f"for every class (class_names=[...] with at least {int(array.max()) + 1} names)")
    return array.astype(np.int64)


def as_number(key: Any, value: Any) -> float:
    """A metric as a float (a 0-d array or a framework's tensor too); else the one-line ConfigError."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()  # a 0-d numpy array or framework tensor
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"metric {key!r} must be a number, got {value!r}: pass plain numbers (loss.item())")
    return float(value)


def json_safe(value: Any, where: str) -> Any:
    """Settings a user states (training, layer info) as JSON: numbers, text, lists and tables of them."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return json_safe(value.item(), where)
    if isinstance(value, dict):
        return {str(key): json_safe(item, where) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, where) for item in value]
    return str(value)
