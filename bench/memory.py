"""What keeping freed memory in the process (`layerlapse.memory`) changes: each case in fresh processes, with the
setting on and off, interleaved.

Times a 10,000-image capture of the reference network, the 12,000-image validation pass and one training epoch, with
the minor page faults of each, on MNIST; the outputs are compared bit for bit between the two settings.

    LAYERLAPSE_DATA=../shared/data python bench/memory.py [--repeats 2]
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
from layerlapse.data import load_dataset
from layerlapse.memory import keep_freed_memory
from layerlapse.models import build_model
from layerlapse.train import evaluate, images_to_tensor, make_optimizer, prepare_model, split_validation, train_epoch

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
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
