"""What the report shows, read from a stored run folder: `read_content` gives a `ReportContent` of plain values and
numpy arrays (the probe's and test probe's `Points`, the texts, curves, measures), which pack.py turns into the
page's payload. Predictions and per-image dynamics are held here as the bytes the page reads (one byte a value).

Torch is never imported here: a stored run folder is all the report needs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import RunFolderError, not_recorded
from ..measures.dynamics import REGIONS as REGION_CODES
from ..measures.dynamics import cartography_regions, region_summary
from ..store import layout
from ..store.history import curve_axis, is_untrained
from ..store.images import stored_pixels
from ..store.run import RunFolder
from .style import correctness_palette

if TYPE_CHECKING:
    from ..measures.dynamics import SampleDynamics

VARIABILITY_MAX = 0.5  # a probability's standard deviation is at most 0.5: variability / 0.5 × 255 fills a byte
# Dataset cartography's regions (layerlapse.measures.dynamics.cartography_regions: the run's cut-offs), codes and names
REGIONS = {key: (REGION_CODES[key], name)
           for key, name in (("easy", "easy to learn"), ("ambiguous", "ambiguous"), ("hard", "hard to learn"))}
STRIP_SIZE = 12  # images in each of the hardest and most forgotten strips


@dataclass(frozen=True)
class Points:
    """One set of points on the map (the probe, or the test probe), as the page needs them."""

    labels: np.ndarray  # (n,) class index
    coords: dict[str, np.ndarray]  # layer -> (frames, n, 2) float32; NaN where a frame does not draw the point
    images: np.ndarray | None  # (n, height, width[, 3]) uint8
    predicted: np.ndarray | None  # (frames, n) argmax class
    confidence: np.ndarray | None  # (frames, n) uint8: the predicted class's probability × 255
    rows: np.ndarray  # (n,) each point's row in the run folder's arrays (the page names points by it)
    dynamics: dict[str, np.ndarray] | None = None  # name -> (n,) uint8, as `pack_dynamics` packs them
    # more per point, each array's last axis the points' (a comparison's per-run predictions, its overlaps, …)
    extra: dict[str, np.ndarray] | None = None
    texts: list[str] | None = None  # (n,) each item's text where the run stored texts (`RunFolder.probe_texts`)
    # (n,) where each item sits in its dataset, where the run stored it (the page's search finds items by it too)
    dataset_index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Points:
        def pick(values: np.ndarray | None, axis: int) -> np.ndarray | None:
            return None if values is None else np.take(values, rows, axis=axis)

        def pick_all(arrays: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
            return None if arrays is None else {name: np.take(values, rows, axis=-1) for name, values in arrays.items()}

        return Points(self.labels[rows], {layer: xy[:, rows] for layer, xy in self.coords.items()},
                      pick(self.images, 0), pick(self.predicted, 1), pick(self.confidence, 1), self.rows[rows],
                      pick_all(self.dynamics), pick_all(self.extra),
                      None if self.texts is None else [self.texts[int(row)] for row in rows],
                      pick(self.dataset_index, 0))


@dataclass(frozen=True)
class ReportContent:
    """Everything the page shows, read from the run folder."""

    title: str
    summary: str
    class_names: list[str]
    epochs: list[int]
    layers: list[str]
    limits: dict[str, tuple[float, float, float, float]]  # layer -> x0, x1, y0, y1 over all its frames
    probe: Points
    test: Points | None
    probe_total: int
    test_total: int
    history: list[dict]
    confusion: np.ndarray | None  # (frames, classes, classes) of the whole probe: rows true, columns predicted
    epoch_figures: list[str]  # one line per frame: accuracy
    layer_figures: dict[str, list[str]]  # layer -> one line per frame: faithfulness measures and notes
    notes: list[str]
    seed: int
    slider_title: str = "epoch"  # "snapshot" for a run recorded every N steps: the frame's words give step and epoch
    # what the map can be coloured by besides class; the hardest and most forgotten images (dynamics.ranked_images)
    color_measures: list[dict] = dataclasses.field(default_factory=list)
    strips: dict[str, list[dict]] = dataclasses.field(default_factory=dict)
    measures: dict | None = None  # the layer measures, per page frame (`_page_measures`)
    regions: dict | None = None  # the data map's cut-offs, definition and counts (`dynamics.region_summary`)
    test_images: int = 0  # the run's whole test set, of which the test points are the recorded probe
    # each history row's x on the curves, each snapshot's, the axis' name (`store.curve_axis`); None: the epoch
    curve_axis: tuple[list[float], list[float], str] | None = None
    # a comparison of runs (layerlapse.compare): its runs, the run of each layer, what the page shows of them
    comparison: dict | None = None
    tokens: bool = False  # the points are tokens (a run recorded with reduce="tokens"), not items


def read_content(run: RunFolder, layers: list[str]) -> ReportContent:
    """Read the run folder into what the page shows; a one-line RunFolderError when something needed is missing."""
    epochs, unmapped_note = _mapped_epochs(run, layers)
    class_names = [str(name) for name in run.manifest["dataset"]["class_names"]]
    notes = [note for note in [unmapped_note] if note]
    found = _probe_dynamics(run, notes)
    probe = _read_points(run, False, layers, epochs)
    if found is not None:
        probe = dataclasses.replace(probe, dynamics=pack_dynamics(found))
    test = _read_points(run, True, layers, epochs) if run.has(layout.TEST_PROBE_LABELS) else None
    if test is not None and not test.coords:
        test = None  # recorded, but not placed on the maps of these layers
    if not run.history:
        notes.append("this run has no training history, so the page has no accuracy and loss curves")
    if probe.predicted is None:
        notes.append("this run has no stored predictions, so the page shows no predicted labels or confusion matrix")
    return ReportContent(
        title=f"layerlapse · {run.manifest['dataset'].get('name') or run.path.name}",
        summary=_summary(run, layers, epochs, len(probe)),
        class_names=class_names, epochs=epochs, layers=layers,
        limits={layer: layer_limits(probe, test, layer) for layer in layers},
        probe=probe, test=test, probe_total=len(probe), test_total=0 if test is None else len(test),
        history=list(run.history), curve_axis=curve_axis(run.manifest, run.history),
        confusion=None if probe.predicted is None else confusions(probe, len(class_names)),
        epoch_figures=[_epoch_figures(run, epoch, probe, frame) for frame, epoch in enumerate(epochs)],
        layer_figures={layer: [_layer_figures(run, layer, epoch) for epoch in epochs] for layer in layers},
        notes=notes, seed=int(run.manifest.get("config", {}).get("seed", 0)),
        slider_title="snapshot" if run.manifest.get("snapshots") else "epoch",
        color_measures=[] if found is None else color_measures(found), strips=_strips(run, found),
        measures=_page_measures(run, layers, epochs, notes),
        regions=None if found is None else region_summary(found),
        test_images=int((run.manifest.get("test") or {}).get("size") or (0 if test is None else len(test))),
        tokens=(run.manifest["dataset"].get("points") == "tokens"))


def _probe_dynamics(run: RunFolder, notes: list[str]) -> SampleDynamics | None:
    """The probe's per-image dynamics, or None (and a note saying why, when predictions exist but do not fit)."""
    from ..measures.dynamics import probe_dynamics

    try:
        return probe_dynamics(run)
    except RunFolderError as error:
        notes.append(f"the page has no per-image dynamics (colouring, data map): {error}")
        return None


