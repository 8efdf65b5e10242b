"""A small real run for the notebook tests (digits, PCA maps: seconds), shared by the module's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from nb_helpers import EPOCHS, PROBE, TEST_PROBE


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from layerlapse import RunConfig, run_experiment

    folder = tmp_path_factory.mktemp("notebook")
    run = run_experiment(RunConfig(dataset="digits", epochs=EPOCHS, layers=("hidden", "flat1"), probe=PROBE,
                                   test_probe=TEST_PROBE, map_method="pca", train_subset=600),
                         folder / "run", show_progress=False)
    return run.path
