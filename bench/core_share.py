"""What a busy mapping worker does to a training epoch, by the training's thread count: the measurement behind
`layerlapse._util.threads`.

Trains two epochs of the reference recipe (train + validation) with N torch threads, alone or beside a process that
maps a stored run's snapshots back to back (the aligned map, as the run's worker does, one thread), and prints the
epoch times and the worker's frame times:

    layerlapse run --probe all --epochs 2 --map pca --out /tmp/probe-all   # any run folder with 3 snapshots
    LAYERLAPSE_DATA=../shared/data python bench/core_share.py /tmp/probe-all --threads 2,1

Each line is one configuration: alone, then beside the worker (which maps its cold first frame before the epochs
start, so only warm frames overlap them). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from maps import cpu_flags  # noqa: E402  (beside this script)

COLD_FRAME_SECONDS = 90  # the worker's first frame (a full UMAP fit) is left to finish before training starts


def mapping_loop(run_path: str, stop, frame_seconds) -> None:
    """The worker's work, without end: snapshots 1 and 2 in turn, each from the last, on one thread."""
    from layerlapse._util.threads import limit_worker_threads
    from layerlapse.maps.timeline import LayerTimeline

    limit_worker_threads()
    snapshots = [np.load(Path(run_path) / "activations" / "hidden" / f"epoch_{epoch:03d}.npy", mmap_mode="r")
                 for epoch in range(3)]
    timeline = LayerTimeline("hidden", len(snapshots[0]), seed=0)
    timeline.next(0, snapshots[0])
    frame_seconds.put(-1.0)  # the cold frame is done
    epoch = 1
    while not stop.is_set():
        started = time.perf_counter()
        timeline.next(epoch, snapshots[1 + epoch % 2])
        frame_seconds.put(time.perf_counter() - started)
        epoch += 1


def training_epochs(threads: int, epochs: int = 2) -> list[float]:
    """Seconds of each epoch (train + validation) of the reference recipe with `threads` torch threads."""
    import torch

    from layerlapse.reference.data import load_dataset
    from layerlapse.reference.models import build_model
    from layerlapse.reference.train import (evaluate, images_to_tensor, make_optimizer, prepare_model, split_validation,
                                  train_epoch)

    torch.set_num_threads(threads)
    dataset = load_dataset("mnist")
    torch.manual_seed(0)
    model = prepare_model(build_model(dataset.x_train.shape[1:], 10), torch.device("cpu"))
    optimizer = make_optimizer(model, 1e-3)
    x, y = images_to_tensor(dataset.x_train, torch.device("cpu")), torch.from_numpy(dataset.y_train)
    train_indices, val_indices = split_validation(len(x), 0.2, 0)
    seconds = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        train_epoch(model, optimizer, x, y, train_indices, 100, seed=epoch, show_progress=False)
        evaluate(model, x[val_indices], y[val_indices])
        seconds.append(time.perf_counter() - started)
    return seconds


def beside_worker(run_path: str, threads: int) -> tuple[list[float], list[float]]:
    context = multiprocessing.get_context("spawn")
    stop, frame_seconds = context.Event(), context.Queue()
    worker = context.Process(target=mapping_loop, args=(run_path, stop, frame_seconds), daemon=True)
    worker.start()
    if frame_seconds.get(timeout=COLD_FRAME_SECONDS * 4) != -1.0:
        raise RuntimeError("the worker did not map its first frame")
    epochs = training_epochs(threads)
    stop.set()
    frames = []
    worker.join(timeout=120)
    while not frame_seconds.empty():
        frames.append(frame_seconds.get())
    return epochs, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder with snapshots 0-2 of the hidden layer (any probe size)")
    parser.add_argument("--threads", default="2,1", help="training thread counts to try, comma-separated")
    args = parser.parse_args()
    print(f"# {platform.node()} · {cpu_flags()} · {multiprocessing.cpu_count()} cores · run {args.run}")
    print("| training threads | worker | epoch seconds (train + validation) | worker's frames while training (s) |")
    print("|---|---|---|---|")
    for threads in (int(count) for count in args.threads.split(",")):
        alone = training_epochs(threads)
        print(f"| {threads} | none | {', '.join(f'{s:.1f}' for s in alone)} | — |", flush=True)
        beside, frames = beside_worker(args.run, threads)
        print(f"| {threads} | mapping back to back | {', '.join(f'{s:.1f}' for s in beside)} | "
              f"{len(frames)} frames: {', '.join(f'{s:.1f}' for s in frames)} |", flush=True)


if __name__ == "__main__":
    main()
