"""The article's maps (a fresh UMAP per epoch, n_neighbors=40) against layerlapse's default (aligned), on the same
stored activations of a real MNIST run, at several probe sizes: time per frame, faithfulness, stability, ratios.

    LAYERLAPSE_DATA=../shared/data layerlapse run --probe all --epochs 3 --out runs/mnist60k   # once
    python bench/maps.py runs/mnist60k [--sizes 10000,60000] [--epochs 1,2,3] [--methods independent,aligned]

Both methods map the same epochs in order; the first epoch of the aligned method is its cold start (a full UMAP),
so its time per frame is the median over the warm frames that follow, the frames a run makes at every epoch. numba's
compilation is excluded for both: a small fit of each method runs first (and NUMBA_CACHE_DIR keeps it on disk).
Faithfulness is measured as stored in a run (layerlapse.metrics, 3,000-point seeded subsample); the share of map
neighbours kept between frames is also measured on every point.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np

from layerlapse import metrics
from layerlapse.project import EpochMapper
from layerlapse.store import load_run


def map_frames(method: str, epochs: list[np.ndarray], seed: int) -> tuple[list[np.ndarray], list[float]]:
    mapper = EpochMapper(method, n_neighbors=40, seed=seed)
    frames, seconds = [], []
    for activations in epochs:
        started = time.perf_counter()
        frames.append(mapper.next(activations))
        seconds.append(time.perf_counter() - started)
    return frames, seconds


def measures(epochs: list[np.ndarray], frames: list[np.ndarray], sample: np.ndarray) -> list[dict[str, float]]:
    rows = []
    for t, (activations, xy) in enumerate(zip(epochs, frames)):
        row = metrics.frame_quality(activations[sample], xy[sample])
        if t:
            row.update(metrics.change_quality(epochs[t - 1][sample], activations[sample], frames[t - 1][sample],
                                              xy[sample]))
            row["map_neighbors_kept_all"] = metrics.shared_share(metrics.neighbor_indices(frames[t - 1]),
                                                                 metrics.neighbor_indices(xy))
        rows.append(row)
    return rows


def warm_up(methods: list[str], epochs: list[np.ndarray]) -> None:
    """Compile (or load from numba's cache) everything each method runs, on a few thousand points."""
    small = [activations[:5000] for activations in epochs[:2]]
    for method in methods:
        map_frames(method, small, seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder recorded with --probe all (or a probe at least as large as --sizes)")
    parser.add_argument("--layer", default="hidden")
    parser.add_argument("--sizes", default="10000,60000", help="probe sizes: the first N probe points")
    parser.add_argument("--epochs", default="1,2,3", help="consecutive epochs to map")
    parser.add_argument("--methods", default="independent,aligned", help="the first is the baseline of the ratios")
    args = parser.parse_args()
    run = load_run(args.run)
    epoch_numbers = [int(e) for e in args.epochs.split(",")]
    methods = args.methods.split(",")
    stored = [run.activations(args.layer, e).astype(np.float32) for e in epoch_numbers]
    warm_up(methods, stored)
    print(f"# {datetime.date.today()} · {platform.node()} · {os.cpu_count()} cores · run {args.run} · layer "
          f"{args.layer} · epochs {args.epochs}")
    for size in (int(s) for s in args.sizes.split(",")):
        epochs = [activations[:size] for activations in stored]
        sample = metrics.quality_sample(size, seed=0)
        results = {}
        for method in methods:
            frames, seconds = map_frames(method, epochs, seed=0)
            timed = seconds[1:] if method == "aligned" and len(seconds) > 1 else seconds
            results[method] = (statistics.median(timed), seconds, measures(epochs, frames, sample))
        report(size, results)
        sys.stdout.flush()


def report(size: int, results: dict) -> None:
    baseline = next(iter(results))
    base_seconds, _, base_rows = results[baseline]
    print(f"\n## {size:,} points\n")
    print("| method | s / frame (median) | frames (s) | trustworthiness | continuity | 10-NN kept | disparity | "
          "map neighbours kept (sample / all) | layer neighbours kept |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method, (seconds, runs, rows) in results.items():
        changes = rows[1:]
        print(f"| {method} | {seconds:.2f} | {', '.join(f'{s:.1f}' for s in runs)} | "
              f"{_mean(rows, 'trustworthiness'):.4f} | {_mean(rows, 'continuity'):.4f} | "
              f"{_mean(rows, 'knn_preservation'):.3f} | {_mean(changes, 'procrustes_disparity'):.4f} | "
              f"{_mean(changes, 'map_neighbors_kept'):.3f} / {_mean(changes, 'map_neighbors_kept_all'):.3f} | "
              f"{_mean(changes, 'layer_neighbors_kept'):.3f} |")
    for method, (seconds, _, rows) in list(results.items())[1:]:
        changes = rows[1:]
        print(f"\n{method} against {baseline}: {base_seconds / seconds:.1f}× faster per frame; trustworthiness "
              f"{_mean(rows, 'trustworthiness') - _mean(base_rows, 'trustworthiness'):+.4f}; disparity "
              f"{_mean(base_rows[1:], 'procrustes_disparity') / max(_mean(changes, 'procrustes_disparity'), 1e-12):.0f}× "
              f"lower; map neighbours kept (all points) "
              f"{_mean(changes, 'map_neighbors_kept_all') / _mean(base_rows[1:], 'map_neighbors_kept_all'):.1f}×")


def _mean(rows: list[dict[str, float]], key: str) -> float:
    values = [row[key] for row in rows if key in row]
    return float(np.mean(values)) if values else float("nan")


if __name__ == "__main__":
    main()
