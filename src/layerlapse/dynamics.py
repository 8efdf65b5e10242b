"""What each probe image went through while the network learned, from its predicted probabilities at every snapshot.

- Dataset cartography (Swayamdipta et al., EMNLP 2020): confidence = the mean probability of the true class across
  the snapshots, variability = its standard deviation (population, as their code), correctness = the share of
  snapshots at which the prediction was right.
- Forgetting (Toneva et al., ICLR 2019): a forgetting event is a right → wrong transition between consecutive
  snapshots; an image learned at some snapshot and never forgotten afterwards is "unforgettable"; one never right is
  counted apart as never learned.
- When: the first snapshot at which each image was right, and the snapshot from which it stayed right to the end.

Only the snapshots of a network that has trained count: a run's untrained snapshot 0 guesses (a tenth of MNIST
right by chance), and counting it would turn lucky guesses into forgetting events. Pure numpy; `layerlapse.store`
supplies the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import layout
from .errors import RunFolderError
from .store import RunFolder, is_untrained

NOT_YET = -1  # first_learned / learned_from of an image never right (or not right at the last snapshot)

# Dataset cartography's regions of the data map, with fixed cut-offs so that a region means the same in every run:
# Swayamdipta et al. pick training subsets by rank (a third each), which on MNIST would call a third of the images
# "hard to learn" at a confidence of 0.98. Ambiguous: the true class's probability swings (variability ≥ 0.2); of the
# rest, easy to learn: confidently right (confidence ≥ 0.75), hard to learn: confidently wrong (≤ 0.25).
AMBIGUOUS_VARIABILITY = 0.2
EASY_CONFIDENCE = 0.75
HARD_CONFIDENCE = 0.25
REGIONS = {"easy": 1, "ambiguous": 2, "hard": 3}  # codes; 0 is no region


@dataclass(frozen=True)
class SampleDynamics:
    """Per image (n,): the measures above, and the snapshot numbers they were computed over."""

    snapshots: np.ndarray  # (t,) the snapshots counted, in order
    confidence: np.ndarray  # float32
    variability: np.ndarray  # float32
    correctness: np.ndarray  # float32, share of snapshots right
    first_learned: np.ndarray  # int32 snapshot number, NOT_YET if never right
    learned_from: np.ndarray  # int32 snapshot number from which it stayed right; NOT_YET if wrong at the last
    forgetting_events: np.ndarray  # int32
    never_learned: np.ndarray  # bool
    unforgettable: np.ndarray  # bool: learned at some snapshot and never forgotten

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Every field, for an .npz without pickle."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def sample_dynamics(probabilities: np.ndarray, labels: np.ndarray, snapshots: np.ndarray | None = None
                    ) -> SampleDynamics:
    """From predicted probabilities (t snapshots, n images, classes) and true labels (n,): each image's dynamics.
    `snapshots` numbers the t snapshots (default 0..t-1). Raises ValueError with the fix for shapes that do not fit."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    if probabilities.ndim != 3:
        raise ValueError(f"predicted probabilities must be (snapshots, images, classes), got shape "
                         f"{probabilities.shape}: stack one (images, classes) array per snapshot")
    t, n, classes = probabilities.shape
    if t < 1:
        raise ValueError("no snapshots to compute dynamics from: record at least one trained snapshot")
    if labels.shape != (n,):
        raise ValueError(f"{n} images have predictions but {labels.shape} labels were given: pass one label per image")
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must be class indices 0..{classes - 1}, found {labels.min()}..{labels.max()}")
    snapshots = np.arange(t) if snapshots is None else np.asarray(snapshots, dtype=np.int64)
    if snapshots.shape != (t,):
        raise ValueError(f"{t} snapshots of predictions but {len(snapshots)} snapshot numbers")
    true_class = np.take_along_axis(probabilities, labels[None, :, None].astype(np.int64), axis=2)[:, :, 0]
    true_class = true_class.astype(np.float64)
    right = probabilities.argmax(axis=2) == labels[None, :]  # (t, n)
    forgotten = right[:-1] & ~right[1:]
    ever = right.any(axis=0)
    first = np.where(ever, snapshots[right.argmax(axis=0)], NOT_YET)
    # the last wrong snapshot; the image stayed right from the one after it (if it is right at the end)
    wrong = ~right
    last_wrong = np.where(wrong.any(axis=0), t - 1 - wrong[::-1].argmax(axis=0), -1)
    stayed = np.where(right[-1], snapshots[np.minimum(last_wrong + 1, t - 1)], NOT_YET)
    return SampleDynamics(
        snapshots=snapshots,
        confidence=true_class.mean(axis=0).astype(np.float32),
        variability=true_class.std(axis=0).astype(np.float32),
        correctness=right.mean(axis=0).astype(np.float32),
        first_learned=first.astype(np.int32),
        learned_from=stayed.astype(np.int32),
        forgetting_events=forgotten.sum(axis=0).astype(np.int32),
        never_learned=~ever,
        unforgettable=ever & ~forgotten.any(axis=0),
    )


def cartography_regions(confidence: np.ndarray, variability: np.ndarray) -> np.ndarray:
    """Each image's region of the data map as a REGIONS code (uint8), 0 where it is in none."""
    confidence, variability = np.asarray(confidence), np.asarray(variability)
    regions = np.zeros(len(confidence), dtype=np.uint8)
    steady = variability < AMBIGUOUS_VARIABILITY
    regions[~steady] = REGIONS["ambiguous"]
    regions[steady & (confidence >= EASY_CONFIDENCE)] = REGIONS["easy"]
    regions[steady & (confidence <= HARD_CONFIDENCE)] = REGIONS["hard"]
    return regions