def _strips(run: RunFolder, found: SampleDynamics | None) -> dict[str, list[dict]]:
    """The probe's hardest and most forgotten images, as `layerlapse dynamics` lists them (one definition)."""
    from ..measures.dynamics import ranked_images

    if found is None:
        return {}
    listed = ranked_images(run, found, STRIP_SIZE)
    return {"hardest": listed["hardest"],
            "forgotten": [row for row in listed["most_forgotten"] if row["forgetting_events"] > 0]}


def _page_measures(run: RunFolder, layers: list[str], epochs: list[int], notes: list[str]) -> dict | None:
    """The layer measures of the shown layers at the page's frames; None when there are none (no error)."""
    from ..measures.layers import layer_measures

    try:
        found = layer_measures(run)
    except RunFolderError as error:
        notes.append(f"the page has no layer measures: {error}")
        return None
    if not found:
        return None
    frame_of = {snapshot: index for index, snapshot in enumerate(found["snapshots"])}
    shown = {layer: _layer_measures_at(found["layers"][layer], frame_of, epochs, layer) for layer in layers
             if layer in found["layers"]}
    return {"layers": shown, "knnK": found["knn_k"], "sampleSize": found["sample_size"]} if shown else None


def _layer_measures_at(measured: dict, frame_of: dict[int, int], epochs: list[int], layer: str) -> dict:
    def at(values: list) -> list:
        return [_finite_or_none(values[frame_of[epoch]]) if epoch in frame_of else None for epoch in epochs]

    cka = [at(measured["cka"][frame_of[epoch]]) if epoch in frame_of else [None] * len(epochs) for epoch in epochs]
    return {"knn": at(measured["knn_accuracy"]), "linear": at(measured["linear_probe_accuracy"]),
            "change": [None if value is None else 1.0 - value for value in at(measured["cka_to_previous"])],
            "cka": cka, "largest": largest_change_text(layer, measured.get("largest_change", []))}


