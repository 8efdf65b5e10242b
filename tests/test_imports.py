"""The import rules of ../shared/DESIGN.md, checked with import-linter on the package as it is, and shown to catch a
break: the stages stand on each other in one order (so no import circle comes back), torch only where models run
(capture, the reference loop, the integrations), each framework only in its own callback module; and no two modules
import each other round a circle, counting imports inside functions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]

pytest.importorskip("importlinter", reason="import-linter is a development extra: pip install -e '.[dev]'")


def lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath), "HOME": str(cwd),
                               "COLUMNS": "400"})  # one line per contract


def broken_copy(folder: Path, module: str, line: str) -> None:
    """The package and its import rules copied into `folder`, with `line` added at the end of `module`."""
    shutil.copytree(ROOT / "src" / "layerlapse", folder / "src" / "layerlapse",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    broken = folder / "src" / "layerlapse" / module
    broken.write_text(broken.read_text() + f"\n{line}  # a rule broken on purpose\n")


def import_circles(src: Path) -> list[str]:
    """Each import a → b among layerlapse's modules for which b also leads back to a, as "a -> b", in the package
    under `src`. grimp (import-linter's graph) counts imports inside functions too; `layerlapse/__init__.py` hands
    its names on lazily and is no step of a circle, as in ../shared/tools/import_circles.py."""
    code = textwrap.dedent("""
        import grimp
        graph = grimp.build_graph("layerlapse", cache_dir=None)
        for a in sorted(graph.modules):
            for b in sorted(graph.find_modules_directly_imported_by(a)):
                if "layerlapse" not in (a, b) and graph.chain_exists(importer=b, imported=a):
                    print(f"{a} -> {b}")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(src)})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_package_keeps_every_import_rule() -> None:
    result = lint(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    # the recipe calling the built-in loop again: recorder -> recipe -> train -> recorder
    ("recipe/steps.py", "from ..reference import train", "stand on each other in one order"),
    # the store reaching up into a stage that stands on it
    ("store/run.py", "from ..maps import project", "stand on each other in one order"),
    # capture knowing the reference net (its border padding belongs to the net)
    ("capture/recorder.py", "from ..reference.models import SameConv2d", "stand on each other in one order"),
    # the interface module handing back an implementation that lives in its user
    ("maps/backend.py", "from .project import EpochMapper", "Inside maps"),
    ("store/run.py", "import torch", "without torch"),
    ("measures/layers.py", "import torch", "without torch"),
    ("capture/recorder.py", "import lightning", "only inside their own integration module"),
    ("report/page.py", "import keras", "only inside their own integration module"),
    ("integrations/keras.py", "from . import lightning", "Each integration imports only its own framework"),
])
def test_a_broken_rule_fails_the_check(tmp_path: Path, module: str, line: str, contract: str) -> None:
    broken_copy(tmp_path, module, line)
    result = lint(tmp_path, tmp_path / "src")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(rf"{re.escape(contract)}[^\n]* BROKEN", result.stdout), result.stdout


def test_reading_and_drawing_a_run_loads_no_framework() -> None:
    """At run time too: the modules `layerlapse render` and `report` use import none of torch or the frameworks."""
    code = ("import sys, layerlapse.store.run, layerlapse.report.page, layerlapse.render.figures, "
            "layerlapse.export.tensorboard, layerlapse.maps.project, layerlapse.maps.timeline, "
            "layerlapse.maps.faithfulness, layerlapse.capture.session, layerlapse.cli; "
            "loaded = [m for m in ('torch', 'lightning', 'keras', 'transformers') if m in sys.modules]; "
            "print(loaded); sys.exit(bool(loaded))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_imports_round_a_circle() -> None:
    assert import_circles(ROOT / "src") == []


@pytest.mark.parametrize(("module", "line", "circle"), [
    ("maps/backend.py", "from .project import EpochMapper", "layerlapse.maps.backend -> layerlapse.maps.project"),
    ("capture/session.py", "def _later():\n    from .recorder import Recorder",
     "layerlapse.capture.session -> layerlapse.capture.recorder"),
])
def test_a_circle_put_back_is_found(tmp_path: Path, module: str, line: str, circle: str) -> None:
    """The check sees a circle within one stage (where the layers contract cannot), an import inside a function too."""
    broken_copy(tmp_path, module, line)
    assert circle in import_circles(tmp_path / "src")


def test_the_public_face_lists_every_public_name_and_each_resolves() -> None:
    import layerlapse

    assert set(layerlapse.__all__) <= set(dir(layerlapse))
    assert not [name for name in dir(layerlapse) if not name.startswith("__") and name not in layerlapse.__all__]
    for name in layerlapse.__all__:
        assert getattr(layerlapse, name) is not None


def test_the_package_says_it_is_typed() -> None:
    from importlib import resources

    assert resources.files("layerlapse").joinpath("py.typed").is_file()
    # shipped in the wheel (tomllib would need Python 3.11; the package runs on 3.10)
    assert 'layerlapse = ["py.typed"]' in (Path(__file__).parents[1] / "pyproject.toml").read_text()


def test_every_warning_is_a_layerlapse_warning_from_errors() -> None:
    """A user filters layerlapse's warnings by one class (`errors.LayerlapseWarning`): every `warnings.warn` in the
    package names a category, and each category is a class of `errors`."""
    from layerlapse import errors

    calls = 0
    for path in (ROOT / "src" / "layerlapse").rglob("*.py"):
        text = path.read_text()
        for call in re.finditer(r"warnings\.warn\((.*?)stacklevel", text, flags=re.S):
            calls += 1
            names = set(re.findall(r"\b([A-Z]\w*Warning)\b", call.group(1)))
            assert names, f"{path.name}: a warning without a category: {call.group(0)[:80]}"
            for name in names:
                assert issubclass(getattr(errors, name), errors.LayerlapseWarning), (path.name, name)
        for defined in re.findall(r"^class (\w+Warning)\(", text, flags=re.M):
            assert path.name == "errors.py", f"{path.name} defines {defined}: warnings live in layerlapse.errors"
    assert calls >= 5
