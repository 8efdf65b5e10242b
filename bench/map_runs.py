"""The aligned map against a fresh UMAP on every frame of several stored runs: does a still map stay true?

    python bench/map_runs.py --run runs/demo --run runs/mnist:3000 --run runs/mnist:10000 --run runs/steps \
        --run runs/mlp --cache .cache/bench-map-runs

Each `--run FOLDER[:N]` maps the run's first recorded layer (or `FOLDER[:N]@LAYER`) over every snapshot, with its
first N probe points when N is given (the probe is a stratified sample, so its first N rows are one too). Each frame
is mapped twice, in order, with the code a run uses (`layerlapse.maps.timeline.LayerTimeline`): by the aligned method and
by the article's fresh, seeded UMAP of the same activations (the baseline; `--cache DIR` keeps its measures, which
layerlapse does not change). Per frame, on the run's 3,000-point quality sample as `quality.json` stores it:
trustworthiness and continuity (k = 10); on every point: 10-NN class agreement (the share of each point's 10 nearest
map neighbours of its own class; the layer's own is printed beside it) and, against the previous frame, the 10-NN
kept on the map and in the layer.

The goals (issue 25), each frame of each run against the fresh fit of the same activations:
- trustworthiness and continuity at most 0.005 below the fresh fit's;
- 10-NN class agreement at most 0.01 below the fresh fit's;
- the map's 10-NN kept ≥ 0.8 × the layer's, as the median over a run's changes.
The table prints each run's worst frame for each goal, and the frames that needed more freedom (their notes).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from maps import cpu_flags, cpu_name, limit_threads, override  # noqa: E402 - the bench's neighbour

from layerlapse.maps import faithfulness as metrics  # noqa: E402
from layerlapse.store.run import load_run  # noqa: E402
from layerlapse.maps.timeline import LayerTimeline  # noqa: E402

GOAL_FAITHFUL = 0.005
GOAL_CLASSES = 0.01
GOAL_KEPT = 0.8
K = 10


@dataclass
class StoredRun:
    name: str
    epochs: list[np.ndarray]
    labels: np.ndarray
    seed: int


def class_agreement(xy: np.ndarray, labels: np.ndarray, k: int = K) -> float:
    """The mean share of each point's k nearest neighbours (in `xy`, any width) that share its class."""
    neighbours = metrics.neighbor_indices(xy, k)
    return float((labels[neighbours] == labels[:, None]).mean())


def read_run(spec: str) -> StoredRun:
    spec, _, layer = spec.partition("@")
    folder, _, size = spec.partition(":")
    run = load_run(folder)
    layer = layer or run.layers[0]
    n = int(size) if size else None
    epochs = [np.asarray(run.activations(layer, e), dtype=np.float32)[:n] for e in range(run.epochs_complete + 1)]
    epochs = [x.reshape(len(x), -1) for x in epochs]
    name = f"{Path(folder).name}{':' + size if size else ''} ({layer}, {len(epochs[0]):,} points, " \
           f"{len(epochs)} snapshots)"
    return StoredRun(name, epochs, run.probe_labels()[:n], run.config.seed)


def map_frames(method: str, run: StoredRun) -> list[dict]:
    """Every frame of `run` by `method`, measured; the aligned method's notes kept."""
    timeline = LayerTimeline("bench", len(run.epochs[0]), method=method, n_neighbors=40, seed=run.seed)
    rows, previous = [], None
    for epoch, activations in enumerate(run.epochs):
        frame = timeline.next(epoch, activations)
        row = dict(frame.quality)
        row["class_agreement"] = class_agreement(frame.xy, run.labels)
        map_knn = metrics.neighbor_indices(frame.xy, K)
        if previous is not None:
            row["map_kept_all"] = metrics.shared_share(previous, map_knn)
        previous = map_knn
        rows.append(row)
    return rows


def fingerprint(run: StoredRun) -> str:
    digest = hashlib.sha256()
    for x in run.epochs:
        digest.update(np.ascontiguousarray(x).tobytes())
    return digest.hexdigest()[:16]


def fresh_frames(run: StoredRun, cache: Path | None) -> list[dict]:
    path = None if cache is None else cache / f"independent-{fingerprint(run)}.json"
    if path is not None and path.exists():
        return json.loads(path.read_text())
    rows = map_frames("independent", run)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
    return rows


def layer_agreement(run: StoredRun) -> list[float]:
    return [class_agreement(x, run.labels) for x in run.epochs]


