"""Every Python example in the README, run as written (in order, in one fresh folder, each in its own process), and
every run folder they write read back by `layerlapse render`, `report` and `export --tensorboard`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
LAYERLAPSE = [sys.executable, "-m", "layerlapse"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def environment() -> dict[str, str]:
    # one thread each: the examples train small models, and two processes' thread pools on 2 cores fight
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) >= 5, "the plain loop, Lightning, Keras, Hugging Face and the stored run"


@pytest.mark.parametrize("position", range(len(BLOCKS)))
def test_a_readme_example_runs_as_written(workspace: Path, position: int) -> None:
    result = subprocess.run([sys.executable, "-c", BLOCKS[position]], cwd=workspace, env=environment(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"README example {position + 1} failed:\n{BLOCKS[position]}\n{result.stderr[-3000:]}"


def test_every_run_an_example_wrote_is_read_by_render_report_and_export(workspace: Path) -> None:
    runs = sorted(path.parent for path in (workspace / "runs").glob("*/manifest.json"))
    assert len(runs) >= 4, [run.name for run in runs]
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["status"] == "complete", run.name
        last = manifest["epochs_complete"]
        for command in (["render", str(run), "--quiet"], ["report", str(run), "--out", str(run.parent / f"{run.name}.html")],
                        ["export", "--tensorboard", str(run), "--epoch", str(last)]):
            result = subprocess.run([*LAYERLAPSE, *command], cwd=workspace, env=environment(), capture_output=True,
                                    text=True, timeout=600)
            assert result.returncode == 0, f"{run.name}: layerlapse {' '.join(command)}\n{result.stderr[-2000:]}"
        assert (run / "lapse.gif").is_file() and (run / "report.html").is_file()
