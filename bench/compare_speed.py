"""What `layerlapse compare` costs: its time end to end and by stage, its peak memory, and its page's speed.

    python bench/compare_speed.py RUN_A RUN_B [--big RUN_A RUN_B] [--repeats 3] [--loads 5] [--moves 15]
                                  [--skip-page] [--graphics swiftshader|chromium|no-webgl] [--neighbour-items N]

The runs are made by bench/report_runs.py, two a size that differ by the training's seed alone (the same probe,
item for item; the hidden layer 512 wide), e.g.

    LAYERLAPSE_DATA=../shared/data python bench/report_runs.py --points 10000 --snapshots 16 --width 512 \\
        --seed 0 --data-seed 0 --out runs/c10k-s0      # and --seed 1 --out runs/c10k-s1
    LAYERLAPSE_DATA=../shared/data python bench/report_runs.py --points 60000 --snapshots 8 --width 512 \\
        --seed 0 --data-seed 0 --out runs/c60k-s0      # and --seed 1 --out runs/c60k-s1

What is measured (issue 29), each a median of --repeats runs:

- end to end: `layerlapse compare RUN_A RUN_B --out TMP --force --quiet`, the command in a fresh process as a user
  runs it (the interpreter's start, the imports and numba's compiling, from its cache as a user's second run has
  it, included), timed from this script; that process's processor time (user and system: on a busy machine it says
  more than the wall time) and its peak resident memory (its own `ru_maxrss`, by wait4).
- by stage: the steps of `compare` one by one in a fresh process, each timed with `time.perf_counter`: the imports,
  join (`join_runs`), measure (`compute.measure`), what is written beside the page (`measures_summary`,
  measures.json's and items.npz's bytes), figures (`draw_figures`), page (`comparison_content`, the extras and
  `fit_to_budget(render_page)`). Nothing of it is written to disk, so these add up to a little under the whole.
- --big: the same for the bigger pair (peak memory is the point there), against the size of every run's activations
  of one snapshot and of the whole run, items × width × snapshots × runs in float32: what holding everything at
  once would take.
- the page: run A's own report.html (`write_report`) against the comparison's report.html of the first pair, each
  loaded --loads times in headless Chromium and its slider moved --moves times (bench/report_speed.py's `measure`:
  load to the map drawn; slider redraw, the next animation frame, and presented, the frame after); their ratio.

The machine (CPU, cores, AVX-512), the date and every figure are printed as a markdown table at the end. Nothing
else heavy should run meanwhile: the repeats' spread is printed so a disturbed one shows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from maps import cpu_flags, cpu_name  # noqa: E402  (beside this script)

LAYERLAPSE = str(Path(sys.executable).with_name("layerlapse"))

# The steps of comparison.writing.compare, one by one, each timed; nothing written to disk. Prints one JSON line.
STAGES = r'''
import json, resource, sys, time
started = time.perf_counter()
import numpy as np
from layerlapse.comparison.compute import measure
from layerlapse.comparison.content import comparison_content
from layerlapse.comparison.figures import draw_figures
from layerlapse.comparison.join import join_runs
from layerlapse.comparison.page import comparison_extras
from layerlapse.comparison.summary import measures_summary
from layerlapse.comparison.writing import _items_npz
from layerlapse.config import REPORT_BUDGET_MB
from layerlapse.report.budget import MB, fit_to_budget
from layerlapse.report.page import render_page
times = {"imports": time.perf_counter() - started}
def stage(name, started):
    times[name] = time.perf_counter() - started
t = time.perf_counter(); joined = join_runs(sys.argv[1:]); stage("join", t)
import os
items = int(os.environ.get("BENCH_NEIGHBOUR_ITEMS", "10000"))
t = time.perf_counter(); compared = measure(joined, neighbour_items=items); stage("measure", t)
t = time.perf_counter()
summary = measures_summary(compared)
written = len(json.dumps(summary)) + len(_items_npz(compared))
stage("measures.json, items.npz", t)
t = time.perf_counter(); figures = draw_figures(compared, summary); stage("figures", t)
t = time.perf_counter()
page = fit_to_budget(comparison_content(compared), int(REPORT_BUDGET_MB * MB), REPORT_BUDGET_MB,
                     lambda shown: render_page(shown, comparison_extras(compared)))
stage("page", t)
times["total"] = time.perf_counter() - started
print(json.dumps({"times": times, "items": joined.n_items, "frames": len(joined.frames),
                  "page_mb": len(page.encode("utf-8")) / 1e6, "figures": len(figures),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def timed_child(command: list[str]) -> tuple[float, float, float, str]:
    """Run `command`; its wall time (s), its own peak resident memory (MB, by wait4), its processor time (user and
    system, s) and its stdout."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = child.stdout.read(), child.stderr.read()  # small outputs: no deadlock reading one after the other
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, out


