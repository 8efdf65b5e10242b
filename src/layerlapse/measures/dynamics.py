"""What each probe image went through while the network learned, from its predicted probabilities at every snapshot.

- Dataset cartography (Swayamdipta et al., EMNLP 2020): confidence = the mean probability of the true class across
  the snapshots, variability = its standard deviation (population, as their code), correctness = the share of
  snapshots at which the prediction was right.
- Forgetting (Toneva et al., ICLR 2019): a forgetting event is a right → wrong transition between consecutive
  snapshots; an image learned at some snapshot and never forgotten afterwards is "unforgettable"; one never right is
  counted apart as never learned.
- When: the first snapshot at which each image was right, and the snapshot from which it stayed right to the end.

Only the snapshots of a network that has trained count: a run's untrained snapshot 0 guesses (a tenth of MNIST
right by chance), and counting it would turn lucky guesses into forgetting events. Pure numpy; `layerlapse.store.run`
supplies the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..store import layout
from ..errors import RunFolderError
from ..store.history import is_untrained
from ..store.run import RunFolder

NOT_YET = -1  # first_learned / learned_from of an image never right (or not right at the last snapshot)

# Dataset cartography's regions of the data map. Swayamdipta et al. select by rank, a third of the images each; ranks
# alone would call a third of MNIST "hard to learn" at a confidence of 0.98, and fixed cut-offs alone call 91 % of a
# run that starts near chance "ambiguous" (every image's probability rises through the range there). So the cut-offs
# are the fixed ones where the run's images hold still, and follow the run's own thirds of variability where its
# images vary more (region_cut_offs): ambiguous = the third that varied most, and never less than
# AMBIGUOUS_VARIABILITY; steady = the third that varied least, or everything under AMBIGUOUS_VARIABILITY; of the
# steady, easy to learn = confidently right (confidence >= EASY_CONFIDENCE), hard to learn = confidently wrong
# (<= HARD_CONFIDENCE). Images between the thirds, or steady at a middling confidence, are in no region.
AMBIGUOUS_VARIABILITY = 0.2
EASY_CONFIDENCE = 0.75
HARD_CONFIDENCE = 0.25
RUN_SHARE = 1 / 3  # the share of a run's images each of its rank cut-offs takes, as Swayamdipta et al. select
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
    `snapshots` numbers the t snapshots (default 0..t-1). Raises ValueError with the fix for shapes that do not fit.

    The measures are this module's: dataset cartography's confidence, variability and correctness, forgetting
    events, and when each image was first right and from when it stayed right. Pass the trained snapshots only
    (an untrained network's lucky guesses would count as forgetting).

    Parameters
    ----------
    probabilities : numpy.ndarray
        Predicted class probabilities, (t, n, classes): one (images, classes) array per snapshot, stacked.
    labels : numpy.ndarray
        Each image's true class index, (n,).
    snapshots : numpy.ndarray, optional
        The t snapshots' numbers, in order, which `first_learned` and `learned_from` give; default 0..t-1.

    Returns
    -------
    SampleDynamics
        Per image (n,): confidence, variability, correctness, first_learned, learned_from (NOT_YET, -1, where
        there is no such snapshot), forgetting_events, never_learned and unforgettable.

    Examples
    --------
    Two images over three snapshots: the first right, then wrong, then right again; the second always right.

    >>> import numpy as np
    >>> from layerlapse import sample_dynamics
    >>> probabilities = np.array([[[0.9, 0.1], [0.2, 0.8]],
    ...                           [[0.3, 0.7], [0.1, 0.9]],
    ...                           [[0.8, 0.2], [0.1, 0.9]]])
    >>> found = sample_dynamics(probabilities, np.array([0, 1]), snapshots=np.array([1, 2, 3]))
    >>> found.forgetting_events, found.learned_from, found.unforgettable
    (array([1, 0], dtype=int32), array([3, 1], dtype=int32), array([False,  True]))
    """
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


