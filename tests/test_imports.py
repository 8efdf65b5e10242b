"""The import rules of ../shared/DESIGN.md, checked with import-linter on the package as it is, and shown to catch a
break: torch only where models run (capture, the reference loop, the integrations), each framework only in its own
callback module, and the report never calling back into the recipe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]

pytest.importorskip("importlinter", reason="import-linter is a development extra: pip install -e '.[dev]'")


def lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath), "HOME": str(cwd)})


def test_the_package_keeps_every_import_rule() -> None:
    result = lint(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("store/run.py", "import torch", "without torch"),
    ("report/page.py", "from ..recipe import steps", "does not call back into the recipe"),
    ("capture/recorder.py", "import lightning", "only inside their own integration module"),
])
def test_a_broken_rule_fails_the_check(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copytree(ROOT / "src" / "layerlapse", tmp_path / "src" / "layerlapse",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    broken = tmp_path / "src" / "layerlapse" / module
    broken.write_text(broken.read_text() + f"\n{line}  # a rule broken on purpose\n")
    result = lint(tmp_path, tmp_path / "src")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout


def test_reading_and_drawing_a_run_loads_no_framework() -> None:
    """At run time too: the modules `layerlapse render` and `report` use import none of torch or the frameworks."""
    code = ("import sys, layerlapse.store.run, layerlapse.report.page, layerlapse.render.figures, "
            "layerlapse.export.tensorboard, layerlapse.maps.project, layerlapse.maps.timeline, "
            "layerlapse.maps.faithfulness, layerlapse.capture.session, layerlapse.cli; "
            "loaded = [m for m in ('torch', 'lightning', 'keras', 'transformers') if m in sys.modules]; "
            "print(loaded); sys.exit(bool(loaded))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