def end_to_end(runs: list[Path], out: Path, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """`layerlapse compare` in a fresh process, `repeats` times: wall seconds, peak MB and processor seconds of
    each."""
    walls, peaks, cpus = [], [], []
    for _ in range(repeats):
        wall, peak, cpu, _ = timed_child([LAYERLAPSE, "compare", *map(str, runs), "--out", str(out), "--force",
                                          "--quiet", "--neighbour-items", os.environ.get("BENCH_NEIGHBOUR_ITEMS",
                                                                                         "10000")])
        walls.append(wall)
        peaks.append(peak)
        cpus.append(cpu)
        print(f"  compare end to end: {wall:.1f} s ({cpu:.1f} s of processor time), peak {peak:.0f} MB, load "
              f"average {os.getloadavg()[0]:.1f}", flush=True)
    return walls, peaks, cpus


def by_stage(runs: list[Path], repeats: int) -> list[dict]:
    found = []
    for _ in range(repeats):
        _, _, _, out = timed_child([sys.executable, "-c", STAGES, *map(str, runs)])
        found.append(json.loads(out.strip().splitlines()[-1]))
        print("  by stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in found[-1]["times"].items()), flush=True)
    return found


def run_size(run_dir: Path) -> dict:
    """Items, the widest layer's width, snapshots, from the run folder."""
    from layerlapse.store import layout
    from layerlapse.store.run import load_run

    run = load_run(run_dir)
    items = len(run.probe_labels())
    snapshots = run.epochs_complete + 1
    widths = []
    for layer in run.layers:
        shape = np.load(run.path / layout.activations(layer, 0), mmap_mode="r").shape
        widths.append(int(np.prod(shape[1:])))
    return {"items": items, "width": sum(widths), "snapshots": snapshots, "layers": len(run.layers)}


def page_speed(run_a: Path, comparison_report: Path, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Load and slider step of run A's own report and of the comparison's."""
    import warnings

    from report_speed import measure  # beside this script
    from layerlapse.report.page import write_report
    from layerlapse.store.run import load_run

    measured = {}
    with tempfile.TemporaryDirectory() as folder:
        own = Path(folder) / "report.html"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_report(load_run(run_a), own)
        for name, path in (("run A's report", own), ("the comparison's report", comparison_report)):
            options = argparse.Namespace(loads=args.loads, moves=args.moves, settle_ms=args.settle_ms,
                                         graphics=args.graphics, drag_frames=args.drag_frames, renderer="auto")
            loads, moves, version = measure(path, options)
            measured[name] = {"load": [load["ready"] for load in loads],
                              "redraw": [move[0] for move in moves["single"]],
                              "presented": [move[1] for move in moves["single"]],
                              "mb": path.stat().st_size / 1e6, "points": loads[0]["points"],
                              "renderer": loads[0]["renderer"], "version": version,
                              "gpu": options.gpu_status}
            print(f"  {name}: load {statistics.median(measured[name]['load']):.0f} ms, slider redraw "
                  f"{statistics.median(measured[name]['redraw']):.0f} ms, presented "
                  f"{statistics.median(measured[name]['presented']):.0f} ms", flush=True)
    return measured


def spread(values: list[float], digits: int = 1) -> str:
    return f"**{statistics.median(values):.{digits}f}** ({', '.join(f'{v:.{digits}f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs=2, help="two runs on the same probe (the 10,000-point pair)")
    parser.add_argument("--big", type=Path, nargs=2, help="two bigger runs (the 60,000-point pair): memory")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timing")
    parser.add_argument("--big-repeats", type=int, default=1, help="runs of each timing of the --big pair")
    parser.add_argument("--loads", type=int, default=5, help="page loads to time")
    parser.add_argument("--moves", type=int, default=15, help="slider moves to time")
    parser.add_argument("--settle-ms", type=int, default=500, help="idle time before each slider move")
    parser.add_argument("--drag-frames", type=int, default=30, help="(report_speed's drag; not reported here)")
    parser.add_argument("--graphics", choices=("swiftshader", "chromium", "no-webgl"), default="swiftshader")
    parser.add_argument("--skip-page", action="store_true", help="no Chromium measurements")
    parser.add_argument("--neighbour-items", type=int, default=10_000,
                        help="compare's --neighbour-items (the exact neighbour search's items; its time ~ square)")
    args = parser.parse_args()
    os.environ["BENCH_NEIGHBOUR_ITEMS"] = str(args.neighbour_items)  # for the children: the command and the stages

    machine = (f"{cpu_name()}, {os.cpu_count()} cores, {cpu_flags()}, {platform.node()}, "
               f"Python {platform.python_version()}")
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} · {machine} · load average {os.getloadavg()[0]:.1f} · "
          f"--neighbour-items {args.neighbour_items}", flush=True)
    pairs = [("pair", args.runs, args.repeats)] + ([("big", args.big, args.big_repeats)] if args.big else [])
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for key, runs, repeats in pairs:
            size = run_size(runs[0])
            print(f"\n{key}: {runs[0]} and {runs[1]}: {size}", flush=True)
            out = Path(folder) / f"compare-{key}"
            walls, peaks, cpus = end_to_end(runs, out, repeats)
            stages = by_stage(runs, repeats)
            results[key] = {"size": size, "walls": walls, "peaks": peaks, "cpus": cpus, "stages": stages}
        page = None if args.skip_page else page_speed(args.runs[0], Path(folder) / "compare-pair" / "report.html",
                                                       args)
    print_table(machine, results, page, args)


def print_table(machine: str, results: dict, page: dict | None, args: argparse.Namespace) -> None:
    print(f"\n## {datetime.date.today()} · {machine} · load average {os.getloadavg()[0]:.1f}\n")
    stage_names = list(results["pair"]["stages"][0]["times"])
    print("| two runs | end to end s (runs) | processor s | peak RSS MB | " + " | ".join(stage_names) + " |")
    print("|---|---|---|---|" + "---|" * len(stage_names))
    for result in results.values():
        size = result["size"]
        stage_names = list(result["stages"][0]["times"])
        cells = [spread([found["times"][name] for found in result["stages"]], 2) for name in stage_names]
        print(f"| {size['items']:,} items × {size['width']} wide × {size['snapshots']} snapshots | "
              f"{spread(result['walls'])} | {spread(result['cpus'])} | {spread(result['peaks'], 0)} | "
              + " | ".join(cells) + " |")
    print("\nimports..page: in a fresh process, `compare`'s steps one by one (nothing written); the stage process's "
          "peak MB: " + "; ".join(f"{key} {statistics.median(f['peak_mb'] for f in r['stages']):.0f}"
                                  for key, r in results.items()))
    print("\n| two runs | one snapshot, both runs (float32) | every snapshot, both runs | peak RSS |")
    print("|---|---|---|---|")
    for result in results.values():
        size = result["size"]
        snapshot = size["items"] * size["width"] * 4 * 2 / 1e6
        print(f"| {size['items']:,} × {size['width']} × {size['snapshots']} | {snapshot:,.0f} MB | "
              f"{snapshot * size['snapshots']:,.0f} MB | {statistics.median(result['peaks']):,.0f} MB |")
    if page:
        first = next(iter(page.values()))
        print(f"\npage ({args.loads} loads, {args.moves} slider moves; headless Chromium {first['version']}, "
              f"--graphics {args.graphics}: compositing {first['gpu']['Compositing']}, WebGL {first['gpu']['WebGL']}; "
              f"points drawn by {first['renderer']})\n")
        print("| page | MB | points | load ms | slider redraw ms | slider presented ms |")
        print("|---|---|---|---|---|---|")
        for name, found in page.items():
            print(f"| {name} | {found['mb']:.1f} | {found['points']:,} | {spread(found['load'], 0)} | "
                  f"{spread(found['redraw'], 0)} | {spread(found['presented'], 0)} |")
        own, both = page.values()
        ratios = [statistics.median(both[key]) / statistics.median(own[key]) for key in ("load", "redraw", "presented")]
        print("| ratio, comparison / run A | " + f"{both['mb'] / own['mb']:.2f} | | "
              + " | ".join(f"**{ratio:.2f}**" for ratio in ratios) + " |")


if __name__ == "__main__":
    main()
