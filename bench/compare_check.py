"""The comparison's measures on big runs, against a fresh computation: for a few snapshots, CKA between the runs'
first layers (representation.linear_cka on the same 2,000-item sample) and the 10-nearest-neighbour overlap of a few
hundred items (scikit-learn's NearestNeighbors over the neighbour sample), read from the runs' own files; and
prediction agreement from their prediction files. The tests do the same on small runs (tests/comparison).

    python bench/compare_check.py RUN_A RUN_B [--snapshots 0 8 15] [--items 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs=2)
    parser.add_argument("--snapshots", type=int, nargs="+", default=[0, 8, 15])
    parser.add_argument("--items", type=int, default=300, help="items whose neighbours are checked per snapshot")
    args = parser.parse_args()
    from sklearn.neighbors import NearestNeighbors

    from layerlapse import compare, load_run
    from layerlapse.comparison.measures import neighbour_sample
    from layerlapse.measures.representation import MEASURE_SAMPLE, linear_cka, measure_sample
    from layerlapse.store import layout

    runs = [load_run(path) for path in args.runs]
    with tempfile.TemporaryDirectory() as folder:
        out = compare(args.runs, Path(folder) / "out")
        measured = json.loads((out / "measures.json").read_text())
        with np.load(out / "items.npz", allow_pickle=False) as items:
            overlap = items["pair0_1_overlap_0_0"]
    n = len(runs[0].probe_labels())
    cka_rows, near_rows = measure_sample(n, 0, MEASURE_SAMPLE), neighbour_sample(n, 0)
    picked = np.random.default_rng(1).choice(len(near_rows), size=min(args.items, len(near_rows)), replace=False)
    labels = runs[0].probe_labels()
    layers = [run.layers[0] for run in runs]
    pair = measured["pairs"][0]
    for snapshot in args.snapshots:
        x = [np.asarray(run.activations(layer, snapshot), dtype=np.float64) for run, layer in zip(runs, layers)]
        cka = linear_cka(x[0][cka_rows], x[1][cka_rows])
        near = [NearestNeighbors(n_neighbors=11).fit(a[near_rows]).kneighbors(a[near_rows][picked],
                                                                            return_distance=False)[:, 1:]
                for a in x]
        fresh = np.array([len(set(a) & set(b)) for a, b in zip(*near)])
        stored = overlap[snapshot][near_rows[picked]]
        predicted = [run.predictions(snapshot).argmax(1) for run in runs]
        both = np.mean((predicted[0] == labels) & (predicted[1] == labels))
        print(f"snapshot {snapshot}: CKA stored {pair['cka']['per_snapshot'][snapshot][0][0]:.6f} fresh {cka:.6f}; "
              f"10-NN overlap of {len(picked)} items equal in {np.mean(stored == fresh):.3f} (mean stored "
              f"{stored.mean():.3f}, fresh {fresh.mean():.3f}); both right stored "
              f"{pair['agreement'][snapshot]['both_right']:.4f} fresh {both:.4f}")


if __name__ == "__main__":
    main()
