"""Run folders for bench/report_speed.py at the sizes issue 15 names: a small network's training recorded through
`layerlapse.Recorder` (the own-loop path), with every snapshot mapped (PCA, by the mapping worker) and stored as a
run records it, so the report reads real run folders of any size quickly.

    LAYERLAPSE_DATA=../shared/data python bench/report_runs.py --points 60000 --snapshots 16 --out runs/report-60k-16
    LAYERLAPSE_DATA=../shared/data python bench/report_runs.py --points 60000 --snapshots 50 --out runs/report-60k-50
    python bench/report_runs.py --points 1000000 --snapshots 10 --out runs/report-1m-10
    python bench/report_runs.py --points 10000 --width 512 --seed 1 --data-seed 0 --out runs/compare-10k-s1

Up to 60,000 points the probe is MNIST's training images (so the report carries every thumbnail); beyond, it is a
seeded mixture of ten Gaussian classes in 32 dimensions, without images. Between snapshots an MLP (input → 64 → 10)
trains on a seeded 2,000-input sample for a few steps, so the maps move as a training run's do: much at first, less
later. The maps are PCA (`map_run`) and the layer measures are stored; no frames are drawn: only the report is
benchmarked from these runs.

--seed seeds the training (the model's initial weights and the 2,000-input sample); --data-seed (default: --seed)
the probe's mixture beyond 60,000 points, so runs that differ by --seed alone at one --data-seed share their probe
item for item (an MNIST probe is the same images whatever the seeds), as `layerlapse compare` wants
(bench/compare_speed.py). --width is the hidden layer's width (default 64).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from layerlapse import Recorder
from layerlapse.store import layout
from layerlapse.config import RunConfig
from layerlapse.measures.layers import measure_run
from layerlapse.recipe.mapping import map_run
from layerlapse.store.run import RunFolder, load_run

MNIST_POINTS = 60_000
MIXTURE_DIMS = 32


def probe_data(points: int, seed: int) -> tuple[torch.Tensor, np.ndarray, list[str], str]:
    """Inputs, labels, class names and the dataset's name."""
    if points <= MNIST_POINTS:
        from layerlapse.reference.data import load_dataset

        mnist = load_dataset("mnist")
        return (torch.from_numpy(mnist.x_train[:points]), mnist.y_train[:points].astype(np.int64),
                list(mnist.class_names), "mnist")
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (10, MIXTURE_DIMS))
    labels = rng.integers(0, 10, points)
    inputs = (centres[labels] + rng.normal(0.0, 1.5, (points, MIXTURE_DIMS))).astype(np.float32)
    return torch.from_numpy(inputs), labels, [f"class {k}" for k in range(10)], "gaussian mixture"


def store_measures(run: RunFolder) -> None:
    """The layer measures stored as `layerlapse render` stores them, so that writing the report does not measure."""
    with run.writing():
        run.write_json(layout.DYNAMICS_LAYERS, measure_run(run, show_progress=False))
        run.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=MNIST_POINTS)
    parser.add_argument("--snapshots", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="the training's seed: initial weights, sample")
    parser.add_argument("--data-seed", type=int, default=None, help="the probe's seed (default: --seed)")
    parser.add_argument("--width", type=int, default=64, help="the hidden layer's width")
    args = parser.parse_args()
    data_seed = args.seed if args.data_seed is None else args.data_seed
    torch.manual_seed(args.seed)
    inputs, labels, class_names, dataset = probe_data(args.points, data_seed)
    width = int(np.prod(inputs.shape[1:]))
    model = nn.Sequential(nn.Flatten(), nn.Linear(width, args.width), nn.ReLU(), nn.Linear(args.width, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    sample = torch.from_numpy(np.random.default_rng(args.seed).choice(len(labels), 2000, replace=False))
    as_float = (lambda x: x.float() / 255.0) if inputs.dtype == torch.uint8 else (lambda x: x)
    train_x, train_y = as_float(inputs[sample]), torch.from_numpy(labels[sample.numpy()])
    started = time.perf_counter()
    rec = Recorder(model, layers=["2"], probe=inputs, labels=labels, out=args.out, class_names=class_names,
                   dataset=dataset, config=RunConfig(map_method="pca", seed=args.seed, data_seed=data_seed),
                   force=True, draw=False, batch_size=5000)
    rec.start()
    for snapshot in range(1, args.snapshots):
        for _ in range(3):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(train_x), train_y)
            loss.backward()
            optimizer.step()
        rec.epoch_end(snapshot, metrics={"loss": float(loss.detach())})
    run = rec.finish(draw=False)  # recorded; mapped here without drawing frames (the report is what is measured)
    map_run(load_run(run.path), method="pca", show_progress=False)
    store_measures(load_run(run.path))
    print(f"{run.path}: {args.points:,} points × {args.snapshots} snapshots in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
