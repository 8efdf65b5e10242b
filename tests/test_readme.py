"""Every Python example in the README and on the documentation's pages, run as written (in order, each in its own
process), and every run folder they write read back by `layerlapse render`, `report` and `export --tensorboard`.

The README's examples run in one fresh folder; the pages' examples in another, page after page in the site's nav
order (mkdocs.yml), so a page may read a run that an earlier page's example wrote: "A stored run, from Python" reads
the `runs/mlp` of "Your own loop"."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAYERLAPSE = [sys.executable, "-m", "layerlapse"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def nav_pages() -> list[str]:
    """The site's pages (paths under docs/) in the order its nav lists them."""
    def walk(entry: object) -> list[str]:
        if isinstance(entry, str):
            return [entry]
        if isinstance(entry, list):
            return [page for item in entry for page in walk(item)]
        if isinstance(entry, dict):
            return [page for value in entry.values() for page in walk(value)]
        return []
    return walk(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])


# (document, its folder of examples, the example's position in the document, the code)
EXAMPLES = [("README.md", "readme", position, code)
            for position, code in enumerate(python_blocks(ROOT / "README.md"))]
EXAMPLES += [(f"docs/{page}", "docs", position, code)
             for page in nav_pages() for position, code in enumerate(python_blocks(ROOT / "docs" / page))]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {name: tmp_path_factory.mktemp(name) for name in ("readme", "docs")}


def environment() -> dict[str, str]:
    # one thread each: the examples train small models, and two processes' thread pools on 2 cores fight
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_the_readme_and_the_pages_have_their_examples() -> None:
    documents = [document for document, *_ in EXAMPLES]
    assert documents.count("README.md") >= 1, "the README's own loop"
    for page in ("own-loop", "lightning", "keras", "transformers", "stored-run"):
        assert f"docs/{page}.md" in documents, page


@pytest.mark.parametrize(("document", "folder", "position", "code"), EXAMPLES,
                         ids=[f"{document}:{position + 1}" for document, _, position, _ in EXAMPLES])
def test_an_example_runs_as_written(workspaces: dict[str, Path], document: str, folder: str, position: int,
                                    code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], cwd=workspaces[folder], env=environment(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{document}, example {position + 1}, failed:\n{code}\n{result.stderr[-3000:]}"


def test_every_run_an_example_wrote_is_read_by_render_report_and_export(workspaces: dict[str, Path]) -> None:
    runs = {name: sorted(path.parent for path in (folder / "runs").glob("*/manifest.json"))
            for name, folder in workspaces.items()}
    assert len(runs["readme"]) >= 1 and len(runs["docs"]) >= 4, {name: [run.name for run in found]
                                                                for name, found in runs.items()}
    for name, found in runs.items():
        for run in found:
            manifest = json.loads((run / "manifest.json").read_text())
            assert manifest["status"] == "complete", run.name
            last = manifest["epochs_complete"]
            for command in (["render", str(run), "--quiet"],
                            ["report", str(run), "--out", str(run.parent / f"{run.name}.html")],
                            ["export", "--tensorboard", str(run), "--epoch", str(last)]):
                result = subprocess.run([*LAYERLAPSE, *command], cwd=workspaces[name], env=environment(),
                                        capture_output=True, text=True, timeout=600)
                assert result.returncode == 0, (f"{name}/{run.name}: layerlapse {' '.join(command)}\n"
                                                f"{result.stderr[-2000:]}")
            assert (run / "lapse.gif").is_file() and (run / "report.html").is_file()