def _finite_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def largest_change_text(layer: str, changes: list[dict]) -> str:
    """E.g. 'hidden changed most at epoch 1 (1 − CKA 0.41), epoch 2 (1 − CKA 0.12)'."""
    if not changes:
        return f"{layer}: no change between snapshots measured"
    named = ", ".join(f"{change['title'].lower()} (1 − CKA {change['cka_change']:.2f})" for change in changes)
    return f"{layer} changed most at {named}"


def chosen_layers(run: RunFolder, layers: Sequence[str] | None) -> list[str]:
    if layers is None:
        return list(run.layers)
    chosen = list(dict.fromkeys(layers))
    unknown = [layer for layer in chosen if layer not in run.layers]
    if unknown or not chosen:
        raise not_recorded(chosen, run.layers, run.path)
    return chosen


def mapped_snapshots(run: RunFolder, layers: list[str]) -> int:
    """How many snapshots (0, 1, ... in order) every one of `layers` has maps for: 0 before the first map."""
    last = run.epochs_complete
    for layer in layers:
        if not run.has(layout.map_file(layer, 0)):
            return 0
        mapped = 0
        while mapped < last and run.has(layout.map_file(layer, mapped + 1)):
            mapped += 1
        last = mapped
    return last + 1


def _mapped_epochs(run: RunFolder, layers: list[str]) -> tuple[list[int], str | None]:
    """Epochs 0..e that every chosen layer has maps for, and a note when later recorded epochs have none yet."""
    for layer in layers:
        if not run.has(layout.map_file(layer, 0)):
            raise RunFolderError(f"run folder {run.path} has no maps for layer {layer!r}: map it with "
                                 f"`layerlapse render {run.path}` first")
    last = mapped_snapshots(run, layers) - 1
    note = None
    if last < run.epochs_complete:
        missing = (f"epoch {run.epochs_complete} is" if last + 1 == run.epochs_complete
                   else f"epochs {last + 1}–{run.epochs_complete} are")
        note = f"{missing} recorded but not mapped yet: `layerlapse render {run.path}` maps them"
    return list(range(last + 1)), note


def _read_points(run: RunFolder, test: bool, layers: list[str], epochs: list[int]) -> Points:
    """The probe's (or, with `test`, the test probe's) labels, images, predictions and map positions."""
    labels = run.labels(layout.TEST_PROBE_LABELS) if test else run.probe_labels()
    coords = {}
    for layer in layers:
        frames = [(layout.test_probe_map if test else layout.map_file)(layer, epoch) for epoch in epochs]
        if all(run.has(relpath) for relpath in frames):
            coords[layer] = np.stack([run.read_xy(relpath, len(labels)).astype(np.float32) for relpath in frames])
    images_file = layout.TEST_PROBE_IMAGES if test else layout.PROBE_IMAGES
    images = stored_pixels(run.read_array(images_file)) if run.has(images_file) else None
    prediction_files = [(layout.test_probe_predictions if test else layout.predictions)(epoch) for epoch in epochs]
    predicted = confidence = None
    if all(run.has(relpath) for relpath in prediction_files):
        predicted, confidence = pack_predictions([run.read_array(relpath) for relpath in prediction_files])
    texts = None if test else run.probe_texts()  # only the probe's items have texts
    dataset_index = _dataset_index(run, test, len(labels))
    return Points(labels, coords, images, predicted, confidence, np.arange(len(labels)), texts=texts,
                  dataset_index=dataset_index)


