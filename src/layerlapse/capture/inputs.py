"""What a Recorder knows of its inputs besides their tensors: their labels and texts, given as arguments or carried by
the inputs themselves ((input, label) pairs, a dict's "labels" or "text" entry), and given one way only."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .._util.sampling import stratified_rows
from .probe import ProbeInputs

# the Recorder's argument for the labels of each input it takes
LABEL_ARGUMENTS = {"probe": "labels", "test_probe": "test_probe_labels", "test_set": "test_labels"}


def labels_of(inputs: ProbeInputs | None, which: str, given: Any) -> np.ndarray | None:
    """The labels of `inputs` ("probe", "test_probe" or "test_set"): `given`, or those the inputs yield; one line for
    a count that does not fit or for labels given both ways that differ."""
    yielded = inputs.labels if inputs is not None else None
    labels = as_array(given) if given is not None else yielded
    if labels is None:
        return None
    what = which.replace("_", " ")
    if inputs is not None and len(labels) != len(inputs):
        raise ConfigError(f"the {what} labels hold {len(labels):,} entries but the {what} {len(inputs):,} "
                          "inputs: give one label per input")
    if given is not None and yielded is not None and not np.array_equal(labels, yielded):
        raise ConfigError(f"the {what}'s labels differ from the labels its items yield: give them one way, "
                          f"either in the items or as {LABEL_ARGUMENTS[which]}=")
    return labels


def probe_texts(given: Any, carried: list[str] | None) -> Any:
    """The probe items' texts: given as texts=, or carried by the probe itself (a dict's "text" entry)."""
    if given is not None and carried is not None and [*given] != carried:
        raise ConfigError("the probe's texts differ from the texts it carries in its \"text\" entry: give them "
                          "one way, either in the probe or as texts=")
    return given if given is not None else carried


def as_array(labels: Any) -> np.ndarray:
    return np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)


def stratified_probe(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset whose class proportions match `labels`; None takes every index. The rows
    every probe so far was chosen by (scikit-learn's stratified split), so a run and its reference agree."""
    return stratified_rows(labels, size, seed, rule="scikit-learn")
