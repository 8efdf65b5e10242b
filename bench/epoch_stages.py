"""Time one epoch's stages of the reference experiment on MNIST: train, capture, project, render.

Every stage runs through layerlapse's own functions on the real data with all 60,000 training images as the probe,
several times; the medians are printed with each stage's ratio to its compute floor (the stage's FLOPs over the
matrix-multiply throughput measured here, in this process). numba's one-time compilation of UMAP is excluded (a
small warm-up fit runs first; with NUMBA_CACHE_DIR set it is also cached on disk).

It prints what the pictures add two ways: the visual stages against the training epoch alone, and against the epoch as
a run counts it (training and the validation pass), where a probe that holds every validation image (60,000) stands
in for that pass, as `record_run` does.

    LAYERLAPSE_DATA=../shared/data python bench/epoch_stages.py [--repeats 3] [--probe 60000]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from layerlapse.maps import faithfulness as metrics
from layerlapse.render import figures as render
from layerlapse.capture import Recorder
from layerlapse.reference.data import load_dataset
from layerlapse.reference.models import build_model
from layerlapse.maps.project import EpochMapper, umap_map
from layerlapse.maps.timeline import measure_frame
from layerlapse.reference.train import (evaluate, images_to_tensor, make_optimizer, prepare_model, rows_in_probe,
                              split_validation, train_epoch)


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """float32 matrix-multiply throughput of this machine, as torch runs it (median of `repeats`)."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(seconds) / 1e9


def forward_flops_per_image(model: torch.nn.Module, image_size: tuple[int, int]) -> float:
    """Multiply-adds ×2 of the convolutions and dense layers for one image (pooling, ReLU and dropout ignored)."""
    flops = 0.0

    def count(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal flops
        if isinstance(module, torch.nn.Conv2d):
            flops += 2 * output[0].numel() * module.in_channels * module.weight[0, 0].numel()
        elif isinstance(module, torch.nn.Linear):
            flops += 2 * module.in_features * module.out_features

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, *image_size))
    model.train()
    for handle in handles:
        handle.remove()
    return flops


def plain_pytorch(x: torch.Tensor) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Tensor]:
    """The same network as a plain PyTorch port would run it: NCHW, nn.Dropout, unfused Adam."""
    torch.manual_seed(0)
    model = build_model((28, 28), 10)
    model.drop1, model.drop2 = torch.nn.Dropout(0.2), torch.nn.Dropout(0.2)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), x.contiguous()


def umap_floor_flops(n: int, dims: int, n_neighbors: int = 40, n_epochs: int = 200, negatives: int = 5) -> float:
    """The least UMAP must compute: each point's distances to its k neighbours once (as a perfect index would give
    them), then per optimisation epoch one attractive and `negatives` repulsive 2-D gradient steps per edge."""
    return 2.0 * n * n_neighbors * dims + n_epochs * n * n_neighbors * (1 + negatives) * 12


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), seconds


def reference_training() -> tuple:
    """MNIST, the reference CNN (seed 0) and its optimizer, and the run's training/validation split, on CPU:
    (dataset, x, y, model, optimizer, train_indices, val_indices)."""
    torch.manual_seed(0)
    dataset = load_dataset("mnist")
    x = images_to_tensor(dataset.x_train, torch.device("cpu"))
    y = torch.from_numpy(dataset.y_train)
    model = prepare_model(build_model((28, 28), 10), torch.device("cpu"))
    optimizer = make_optimizer(model, 1e-3)
    train_indices, val_indices = split_validation(len(x), 0.2, 0)
    return dataset, x, y, model, optimizer, train_indices, val_indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", type=int, default=60_000, help="probe images for capture/project/render")
    parser.add_argument("--stages", default="train,capture,project,render")
    parser.add_argument("--baseline", action="store_true", help="also time plain PyTorch training, interleaved")
    parser.add_argument("--independent", action="store_true", help="also time the article's UMAP per epoch")
    args = parser.parse_args()
    stages = args.stages.split(",")
    dataset, x, y, model, optimizer, train_indices, val_indices = reference_training()
    probe = x[: args.probe]
    gflops = matmul_gflops()
    forward = forward_flops_per_image(model, (28, 28))
    results: dict[str, tuple[float, list[float], float]] = {}
    with Recorder(model, ["hidden"], probe) as before:  # the untrained network: the frame before the timed one
        activations_before = before.run_probe(probe)[0]["hidden"]

    if "train" in stages:
        floor = 3 * forward * len(train_indices) / (gflops * 1e9)  # forward + two backward products
        variants = {"train (one epoch, 48,000 images)": (model, optimizer, x)}
        if args.baseline:
            variants["train, plain PyTorch baseline (NCHW, nn.Dropout, Adam unfused)"] = plain_pytorch(x)
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(args.repeats):  # interleaved, so both see the same machine load
            for name, (net, opt, images) in variants.items():
                runs[name].append(timed(lambda: train_epoch(net, opt, images, y, train_indices, 100,
                                                            seed=repeat + 1, show_progress=False), 1)[0])
        for name, seconds in runs.items():
            results[name] = (statistics.median(seconds), seconds, floor)
        val_x, val_y = x[val_indices], y[val_indices]
        results[f"validation pass ({len(val_indices):,} images)"] = (
            *timed(lambda: evaluate(model, val_x, val_y), args.repeats), forward * len(val_indices) / (gflops * 1e9))
    # as a run: a probe that holds every validation image gives validation from its snapshot, without that pass
    probe_holds_validation = rows_in_probe(np.arange(len(probe)), val_indices, len(x)) is not None
    recorder = Recorder(model, ["hidden"], probe)
    activations = recorder.run_probe(probe)[0]["hidden"]
    if "capture" in stages:
        floor = forward * len(probe) / (gflops * 1e9)
        results[f"capture ({len(probe):,} images)"] = (*timed(lambda: recorder.run_probe(probe), args.repeats), floor)
    recorder.close()
    xy = None
    if "project" in stages:
        xy = time_projection(results, activations_before, activations, gflops, args)
    if "render" in stages:
        xy = xy if xy is not None else np.random.default_rng(0).normal(size=(len(probe), 2)).astype(np.float32)
        labels = dataset.y_train[: len(probe)]
        with tempfile.TemporaryDirectory() as folder:
            results[f"render (one frame, {len(probe):,} points)"] = (*timed(lambda: render.draw_frame(
                xy, labels, [str(d) for d in range(10)], Path(folder) / "frame.png", title="Epoch 1"),
                args.repeats), float("nan"))
    report(results, gflops, args, probe_holds_validation)


