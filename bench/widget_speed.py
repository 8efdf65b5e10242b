"""The notebook widget's speed in a real JupyterLab in headless Chromium: a `layerlapse.show(run)` cell's load, and
a slider step, for each way the arrays travel (raw bytes, or the report's gzip of frame deltas).

    python bench/widget_speed.py RUN [RUN ...] [--loads 3] [--moves 15] [--settle-ms 300]
                                 [--graphics chromium|swiftshader] [--encodings raw gzip]

JupyterLab is started on 127.0.0.1 with its folders in a temporary one (a kernel spec there runs this interpreter
with this checkout's layerlapse); Chromium opens the notebook with every request but loopback blocked. What is
measured, each a median with the 95th percentile where there are enough:

- load: from the command that runs the cell (`performance.now()` in the page) to the widget's first draw shown
  (its hook's `ready`: the animation frame after the one that painted it). Its stages: the kernel packing the run
  (`show`, timed in Python and printed by the cell), the model's state reaching the page and the view starting
  (`timings.start`), the buffers decoded (`decoded`), and the draw. "First show" is the run's first `show` in the
  kernel (layerlapse imported by the cell before); the cell then runs --loads times more in the same page and
  kernel, which reuse the thumbnail atlases the first packed (state.py's ATLASES: their PNG encoding is most of a
  first show at 60,000 images).
- slider step: the slider's `input` event (what dragging it does) after --settle-ms idle, to the next animation
  frame (the widget paints in the frame it requests, before that frame's later callbacks).

bench/report_runs.py makes run folders of the sizes issue 15 names; bench/report_speed.py gives the offline
report's numbers on the same run folders, the goal here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("LAYERLAPSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
QUIET = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-extensions"]
GRAPHICS = {"chromium": [], "swiftshader": ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]}
SRC = Path(__file__).resolve().parents[1] / "src"
WIDGET = "document.querySelector('.layerlapse-widget:not([data-old])')"

STEP = """async ([moves, settle]) => {
    const root = document.querySelector('.layerlapse-widget:not([data-old])');
    const slider = root.querySelector('input[type=range]');
    const frames = Number(slider.max) + 1;
    const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
    const times = [];
    for (let k = 0; k < moves; k++) {
        await new Promise((resolve) => setTimeout(resolve, settle));
        await nextFrame();
        slider.value = String((Number(slider.value) + 1) % frames);
        const started = performance.now();
        slider.dispatchEvent(new Event('input'));
        const painted = await nextFrame();
        if (root.layerlapse.state().paintedFrame !== Number(slider.value)) throw new Error('not painted');
        times.push(painted - started);
    }
    return times;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_jupyterlab(folder: Path, root: Path) -> tuple[subprocess.Popen, str, str]:
    env = dict(os.environ)
    for variable, name in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                           ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (folder / name).mkdir(parents=True, exist_ok=True)
        env[variable] = str(folder / name)
    env["JUPYTER_PATH"] = str(folder / "data")
    spec = folder / "data" / "kernels" / "layerlapse-bench"
    spec.mkdir(parents=True)
    paths = [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "layerlapse (bench)", "language": "python", "env": {"PYTHONPATH": os.pathsep.join(paths)}}))
    token, port = secrets.token_hex(16), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False", "--ServerApp.port_retries=0",
         "--ServerApp.allow_root=True"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return server, url, token
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("JupyterLab did not start")


def write_notebook(root: Path, name: str, run: Path, encoding: str) -> None:
    import nbformat

    cell = (f"t0 = time.perf_counter()\nw = layerlapse.show({str(run)!r}, encoding={encoding!r})\n"
            "print(f'PACKED {time.perf_counter() - t0:.3f}')\nw")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import time, layerlapse, layerlapse.notebook.widget"),
        nbformat.v4.new_code_cell(cell)],
        metadata={"kernelspec": {"name": "layerlapse-bench", "display_name": "layerlapse (bench)",
                                 "language": "python"}})
    nbformat.write(notebook, root / name)


