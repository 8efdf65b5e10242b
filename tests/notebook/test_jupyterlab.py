"""A real JupyterLab, started by the test on loopback with its folders in a temporary one, opened in Chromium: the
notebook's `layerlapse.show(run)` cell draws the widget's points (painted pixels of its canvas), a lasso dragged
with the mouse selects the points inside it, and the next cell reads them back in the kernel as `w.selected`.

Skipped with the reason when playwright, chromium or JupyterLab is missing (a failure with
LAYERLAPSE_REQUIRE_BROWSER=1, as the report's browser tests)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="the notebook extra: pip install 'layerlapse[notebook]'")
pytest.importorskip("jupyterlab", reason="JupyterLab comes with the dev extra")

from nb_helpers import (CHROMIUM, PROBE, QUIET, SOFTWARE_WEBGL, WIDGET, browser_or_skip, inside,  # noqa: E402
                        private_jupyter)

START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_run: Path) -> Iterator[dict]:
    """JupyterLab on 127.0.0.1 serving a folder with the test's notebook; its URL and token."""
    browser_or_skip()
    kernel = private_jupyter(tmp_path / "jupyter", monkeypatch)
    root = tmp_path / "root"
    root.mkdir()
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import layerlapse\nw = layerlapse.show({str(small_run)!r})\nw"),
        nbformat.v4.new_code_cell("print('SELECTED', json.dumps(w.selected.tolist()))"),
    ], metadata={"kernelspec": {"name": kernel, "display_name": "layerlapse (tests)", "language": "python"}})
    notebook.cells[0].source = "import json\n" + notebook.cells[0].source
    nbformat.write(notebook, root / "lapse.ipynb")
    token, port = secrets.token_hex(16), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False", "--ServerApp.port_retries=0",
         "--ServerApp.allow_root=True"],
        cwd=root, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start: {server.stdout.read()[-3000:]}")
            time.sleep(0.3)
        yield {"url": url, "token": token}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def page(jupyterlab: dict) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[*QUIET, *SOFTWARE_WEBGL])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
                       else route.abort())
            page.goto(f"{jupyterlab['url']}/lab/tree/lapse.ipynb?token={jupyterlab['token']}")
            yield page
        finally:
            browser.close()


def run_cell(page: Any, index: int) -> None:
    page.evaluate(f"window.jupyterapp.shell.currentWidget.content.activeCellIndex = {index}")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")


def test_jupyterlab_draws_the_widget_and_a_lasso_comes_back_to_the_kernel(page: Any) -> None:
    # JupyterLab's app (exposed by --LabApp.expose_app_in_browser): run every cell once the kernel is there
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000)
    page.wait_for_function("window.jupyterapp.shell.currentWidget && "
                           "window.jupyterapp.shell.currentWidget.sessionContext && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel", timeout=60_000)
    run_cell(page, 0)  # the widget
    page.wait_for_function(f"document.querySelector('.layerlapse-widget') && {WIDGET}.ready", timeout=60_000)
    page.locator(".layerlapse-widget").scroll_into_view_if_needed()
    assert page.evaluate(f"{WIDGET}.state().total") == PROBE
    assert page.evaluate(f"{WIDGET}.paintedPixels()") > 500
    page.locator(".layerlapse-tool").select_option("lasso")
    box = page.evaluate(f"{WIDGET}.mapBox()")
    left, top, width, height = box["left"], box["top"], box["width"], box["height"]
    lasso = [(left + width * 0.15, top + height * 0.1), (left + width * 0.85, top + height * 0.15),
             (left + width * 0.7, top + height * 0.85), (left + width * 0.1, top + height * 0.7)]
    page.mouse.move(*lasso[0])
    page.mouse.down()
    for corner in [*lasso[1:], lasso[0]]:
        page.mouse.move(*corner, steps=8)
    page.mouse.up()
    chosen = page.evaluate(f"{WIDGET}.state().selected")
    places = page.evaluate(f"Array.from({{length: {PROBE}}}, (_, i) => {WIDGET}.clientPosition(i))")
    expected = {i for i, xy in enumerate(places) if xy and inside(lasso, xy["x"], xy["y"])}
    assert chosen and len(set(chosen) ^ expected) <= 2, (chosen, sorted(expected))
    # the second cell, in the kernel: the selection as probe ids (the page's points are the probe's rows here)
    run_cell(page, 1)
    printed = page.locator("[data-mime-type='application/vnd.jupyter.stdout']", has_text="SELECTED [")
    printed.wait_for(timeout=30_000)
    selected = json.loads(printed.inner_text().split("SELECTED", 1)[1].strip())
    assert selected == sorted(chosen)