def time_projection(results: dict, before: np.ndarray, after: np.ndarray, gflops: float,
                    args: argparse.Namespace) -> np.ndarray:
    """The default (aligned) map of the trained network's epoch, warm from the untrained one's, and its measures;
    with --independent also the article's fresh UMAP. numba's compilation is excluded (a small fit runs first)."""
    small = EpochMapper("aligned")
    small.next(before[:5000])
    small.next(after[:5000])
    umap_map(before[:2000])
    start = EpochMapper("aligned")
    start.next(before)
    holder = {}

    def warm_frame() -> None:
        mapper = copy.deepcopy(start)
        holder["xy"] = mapper.next(after)

    floor = umap_floor_flops(len(after), after.shape[1], n_epochs=30) / (gflops * 1e9)
    results[f"project (aligned map, warm, {len(after):,} points)"] = (*timed(warm_frame, args.repeats), floor)
    sample = metrics.quality_sample(len(after), seed=0)
    # as in a run, the frame before was measured already: its neighbourhoods are there to compare with
    _, before_measured = measure_frame(before[sample].astype(np.float32), start.state.xy[sample], None)
    results["measure (faithfulness of the frame)"] = (*timed(lambda: measure_frame(
        after[sample].astype(np.float32), holder["xy"][sample], before_measured), args.repeats), float("nan"))
    if args.independent:
        floor = umap_floor_flops(len(after), after.shape[1]) / (gflops * 1e9)
        results[f"project (independent UMAP, {len(after):,} points)"] = (
            *timed(lambda: umap_map(after), args.repeats), floor)
    return holder["xy"]


def report(results: dict, gflops: float, args: argparse.Namespace, probe_holds_validation: bool) -> None:
    print(f"# {datetime.date.today()} · {platform.node()} · {platform.processor() or platform.machine()} · "
          f"{os.cpu_count()} cores · torch {torch.__version__} ({torch.get_num_threads()} threads) · "
          f"matmul {gflops:.0f} GFLOP/s float32 · {args.repeats} runs each")
    print("| stage | median s | runs (s) | compute floor s | median / floor |")
    print("|---|---|---|---|---|")
    for stage, (median, runs, floor) in results.items():
        ratio = "n/a (not matmul work)" if np.isnan(floor) else f"{median / floor:.1f}×"
        floor_text = "—" if np.isnan(floor) else f"{floor:.2f}"
        print(f"| {stage} | {median:.2f} | {', '.join(f'{s:.1f}' for s in runs)} | {floor_text} | {ratio} |")
    train = next((median for stage, (median, _, _) in results.items() if stage.startswith("train (")), None)
    visual = [median for stage, (median, _, _) in results.items()
              if stage.startswith(("capture", "project (aligned", "measure", "render"))]
    if train and len(visual) == 4:
        print(f"\nvisualisation of an epoch (capture + aligned map + measures + one frame, one after the other): "
              f"{sum(visual):.1f} s = {100 * sum(visual) / train:.0f} % of the training epoch's {train:.1f} s")
    validation = next((median for stage, (median, _, _) in results.items() if stage.startswith("validation")), None)
    if train and validation and len(visual) == 4:
        # the epoch as a run counts it (history's seconds): training and validation; with the pictures, the probe's
        # snapshot stands in for the validation pass when it holds every validation image
        without = train + validation
        added = sum(visual) - (validation if probe_holds_validation else 0.0)
        how = ("the probe holds the validation images: validation from the snapshot, no second pass"
               if probe_holds_validation else "the probe lacks validation images: the validation pass stays")
        print(f"the epoch as a run has it (training {train:.1f} s + validation {validation:.1f} s = {without:.1f} s; "
              f"{how}): the pictures add {added:.1f} s = {100 * added / without:.0f} %")


if __name__ == "__main__":
    main()