@dataclass(frozen=True)
class RegionCutOffs:
    """Where a run's data map splits into regions: variability >= ambiguous_from is ambiguous; variability <
    steady_below is steady, and then easy to learn (confidence >= easy_confidence) or hard to learn (<=
    hard_confidence); `swinging` counts the images at or past the fixed AMBIGUOUS_VARIABILITY, so that a run whose
    images nearly all swing says so even where the run's thirds moved the cut-offs."""

    ambiguous_from: float
    steady_below: float
    easy_confidence: float
    hard_confidence: float
    images: int
    swinging: int

    @property
    def follows_the_run(self) -> bool:
        """Whether the run's thirds moved a cut-off past the fixed one (its images varied more than it allows)."""
        return self.ambiguous_from > AMBIGUOUS_VARIABILITY or self.steady_below > AMBIGUOUS_VARIABILITY

    def definition(self) -> str:
        """The regions' definition in words, with this run's numbers: what the figure and the page state."""
        moved = " (the run's most varying third)" if self.ambiguous_from > AMBIGUOUS_VARIABILITY else ""
        steady_moved = " (its least varying third)" if self.steady_below > AMBIGUOUS_VARIABILITY else ""
        words = (f"ambiguous = variability ≥ {self.ambiguous_from:.3f}{moved}; easy / hard to learn = variability < "
                 f"{self.steady_below:.3f}{steady_moved} and confidence ≥ {self.easy_confidence:g} / ≤ "
                 f"{self.hard_confidence:g}")
        swinging = f"{self.swinging:,} of the {self.images:,} images ({self.swinging / max(self.images, 1):.0%})"
        if self.follows_the_run:
            return (f"{words}. {swinging} vary by ≥ {AMBIGUOUS_VARIABILITY:g}, the fixed cut-off, so the cut-offs "
                    "follow the run's own thirds of variability, as dataset cartography selects by thirds")
        return f"{words}: fixed cut-offs, as only {swinging} vary by ≥ {AMBIGUOUS_VARIABILITY:g}"

    def as_dict(self) -> dict:
        return {"ambiguous_from": round(self.ambiguous_from, 4), "steady_below": round(self.steady_below, 4),
                "easy_confidence": self.easy_confidence, "hard_confidence": self.hard_confidence,
                "images": self.images, "swinging": self.swinging, "follows_the_run": self.follows_the_run,
                "definition": self.definition()}


def region_cut_offs(variability: np.ndarray) -> RegionCutOffs:
    """The data map's cut-offs for a run, from its images' variability (see REGIONS above): the fixed ones where its
    images hold still, its own thirds where they vary more."""
    variability = _checked_measure(variability, "variability", 0.5)
    finite = variability[np.isfinite(variability)]
    if len(finite):
        least_third, most_third = np.quantile(finite.astype(np.float64), [RUN_SHARE, 1 - RUN_SHARE])
    else:
        least_third = most_third = AMBIGUOUS_VARIABILITY
    return RegionCutOffs(ambiguous_from=max(AMBIGUOUS_VARIABILITY, float(most_third)),
                         steady_below=max(AMBIGUOUS_VARIABILITY, float(least_third)),
                         easy_confidence=EASY_CONFIDENCE, hard_confidence=HARD_CONFIDENCE, images=len(variability),
                         swinging=int((finite >= AMBIGUOUS_VARIABILITY).sum()))


def cartography_regions(confidence: np.ndarray, variability: np.ndarray, cut_offs: RegionCutOffs | None = None
                        ) -> np.ndarray:
    """Each image's region of the data map as a REGIONS code (uint8), 0 where it is in none; `cut_offs` default to
    the run's own (region_cut_offs of this variability)."""
    confidence = _checked_measure(confidence, "confidence", 1.0)
    variability = _checked_measure(variability, "variability", 0.5)
    if confidence.shape != variability.shape:
        raise ValueError(f"confidence has {confidence.shape[0]} images but variability {variability.shape[0]}: pass "
                         "the two measures of the same images (one SampleDynamics)")
    cut_offs = region_cut_offs(variability) if cut_offs is None else cut_offs
    regions = np.zeros(len(confidence), dtype=np.uint8)
    steady = variability < cut_offs.steady_below
    regions[variability >= cut_offs.ambiguous_from] = REGIONS["ambiguous"]
    regions[steady & (confidence >= cut_offs.easy_confidence)] = REGIONS["easy"]
    regions[steady & (confidence <= cut_offs.hard_confidence)] = REGIONS["hard"]
    return regions


def region_counts(regions: np.ndarray) -> dict[str, int]:
    """How many images each region holds, and how many are in none."""
    counts = np.bincount(np.asarray(regions, dtype=np.int64), minlength=max(REGIONS.values()) + 1)
    return {**{name: int(counts[code]) for name, code in REGIONS.items()}, "none": int(counts[0])}


