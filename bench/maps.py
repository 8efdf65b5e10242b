"""A stored run mapped with each method, frame after frame as a run makes them: time, faithfulness and stability per
frame and as medians, and the aligned map's promises checked against a fresh UMAP per frame (the article's method).

    LAYERLAPSE_DATA=../shared/data layerlapse run --epochs 15 --map pca --out runs/mnist        # the reference run
    LAYERLAPSE_DATA=../shared/data layerlapse run --epochs 3 --probe all --map pca --out runs/mnist60k
    python bench/maps.py --run runs/mnist --sizes 10000
    python bench/maps.py --run runs/mnist60k --sizes 10000,60000 [--cache .cache/bench-maps]

(`--map pca` only keeps the recording quick: the bench maps the stored activations itself.) Every method maps the
same epochs in order with the code a run uses (`LayerTimeline`), and every frame is measured as `quality.json`
stores it (k = 10 on the run's 3,000-point seeded sample): trustworthiness, continuity, 10-NN kept within the frame;
against the previous frame the 10-NN kept on the map and in the layer, Procrustes disparity and the temporal
measure of DVI/TimeVis. The share of map neighbours kept is also measured on every point. numba's compilation is
excluded for every method: a small fit of each runs first (and NUMBA_CACHE_DIR keeps it on disk).

The goals (issue 13), each against the baseline (the first of --methods) on the same activations: every frame's
trustworthiness and continuity within 0.005; map 10-NN kept ≥ 0.8 × the layer's (median over the changes; the lowest
is printed too); disparity ≥ 5× lower (median over the changes); the mean frame after the first ≥ 5× faster at
60,000 points (the first frame is the same seeded umap-learn fit in both methods). `--cache DIR` keeps the baseline's
frames (the fresh UMAP, which layerlapse does not change) to compare later versions of the other methods quickly.

Map backends (issue 15): a method written METHOD@BACKEND runs the aligned map with that backend
(layerlapse.maps.backend), e.g. `--methods independent,aligned,aligned@torchdr`. Every method maps with `--threads`
threads (default 1, as the mapping worker of a run has), so the backends are timed alike.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

from layerlapse.maps import faithfulness as metrics
from layerlapse.store.run import load_run
from layerlapse.maps.timeline import LayerTimeline

GOAL_FAITHFUL = 0.005  # trustworthiness and continuity at most this far below the baseline, on every frame
GOAL_KEPT = 0.8  # map 10-NN kept ≥ this × layer 10-NN kept (median over the changes)
GOAL_STILLER = 5.0  # disparity this many times lower than the baseline's (median over the changes)
GOAL_FASTER = 5.0  # mean frame this many times faster than the baseline's, at 60,000 points


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def map_run(method: str, epochs: list[np.ndarray], seed: int) -> tuple[list[np.ndarray], list[dict]]:
    """The frames of one method (METHOD or METHOD@BACKEND), in order, each with its measures and its mapping time
    ("seconds")."""
    name, _, backend = method.partition("@")
    timeline = LayerTimeline("bench", len(epochs[0]), method=name, n_neighbors=40, seed=seed,
                             backend=backend or "auto")
    frames, rows = [], []
    for epoch, activations in enumerate(epochs):
        frame = timeline.next(epoch, activations)
        frames.append(frame.xy)
        rows.append(dict(frame.quality))
    for t in range(1, len(frames)):
        rows[t]["map_neighbors_kept_all"] = metrics.shared_share(metrics.neighbor_indices(frames[t - 1]),
                                                                 metrics.neighbor_indices(frames[t]))
    return frames, rows


def cached_run(method: str, epochs: list[np.ndarray], seed: int, cache: Path | None, key: str) -> list[dict]:
    """`map_run`'s measures, read from `cache` when this method already mapped these activations."""
    path = None if cache is None else cache / f"{method}-{key}.json"
    if path is not None and path.exists():
        return json.loads(path.read_text())
    _, rows = map_run(method, epochs, seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
    return rows


def fingerprint(epochs: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for activations in epochs:
        digest.update(np.ascontiguousarray(activations).tobytes())
    return digest.hexdigest()[:16]


def warm_up(methods: list[str], epochs: list[np.ndarray]) -> None:
    """Compile (or load from numba's cache) everything each method runs, on a few thousand points."""
    for method in methods:
        # torch compiles nothing: a small set touches TorchDR's code paths (its cold fit costs minutes at 5,000)
        size = 1000 if "@torchdr" in method else 5000
        map_run(method, [activations[:size] for activations in epochs[:2]], seed=1)


def cpu_flags() -> str:
    """The vector units numba, faiss and torch can use here."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "flags unknown"
    have = set(flags.split(":", 1)[1].split())
    return ", ".join(name for name, flag in (("AVX2", "avx2"), ("AVX-512", "avx512f")) if flag in have) or "no AVX2"


def limit_threads(threads: int, methods: list[str]) -> None:
    """Every library's threads to `threads`, torch's too when a backend needs it (threadpoolctl reaches only the
    libraries already loaded)."""
    from threadpoolctl import threadpool_limits

    if any("@torchdr" in method for method in methods):
        import torch

        torch.set_num_threads(threads)
    threadpool_limits(threads)


def median(rows: list[dict], key: str) -> float:
    values = [row[key] for row in rows if row.get(key) is not None]
    return float(statistics.median(values)) if values else float("nan")


def frame_table(size: int, results: dict[str, list[dict]]) -> None:
    print(f"\n### {size:,} points: every frame\n")
    print("| method | frame | s | trust | cont. | 10-NN kept | map kept (sample / all) | layer kept | disparity | "
          "temporal ρ |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method, rows in results.items():
        for t, row in enumerate(rows):
            change = (f"{row['map_neighbors_kept']:.3f} / {row['map_neighbors_kept_all']:.3f} | "
                      f"{row['layer_neighbors_kept']:.3f} | {row['procrustes_disparity']:.4f} | "
                      f"{_maybe(row.get('temporal_correlation'))}") if t else "| | | "
            print(f"| {method} | {t} | {row['seconds']:.1f} | {row['trustworthiness']:.4f} | "
                  f"{row['continuity']:.4f} | {row['knn_preservation']:.3f} | {change} |")


def median_table(size: int, results: dict[str, list[dict]]) -> None:
    print(f"\n### {size:,} points: medians over the frames (changes: over frames 1 on)\n")
    print("| method | s / frame (mean) | s / frame (median) | trust | cont. | 10-NN kept | map kept | layer kept | "
          "map ÷ layer kept | disparity | temporal ρ |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for method, rows in results.items():
        changes = rows[1:]
        ratio = [row["map_neighbors_kept"] / row["layer_neighbors_kept"] for row in changes]
        ratio_median = statistics.median(ratio) if ratio else float("nan")
        print(f"| {method} | {np.mean([r['seconds'] for r in rows]):.2f} | {median(rows, 'seconds'):.2f} | "
              f"{median(rows, 'trustworthiness'):.4f} | {median(rows, 'continuity'):.4f} | "
              f"{median(rows, 'knn_preservation'):.3f} | {median(changes, 'map_neighbors_kept'):.3f} | "
              f"{median(changes, 'layer_neighbors_kept'):.3f} | {ratio_median:.2f} | "
              f"{median(changes, 'procrustes_disparity'):.4f} | {median(changes, 'temporal_correlation'):.2f} |")


def goals(size: int, results: dict[str, list[dict]]) -> bool:
    """Each method against the baseline, on issue 13's goals; True when every one is met."""
    baseline, *others = results
    base = results[baseline]
    met = True
    for method in others:
        rows = results[method]
        trust_gap = max(b["trustworthiness"] - r["trustworthiness"] for b, r in zip(base, rows))
        cont_gap = max(b["continuity"] - r["continuity"] for b, r in zip(base, rows))
        ratios = [r["map_neighbors_kept"] / r["layer_neighbors_kept"] for r in rows[1:]]
        kept = statistics.median(ratios) if ratios else float("nan")
        stiller = median(base[1:], "procrustes_disparity") / max(median(rows[1:], "procrustes_disparity"), 1e-12)
        # a run's frame after the first, as issue 3 measured it (the first is the article's own fit, in both)
        faster = np.mean([b["seconds"] for b in base[1:]]) / np.mean([r["seconds"] for r in rows[1:]])
        faster_all = np.mean([b["seconds"] for b in base]) / np.mean([r["seconds"] for r in rows])
        checks = [("trust within 0.005 on every frame", trust_gap <= GOAL_FAITHFUL, f"worst gap {trust_gap:+.4f}"),
                  ("continuity within 0.005 on every frame", cont_gap <= GOAL_FAITHFUL, f"worst gap {cont_gap:+.4f}"),
                  ("map kept ≥ 0.8 × layer kept (median over the changes)", kept >= GOAL_KEPT,
                   f"{kept:.2f}×; lowest {min(ratios, default=float('nan')):.2f}×, frame "
                   f"{int(np.argmin(ratios)) + 1 if ratios else 0}"),
                  ("disparity ≥ 5× lower", stiller >= GOAL_STILLER, f"{stiller:.0f}× lower"),
                  ("mean frame after the first ≥ 5× faster" + (" (goal at 60,000 points)" if size < 60000 else ""),
                   faster >= GOAL_FASTER or size < 60000,
                   f"{faster:.1f}× faster; {faster_all:.1f}× with the first frame, the same fit in both")]
        print(f"\n{method} against {baseline} at {size:,} points:")
        for name, ok, figure in checks:
            print(f"- {'met' if ok else 'NOT MET'}: {name} ({figure})")
            met &= bool(ok)
    return met


def override(setting: str) -> None:
    """NAME=VALUE: one of the aligned method's numeric settings (layerlapse.maps.project's, or the umap-learn
    backend's: WARM_EPOCHS), for this process."""
    from layerlapse.maps import project, umap_learn

    name, _, value = setting.partition("=")
    module = project if hasattr(project, name) else umap_learn
    current = getattr(module, name, None)
    if not name.isupper() or not isinstance(current, (int, float)):
        raise SystemExit(f"--set {setting}: not a numeric setting of layerlapse.maps.project or .umap_learn")
    setattr(module, name, type(current)(value))
    if module is umap_learn and name == "WARM_EPOCHS":  # the backend copied the constant when it was defined
        umap_learn.UmapLearnBackend.warm_epochs = umap_learn.WARM_EPOCHS
    print(f"setting {name} = {getattr(module, name)}")


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a stored run folder (any map method)")
    parser.add_argument("--layer", default=None, help="the layer to map (default: the run's first)")
    parser.add_argument("--sizes", default="10000,60000", help="probe sizes: the first N probe points (those larger "
                        "than the probe are left out)")
    parser.add_argument("--epochs", default="all", help="'all', or consecutive snapshots as FIRST-LAST")
    parser.add_argument("--methods", default="independent,aligned", help="the first is the baseline")
    parser.add_argument("--cache", type=Path, default=None, help="folder keeping the baseline's measures")
    parser.add_argument("--json", type=Path, default=None, help="also write every frame's measures here")
    parser.add_argument("--threads", type=int, default=1, help="threads for every library (default 1, as a run's "
                        "mapping worker)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="try another setting of the aligned method, e.g. --set MOBILE_FROM=0.2 --set "
                             "WARM_EPOCHS=40 (a constant of layerlapse.maps.project or .umap_learn)")
    args = parser.parse_args()
    for setting in args.set:
        override(setting)
    run = load_run(args.run)
    layer = args.layer or run.layers[0]
    last = run.epochs_complete
    first, final = (0, last) if args.epochs == "all" else map(int, args.epochs.split("-"))
    stored = [run.activations(layer, e).astype(np.float32) for e in range(first, final + 1)]
    stored = [x.reshape(len(x), -1) for x in stored]
    methods = args.methods.split(",")
    sizes = [s for s in (int(s) for s in args.sizes.split(",")) if s <= len(stored[0])]
    limit_threads(args.threads, methods)
    warm_up(methods, stored)
    print(f"# {datetime.date.today()} · {cpu_name()} ({cpu_flags()}) · {os.cpu_count()} cores, {args.threads} "
          f"thread(s) · load average {os.getloadavg()[0]:.1f} · run {args.run} · layer {layer} · "
          f"snapshots {first}-{final}")
    everything, all_met = {}, True
    for size in sizes:
        epochs = [activations[:size] for activations in stored]
        key = f"{size}-{fingerprint(epochs)}"
        results = {method: (cached_run(method, epochs, run.config.seed, args.cache, key) if i == 0
                            else map_run(method, epochs, run.config.seed)[1]) for i, method in enumerate(methods)}
        frame_table(size, results)
        median_table(size, results)
        all_met &= goals(size, results)
        print(f"\n(load average after {size:,} points: {os.getloadavg()[0]:.1f})")
        everything[str(size)] = results
        sys.stdout.flush()
    if args.json is not None:
        args.json.write_text(json.dumps(everything, indent=1))
    print(f"\nall goals {'met' if all_met else 'NOT met'}")


if __name__ == "__main__":
    main()
