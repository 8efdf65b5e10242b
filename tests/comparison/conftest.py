"""Real runs to compare: the reference CNN on the digits at two seeds (one probe: the same --data-seed), and the
README's own-loop MLP recorded on the CNN's probe (another architecture, other widths), each mapped with PCA."""

from __future__ import annotations

from pathlib import Path

import pytest
from comparison_runs import cnn_run, mlp_on_the_probe_of

from layerlapse.store.run import RunFolder


@pytest.fixture(scope="package")
def runs_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="package")
def seed0(runs_folder: Path) -> RunFolder:
    return cnn_run(runs_folder, 0)


@pytest.fixture(scope="package")
def seed1(runs_folder: Path) -> RunFolder:
    return cnn_run(runs_folder, 1)


@pytest.fixture(scope="package")
def mlp(seed0: RunFolder, runs_folder: Path) -> RunFolder:
    out = runs_folder / "mlp"
    return RunFolder.open(out) if (out / "manifest.json").is_file() else mlp_on_the_probe_of(seed0, out)