def _checked_measure(values: np.ndarray, name: str, most: float) -> np.ndarray:
    """A per-image measure as a 1-D array within [0, most] (NaN allowed: no region), or the one-line error."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one value per image, shape (n,), got {values.shape}: pass "
                         f"SampleDynamics.{name}")
    outside = np.isfinite(values) & ((values < 0) | (values > most + 1e-6))
    if outside.any():
        raise ValueError(f"{name} must lie in [0, {most:g}] (it is computed from probabilities), found "
                         f"{float(values[outside][0]):g}: pass the {name} that sample_dynamics computed")
    return values


def probe_dynamics(run: RunFolder) -> SampleDynamics | None:
    """The probe's dynamics over a run's trained snapshots, read from its stored predictions; None where there is
    nothing to compute them from (a run that recorded no predictions, or fewer than two trained snapshots: one
    snapshot has no dynamics).

    Parameters
    ----------
    run : RunFolder
        The run, from `load_run`; only read.

    Returns
    -------
    SampleDynamics or None
        Per probe image, in the probe's order (`sample_dynamics`); its `snapshots` are the trained ones counted.

    Raises
    ------
    RunFolderError
        The stored predictions do not fit the probe's labels (a model of one's own whose outputs are not scores
        for the probe's classes).

    Examples
    --------
    The run of `run_experiment`'s example:

    >>> from layerlapse import load_run, probe_dynamics
    >>> found = probe_dynamics(load_run("runs/digits"))
    >>> found.snapshots
    array([1, 2])
    """
    return _dynamics(run, layout.predictions, run.probe_labels, "probe")


def test_probe_dynamics(run: RunFolder) -> SampleDynamics | None:
    """The same for the test probe (test images recorded at every snapshot), where the run has one.

    Parameters
    ----------
    run : RunFolder
        The run, from `load_run`; only read.

    Returns
    -------
    SampleDynamics or None
        Per test-probe image, in its order; None for a run without a test probe or with fewer than two trained
        snapshots of its predictions.

    Raises
    ------
    RunFolderError
        The stored predictions do not fit the test probe's labels.
    """
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
    layer the snapshots where its representation changed most (`layerlapse.measures.layers`: 1 − linear CKA to the
    snapshot before, with the share of 10-NN kept). Raises RunFolderError when the run has fewer than two trained
    snapshots with predictions."""
    from .layers import layer_measures, what_changed_when

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
        "regions": region_summary(found),
        **ranked_images(run, found, top),
        "largest_change": {} if measures is None else {layer: changes[:top] for layer, changes
                                                        in what_changed_when(measures).items()},
        "layer_accuracy": {} if measures is None else _last_accuracies(measures),
    }


def region_summary(found: SampleDynamics) -> dict:
    """The data map's cut-offs for these dynamics, their definition in words and how many images each region holds."""
    cut_offs = region_cut_offs(found.variability)
    return {**cut_offs.as_dict(),
            "counts": region_counts(cartography_regions(found.confidence, found.variability, cut_offs))}


def _last_accuracies(measures: dict) -> dict[str, dict]:
    """Each layer's k-NN and linear-probe accuracy at the last snapshot."""
    return {layer: {"snapshot": measures["snapshots"][-1], "title": measures["titles"][-1],
                    "knn_accuracy": found["knn_accuracy"][-1],
                    "linear_probe_accuracy": found["linear_probe_accuracy"][-1],
                    "knn_k": measures["knn_k"], "sample_size": measures["sample_size"]}
            for layer, found in measures["layers"].items()}


def ranked_images(run: RunFolder, found: SampleDynamics, top: int) -> dict[str, list[dict]]:
    """The `top` hardest, most forgotten and latest-learned probe images (as `ranked` orders them), each with its
    label, final prediction and measures (and its text, where the run stored texts): what `layerlapse dynamics`
    prints and the report's strips show."""
    names = run.class_names
    labels = run.probe_labels()
    final = run.predictions(int(found.snapshots[-1])).argmax(axis=1)
    texts = run.probe_texts()

    def rows(order: np.ndarray) -> list[dict]:
        return [{"index": int(i), "label": _name(names, labels[i]), "predicted": _name(names, final[i]),
                 "confidence": round(float(found.confidence[i]), 4),
                 "variability": round(float(found.variability[i]), 4),
                 "correctness": round(float(found.correctness[i]), 4),
                 "forgetting_events": int(found.forgetting_events[i]),
                 "first_learned": int(found.first_learned[i]), "learned_from": int(found.learned_from[i]),
                 **({} if texts is None else {"text": texts[i]})}
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
