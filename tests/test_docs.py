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


# ---- every public name documented with its parameters ----------------------------------------------------------------
# Not yet: names whose docstrings are being written in other branches (issue 27, point 5), held to the rule once
# that work is merged; empty these sets then. (Recorder and the errors pass already, so they are held now.)
NOT_YET_DOCUMENTED: set[str] = set()
NOT_YET_METHODS: set[str] = set()


def documented_api() -> dict:
    """Each public name's Griffe object, as the API reference reads it: from source, through the lazy exports."""
    griffe = pytest.importorskip("griffe", reason="Griffe comes with mkdocstrings[python], in the dev extra")
    sys.path.insert(0, str(DOCS))
    try:
        from griffe_lazy_exports import LazyExports
    finally:
        sys.path.remove(str(DOCS))
    package = griffe.load("layerlapse", search_paths=[str(ROOT / "src")],
                          extensions=griffe.load_extensions(LazyExports))
    return {name.removeprefix("layerlapse."): package[name.removeprefix("layerlapse.")].final_target
            for name in public_names()}


def parameter_gaps(obj) -> str | None:
    """What the numpy-style `Parameters` section of a function's or class's docstring lacks against its signature
    (self, *args and **kwargs aside), or names that the signature does not have; None when they agree."""
    import logging

    wanted = [parameter.name for parameter in obj.parameters if parameter.name not in ("self", "cls")
              and parameter.kind.value not in ("variadic positional", "variadic keyword")]
    if obj.docstring is None:
        return "no docstring" if wanted or obj.is_class else None
    logging.getLogger("griffe").disabled = True  # its own notes on a docstring; what matters is said below
    try:
        sections = obj.docstring.parse("numpy")
    finally:
        logging.getLogger("griffe").disabled = False
    listed = [parameter.name for section in sections if section.kind.value == "parameters"
              for parameter in section.value]
    missing, unknown = [name for name in wanted if name not in listed], [name for name in listed if name not in wanted]
    if not missing and not unknown:
        return None
    return (f"Parameters lacks {missing}" if missing else "") + (f"; lists {unknown}, not in the signature"
                                                                  if unknown else "")


def test_every_public_function_and_class_documents_each_parameter() -> None:
    api = documented_api()
    gaps = {name: gap for name, obj in api.items() if obj.is_function or obj.is_class
            if name not in NOT_YET_DOCUMENTED and (gap := parameter_gaps(obj))}
    assert not gaps, gaps


def test_the_public_methods_of_public_classes_document_each_parameter() -> None:
    api = documented_api()
    gaps = {f"{name}.{method}": gap for name, obj in api.items() if obj.is_class and name not in NOT_YET_METHODS
            for method, member in obj.members.items()
            if not method.startswith("_") and not member.is_alias and member.is_function
            if (gap := parameter_gaps(member))}
    assert not gaps, gaps


def test_the_examples_in_the_docstrings_run() -> None:
    """Each public name's `Examples`, run as doctests, but those that read or write a run folder ("runs/..."): they
    train the digits run of run_experiment's example first (two minutes), which the end-to-end tests do already."""
    import doctest
    import importlib

    import layerlapse

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    ran = []
    for name in layerlapse.__all__:
        module = importlib.import_module(f"layerlapse.{layerlapse._EXPORTS[name]}") if name in layerlapse._EXPORTS \
            else None
        for test in doctest.DocTestFinder(recurse=True).find(getattr(layerlapse, name), name, module=module) \
                if module else []:
            if test.examples and "runs/" not in test.docstring:
                runner.run(test)
                ran.append(test.name)
    assert ran and runner.summarize(verbose=False).failed == 0, f"a docstring example failed (above) among {ran}"
