"""Size and speed of a run's report.html: the file, its load in headless Chromium, and a slider move.

    python bench/report_speed.py RUN_DIR [--loads 5] [--moves 15] [--settle-ms 500] [--budget 25]
                                 [--graphics swiftshader|chromium|no-webgl]

The report is written to a temporary file (the run folder is not touched). What is measured, each a median:

- load: navigation start to the map drawn, i.e. `performance.now()` in the animation frame after the one that
  painted the report's first draw (`layerlapse.timings.ready`, when `window.layerlapseReady` turns true); each load
  in a fresh browser context. The stages before it are printed too.
- slider redraw: the epoch slider's Bokeh model gets a new value (what dragging it does) after the page has been
  idle for --settle-ms; "redraw" is the time until the next animation frame after that (the page paints the map's
  point layer in an animation frame, so its paint is in it), "presented" until the frame after. As rAF timing does
  not wait for the GPU, a second series reads a pixel of the map's point layer back after the paint instead: that
  waits until the (here software) GPU has drawn it. A third series moves the slider back to back. Each with its
  median and 95th percentile.
- a continuous drag: the slider moves a snapshot in every animation frame for --drag-frames frames; the frames a
  second the page keeps, paced by the browser, and again with every frame's map read back.

Chromium's graphics (--graphics; the header prints what chrome://gpu says of its compositing and WebGL):
- swiftshader (the default, the test suite's flags `--use-angle=swiftshader --enable-unsafe-swiftshader`): Chromium
  takes SwiftShader for a GPU and does everything through it, WebGL, rasterising and compositing the page;
- chromium: no graphics flags, Chromium's own choice; on a machine without a GPU it composites the page in software
  and gives WebGL through SwiftShader ("Software only" for both in chrome://gpu), as a browser in a VM does;
- no-webgl (or --no-webgl): WebGL off, the point layer's 2-D canvas fallback.
No background networking either way. Every request other than the report file itself is blocked and counted.
Without a GPU, WebGL is emulated on the CPU, so the WebGL numbers here are a worst case.

Run folders of the sizes issue 15 names are made by bench/report_runs.py.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from layerlapse.report.page import write_report
from layerlapse.store.run import RunFolder, load_run

CHROMIUM = os.environ.get("LAYERLAPSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
QUIET = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-extensions"]
SOFTWARE_WEBGL = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
NO_WEBGL = ["--disable-webgl", "--disable-3d-apis"]
GRAPHICS = {"swiftshader": SOFTWARE_WEBGL, "chromium": [], "no-webgl": NO_WEBGL}

# chrome://gpu's text (its feature status sits in a shadow root): how Chromium composites the page, gives WebGL
GPU_PAGE_TEXT = """() => {
    const view = document.querySelector('info-view');
    return (view && view.shadowRoot ? view.shadowRoot.textContent : '') + document.body.innerText;
}"""

# reading a pixel back waits until the (here software) GPU has drawn the map's points
READ_PIXEL = """const readPixel = (canvas) => {
    const gl = canvas.getContext('webgl');
    if (gl) gl.readPixels(canvas.width >> 1, canvas.height >> 1, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
    else canvas.getContext('2d').getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1);
};"""

MOVE_SLIDER = """async ([moves, settle, readBack]) => {
    """ + READ_PIXEL + """
    const slider = Bokeh.documents[0].get_model_by_name('layerlapse-epoch');
    const mapCanvas = window.layerlapse.mapCanvas();
    const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
    const times = [];
    for (let k = 0; k < moves; k++) {
        const target = (slider.value + 1 + (k % Math.max(slider.end, 1))) % (slider.end + 1);
        if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));
        await nextFrame();
        const started = performance.now();
        slider.value = target;
        const redrawn = await nextFrame();
        if (readBack) readPixel(mapCanvas);
        const done = readBack ? performance.now() : await nextFrame();
        if (window.layerlapse.state().epoch !== target) throw new Error(`slider at ${target}, map elsewhere`);
        times.push([redrawn - started, done - started]);
    }
    return times;
}"""

# A continuous drag: the slider moves to the next snapshot in every animation frame, as a hand dragging it across
# many snapshots does; the frames a second the page keeps up (each frame's map read back, if asked).
DRAG_SLIDER = """async ([frames, readBack]) => {
    """ + READ_PIXEL + """
    const slider = Bokeh.documents[0].get_model_by_name('layerlapse-epoch');
    const mapCanvas = window.layerlapse.mapCanvas();
    const stamps = [];
    await new Promise((resolve) => {
        const step = (now) => {
            stamps.push(now);
            if (stamps.length > frames) { resolve(); return; }
            slider.value = (slider.value + 1) % (slider.end + 1);
            if (readBack) readPixel(mapCanvas);
            requestAnimationFrame(step);
        };
        requestAnimationFrame(step);
    });
    const intervals = stamps.slice(1).map((t, k) => t - stamps[k]);
    return {fps: 1000 * frames / (stamps[stamps.length - 1] - stamps[0]), intervals};
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder with maps")
    parser.add_argument("--loads", type=int, default=5, help="page loads to time")
    parser.add_argument("--moves", type=int, default=15, help="slider moves to time")
    parser.add_argument("--settle-ms", type=int, default=500, help="idle time before each single slider move")
    parser.add_argument("--budget", type=float, default=100.0, help="size budget of the report, MB")
    parser.add_argument("--graphics", choices=tuple(GRAPHICS), default="swiftshader",
                        help="Chromium's graphics flags (see above)")
    parser.add_argument("--no-webgl", action="store_const", dest="graphics", const="no-webgl",
                        help="the same as --graphics no-webgl")
    parser.add_argument("--drag-frames", type=int, default=120, help="animation frames of the continuous drag")
    parser.add_argument("--renderer", choices=("auto", "webgl"), default="auto",
                        help="webgl: the page's address asks for WebGL even where it is software")
    args = parser.parse_args()
    run = load_run(args.run)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.html"
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            write_report(run, path, size_budget_mb=args.budget)
        written_s = time.perf_counter() - started
        loads, moves, version = measure(path, args)
        report(run, path.stat().st_size, written_s, [str(w.message) for w in caught], loads, moves, version, args)


def measure(path: Path, args: argparse.Namespace) -> tuple[list[dict], dict[str, list[list[float]]], str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[*QUIET, *GRAPHICS[args.graphics]])
        args.gpu_status = gpu_status(browser)
        loads, moves = [], []
        for attempt in range(args.loads):
            context = browser.new_context(viewport={"width": 1200, "height": 1000})
            page = context.new_page()
            blocked: list[str] = []

            def only_the_report(route: Any, blocked: list[str] = blocked) -> None:
                if route.request.url == path.as_uri():
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_report)
            page.goto(path.as_uri() + ("#renderer=webgl" if args.renderer == "webgl" else ""))
            page.wait_for_function("window.layerlapseReady === true", timeout=60_000)
            timings = page.evaluate("window.layerlapse.timings")
            timings.update(webgl=page.evaluate("window.layerlapse.state().webgl"), blocked=len(blocked),
                           renderer=page.evaluate("window.layerlapse.state().renderer"),
                           points=page.evaluate("window.layerlapse.state().total"))
            loads.append(timings)
            if attempt == 0:
                kinds = {"single": (args.settle_ms, False), "read back": (args.settle_ms, True),
                         "dragged": (0, False)}
                moves = {kind: page.evaluate(MOVE_SLIDER, [args.moves, settle, read_back])
                         for kind, (settle, read_back) in kinds.items()}
                moves["drag"] = [page.evaluate(DRAG_SLIDER, [args.drag_frames, read_back])
                                 for read_back in (False, True)]
            context.close()
        version = browser.version
        browser.close()
    return loads, moves, version


