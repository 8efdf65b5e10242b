"""Memory: what keeping freed memory in the process (`layerlapse._util.memory`) changes, and the peak memory of whole runs.

The default: each case in fresh processes, with the setting on and off, interleaved. Times a 10,000-image capture of
the reference network, the 12,000-image validation pass and one training epoch, with the minor page faults of each,
on MNIST; the outputs are compared bit for bit between the two settings.

    LAYERLAPSE_DATA=../shared/data python bench/memory.py [--repeats 2]

`--peaks`: the peak memory (VmHWM, the resident set's high-water mark) of each process of `layerlapse run --probe all`
(the training process, which captures, stores, places the test set and draws; and the mapping worker) against the
probe size (`--subset N --probe all`), the recorded layer's width (`hidden`, 512 values per image; `conv2D_3`, 32×14×14
= 6,272) and the number of snapshots (epochs + 1). Maps by PCA (`--map pca`): the aligned UMAP of 60,000 points of
6,272 values did not finish one frame in 13 minutes here; the worker's peak is then PCA's float64 copies.
`--src` runs another checkout's layerlapse (its `src` folder) for a before/after comparison.

    LAYERLAPSE_DATA=../shared/data python bench/memory.py --peaks [--cases conv2D_3:60000:1,conv2D_3:60000:3]
    LAYERLAPSE_DATA=../shared/data python bench/memory.py --stages|--spool-speed [--cases hidden:10000:1]

Measured (docs/benchmarks.md, 2026-12-02, AMD EPYC, 2 cores; MB are MiB): the bound, with `--map pca` and the
default test probe and test set, is training process ≤ 2,000 MB (since `project.place_points` reads the snapshot a
block at a time: 1,508-1,537 MB at 10,000 images of conv2D_3, 2,315-2,362 MB before), mapping worker ≤ 300 MB + 24
bytes × probe × width (PCA's float64 copies), whatever the number of snapshots. Capture and store hold no snapshot
(1,029 MB while writing the 60,000 × 6,272 one, 2,437 MB before they wrote by blocks).
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

ONE_PROCESS = r"""
import hashlib, json, resource, time
import torch
from layerlapse.capture import Recorder
from layerlapse.reference.data import load_dataset
from layerlapse._util.memory import keep_freed_memory
from layerlapse.reference.models import build_model
from layerlapse.reference.train import evaluate, images_to_tensor, make_optimizer, prepare_model, split_validation, train_epoch

def timed(fn):
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults

applied = keep_freed_memory()
torch.manual_seed(0)
dataset = load_dataset("mnist")
x, y = images_to_tensor(dataset.x_train, torch.device("cpu")), torch.from_numpy(dataset.y_train)
model = prepare_model(build_model((28, 28), 10), torch.device("cpu"))
optimizer = make_optimizer(model, 1e-3)
train, val = split_validation(len(x), 0.2, 0)
result = {"applied": applied}
_, result["train_s"], result["train_faults"] = timed(
    lambda: train_epoch(model, optimizer, x, y, train, 100, seed=1, show_progress=False))
(loss, _, _), result["validation_s"], result["validation_faults"] = timed(lambda: evaluate(model, x[val], y[val]))
with Recorder(model, ["hidden"], x[:10_000]) as recorder:
    (activations, _, _), result["capture_s"], result["capture_faults"] = timed(lambda: recorder.run_probe(x[:10_000]))
result["outputs"] = hashlib.sha256(activations["hidden"].tobytes() + repr(loss).encode()).hexdigest()
print(json.dumps(result))
"""

STAGES = (("train", "first training epoch (48,000 images)"), ("validation", "validation pass (12,000 images)"),
          ("capture", "capture (10,000 images)"))


def one_process(keep: bool) -> dict:
    env = {**os.environ, "LAYERLAPSE_KEEP_FREED_MEMORY": "1" if keep else "0"}
    out = subprocess.run([sys.executable, "-c", ONE_PROCESS], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


WIDTHS = {"hidden": 512, "conv2D_3": 6272}  # values per image of the layers the peaks are measured for
PEAK_CASES = "hidden:10000:1,conv2D_3:10000:1,conv2D_3:10000:3,conv2D_3:60000:2"  # the 60,000 one: 48 min here


def process_peaks(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `command`; the peak resident memory (MB, VmHWM) of it and of its mapping worker, read from /proc every
    0.2 s (a high-water mark: only the last 0.2 s of a process can be missed), and its wall time."""
    import time

    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks = {"main_mb": 0.0, "worker_mb": 0.0}
    while process.poll() is None:
        for pid, role in [(process.pid, "main_mb"), *((child, "worker_mb") for child in _workers(process.pid))]:
            peaks[role] = max(peaks[role], _high_water_mb(pid))
        time.sleep(0.2)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{process.stderr.read()[-2000:]}")
    return {**peaks, "seconds": time.perf_counter() - started}


