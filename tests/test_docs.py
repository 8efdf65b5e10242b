"""The documentation: the site builds with `mkdocs build --strict` without the network, its API reference shows every
public name, every page is in its nav, and the README stays a page a newcomer reads, with pictures that exist.
(The examples on the pages and in the README run in tests/test_readme.py.)"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_readme import nav_pages

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CALLBACKS = [f"layerlapse.integrations.{framework}.LayerlapseCallback"
             for framework in ("lightning", "keras", "transformers")]

pytest.importorskip("mkdocs", reason="the docs' tools come with the dev extra: pip install -c constraints.txt '.[dev]'")
pytest.importorskip("material", reason="mkdocs-material comes with the dev extra")
pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] comes with the dev extra")


def public_names() -> list[str]:
    """What `layerlapse/__init__.py` exports: its lazy `_EXPORTS`, read from source as the API reference's Griffe
    extension reads it, or else its `__all__` (less `__version__`)."""
    sys.path.insert(0, str(DOCS))
    try:
        from griffe_lazy_exports import lazy_exports
    finally:
        sys.path.remove(str(DOCS))
    source = (ROOT / "src" / "layerlapse" / "__init__.py").read_text()
    names = lazy_exports(source) or next((ast.literal_eval(node.value) for node in ast.parse(source).body
                                          if isinstance(node, ast.Assign) and any(isinstance(target, ast.Name)
                                          and target.id == "__all__" for target in node.targets)), [])
    assert names, "layerlapse/__init__.py names no public names (_EXPORTS or __all__) for the API reference"
    return [f"layerlapse.{name}" for name in names if name != "__version__"]


def offline() -> list[str]:
    """A prefix that runs a command without a network (a user and network namespace), where the kernel allows one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def test_the_site_builds_strict_and_offline(tmp_path: Path) -> None:
    # no network namespace where the kernel allows one; and a proxy that answers nothing for whatever asks HTTP anyway
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead,
           "https_proxy": dead, "NO_PROXY": "", "no_proxy": ""}
    site = tmp_path / "site"
    started = time.perf_counter()
    result = subprocess.run([*offline(), sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"mkdocs build --strict: {seconds:.1f} s")
    api = (site / "api" / "index.html").read_text()
    missing = [name for name in [*public_names(), *CALLBACKS] if f'id="{name}"' not in api]
    assert not missing, f"the API reference does not show {missing}"
    assert (site / "images" / "mnist_lapse.gif").is_file()


def test_the_api_page_names_every_public_name_by_its_public_path() -> None:
    page = (DOCS / "api.md").read_text()
    shown = re.findall(r"^::: (\S+)$", page, flags=re.MULTILINE)
    assert sorted(shown) == sorted([*public_names(), *CALLBACKS])


def test_every_page_is_in_the_nav() -> None:
    pages = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(nav_pages()) == pages


def test_the_command_line_page_names_every_command() -> None:
    from layerlapse.cli import app

    page = (DOCS / "cli.md").read_text()
    commands = [command.name or command.callback.__name__ for command in app.registered_commands]
    assert commands and all(f"`layerlapse {command}" in page for command in commands), commands


def test_the_readme_is_short_and_its_links_and_pictures_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert any(target.startswith("docs/images/") for target in targets)
    local = [target.split("#")[0] for target in targets if not re.match(r"[a-z]+:", target)]
    assert not [target for target in local if not (ROOT / target).exists()]