def _dataset_index(run: RunFolder, test: bool, count: int) -> np.ndarray | None:
    """Each point's place in its dataset, where the run stored one per point (the built-in loop does)."""
    relpath = layout.TEST_PROBE_INDICES if test else layout.PROBE_INDICES
    if not run.has(relpath):
        return None
    indices = np.asarray(run.read_array(relpath)).reshape(-1)
    if len(indices) != count or indices.dtype.kind not in "iu" or (count and indices.min() < 0):
        return None  # not one place per point: the page names points by their probe row alone
    return indices.astype(np.int64)


def layer_limits(probe: Points, test: Points | None, layer: str) -> tuple[float, float, float, float]:
    """A layer's map limits over all its frames, of the probe's and the test points' (x0, x1, y0, y1)."""
    from ..render.points import common_limits  # matplotlib loads lazily there; only this pure function is used

    maps = list(probe.coords[layer]) + (list(test.coords[layer]) if test is not None and layer in test.coords else [])
    limits = common_limits(maps)
    if limits is None:  # no frame draws any point
        return (-1.0, 1.0, -1.0, 1.0)
    (x0, x1), (y0, y1) = limits
    return (x0, x1, y0, y1)


def item_word(content: ReportContent) -> str:
    """What the page calls the probe's points: "tokens" for a run of tokens, "images" where it has them (or neither
    images nor texts), "items" where the run stored texts and no images."""
    if content.tokens:
        return "tokens"
    points = content.probe
    return "items" if points.images is None and points.texts is not None else "images"


def _summary(run: RunFolder, layers: list[str], epochs: list[int], n_probe: int) -> str:
    from ..render.captions import method_label  # the PNG frames' words for the same map

    parts = [run.describe_points(n_probe),  # "300 probe images", "… items" (texts, no images), "… tokens of …"
             f"layer{'s' if len(layers) > 1 else ''} {', '.join(layers)}",
             f"{run.snapshot_title(epochs[0]).lower()} to {run.snapshot_title(epochs[-1]).lower()}",
             f"map: {method_label(run.manifest.get('maps'))}"]
    reductions = [f"{layer}: {reduction}" for layer in layers if (reduction := run.reduction(layer))]
    if reductions:
        parts.append("rows: " + ", ".join(reductions))
    test = run.manifest.get("test")
    if test is not None:
        parts.append(f"test accuracy {test['accuracy']:.4f} ({test['size']:,} images)")
    return " · ".join(parts)


def _epoch_figures(run: RunFolder, epoch: int, probe: Points, frame: int) -> str:
    row = next((row for row in run.history if row.get("snapshot") == epoch), {})
    parts = [run.snapshot_title(epoch).lower() + (" (untrained)" if is_untrained(run.manifest, epoch) else "")]
    if probe.predicted is not None:
        parts.append(f"probe accuracy {np.mean(probe.predicted[frame] == probe.labels):.4f}")
    for key, name in (("acc", "training accuracy"), ("val_acc", "validation accuracy"), ("loss", "loss"),
                      ("val_loss", "validation loss")):
        if isinstance(row.get(key), (int, float)):
            parts.append(f"{name} {row[key]:.4f}")
    return " · ".join(parts)


def _layer_figures(run: RunFolder, layer: str, epoch: int) -> str:
    from ..render.captions import measures_line  # the PNG frame's second caption line

    return measures_line(run.frame_measures(layer, epoch))


