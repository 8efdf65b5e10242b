"""What differs between joined runs, measured: every run's maps turned onto the first's, its predictions and
per-item dynamics on the shared items, and for every pair of runs, per matched snapshot, linear CKA between every
layer of one and every layer of the other, each item's 10-nearest-neighbour overlap between every pair of their
layers, and whether each got it right.

Memory stays bounded whatever the probe's size: a snapshot's activations are read one run and layer at a time, and
only what the measures keep is held: a Gram matrix of the CKA sample (MEASURE_SAMPLE items) and the neighbour lists
of the neighbour sample (NEIGHBOUR_ITEMS items) per run and layer, for one snapshot at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..measures.dynamics import SampleDynamics, sample_dynamics
from ..measures.representation import MEASURE_SAMPLE, measure_sample
from ..report.content import pack_predictions
from ..store import layout
from ..store.history import is_untrained
from .._util.progress import progress_bar
from .join import JoinedRuns
from .measures import (NEIGHBOUR_ITEMS, NEIGHBOUR_K, agreement, apply_turn, cka_grams, cka_matrix, nearest_neighbours,
                       neighbour_overlap, neighbour_sample, orthogonal_turn, turn_disparity)

SAMPLE_SEED = 0  # the CKA and neighbour samples: the same items for every run, layer and snapshot


@dataclass
class PairMeasures:
    """Two runs, left and right (indices into the joined runs), per matched snapshot."""

    left: int
    right: int
    cka: np.ndarray  # (frames, left layers, right layers) float64
    overlap: dict[tuple[int, int], np.ndarray]  # (left layer, right layer) -> (frames, items) uint8, 255: not measured
    agreement: np.ndarray  # (frames, items) uint8 codes of measures.AGREEMENT


@dataclass
class Compared:
    """The joined runs and every measure of them that the page, the figures and measures.json show."""

    joined: JoinedRuns
    coords: list[dict[str, np.ndarray]]  # per run, layer -> (frames, items, 2) float32, turned onto the first run's
    disparity: list[dict[str, list[float]]]  # per run, layer -> per frame, how far the turned map is from the first's
    turned_onto: list[dict[str, str]]  # per run, layer -> the first run's layer it was turned onto
    predicted: list[np.ndarray]  # per run (frames, items) argmax class
    confidence: list[np.ndarray]  # per run (frames, items) uint8
    dynamics: list[SampleDynamics]  # per run, over its trained matched snapshots (numbered by frame)
    pairs: list[PairMeasures]
    cka_items: int
    neighbour_items: np.ndarray  # the items whose neighbours were measured (all of them up to NEIGHBOUR_ITEMS)
    frame_titles: list[str]
    trained: list[int] = field(default_factory=list)  # the frames that count for the dynamics

    def pair(self, left: int, right: int) -> PairMeasures:
        return next(pair for pair in self.pairs if (pair.left, pair.right) == (left, right))

    def matched_history(self, k: int) -> tuple[list[dict], list[int]]:
        """Run k's history rows of its matched snapshots, and the comparison's frame of each (the curves' x)."""
        frame_of = {snapshots[k]: frame for frame, snapshots in enumerate(self.joined.frames)}
        rows = [row for row in self.joined.runs[k].history if row.get("snapshot") in frame_of]
        return rows, [frame_of[row["snapshot"]] for row in rows]


def measure(joined: JoinedRuns, *, neighbour_items: int = NEIGHBOUR_ITEMS, show_progress: bool = False) -> Compared:
    """Measure the joined runs (see the module's docstring); neighbours are found among at most `neighbour_items`
    items (a seeded sample beyond)."""
    coords, disparity, turned_onto = _turned_maps(joined)
    predicted, confidence, probabilities = _predictions(joined)
    trained = [frame for frame, snapshots in enumerate(joined.frames)
               if not is_untrained(joined.runs[0].manifest, snapshots[0])] or list(range(len(joined.frames)))
    dynamics = [sample_dynamics(found[trained], joined.labels, np.array(trained)) for found in probabilities]
    pairs, cka_items, near_rows = _pair_measures(joined, predicted, neighbour_items, show_progress)
    titles = [joined.runs[0].snapshot_title(snapshots[0]) for snapshots in joined.frames]
    return Compared(joined, coords, disparity, turned_onto, predicted, confidence, dynamics, pairs, cka_items,
                    near_rows, titles, trained)


def _turned_maps(joined: JoinedRuns) -> tuple[list, list, list]:
    """Every run's maps on the shared items; the other runs' turned (rotated or reflected, and moved; never
    stretched) onto the first's layer of the same name (else its first layer), by one turn per layer fitted on the
    last matched snapshot, so that each run's lapse stays its own."""
    first = joined.runs[0]
    coords, disparity, turned_onto = [], [], []
    for k, (run, rows) in enumerate(zip(joined.runs, joined.rows)):
        maps, apart, onto = {}, {}, {}
        for layer in run.layers:
            frames = np.stack([run.read_xy(layout.map_file(layer, snapshots[k]), len(run.probe_labels()))[rows]
                               for snapshots in joined.frames]).astype(np.float64)
            target = layer if layer in first.layers else first.layers[0]
            if k > 0:
                fixed = coords[0][target]
                turn = orthogonal_turn(frames[-1], fixed[-1])
                frames = apply_turn(frames, turn)
                apart[layer] = [turn_disparity(frame, fixed_frame) for frame, fixed_frame in zip(frames, fixed)]
            else:
                apart[layer] = [0.0] * len(frames)
            maps[layer], onto[layer] = frames.astype(np.float32), target
        coords.append(maps)
        disparity.append(apart)
        turned_onto.append(onto)
    return coords, disparity, turned_onto


def _predictions(joined: JoinedRuns) -> tuple[list, list, list]:
    predicted, confidence, probabilities = [], [], []
    for k, (run, rows) in enumerate(zip(joined.runs, joined.rows)):
        found = np.stack([run.predictions(snapshots[k])[rows].astype(np.float32) for snapshots in joined.frames])
        classes, sure = pack_predictions(list(found))
        predicted.append(classes)
        confidence.append(sure)
        probabilities.append(found)
    return predicted, confidence, probabilities


def _pair_measures(joined: JoinedRuns, predicted: list[np.ndarray], neighbour_items: int, show_progress: bool
                   ) -> tuple[list[PairMeasures], int, np.ndarray]:
    n_runs, n_frames, items = len(joined.runs), len(joined.frames), joined.n_items
    cka_rows = measure_sample(items, SAMPLE_SEED, MEASURE_SAMPLE)
    near_rows = neighbour_sample(items, SAMPLE_SEED, neighbour_items)
    pairs = [PairMeasures(i, j, np.zeros((n_frames, len(joined.runs[i].layers), len(joined.runs[j].layers))), {},
                          agreement(predicted[i], predicted[j], joined.labels))
             for i in range(n_runs) for j in range(i + 1, n_runs)]
    for pair in pairs:
        for a in range(len(joined.runs[pair.left].layers)):
            for b in range(len(joined.runs[pair.right].layers)):
                pair.overlap[(a, b)] = np.full((n_frames, items), 255, dtype=np.uint8)
    steps = n_frames * sum(len(run.layers) for run in joined.runs)
    with progress_bar("comparing", steps, enabled=show_progress) as advance:
        for frame in range(n_frames):
            grams, neighbours = _frame_measures(joined, frame, cka_rows, near_rows, _positions_in(near_rows, cka_rows),
                                                advance)
            for pair in pairs:
                pair.cka[frame] = cka_matrix(grams[pair.left], grams[pair.right])
                for (a, b), overlap in pair.overlap.items():
                    overlap[frame, near_rows] = neighbour_overlap(neighbours[pair.left][a], neighbours[pair.right][b])
    return pairs, len(cka_rows), near_rows


def _positions_in(near_rows: np.ndarray, cka_rows: np.ndarray) -> np.ndarray | None:
    """Where each CKA item sits among the neighbour sample's (both sorted), or None where some is not in it."""
    found = np.minimum(np.searchsorted(near_rows, cka_rows), len(near_rows) - 1)
    return found if np.array_equal(near_rows[found], cka_rows) else None


def _frame_measures(joined: JoinedRuns, frame: int, cka_rows: np.ndarray, near_rows: np.ndarray,
                    cka_in_near: np.ndarray | None, advance) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """Per run and layer at one matched snapshot: the Gram matrix of the CKA sample and the neighbour lists of the
    neighbour sample, reading only those rows (the CKA sample from the rows read already, where it lies in them)."""
    grams, neighbours = [], []
    for k, (run, rows) in enumerate(zip(joined.runs, joined.rows)):
        run_grams, run_neighbours = [], []
        for layer in run.layers:
            relpath = layout.activations(layer, joined.frames[frame][k])
            x = run.read_rows(relpath, rows[near_rows]).reshape(len(near_rows), -1)
            run_neighbours.append(nearest_neighbours(x, NEIGHBOUR_K))
            if cka_in_near is not None:
                sample = x[cka_in_near]
            else:
                sample = run.read_rows(relpath, rows[cka_rows]).reshape(len(cka_rows), -1)
            run_grams.append(cka_grams(sample))
            advance()
        grams.append(run_grams)
        neighbours.append(run_neighbours)
    return grams, neighbours
