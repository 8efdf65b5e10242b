"""What the notebook tests share: the small run's sizes; `standalone_page`, a widget's view on a plain page without
Jupyter (its ES module with a stand-in for anywidget's model: get, set, on, off, save_changes, holding the widget's
synced state, its buffers as DataViews as anywidget gives them; the page records what the view saves back in
`window.saved`); the browser as the report's tests drive it; a private Jupyter (its folders and a kernel spec in a
temporary folder) and notebooks executed by nbclient."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

EPOCHS, PROBE, TEST_PROBE = 2, 200, 60  # the small run's (conftest.py)

STAND_IN = """
const state = %(state)s;
function bytes(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let k = 0; k < binary.length; k++) out[k] = binary.charCodeAt(k);
  return new DataView(out.buffer);
}
for (const name of ["arrays", "images"]) {
  for (const key of Object.keys(state[name])) state[name][key] = bytes(state[name][key]);
}
const listeners = {};
window.saved = [];
window.model = {
  get: (name) => state[name],
  set: (name, value) => { state[name] = value; },
  on: (name, callback) => { (listeners[name] = listeners[name] || []).push(callback); },
  off: (name, callback) => { listeners[name] = (listeners[name] || []).filter((f) => f !== callback); },
  save_changes: () => { window.saved.push(JSON.parse(JSON.stringify({frame: state.frame, layer: state.layer,
                                                                    selected_points: state.selected_points}))); },
  // the kernel's side: a trait changed there
  change: (name, value) => { state[name] = value; (listeners["change:" + name] || []).forEach((f) => f()); },
};
"""


def widget_state(widget: Any) -> dict:
    state = {name: getattr(widget, name) for name in ("payload", "snapshots", "frame", "layer", "selected_points")}
    for name in ("arrays", "images"):
        state[name] = {key: base64.b64encode(value).decode() for key, value in getattr(widget, name).items()}
    return state


def standalone_page(widget: Any) -> str:
    module = json.dumps(widget._esm)
    return f"""<!doctype html><html><body><div id="host"></div>
<script>{STAND_IN % {"state": json.dumps(widget_state(widget))}}</script>
<script type="module">
const url = URL.createObjectURL(new Blob([{module}], {{type: "text/javascript"}}));
const widget = (await import(url)).default;
window.cleanup = widget.render({{model: window.model, el: document.getElementById("host")}});
</script></body></html>"""


# The browser, as tests/report/test_report_browser.py drives it: Debian's Chromium through Playwright, headless
REQUIRED = os.environ.get("LAYERLAPSE_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("LAYERLAPSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
QUIET = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-extensions"]
SOFTWARE_WEBGL = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
WIDGET = "document.querySelector('.layerlapse-widget').layerlapse"  # the view's hook


def browser_or_skip() -> None:
    """Skip (fail, with LAYERLAPSE_REQUIRE_BROWSER=1) when playwright or chromium is missing."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install playwright; the dev extras have it)"
    if reason is None and not Path(CHROMIUM).is_file():
        reason = f"no chromium at {CHROMIUM} (apt-get install chromium, or set LAYERLAPSE_CHROMIUM)"
    if reason:
        if REQUIRED:
            pytest.fail(f"LAYERLAPSE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def inside(polygon: list[tuple[float, float]], x: float, y: float) -> bool:
    """Whether (x, y) lies inside the polygon (even-odd rule, as the widget's lasso)."""
    found = False
    for (xk, yk), (xj, yj) in zip(polygon, polygon[-1:] + polygon[:-1]):
        if (yk > y) != (yj > y) and x < (xj - xk) * (y - yk) / (yj - yk) + xk:
            found = not found
    return found


def private_jupyter(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Jupyter's and IPython's folders inside `folder`, and a kernel spec there that runs this interpreter with
    this checkout's layerlapse; returns the kernel's name. Nothing outside `folder` is written."""
    for variable, name in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                           ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (folder / name).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(variable, str(folder / name))
    monkeypatch.setenv("JUPYTER_PATH", str(folder / "data"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    spec = folder / "data" / "kernels" / "layerlapse-test"
    spec.mkdir(parents=True, exist_ok=True)
    source = str(Path(__file__).resolve().parents[2] / "src")
    paths = [source, *filter(None, [os.environ.get("PYTHONPATH")])]
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "layerlapse (tests)", "language": "python",
        "env": {"PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}))
    return "layerlapse-test"


def executed(cells: list[str], folder: Path, kernel: str, timeout: int = 240) -> Any:
    """A notebook of these code cells, executed headless by nbclient in `folder`, widget state stored."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    NotebookClient(notebook, kernel_name=kernel, timeout=timeout, store_widget_state=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def widget_states(notebook: Any) -> list[dict]:
    """The stored state of each LapseWidget model in an executed notebook, its buffers decoded back into it."""
    stored = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    found = []
    for model in stored.values():
        state = model["state"]
        if "payload" not in state or "arrays" not in state:
            continue
        for buffer in model.get("buffers", []):
            target = state
            for key in buffer["path"][:-1]:
                target = target[key]
            target[buffer["path"][-1]] = base64.b64decode(buffer["data"])
        found.append(state)
    return found


def open_widget(browser: Any, widget: Any, folder: Path, hash: str = "") -> tuple[Any, list[str]]:
    """The widget alone on a page of its own in `folder`, the network blocked: the page and its console errors."""
    page_file = folder / "widget.html"
    page_file.write_text(standalone_page(widget))
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "blob:", "data:"))
               else route.abort())
    page.goto(page_file.as_uri() + hash)
    page.wait_for_function(f"{WIDGET} && {WIDGET}.ready", timeout=20_000)
    return page, errors