def run_cell(page: Any, index: int) -> float:
    """Run cell `index`; returns performance.now() in the page when it was asked to run."""
    return page.evaluate(f"""() => {{
        document.querySelectorAll('.layerlapse-widget').forEach((el) => {{ el.dataset.old = '1'; }});
        window.jupyterapp.shell.currentWidget.content.activeCellIndex = {index};
        const asked = performance.now();
        window.jupyterapp.commands.execute('notebook:run-cell');
        return asked;
    }}""")


def packed_seconds(page: Any) -> float:
    """What the cell printed: the seconds `show` took in the kernel (printed before the widget is displayed)."""
    text = page.evaluate("Array.from(document.querySelectorAll(\"[data-mime-type='application/vnd.jupyter.stdout']\"))"
                         ".map((el) => el.textContent).filter((t) => t.includes('PACKED')).pop() || ''")
    return float(re.search(r"PACKED ([\d.]+)", text).group(1))


def measure(page: Any, args: argparse.Namespace) -> tuple[list[dict], list[float]]:
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                           "window.jupyterapp.shell.currentWidget.sessionContext && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel", timeout=120_000)
    run_cell(page, 0)
    page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=120_000)
    loads = []
    for k in range(args.loads + 1):
        asked = run_cell(page, 1)
        page.wait_for_function(f"{WIDGET} && {WIDGET}.layerlapse.ready", timeout=300_000, polling=5)
        timings = page.evaluate(f"{WIDGET}.layerlapse.timings")
        loads.append({"load": timings["ready"] - asked, "packed": packed_seconds(page) * 1000,
                      "to_view": timings["start"] - asked, "decode": timings["decoded"] - timings["start"],
                      "draw": timings["ready"] - timings["decoded"]})
    page.evaluate(f"{WIDGET}.scrollIntoView()")
    if os.environ.get("WIDGET_BENCH_SHOT"):
        page.screenshot(path=os.environ["WIDGET_BENCH_SHOT"])
    steps = page.evaluate(STEP, [args.moves, args.settle_ms])
    return loads, steps


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders with maps")
    parser.add_argument("--loads", type=int, default=3, help="cell runs to time (after one not counted)")
    parser.add_argument("--moves", type=int, default=15, help="slider steps to time")
    parser.add_argument("--settle-ms", type=int, default=300, help="idle time before each slider step")
    parser.add_argument("--graphics", choices=tuple(GRAPHICS), default="chromium",
                        help="Chromium's own graphics (no flags), or the test suite's SwiftShader flags")
    parser.add_argument("--encodings", nargs="+", choices=("raw", "gzip"), default=["raw", "gzip"])
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, graphics {args.graphics}")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        root = folder / "root"
        root.mkdir()
        server, url, token = start_jupyterlab(folder / "jupyter", root)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=[*QUIET, *GRAPHICS[args.graphics]])
                print(f"Chromium {browser.version}")
                print("| run | arrays | first show: load (kernel packs) | shown again: load (p95) | kernel packs | "
                      "to the view | decode | draw | slider step (p95) |")
                print("|---|---|---|---|---|---|---|---|---|")
                for run in args.runs:
                    for encoding in args.encodings:
                        name = f"{run.name}-{encoding}.ipynb"
                        write_notebook(root, name, run.resolve(), encoding)
                        page = browser.new_page(viewport={"width": 1400, "height": 1000})
                        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                            ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else route.abort())
                        # a workspace of its own: JupyterLab would reopen the notebooks measured before
                        page.goto(f"{url}/lab/workspaces/{run.name}-{encoding}/tree/{name}?token={token}")
                        loads, steps = measure(page, args)
                        page.close()
                        first, loads = loads[0], loads[1:]
                        median = {key: statistics.median(load[key] for load in loads) for key in loads[0]}
                        print(f"| {run.name} | {encoding} | {first['load']:,.0f} ms ({first['packed']:,.0f} ms) | "
                              f"{median['load']:,.0f} ms "
                              f"({p95([load['load'] for load in loads]):,.0f}) | {median['packed']:,.0f} ms | "
                              f"{median['to_view']:,.0f} ms | {median['decode']:,.0f} ms | {median['draw']:,.0f} ms | "
                              f"{statistics.median(steps):.0f} ms ({p95(steps):.0f}) |", flush=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