def confusions(probe: Points, n_classes: int) -> np.ndarray:
    """Per frame, counts of (true, predicted) over the whole probe."""
    cells = probe.labels[None, :] * n_classes + probe.predicted.astype(np.int64)
    return np.stack([np.bincount(frame, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
                     for frame in cells]).astype(np.uint32)

def pack_predictions(probabilities: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per epoch (n, classes) probabilities → argmax class (frames, n) as uint8 (uint16 past 256 classes) and
    confidence (frames, n) uint8, the probability × 255 rounded."""
    stacked = np.stack([np.asarray(frame, dtype=np.float32) for frame in probabilities])
    predicted = stacked.argmax(axis=-1)
    confidence = np.take_along_axis(stacked, predicted[..., None], axis=-1)[..., 0]
    class_type = np.uint8 if stacked.shape[-1] <= 256 else np.uint16
    return predicted.astype(class_type), np.rint(np.clip(confidence, 0.0, 1.0) * 255).astype(np.uint8)


def pack_dynamics(found: SampleDynamics) -> dict[str, np.ndarray]:
    """Per image one byte each: confidence and correctness × 255, variability / VARIABILITY_MAX × 255, the first
    snapshot learned + 1 (0: never), forgetting events (clipped at 255) and the cartography region (REGIONS' codes,
    0 for none)."""
    def share(values: np.ndarray, top: float = 1.0) -> np.ndarray:
        return np.rint(np.clip(values / top, 0.0, 1.0) * 255).astype(np.uint8)

    first = np.where(found.first_learned < 0, 0, np.minimum(found.first_learned.astype(np.int64) + 1, 255))
    return {"confidence": share(found.confidence), "variability": share(found.variability, VARIABILITY_MAX),
            "correctness": share(found.correctness), "firstLearned": first.astype(np.uint8),
            "forgetting": np.clip(found.forgetting_events, 0, 255).astype(np.uint8),
            "region": cartography_regions(found.confidence, found.variability)}


def color_measures(found: SampleDynamics) -> list[dict]:
    """What the map can be coloured by besides class: how the page turns each byte into a value (byte × scale +
    offset; the byte `missing` is no value, drawn grey) and the colour bar's range and title."""
    last = int(found.snapshots[-1]) if len(found.snapshots) else 1
    top_variability = max(math.ceil(float(found.variability.max(initial=0.0)) * 20) / 20, 0.05)
    return [
        {"key": "confidence", "label": "confidence", "scale": 1 / 255, "offset": 0, "missing": None,
         "low": 0, "high": 1, "title": "confidence: mean probability of the true class over the trained snapshots"},
        {"key": "variability", "label": "variability", "scale": VARIABILITY_MAX / 255, "offset": 0, "missing": None,
         "low": 0, "high": top_variability, "title": "variability: its standard deviation over the trained snapshots"},
        {"key": "correctness", "label": "correctness", "scale": 1 / 255, "offset": 0, "missing": None,
         "low": 0, "high": 1, "title": "correctness: share of trained snapshots predicted right",
         "palette": correctness_palette()},  # as the data map and figures/data_map.png colour it
        {"key": "firstLearned", "label": "first learned", "scale": 1, "offset": -1, "missing": 0,
         "low": int(found.snapshots[0]) if len(found.snapshots) else 0, "high": max(last, 1),
         "title": "first snapshot predicted right (grey: never)"},
        {"key": "forgetting", "label": "forgetting events", "scale": 1, "offset": 0, "missing": None,
         "low": 0, "high": max(int(found.forgetting_events.max(initial=0)), 1),
         "title": "forgetting events: right → wrong between consecutive snapshots"},
    ]
def page_curve_axis(content: ReportContent) -> tuple[list[float], list[float], str]:
    """The curves' x axis (`store.curve_axis`): each history row's x, each snapshot's, the axis' name; the epoch
    where the content names none."""
    if content.curve_axis is not None:
        return content.curve_axis
    rows = [row.get("snapshot", row.get("epoch", position)) for position, row in enumerate(content.history)]
    return rows, list(range(max(content.epochs, default=0) + 1)), "epoch"