def gpu_status(browser: Any) -> dict[str, str]:
    """What chrome://gpu says of this browser's compositing and WebGL ("Software only...", "Hardware accelerated")."""
    page = browser.new_page()
    page.goto("chrome://gpu")
    page.wait_for_timeout(1000)
    text = page.evaluate(GPU_PAGE_TEXT)
    page.close()
    found = {feature: re.search(rf"{feature}:\s*([A-Za-z ,.]+?)\s*(?:\*|$)", text)
             for feature in ("Compositing", "WebGL")}
    return {feature: match[1] if match else "?" for feature, match in found.items()}


def report(run: RunFolder, size: int, written_s: float, warned: list[str], loads: list[dict], moves: dict[str, list],
           version: str, args: argparse.Namespace) -> None:
    def median(key: str) -> float:
        return statistics.median(load[key] for load in loads)

    status = args.gpu_status
    backend = (f"--graphics {args.graphics} (chrome://gpu: compositing {status['Compositing']}; WebGL "
               f"{status['WebGL']}), points drawn by: {loads[0]['renderer']}")
    print(f"# {datetime.date.today()} · {platform.node()} · {platform.processor() or platform.machine()} · "
          f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}) · headless Chromium {version}, "
          f"{backend} · {args.loads} loads, {args.moves} slider moves of each kind")
    print(f"\nrun {args.run}: {loads[0]['points']:,} probe points shown · {run.epochs_complete + 1} frames · "
          f"layers {', '.join(run.layers)} · report {size / 1e6:.2f} MB (budget {args.budget:g} MB), "
          f"written in {written_s:.1f} s · requests blocked: {sum(load['blocked'] for load in loads)}")
    for message in warned:
        print(f"warning: {message}")
    print("\n| measure | median ms | 95th percentile ms | runs (ms) |")
    print("|---|---|---|---|")
    stages = [("Bokeh document built (the page's script starts)", "start"), ("payload decoded", "decoded"),
              ("first draw handed to the point layer", "drawn"), ("**load: map drawn (ready)**", "ready")]
    for name, key in stages:
        values = [load[key] for load in loads]
        print(f"| {name} | {median(key):.0f} | {percentile(values, 95):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    rows = [("**slider redraw**: next animation frame", "single", 0),
            ("slider move presented: the frame after", "single", 1),
            ("slider move drawn: map pixels read back", "read back", 1),
            ("slider dragged (moves back to back): next frame", "dragged", 0),
            ("slider dragged: the frame after", "dragged", 1)]
    for name, kind, column in rows:
        values = [move[column] for move in moves[kind]]
        print(f"| {name} | {statistics.median(values):.0f} | {percentile(values, 95):.0f} | "
              f"{', '.join(f'{value:.0f}' for value in values)} |")
    for drag, how in zip(moves["drag"], ("frames as the page paces them", "each frame's map read back")):
        print(f"\ncontinuous drag, a snapshot per animation frame ({how}): {drag['fps']:.1f} frames a second; "
              f"frame interval median {statistics.median(drag['intervals']):.0f} ms, 95th percentile "
              f"{percentile(drag['intervals'], 95):.0f} ms")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank (of 15 values, the 95th percentile is the largest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


if __name__ == "__main__":
    main()
