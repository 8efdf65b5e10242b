"""A small real run the report's page tests share: digits through the built-in loop (so its probe has dataset
indices, dynamics and a test probe), three layers, PCA maps, its report written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DIGITS_EPOCHS = 3


@dataclass
class DigitsRun:
    report: Path
    epochs: int
    labels: np.ndarray
    names: list[str]
    dataset_index: np.ndarray
    predictions: dict[int, np.ndarray]  # snapshot → (items, classes) probabilities


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> DigitsRun:
    from layerlapse import RunConfig, run_experiment
    from layerlapse.report.page import write_report

    run = run_experiment(RunConfig(dataset="digits", epochs=DIGITS_EPOCHS, layers=("hidden", "flat1", "pool2"),
                                   probe=200, test_probe=60, map_method="pca", train_subset=600),
                         tmp_path_factory.mktemp("digits") / "run", show_progress=False)
    return DigitsRun(write_report(run), DIGITS_EPOCHS, np.asarray(run.probe_labels()), run.manifest["dataset"]["class_names"],
                     np.asarray(run.probe_indices()),
                     {epoch: np.asarray(run.predictions(epoch)) for epoch in range(DIGITS_EPOCHS + 1)})