def worst(gaps: list[float]) -> tuple[float, int]:
    at = int(np.argmax(gaps))
    return gaps[at], at


def judge(run: StoredRun, fresh: list[dict], aligned: list[dict], layer: list[float]) -> tuple[bool, str]:
    """The run's table row: its worst frame on each goal, and whether every goal is met."""
    trust = worst([f["trustworthiness"] - a["trustworthiness"] for f, a in zip(fresh, aligned)])
    cont = worst([f["continuity"] - a["continuity"] for f, a in zip(fresh, aligned)])
    classes = worst([f["class_agreement"] - a["class_agreement"] for f, a in zip(fresh, aligned)])
    ratios = [a["map_neighbors_kept"] / a["layer_neighbors_kept"] for a in aligned[1:]
              if a.get("layer_neighbors_kept")]
    kept = statistics.median(ratios) if ratios else float("nan")
    freed = sum(1 for a in aligned if any("drift" in note for note in a.get("notes", [])))
    ok = trust[0] <= GOAL_FAITHFUL and cont[0] <= GOAL_FAITHFUL and classes[0] <= GOAL_CLASSES and kept >= GOAL_KEPT
    last = len(aligned) - 1
    row = (f"| {run.name} | {trust[0]:+.4f} (frame {trust[1]}) | {cont[0]:+.4f} (frame {cont[1]}) | "
           f"{classes[0]:+.3f} (frame {classes[1]}) | {aligned[last]['class_agreement']:.3f} / "
           f"{fresh[last]['class_agreement']:.3f} / {layer[last]:.3f} | {kept:.2f}× | {freed} | "
           f"{np.mean([a['seconds'] for a in aligned[1:]]):.2f} / {np.mean([f['seconds'] for f in fresh[1:]]):.2f} | "
           f"{'met' if ok else 'NOT MET'} |")
    return ok, row


def frame_table(run: StoredRun, fresh: list[dict], aligned: list[dict], layer: list[float]) -> None:
    print(f"\n#### {run.name}\n")
    print("| frame | trust aligned / fresh | cont. aligned / fresh | classes aligned / fresh / layer | "
          "map kept / layer kept | notes |")
    print("|---|---|---|---|---|---|")
    for t, (a, f) in enumerate(zip(aligned, fresh)):
        change = f"{a['map_neighbors_kept']:.3f} / {a['layer_neighbors_kept']:.3f}" if t else ""
        print(f"| {t} | {a['trustworthiness']:.4f} / {f['trustworthiness']:.4f} | {a['continuity']:.4f} / "
              f"{f['continuity']:.4f} | {a['class_agreement']:.3f} / {f['class_agreement']:.3f} / {layer[t]:.3f} | "
              f"{change} | {'; '.join(a.get('notes', []))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, metavar="FOLDER[:N][@LAYER]")
    parser.add_argument("--cache", type=Path, default=None, help="folder keeping the fresh fits' measures")
    parser.add_argument("--frames", action="store_true", help="print every frame of every run too")
    parser.add_argument("--json", type=Path, default=None, help="write every frame's measures here")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="another setting of the aligned method (a constant of layerlapse.maps.project)")
    args = parser.parse_args()
    for setting in args.set:
        override(setting)
    limit_threads(1, [])
    print(f"# {datetime.date.today()} · {cpu_name()} ({cpu_flags()}) · {os.cpu_count()} cores, 1 thread · "
          f"load average {os.getloadavg()[0]:.1f}")
    rows, everything, all_met = [], {}, True
    for spec in args.run:
        started = time.perf_counter()
        run = read_run(spec)
        fresh, aligned, layer = fresh_frames(run, args.cache), map_frames("aligned", run), layer_agreement(run)
        if args.frames:
            frame_table(run, fresh, aligned, layer)
        ok, row = judge(run, fresh, aligned, layer)
        rows.append(row)
        all_met &= ok
        everything[spec] = {"aligned": aligned, "fresh": fresh, "layer_class_agreement": layer}
        print(f"({run.name}: {time.perf_counter() - started:.0f} s)", flush=True)
    print("\n| run | worst trust gap | worst cont. gap | worst class-agreement gap | last frame's classes "
          "(aligned / fresh / layer) | map ÷ layer kept (median) | frames freed after drift | s / warm frame "
          "(aligned / fresh) | goals |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(everything, indent=1))
    print(f"\nall goals {'met' if all_met else 'NOT met'}")


if __name__ == "__main__":
    main()