def _workers(pid: int) -> list[int]:
    """The mapping worker(s) among the children of `pid` (multiprocessing's spawned processes, not its tracker)."""
    try:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        return []
    found = []
    for child in children:
        try:
            if b"spawn_main" in open(f"/proc/{child}/cmdline", "rb").read():
                found.append(int(child))
        except OSError:
            continue
    return found


def _high_water_mb(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_peaks(layer: str, probe: int, epochs: int, src: str | None) -> dict[str, float]:
    import tempfile

    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    with tempfile.TemporaryDirectory(prefix="layerlapse-memory-") as folder:
        command = [sys.executable, "-m", "layerlapse", "run", "--subset", str(probe), "--probe", "all",
                   "--layer", layer, "--epochs", str(epochs), "--map", "pca", "--out", f"{folder}/run", "-q"]
        return process_peaks(command, env)


def peaks_table(cases: list[tuple[str, int, int]], repeats: int, src: str | None) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"# {datetime.date.today()} · {cpu} · {os.cpu_count()} cores · `layerlapse run --subset N --probe all "
          f"--map pca` · {repeats} run(s) each, medians · {src or 'this checkout'}")
    print("| layer (values per image) | probe | snapshots | one snapshot, float16 | training process: peak MB | "
          "mapping worker: peak MB | s |")
    print("|---|---|---|---|---|---|---|")
    for layer, probe, epochs in cases:
        runs = [run_peaks(layer, probe, epochs, src) for _ in range(repeats)]
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"| {layer} ({WIDTHS.get(layer, '?'):,}) | {probe:,} | {epochs + 1} | "
              f"{probe * WIDTHS.get(layer, 0) * 2 / 1e6:,.0f} MB | {median['main_mb']:,.0f} | "
              f"{median['worker_mb']:,.0f} | {median['seconds']:.0f} |", flush=True)


STAGE = r"""
import json, resource, sys
from layerlapse.config import RunConfig
from layerlapse.store.run import load_run
stage, out, layer, probe, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if stage == "record":
    from layerlapse.reference.train import record_run
    config = RunConfig(dataset="mnist", layers=(layer,), train_subset=probe, probe=None, epochs=epochs,
                       map_method="pca")
    record_run(config, out, show_progress=False).close()
else:
    from layerlapse.recipe.mapping import map_run
    from layerlapse.recipe.steps import render_run
    run = load_run(out)
    (map_run if stage == "map" else render_run)(run, show_progress=False)
    run.close()
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
STAGES_OF_A_RUN = (("record", "train, capture and store (no maps)"),
                   ("map", "map every snapshot (PCA) and place the test images, in this process"),
                   ("render", "frames, GIF, measures, report"))


def stage_peaks(layer: str, probe: int, epochs: int, src: str | None) -> dict[str, float]:
    """Each stage of one run in a fresh process (as `layerlapse render` redoes maps and drawings): its peak
    resident memory in MB (ru_maxrss)."""
    import tempfile

    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="layerlapse-memory-") as folder:
        for stage, _ in STAGES_OF_A_RUN:
            out = subprocess.run([sys.executable, "-c", STAGE, stage, f"{folder}/run", layer, str(probe), str(epochs)],
                                 env=env, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"stage {stage} failed:\n{out.stderr[-2000:]}")
            peaks[stage] = json.loads(out.stdout.splitlines()[-1])["peak_mb"]
    return peaks


SPOOL_SPEED = r"""
import json, statistics, sys, tempfile, time
import numpy as np, torch
from layerlapse.capture import Recorder
from layerlapse.config import RunConfig
from layerlapse.reference.data import load_dataset
from layerlapse.reference.models import build_model
from layerlapse.store.run import RunFolder, npy_bytes
from layerlapse.reference.train import images_to_tensor, prepare_model

