"""What `layerlapse watch` costs and how soon it shows a snapshot.

    python bench/watch_speed.py [--probe 1000] [--snapshots 6] [--runs 2] [--pairs 3] [--epochs 8]

Two measurements, each on real runs recorded by a `Recorder` in a user's own loop (scikit-learn's digits, an MLP) in
a process of its own, as a user runs one, with `layerlapse watch RUN --port 0` (the command, in a process of its
own as a user starts it: at nice 10, with the default poll of 1 s) and a headless Chromium page open on it:

- delay: from the moment a snapshot's map is committed to the run folder (the manifest lists it; this script polls
  the manifest every 10 ms) to the moment the live page holds that snapshot (`layerlapseLive.snapshots()`, polled in
  every animation frame). The run trains one epoch each time this script lets it (a gate file), --epoch-s after
  the page has shown the last one (an epoch's length: the watcher rests between the pages it makes, four times the
  processor time the last took, at least a second, and a snapshot within that rest waits for its end), so each
  delay is measured alone; the stages of the page's loads (fetch, Bokeh's views, the draw) are printed too. Median and largest, over every snapshot of every run.
- overhead: the same loop, ungated, `--epochs` epochs over the digits repeated (about a second an epoch), its
  training time (first epoch to last, as the recording process measures it) with a watcher on the run, against
  without, in alternating pairs; the ratio of each pair, and their median. Watched by an HTTP client that asks what
  the page asks, without drawing (the server's own cost: what a watched run on a remote machine pays), and by a
  Chromium page on the same machine (the browser's drawing too, on the same two cores).

The machine, the CPU and the date are printed first.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHILD = r'''
import sys, time, json, torch
from pathlib import Path
from sklearn.datasets import load_digits
from torch import nn
from layerlapse import Recorder, RunConfig
out, gate, epochs, probe, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
d = load_digits()
x = torch.tensor(d.images / 16, dtype=torch.float32).reshape(-1, 64); y = torch.tensor(d.target)
xs, ys = x.repeat(repeat, 1), y.repeat(repeat)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
rec = Recorder(model, layers=["3"], probe=x[:probe], labels=y[:probe], out=out,
               class_names=[str(k) for k in range(10)], config=RunConfig(map_method="aligned"),
               training={"epochs": epochs, "batch_size": 64, "learning_rate": 1e-3})
rec.start()
started = time.perf_counter()
for epoch in range(1, epochs + 1):
    if gate != "-":
        while not (Path(gate) / str(epoch)).exists():
            time.sleep(0.01)
    losses = []
    for k in range(0, len(xs), 64):
        opt.zero_grad(); loss = nn.functional.cross_entropy(model(xs[k:k + 64]), ys[k:k + 64])
        loss.backward(); opt.step(); losses.append(loss.item())
    with torch.no_grad():
        accuracy = (model(x[probe:]).argmax(1) == y[probe:]).float().mean().item()
    rec.epoch_end(epoch, metrics={"loss": sum(losses) / len(losses), "val_accuracy": accuracy})
trained = time.perf_counter() - started
if gate != "-":
    while not (Path(gate) / "finish").exists():
        time.sleep(0.01)
rec.finish()
print(json.dumps({"trained_s": trained}))
'''


NICE = [10]  # the watcher's --nice (its default)
REPEAT = [8]  # the digits repeated in an overhead epoch (--repeat)
EPOCH_S = [5.0]  # in the delay runs, how long an epoch lasts beyond its own training (--epoch-s)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    flags = Path("/proc/cpuinfo").read_text()
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    import os
    return f"{model}, {os.cpu_count()} cores, {simd}; {datetime.date.today().isoformat()}"


def map_listed(run: Path, snapshot: int) -> bool:
    try:
        files = json.loads((run / "manifest.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return f"maps/3/epoch_{snapshot:03d}.npy" in files


def child(out: Path, gate: str, epochs: int, probe: int, repeat: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), gate, str(epochs), str(probe), str(repeat)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Watcher:
    """`layerlapse watch RUN --port 0`, as a user starts it; its address read from its first line."""

    def __init__(self, run: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "layerlapse", "watch", str(run), "--port", "0",
                                         "--nice", str(NICE[0])],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.process.stdout.readline().strip().rsplit(" at ", 1)[1]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    return page


def delays(browser, folder: Path, probe: int, snapshots: int, stages: list[dict]) -> list[float]:
    out, gate = folder / "run", folder / "gate"
    gate.mkdir(parents=True)
    server = Watcher(out)
    page = open_page(browser, server.url)
    process = child(out, str(gate), snapshots - 1, probe, 1)
    found, loads_before = [], len(stages)
    try:
        for snapshot in range(snapshots):
            if snapshot > 0:  # snapshot 0 is recorded at the start
                (gate / str(snapshot)).touch()
            if snapshot == snapshots - 1:
                (gate / "finish").touch()
            while not map_listed(out, snapshot):
                time.sleep(0.01)
            committed = time.perf_counter()
            page.wait_for_function(f"window.layerlapseLive.snapshots() >= {snapshot + 1}", polling="raf",
                                   timeout=120_000)
            found.append(time.perf_counter() - committed)
            page.wait_for_function(f"window.layerlapseLive.timings.length >= {len(stages) - loads_before + 1}",
                                   timeout=60_000)
            stages.append(page.evaluate("window.layerlapseLive.timings.at(-1)"))
            loading = (stages[-1]["shown"] - stages[-1]["asked"]) / 1000
            print(f"  snapshot {snapshot}: {found[-1]:.2f} s, of which the page's load {loading:.2f} s", flush=True)
            time.sleep(EPOCH_S[0])  # the next epoch trains this long before its snapshot (an epoch's length)
        process.wait(300)
    finally:
        process.kill()
        page.close()
        server.stop()
    return found


class HttpClient:
    """What the live page asks of the server, without drawing: the state every 250 ms, each new page fetched whole."""

    def __init__(self, url: str) -> None:
        self.url, self.pages, self.stopped = url, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        import urllib.request

        shown = None
        while not self.stopped.wait(0.25):
            try:
                with urllib.request.urlopen(self.url + "api/state", timeout=30) as response:
                    page = json.loads(response.read())["page"]
                if page is not None and page != shown:
                    with urllib.request.urlopen(self.url + "api/page", timeout=60) as response:
                        shown = json.loads(response.read())["version"]
                    self.pages += 1
            except OSError:
                pass

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()


def overhead(browser, folder: Path, probe: int, epochs: int, watched: bool, client: str) -> float:
    out = folder / ("watched" if watched else "alone")
    server = page = None
    if watched:
        server = Watcher(out)
        page = open_page(browser, server.url) if client == "chromium" else HttpClient(server.url)
    process = child(out, "-", epochs, probe, REPEAT[0])
    try:
        stdout, stderr = process.communicate(timeout=900)
        if process.returncode != 0:
            raise RuntimeError(stderr[-2000:])
        return json.loads(stdout.strip().splitlines()[-1])["trained_s"]
    finally:
        if page is not None:
            page.close()
        if server is not None:
            server.stop()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=6)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--skip-delay", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--clients", default="http,chromium",
                        help="who watches in the overhead pairs: http (the server's work alone: a client that "
                             "fetches what the page fetches, without drawing), chromium (and a browser drawing it)")
    parser.add_argument("--epoch-s", type=float, default=5.0,
                        help="delay runs: the wait before each next epoch, so snapshots come an epoch apart (the "
                             "watcher makes pages with a rest between them: a snapshot within it waits for it)")
    parser.add_argument("--nice", type=int, default=10, help="the watcher's --nice")
    parser.add_argument("--repeat", type=int, default=8, help="the digits repeated in an epoch (its length)")
    args = parser.parse_args()
    REPEAT[0] = args.repeat
    NICE[0] = args.nice
    EPOCH_S[0] = args.epoch_s
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    print(f"machine: {machine()}; Chromium {chromium} (software WebGL)")
    with sync_playwright() as driver, tempfile.TemporaryDirectory() as temp:
        browser = driver.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        if not args.skip_delay:
            found, stages = [], []
            for k in range(args.runs):
                run_delays = delays(browser, Path(temp) / f"delay{k}", args.probe, args.snapshots, stages)
                print(f"run {k + 1}: delays {', '.join(f'{d:.2f}' for d in run_delays)} s", flush=True)
                found += run_delays
            print(f"delay, commit to page ({args.probe:,} probe points, the default poll): median "
                  f"{statistics.median(found):.2f} s, largest {max(found):.2f} s, over {len(found)} snapshots")
            for name, start, end in (("fetch (the page made, sent, parsed)", "asked", "fetched"),
                                     ("Bokeh's views built", "fetched", "embedded"), ("the page drawn and swapped in",
                                                                                       "embedded", "shown")):
                spans = [(stage[end] - stage[start]) / 1000 for stage in stages if stage]
                print(f"  {name}: median {statistics.median(spans):.2f} s")
        for client in [] if args.skip_overhead else args.clients.split(","):
            ratios = []
            for k in range(args.pairs):
                order = [False, True] if k % 2 == 0 else [True, False]
                times = {watched: overhead(browser, Path(temp), args.probe, args.epochs, watched, client)
                         for watched in order}
                ratios.append(times[True] / times[False])
                print(f"{client} pair {k + 1}: training {times[False]:.1f} s alone, {times[True]:.1f} s watched "
                      f"(ratio {ratios[-1]:.3f})", flush=True)
            print(f"overhead with a {client} client: watched / alone, median of {len(ratios)} pairs: "
                  f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}–{max(ratios):.3f})", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