def probe_dynamics(run: RunFolder) -> SampleDynamics | None:
    """The probe's dynamics over a run's trained snapshots, read from its stored predictions; None where there is
    nothing to compute them from (a run that recorded no predictions, or fewer than two trained snapshots: one
    snapshot has no dynamics)."""
    return _dynamics(run, layout.predictions, run.probe_labels, "probe")


def test_probe_dynamics(run: RunFolder) -> SampleDynamics | None:
    """The same for the test probe (test images recorded at every snapshot), where the run has one."""
    if not run.has(layout.TEST_PROBE_LABELS):
        return None
    return _dynamics(run, layout.test_probe_predictions, lambda: run.labels(layout.TEST_PROBE_LABELS), "test probe")


def _dynamics(run: RunFolder, predictions, read_labels, name: str) -> SampleDynamics | None:
    trained = [index for index in range(run.epochs_complete + 1)
               if not is_untrained(run.manifest, index) and run.has(predictions(index))]
    if len(trained) < 2:
        return None
    probabilities = np.stack([run.read_array(predictions(index)) for index in trained])
    try:
        return sample_dynamics(probabilities, read_labels(), snapshots=np.asarray(trained))
    except ValueError as error:  # a user's run whose outputs are not scores for the probe's classes
        raise RunFolderError(f"run folder {run.path}: its stored {name} predictions do not fit its labels, so there "
                             f"are no per-image dynamics ({error})") from None


def summary(run: RunFolder, top: int = 10) -> dict:
    """What `layerlapse dynamics` shows: counts, the hardest, most forgotten and latest-learned probe images, and per
    layer the snapshots where its representation changed most (`layerlapse.measures`: 1 − linear CKA to the snapshot
    before, with the share of 10-NN kept). Raises RunFolderError when the run has fewer than two trained snapshots
    with predictions."""
    from .measures import layer_measures, what_changed_when

    found = probe_dynamics(run)
    if found is None:
        raise RunFolderError(f"run folder {run.path} has fewer than two trained snapshots with stored predictions, so "
                             "there are no dynamics: record at least two trained snapshots with predictions (the "
                             "built-in run and the Recorder store them when the model gives class scores)")
    measures = layer_measures(run)
    return {
        "run": str(run.path), "images": len(found.confidence), "snapshots": [int(s) for s in found.snapshots],
        "never_learned": int(found.never_learned.sum()), "unforgettable": int(found.unforgettable.sum()),
        "forgotten_at_least_once": int((found.forgetting_events > 0).sum()),
        **ranked_images(run, found, top),
        "largest_change": {} if measures is None else {layer: changes[:top] for layer, changes
                                                        in what_changed_when(measures).items()},
        "layer_accuracy": {} if measures is None else _last_accuracies(measures),
    }


def _last_accuracies(measures: dict) -> dict[str, dict]:
    """Each layer's k-NN and linear-probe accuracy at the last snapshot."""
    return {layer: {"snapshot": measures["snapshots"][-1], "title": measures["titles"][-1],
                    "knn_accuracy": found["knn_accuracy"][-1],
                    "linear_probe_accuracy": found["linear_probe_accuracy"][-1],
                    "knn_k": measures["knn_k"], "sample_size": measures["sample_size"]}
            for layer, found in measures["layers"].items()}


def ranked_images(run: RunFolder, found: SampleDynamics, top: int) -> dict[str, list[dict]]:
    """The `top` hardest, most forgotten and latest-learned probe images (as `ranked` orders them), each with its
    label, final prediction and measures: what `layerlapse dynamics` prints and the report's strips show."""
    names = run.class_names
    labels = run.probe_labels()
    final = run.predictions(int(found.snapshots[-1])).argmax(axis=1)

    def rows(order: np.ndarray) -> list[dict]:
        return [{"index": int(i), "label": _name(names, labels[i]), "predicted": _name(names, final[i]),
                 "confidence": round(float(found.confidence[i]), 4),
                 "variability": round(float(found.variability[i]), 4),
                 "correctness": round(float(found.correctness[i]), 4),
                 "forgetting_events": int(found.forgetting_events[i]),
                 "first_learned": int(found.first_learned[i]), "learned_from": int(found.learned_from[i])}
                for i in order[:top]]

    return {name: rows(order) for name, order in ranked(found).items()}


def ranked(found: SampleDynamics) -> dict[str, np.ndarray]:
    """The probe images in the orders `layerlapse dynamics` and the report list them: hardest (lowest confidence),
    most forgotten (most forgetting events, then least confident), latest learned (the latest snapshot from which
    they stayed right, then least confident); ties by index."""
    n = len(found.confidence)
    learned = np.flatnonzero(found.learned_from != NOT_YET)
    return {"hardest": np.lexsort((np.arange(n), found.confidence)),
            "most_forgotten": np.lexsort((np.arange(n), found.confidence, -found.forgetting_events)),
            "latest_learned": learned[np.lexsort((learned, found.confidence[learned], -found.learned_from[learned]))]}


def _name(names: list[str], label: int) -> str:
    return names[int(label)] if 0 <= int(label) < len(names) else str(int(label))