layer, probe, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
dataset = load_dataset("mnist")
x = images_to_tensor(dataset.x_train[:probe], torch.device("cpu"))
model = prepare_model(build_model((28, 28), 10), torch.device("cpu"))
seconds = {"memory": [], "spooled": []}
with tempfile.TemporaryDirectory() as folder, Recorder(model, [layer], x) as recorder:
    run = RunFolder.create(f"{folder}/run", RunConfig(layers=(layer,)), {"name": "mnist"})
    for repeat in range(repeats):
        for how in ("memory", "spooled"):  # interleaved
            recorder.spool_into(run if how == "spooled" else None)
            started = time.perf_counter()
            activations, _, _ = recorder.run_probe(x)
            if how == "memory":  # as the session wrote it before: the whole file's bytes built in memory
                run.write_bytes(f"activations/{layer}/epoch_{2 * repeat:03d}.npy", npy_bytes(activations[layer]))
            else:
                run.write_array(f"activations/{layer}/epoch_{2 * repeat + 1:03d}.npy", activations[layer])
            seconds[how].append(time.perf_counter() - started)
    same = all((run.path / f"activations/{layer}/epoch_{i:03d}.npy").read_bytes() ==
               (run.path / f"activations/{layer}/epoch_{i + 1:03d}.npy").read_bytes() for i in range(0, 2 * repeats, 2))
    run.close()
print(json.dumps({how: statistics.median(values) for how, values in seconds.items()} | {"same": same}))
"""


def spool_speed(cases: list[tuple[str, int, int]], repeats: int) -> None:
    """A snapshot captured and written, in memory (the file's bytes built whole, as before) against spooled into
    the run folder a batch at a time: seconds, medians over `repeats` interleaved in one process."""
    print(f"# {datetime.date.today()} · {os.cpu_count()} cores · capture + write of one snapshot · medians of "
          f"{repeats}")
    print("| layer | probe | in memory s | spooled s | ratio | files bit for bit the same |")
    print("|---|---|---|---|---|---|")
    for layer, probe, _ in cases:
        out = subprocess.run([sys.executable, "-c", SPOOL_SPEED, layer, str(probe), str(repeats)],
                             capture_output=True, text=True, check=True)
        found = json.loads(out.stdout.splitlines()[-1])
        print(f"| {layer} | {probe:,} | {found['memory']:.2f} | {found['spooled']:.2f} | "
              f"{found['spooled'] / found['memory']:.2f} | {found['same']} |", flush=True)


def parse_cases(text: str) -> list[tuple[str, int, int]]:
    cases = []
    for case in text.split(","):
        layer, probe, epochs = case.split(":")
        cases.append((layer, int(probe), int(epochs)))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peaks", action="store_true", help="peak memory of whole runs (see the docstring)")
    parser.add_argument("--cases", default=PEAK_CASES, help="layer:probe:epochs, comma-separated (with --peaks)")
    parser.add_argument("--stages", action="store_true",
                        help="peak memory of each stage (record, map, render) in a fresh process, per case")
    parser.add_argument("--spool-speed", action="store_true",
                        help="time a snapshot captured in memory against one spooled into the run folder")
    parser.add_argument("--src", help="another checkout's src folder to measure (with --peaks or --stages)")
    args = parser.parse_args()
    if args.peaks:
        peaks_table(parse_cases(args.cases), args.repeats, args.src)
        return
    if args.spool_speed:
        spool_speed(parse_cases(args.cases), args.repeats)
        return
    if args.stages:
        for layer, probe, epochs in parse_cases(args.cases):
            peaks = stage_peaks(layer, probe, epochs, args.src)
            print(f"{layer} · probe {probe:,} · {epochs + 1} snapshots · {args.src or 'this checkout'}: " +
                  ", ".join(f"{stage} {peaks[stage]:,.0f} MB" for stage, _ in STAGES_OF_A_RUN), flush=True)
        return
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.repeats):
        for keep in (False, True):  # interleaved, so both see the same machine
            runs[keep].append(one_process(keep))
    print(f"# {datetime.date.today()} · {platform.node()} · {os.cpu_count()} cores · fresh process per run · "
          f"{args.repeats} runs each")
    print("| stage | glibc's defaults: s (faults) | freed memory kept: s (faults) | ratio |")
    print("|---|---|---|---|")
    for key, name in STAGES:
        cells = []
        for keep in (False, True):
            seconds = statistics.median(run[f"{key}_s"] for run in runs[keep])
            faults = statistics.median(run[f"{key}_faults"] for run in runs[keep])
            cells.append((seconds, faults))
        print(f"| {name} | {cells[0][0]:.2f} ({cells[0][1]:,.0f}) | {cells[1][0]:.2f} ({cells[1][1]:,.0f}) | "
              f"{cells[1][0] / cells[0][0]:.2f} |")
    same = len({run["outputs"] for keep in runs for run in runs[keep]}) == 1
    applied = all(run["applied"] for run in runs[True]) and not any(run["applied"] for run in runs[False])
    print(f"\nsetting applied as asked: {applied}; outputs bit for bit the same in every run: {same}")


if __name__ == "__main__":
    main()
