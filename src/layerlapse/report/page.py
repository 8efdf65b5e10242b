"""The interactive report: one self-contained `report.html` per run: Bokeh (its resources inlined, so the page makes
no network request) for the controls, axes, legend, curves and panels, and report.js's own point layer
(`pointlayer.js`) for the maps' points: a WebGL canvas under each map's frame (a 2-D canvas where there is no WebGL),
to which every frame's positions are uploaded once, so that a slider step only chooses the frames to draw and playing
blends two frames in the shader.

What travels to the page, and how, so that 60,000 probe points over 16 frames with every thumbnail stay about 20 MB:
a JSON payload in a <script> tag (`layerlapse-payload`) with the texts the page shows, whose arrays are references
(`{"blob": K, "dtype", "shape", "encoding": "gzip"}`) to <script> tags of their own (`layerlapse-blob-K`, base64 of
gzip, unpacked by the browser's DecompressionStream; `Blobs`):

- map coordinates: per layer, quantised to 16 bits within the layer's common limits (65535 marks a point the frame
  does not draw), each frame stored as its difference from the one before (`delta_planes`);
- predictions: per epoch and point the argmax class and the confidence × 255, one byte each;
- thumbnails: every image once, as a tile of PNG atlases of ATLAS_IMAGES images (base64 PNG in their own tags),
  decoded when one of their images is first shown;
- the confusion matrix of the whole probe per epoch, and each frame's figures as text;
- the probe's per-image dynamics (`layerlapse.measures.dynamics`), one byte each per point (`pack_dynamics`): what the
  map can be coloured by (`colorBy`: how each byte becomes a value, and the colour bar's range and title), the data
  map's place (variability, confidence) and each point's cartography region (`regionCutOffs`: the run's cut-offs, their
  definition in words and each region's count, `layerlapse.measures.dynamics.region_cut_offs`); the hardest and most
  forgotten images (`strips`, as `layerlapse dynamics` lists them);
- the test points (the test probe, `testImages` the size of the run's whole test set): drawn in their class colour
  as diamonds with a dark edge, the misclassified at the shown epoch ringed (`marks`: the colours, render.py's);
- the shown layers' measures per frame (`layerlapse.measures.layers`): k-NN and linear-probe accuracy, 1 − CKA to the
  previous frame, CKA between every pair of frames and the words naming its largest changes.

`page_payload(page)` reads a written page's payload back with every array decoded.

Past the size budget the page shows a stratified, seeded subsample and says so, and Python warns
(`ReportSizeWarning`); points are never cut silently.

The page writes user text (class names, layer names) only as text: `textContent`, canvas text, or HTML-escaped
before it reaches a Div. Its hook for tests and benchmarks, `window.layerlapse`, where a point `i` is its index among
the page's points (its row in the run folder's arrays, unless the page shows a subsample):

- `window.layerlapseReady` (and `layerlapse.ready`): true in the animation frame after the one that painted the
  first draw; `layerlapse.timings`: `performance.now()` when report.js started, decoded, drew, and was ready;
- `layerlapse.state()`: `{epoch, layer, layers, total, shown, drawn, testShown, testVisible, trail, pinned, webgl,
  playing, colorBy, colorOptions, selected, region, compare, compareDrawn, panelsEpoch, paintedEpoch}`: `shown`
  counts the probe points of classes not hidden, `drawn` those with a position this frame, `trail` the rows of the
  pinned point's trajectory (one per frame), `webgl` whether the browser gave the map's point layer WebGL, `selected`
  the selected points (sorted) or null, `renderer` what draws the points ("webgl", or "cpu": without WebGL or
  with a software one), `region` the cartography region that selected them ("none" for a drawn
  selection), `compare` the second map's layer or null, `panelsEpoch` the epoch the panels beside the map show
  (they follow once the slider rests), `paintedEpoch` the epoch the maps last painted;
- `layerlapse.points(map=0, set="probe")`: what a map (0, 1: the compared one, "dataMap") draws now, in drawing
  order: `{point, x, y, alpha, outline, value}` (data positions, the value the colour comes from);
- `layerlapse.setEpoch(e)`, `setLayer(name)`, `setCompare(name|null)`, `setColorBy(key)`, `select(indices|null)`,
  `selectRegion(key)`, `selectGeometry(geometry, final, map)` (a box or lasso as Bokeh's select tools give it),
  `pin(i, set="probe")`, `unpin()`, `togglePlay()`, `repaint()`, `mapCanvas(map=0)` (the point layer's canvas),
  `paintedPixels()` (the map painted now: how many of its canvas's pixels hold a point);
- `layerlapse.clientPosition(i, set="probe", map=0)`: the point's place in the window (CSS pixels) on the first map
  (1: the compared one), null if not drawn.

The Bokeh models carry names (`layerlapse-map` (whose points are the point layer's), `-trail`, `-epoch` (the
slider), `-play`, `-layer`, `-show-test`, `-misclassified`, `-pinned`, `-figures`, `-confusion`, `-accuracy`,
`-loss`; `-color-by`, `-color-mapper`, `-color-bar`; the second map's `-compare` (its select), `-compare-map`,
`-compare-trail`; `-data-map`, `-data-map-colors`, `-data-map-color-bar`, `-region`, `-selection`, `-hardest`,
`-forgotten`; `-cka`, `-cka-cells`, `-measures`, `-measures-source`, `-changes` and the markers `-measures-marker`,
`-cka-marker-height`, `-cka-marker-width`; `-side`, the column beside the map, which report.js widens in a
wide window), so `Bokeh.documents[0].get_model_by_name(...)` finds them.

Torch is never imported here: a stored run folder is all the report needs.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import html
import io
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..store.atomic import atomic_output
from ..measures.dynamics import REGIONS as REGION_CODES
from ..measures.dynamics import cartography_regions, region_summary
from ..config import REPORT_BUDGET_MB
from ..errors import ConfigError, ReportSizeWarning, RunFolderError, not_recorded
from ..store import layout
from ..store.run import RunFolder, curve_axis, is_untrained, metric_series

if TYPE_CHECKING:
    from bokeh.document import Document
    from ..measures.dynamics import SampleDynamics
    from bokeh.models import ColorBar, ColumnDataSource, GlyphRenderer, LayoutDOM, LinearColorMapper, Plot, Span

MB = 1_000_000  # the size budget is in SI megabytes, as file managers show sizes
NOT_DRAWN = 65535  # the 16-bit code of a point a frame does not draw (NaN coordinates)
COORD_STEPS = 65534  # codes 0..65534 span a layer's limits
THUMBNAIL_PX = 84  # thumbnails are shown about this big, in whole-pixel steps
BUDGET_MARGIN = 0.98  # aim a little under what the budget holds: the PNG atlas's size is known once encoded
VARIABILITY_MAX = 0.5  # a probability's standard deviation is at most 0.5: variability / 0.5 × 255 fills a byte
# Dataset cartography's regions (layerlapse.measures.dynamics.cartography_regions: the run's cut-offs), codes and names
REGIONS = {key: (REGION_CODES[key], name)
           for key, name in (("easy", "easy to learn"), ("ambiguous", "ambiguous"), ("hard", "hard to learn"))}
STRIP_SIZE = 12  # images in each of the hardest and most forgotten strips
SELECTION_THUMBNAILS = 60  # a data-map selection lists the thumbnails of its first this many points



def write_report(run: RunFolder, path: str | os.PathLike | None = None, *,
                 size_budget_mb: float = REPORT_BUDGET_MB,
                 layers: Sequence[str] | None = None) -> Path:
    """Write the run's interactive report (default `run.path / "report.html"`), atomically; return its path.

    `layers` chooses the recorded layers the page can switch between (default: all of them). Past
    `size_budget_mb` (SI megabytes) the page shows a stratified, seeded subsample of the points, says so, and a
    `ReportSizeWarning` is issued.
    """
    chosen = check_settings(run, size_budget_mb, layers)
    target = Path(path) if path is not None else run.local(layout.REPORT)
    content = read_content(run, chosen)
    page = fit_to_budget(content, int(size_budget_mb * MB), size_budget_mb)
    with atomic_output(target) as temp:
        temp.write_text(page, encoding="utf-8")
    return target


def check_settings(run: RunFolder, size_budget_mb: float, layers: Sequence[str] | None) -> list[str]:
    """The layers the report shows, or the one-line error for a size budget or a layer choice it cannot use."""
    if not size_budget_mb > 0:
        raise ConfigError(f"size_budget_mb must be a positive number of megabytes, got {size_budget_mb!r}")
    return _chosen_layers(run, layers)


# ---- what the report shows -----------------------------------------------------------------------------------------


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

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Points:
        def pick(values: np.ndarray | None, axis: int) -> np.ndarray | None:
            return None if values is None else np.take(values, rows, axis=axis)

        return Points(self.labels[rows], {layer: xy[:, rows] for layer, xy in self.coords.items()},
                      pick(self.images, 0), pick(self.predicted, 1), pick(self.confidence, 1), self.rows[rows],
                      None if self.dynamics is None else {name: values[rows] for name, values in self.dynamics.items()})


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
        limits={layer: _limits(probe, test, layer) for layer in layers},
        probe=probe, test=test, probe_total=len(probe), test_total=0 if test is None else len(test),
        history=list(run.history), curve_axis=curve_axis(run.manifest, run.history),
        confusion=None if probe.predicted is None else _confusions(probe, len(class_names)),
        epoch_figures=[_epoch_figures(run, epoch, probe, frame) for frame, epoch in enumerate(epochs)],
        layer_figures={layer: [_layer_figures(run, layer, epoch) for epoch in epochs] for layer in layers},
        notes=notes, seed=int(run.manifest.get("config", {}).get("seed", 0)),
        slider_title="snapshot" if run.manifest.get("snapshots") else "epoch",
        color_measures=[] if found is None else color_measures(found), strips=_strips(run, found),
        measures=_page_measures(run, layers, epochs, notes),
        regions=None if found is None else region_summary(found),
        test_images=int((run.manifest.get("test") or {}).get("size") or (0 if test is None else len(test))))


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


def _chosen_layers(run: RunFolder, layers: Sequence[str] | None) -> list[str]:
    if layers is None:
        return list(run.layers)
    chosen = list(dict.fromkeys(layers))
    unknown = [layer for layer in chosen if layer not in run.layers]
    if unknown or not chosen:
        raise not_recorded(chosen, run.layers, run.path)
    return chosen


def _mapped_epochs(run: RunFolder, layers: list[str]) -> tuple[list[int], str | None]:
    """Epochs 0..e that every chosen layer has maps for, and a note when later recorded epochs have none yet."""
    last = run.epochs_complete
    for layer in layers:
        if not run.has(layout.map_file(layer, 0)):
            raise RunFolderError(f"run folder {run.path} has no maps for layer {layer!r}: map it with "
                                 f"`layerlapse render {run.path}` first")
        mapped = 0
        while mapped < last and run.has(layout.map_file(layer, mapped + 1)):
            mapped += 1
        last = mapped
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
    images = _thumbnail_pixels(run.read_array(images_file)) if run.has(images_file) else None
    prediction_files = [(layout.test_probe_predictions if test else layout.predictions)(epoch) for epoch in epochs]
    predicted = confidence = None
    if all(run.has(relpath) for relpath in prediction_files):
        predicted, confidence = pack_predictions([run.read_array(relpath) for relpath in prediction_files])
    return Points(labels, coords, images, predicted, confidence, np.arange(len(labels)))


def _thumbnail_pixels(images: np.ndarray) -> np.ndarray | None:
    """Images as uint8 (n, h, w) or (n, h, w, 3); None for shapes a thumbnail cannot show."""
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        return None
    if images.dtype != np.uint8:  # floats in [0, 1]
        images = np.rint(np.clip(images.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    return images


def _limits(probe: Points, test: Points | None, layer: str) -> tuple[float, float, float, float]:
    from ..render.figures import common_limits  # matplotlib loads lazily there; only this pure function is used

    maps = list(probe.coords[layer]) + (list(test.coords[layer]) if test is not None and layer in test.coords else [])
    limits = common_limits(maps)
    if limits is None:  # no frame draws any point
        return (-1.0, 1.0, -1.0, 1.0)
    (x0, x1), (y0, y1) = limits
    return (x0, x1, y0, y1)


def _summary(run: RunFolder, layers: list[str], epochs: list[int], n_probe: int) -> str:
    from ..maps.project import LEGACY_METHODS, METHOD_LABELS

    method = run.manifest.get("maps", {}).get("method", "umap")
    method = LEGACY_METHODS.get(method, method)
    parts = [f"{n_probe:,} probe {'images' if run.has(layout.PROBE_IMAGES) else 'inputs'}",
             f"layer{'s' if len(layers) > 1 else ''} {', '.join(layers)}",
             f"{run.snapshot_title(epochs[0]).lower()} to {run.snapshot_title(epochs[-1]).lower()}",
             f"map: {METHOD_LABELS.get(method, method)}"]
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
    from ..maps.faithfulness import caption

    quality = run.frame_measures(layer, epoch)
    return " · ".join(filter(None, [caption(quality), *quality.get("notes", [])]))


def _confusions(probe: Points, n_classes: int) -> np.ndarray:
    """Per frame, counts of (true, predicted) over the whole probe."""
    cells = probe.labels[None, :] * n_classes + probe.predicted.astype(np.int64)
    return np.stack([np.bincount(frame, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
                     for frame in cells]).astype(np.uint32)


# ---- packing -------------------------------------------------------------------------------------------------------


def quantise(xy: np.ndarray, limits: tuple[float, float, float, float]) -> np.ndarray:
    """Coordinates (..., 2) as uint16 codes within `limits` (x0, x1, y0, y1); NaN or infinite rows → NOT_DRAWN.

    The round trip `dequantise(quantise(xy))` is off by at most half a step, (x1 - x0) / 65534 / 2 along x."""
    low = np.array(limits[0::2], dtype=np.float64)
    span = np.maximum(np.array(limits[1::2], dtype=np.float64) - low, 1e-12)
    scaled = (np.asarray(xy, dtype=np.float64) - low) / span * COORD_STEPS
    finite = np.isfinite(scaled).all(axis=-1, keepdims=True)
    codes = np.rint(np.clip(np.where(finite, scaled, 0.0), 0, COORD_STEPS)).astype(np.uint16)
    return np.where(finite, codes, np.uint16(NOT_DRAWN))


def dequantise(codes: np.ndarray, limits: tuple[float, float, float, float]) -> np.ndarray:
    """The inverse of `quantise`, as report.js does it: NOT_DRAWN → NaN (both coordinates)."""
    low = np.array(limits[0::2], dtype=np.float64)
    span = np.maximum(np.array(limits[1::2], dtype=np.float64) - low, 1e-12)
    xy = low + codes.astype(np.float64) / COORD_STEPS * span
    return np.where((codes == NOT_DRAWN).any(axis=-1, keepdims=True), np.nan, xy)


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
    """What the map can be coloured by besides class: how report.js turns each byte into a value (byte × scale +
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


class Blobs:
    """The page's arrays and thumbnail atlases, each in a <script> tag of its own (`layerlapse-blob-K`) as base64,
    outside Bokeh's document: the payload names them (`{"blob": K, ...}`), and report.js decodes them with the
    browser's own base64 and gzip (DecompressionStream) before drawing. Arrays are gzipped; a map's frames are
    first stored as each frame's difference from the one before, low bytes before high bytes (`delta_planes`), as
    points that hold still then give long runs of zeros."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def array(self, array: np.ndarray, *, frames_delta: bool = False) -> dict:
        array = np.ascontiguousarray(array)
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        raw = delta_planes(little) if frames_delta else little.tobytes()
        ref = {"blob": self._add(gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)), "dtype": array.dtype.name,
               "shape": list(array.shape), "encoding": "gzip"}
        if frames_delta:
            ref["delta"] = True
        return ref

    def png(self, data: bytes) -> int:
        return self._add(data)

    def _add(self, data: bytes) -> int:
        self.texts.append(base64.b64encode(data).decode("ascii"))
        return len(self.texts) - 1

    def html(self) -> str:
        # base64 holds no "<", so a tag's text can never close it early
        return "".join(f'<script type="application/octet-stream" id="layerlapse-blob-{k}">{text}</script>\n'
                       for k, text in enumerate(self.texts))


GZIP_LEVEL = 6  # level 9 saves 1-2 % of the bytes for 3-4 times the time


def delta_planes(codes: np.ndarray) -> bytes:
    """uint16 frames (frames, ...) as bytes: frame 0, then each frame minus the one before (mod 65536), each
    frame's low bytes before its high bytes. report.js's `undoDeltas` is the inverse."""
    if codes.dtype != np.uint16 or codes.ndim < 2:
        raise ValueError(f"delta_planes packs uint16 frames, got {codes.dtype} of shape {codes.shape}")
    frames = codes.reshape(len(codes), -1)
    deltas = frames.copy()
    deltas[1:] = frames[1:] - frames[:-1]  # uint16 arithmetic wraps mod 65536
    planes = np.stack([deltas & 0xFF, deltas >> 8], axis=1).astype(np.uint8)  # (frames, 2, per frame)
    return planes.tobytes()


def undo_delta_planes(raw: bytes, shape: Sequence[int]) -> np.ndarray:
    """The inverse of `delta_planes`."""
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(shape[0], 2, -1).astype(np.uint16)
    deltas = planes[:, 0] | (planes[:, 1] << 8)
    return np.cumsum(deltas, axis=0, dtype=np.uint16).reshape(shape)  # the running sum wraps as the deltas did


PAYLOAD_TAG = "layerlapse-payload"


def page_payload(page: str) -> dict:
    """A written page's payload with every array decoded (numpy) and every atlas as its PNG bytes: what report.js
    reads, read back (for tests and tools)."""
    import re

    def tag(tag_id: str) -> str:
        found = re.search(rf'<script type="[^"]+" id="{re.escape(tag_id)}">(.*?)</script>', page, re.DOTALL)
        if found is None:
            raise ValueError(f"this page has no {tag_id} tag: is it a layerlapse report?")
        return found.group(1)

    def decoded(value: object) -> object:
        if isinstance(value, dict) and isinstance(value.get("blob"), int) and "dtype" in value:
            raw = gzip.decompress(base64.b64decode(tag(f"layerlapse-blob-{value['blob']}")))
            if value.get("delta"):
                return undo_delta_planes(raw, value["shape"])
            dtype = np.dtype(value["dtype"]).newbyteorder("<")
            return np.frombuffer(raw, dtype=dtype).reshape(value["shape"])
        if isinstance(value, dict):
            out = {key: decoded(item) for key, item in value.items()}
            if "sheets" in out and "perAtlas" in out:
                out["sheets"] = [base64.b64decode(tag(f"layerlapse-blob-{k}")) for k in out["sheets"]]
            return out
        if isinstance(value, list):
            return [decoded(item) for item in value]
        return value

    return decoded(json.loads(tag(PAYLOAD_TAG)))


ATLAS_IMAGES = 1024  # images per thumbnail atlas: a page decodes only the atlases of the images it shows


def thumbnail_atlases(images: np.ndarray, blobs: Blobs) -> dict:
    """Every image once, as tiles of PNG atlases of ATLAS_IMAGES each (a grid `columns` tiles wide), with the
    display scale; report.js decodes an atlas when one of its images is first shown."""
    from PIL import Image

    count, height, width = images.shape[:3]
    per_atlas = min(ATLAS_IMAGES, count)
    columns = max(1, math.ceil(math.sqrt(per_atlas)))
    sheets = []
    for start in range(0, count, per_atlas):
        chunk = images[start:start + per_atlas]
        rows = max(1, math.ceil(len(chunk) / columns))
        grid = np.zeros((rows * columns, *images.shape[1:]), dtype=np.uint8)
        grid[:len(chunk)] = chunk
        grid = grid.reshape(rows, columns, *images.shape[1:]).swapaxes(1, 2)  # rows, height, columns, width[, 3]
        sheet = grid.reshape(rows * height, columns * width, *images.shape[3:])
        buffer = io.BytesIO()
        # zlib's default level: optimize=True saves 3 % of the bytes for 10 times the time (2 s at 10,000 images)
        Image.fromarray(sheet).save(buffer, format="PNG")
        sheets.append(blobs.png(buffer.getvalue()))
    return {"sheets": sheets, "perAtlas": per_atlas, "tile": [height, width], "columns": columns,
            "scale": max(1, round(THUMBNAIL_PX / max(height, width)))}


def payload(content: ReportContent, blobs: Blobs) -> str:
    """The JSON the page's code reads: the texts it shows, and its arrays as references into `blobs`."""
    return json.dumps({
        "classNames": content.class_names,  # the colours are Bokeh's, in the scatter's colour mapper
        "epochs": content.epochs,
        "probe": _packed_points(content.probe, blobs),
        "test": None if content.test is None else _packed_points(content.test, blobs),
        "layers": [{"name": layer, "limits": content.limits[layer],
                    "probe": blobs.array(quantise(content.probe.coords[layer], content.limits[layer]),
                                         frames_delta=True),
                    "test": _packed_test_coords(content, layer, blobs),
                    "figures": content.layer_figures[layer]} for layer in content.layers],
        "confusion": None if content.confusion is None else blobs.array(content.confusion),
        "epochFigures": content.epoch_figures,
        "curveX": _curve_axis(content)[1],  # where the curves' marker stands at each snapshot
        "snapshotWord": content.slider_title,  # "epoch", or "snapshot" where snapshots are not plainly epochs
        "marker": marker_style(len(content.probe)),
        "marks": marks(),
        "testImages": content.test_images,
        "variabilityMax": VARIABILITY_MAX,
        "colorBy": content.color_measures,
        "sequentialPalette": sequential_palette(),
        "regions": {key: code for key, (code, _) in REGIONS.items()},
        "regionNames": {key: name for key, (_, name) in REGIONS.items()},
        "regionCutOffs": content.regions,
        "selectionThumbnails": SELECTION_THUMBNAILS,
        "layout": {"mapSize": MAP_SIZE, "compareSize": COMPARE_SIZE, "sideWidth": SIDE_WIDTH,
                   "sideWidthMax": SIDE_WIDTH_MAX},
        "strips": {name: _strip_points(content.probe, rows) for name, rows in content.strips.items()},
        "measures": content.measures,
    }, allow_nan=False).replace("<", "\\u003c")  # within a <script> tag: no "</script>" can end it early


def _strip_points(points: Points, rows: list[dict]) -> list[dict]:
    """A strip's images as the page's points (those a subsample left out are left out here too)."""
    where = np.searchsorted(points.rows, [row["index"] for row in rows])
    return [{"i": int(i), "label": row["label"], "predicted": row["predicted"],
             "confidence": row["confidence"], "forgetting": row["forgetting_events"]}
            for i, row in zip(where, rows) if i < len(points.rows) and points.rows[i] == row["index"]]


def marks() -> dict[str, str]:
    """The colours that set test points and misclassified points apart, the PNG figures' own
    (layerlapse.render.figures)."""
    from ..render.figures import MISCLASSIFIED_COLOR, MISCLASSIFIED_HALO_COLOR, TEST_EDGE_COLOR

    return {"testEdge": TEST_EDGE_COLOR, "misclassified": MISCLASSIFIED_COLOR, "halo": MISCLASSIFIED_HALO_COLOR}


def correctness_palette() -> list[str]:
    """Red (never right) to green (always right), as figures/data_map.png and the report's data map show
    correctness."""
    from bokeh.palettes import RdYlGn11

    return list(reversed(RdYlGn11))


def sequential_palette() -> list[str]:
    from bokeh.palettes import Viridis256

    return list(Viridis256)


def _packed_points(points: Points, blobs: Blobs) -> dict:
    subsampled = not np.array_equal(points.rows, np.arange(len(points)))
    return {"n": len(points), "labels": blobs.array(points.labels.astype(np.uint16)),
            "rows": blobs.array(points.rows.astype(np.uint32)) if subsampled else None,
            "predicted": None if points.predicted is None else blobs.array(points.predicted),
            "confidence": None if points.confidence is None else blobs.array(points.confidence),
            "dynamics": None if points.dynamics is None else {name: blobs.array(values)
                                                                for name, values in points.dynamics.items()},
            "atlases": None if points.images is None or len(points) == 0 else thumbnail_atlases(points.images,
                                                                                                blobs)}


def _packed_test_coords(content: ReportContent, layer: str, blobs: Blobs) -> dict | None:
    if content.test is None or layer not in content.test.coords:
        return None
    return blobs.array(quantise(content.test.coords[layer], content.limits[layer]), frames_delta=True)


def class_colors(n_classes: int) -> list[str]:
    """The PNG frames' class colours: tab10 up to 10 classes, tab20 up to 20, turbo beyond."""
    from bokeh.palettes import Category10_10, Category20_20, Turbo256, linear_palette

    if n_classes <= 10:
        return list(Category10_10[:n_classes])  # d3's category10 is matplotlib's tab10
    if n_classes <= 20:
        return list(Category20_20[:n_classes])
    return list(linear_palette(Turbo256, n_classes)) if n_classes <= 256 else [Turbo256[i * 255 // (n_classes - 1)]
                                                                             for i in range(n_classes)]


def marker_style(n_points: int) -> dict:
    """Marker diameters in screen pixels (test points: larger diamonds) and alpha: many points get small,
    translucent markers, as in the PNG frames."""
    size = float(np.clip(math.sqrt(16000.0 / max(n_points, 1)), 3.0, 9.0))
    return {"size": size, "testSize": float(np.clip(size * 1.8, 7.0, 13.0)),
            "alpha": float(np.clip(math.sqrt(2000.0 / max(n_points, 1)), 0.35, 0.9))}


# ---- the size budget -----------------------------------------------------------------------------------------------


def fit_to_budget(content: ReportContent, budget_bytes: int, budget_mb: float) -> str:
    """The page, with every point if it fits the budget, else with a stratified subsample that does (and a warning).

    The subsample is sized from the page's size as a line in its number of points, and shrunk further in the rare
    case the encoded atlas comes out larger than the line says."""
    page = render_page(content)
    full_size = len(page.encode())
    if full_size <= budget_bytes:
        return page
    fixed, per_point = _size_line(content, full_size)
    keep = min(int((budget_bytes - fixed) / per_point * BUDGET_MARGIN), len(content.probe) - 1)
    while keep >= 1:
        shown = subsample(content, keep)
        note = budget_note(shown, budget_mb)
        page = render_page(dataclasses.replace(shown, notes=[note, *shown.notes]))
        if len(page.encode()) <= budget_bytes:
            warnings.warn(ReportSizeWarning(
                f"report.html would take {full_size / MB:.1f} MB, over its size budget of {budget_mb:g} MB, so it "
                f"shows a stratified, seeded subsample: {note}; raise size_budget_mb to show every point"),
                stacklevel=3)
            return page
        keep = int(keep * 0.9)
    raise ConfigError(f"size_budget_mb={budget_mb:g} is too small for this run: the page without its points already "
                      f"takes about {max(fixed, 0) / MB:.1f} MB; give a larger budget")


def _size_line(content: ReportContent, full_size: int) -> tuple[float, float]:
    """The page's bytes without points and per point, from its size with all of them and with a tenth."""
    tenth = subsample(content, max(1, len(content.probe) // 10))
    tenth_size = len(render_page(tenth).encode())
    per_point = max((full_size - tenth_size) / max(len(content.probe) - len(tenth.probe), 1), 1.0)
    return full_size - per_point * len(content.probe), per_point


def budget_note(shown: ReportContent, budget_mb: float) -> str:
    """What the page says about a subsample, e.g. 'showing 5,000 of 60,000 probe points (size budget 25 MB)'."""
    text = f"showing {len(shown.probe):,} of {shown.probe_total:,} probe points"
    if shown.test is not None and len(shown.test) < shown.test_total:
        text += f" and {len(shown.test):,} of {shown.test_total:,} test points"
    return f"{text} (size budget {budget_mb:g} MB)"


def subsample(content: ReportContent, keep: int) -> ReportContent:
    """`keep` probe points chosen class by class in proportion (seeded); the test points in the same share."""
    share = keep / max(len(content.probe), 1)
    probe = content.probe.take(stratified_rows(content.probe.labels, keep, content.seed))
    test = content.test
    if test is not None and share < 1:
        test = test.take(stratified_rows(test.labels, max(1, round(len(test) * share)), content.seed + 1))
    return dataclasses.replace(content, probe=probe, test=test)


def stratified_rows(labels: np.ndarray, keep: int, seed: int) -> np.ndarray:
    """Sorted row indices of `keep` rows, each class represented in proportion (largest remainders), seeded."""
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * keep / len(labels)
    taken = np.floor(quotas).astype(np.int64)
    leftover = keep - int(taken.sum())
    taken[np.argsort(-(quotas - taken), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(labels == label), size=int(count), replace=False)
            for label, count in zip(classes, taken)]
    return np.sort(np.concatenate(rows))


# ---- the page ------------------------------------------------------------------------------------------------------


def render_page(content: ReportContent) -> str:
    """The whole HTML page, Bokeh's resources inlined, the payload and its arrays in <script> tags of their own."""
    from bokeh.document import Document
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    blobs = Blobs()
    data = payload(content, blobs)
    document = Document()
    document.add_root(build_layout(content, document))
    page = file_html(document, INLINE, title=content.title)
    end = page.rfind("</body>")
    if end < 0:
        raise RuntimeError("Bokeh's page has no </body>: this Bokeh version's file_html is not what report.py expects")
    data_tags = f'<script type="application/json" id="{PAYLOAD_TAG}">{data}</script>\n{blobs.html()}'
    return page[:end] + data_tags + page[end:]


def page_script() -> str:
    """The page's code: the point layer, then the report's behaviour."""
    folder = resources.files(__package__)
    return "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in ("pointlayer.js", "report.js"))


def header_html(content: ReportContent) -> str:
    """The page's heading: run and notes, every piece of run data HTML-escaped."""
    notes = "".join(f'<p class="layerlapse-note">{html.escape(note)}</p>' for note in content.notes)
    return (f"<h2 style='margin:4px 0'>{html.escape(content.title)}</h2>"
            f"<p style='margin:2px 0'>{html.escape(content.summary)}</p>{notes}")


# Sizes for a laptop's window of 1,024 × 700 (CSS pixels); report.js grows the map (and the compared one) to fill
# larger windows (`fitToWindow`), so the map is the largest thing on the page at every size.
MAP_SIZE = (600, 540)
COMPARE_SIZE = (420, 420)  # the second map, beside the first: smaller, so the shown layer's map stays the largest
SIDE_WIDTH = 360
SIDE_WIDTH_MAX = 600  # in a window wider than the map needs, the side column (curves, matrices) takes the rest
DATA_MAP_SIZE = (310, 300)
SELECTION_WIDTH = MAP_SIZE[0] - DATA_MAP_SIZE[0] - 20
STRIP_WIDTH = MAP_SIZE[0] // 2 - 15


def build_layout(content: ReportContent, document: Document) -> LayoutDOM:
    """The page's Bokeh models; `document` gets the callback that starts report.js once the page is drawn."""
    from bokeh.layouts import column, row
    from bokeh.models import CustomJS, Div

    mapper = _point_color_mapper(content)
    views = [_map_figure(content, "", MAP_SIZE), _map_figure(content, "compare-", COMPARE_SIZE)]
    views[1]["plot"].visible = False  # until a layer is chosen to compare with
    controls = _controls(content)
    # fixed sizes: a Div whose text changes then never makes Bokeh lay out the whole page again (~0.5 s)
    pinned = Div(text="", width=SIDE_WIDTH, height=90, name="layerlapse-pinned")
    figures = Div(text="", width=SIDE_WIDTH, height=95, name="layerlapse-figures", styles={"overflow-y": "auto"})
    curves = _curve_figures(content.history, _curve_axis(content), content.epochs)
    confusion = _confusion_figure(content)
    data_map = _data_map_panel(content)
    strips = _strip_divs(content)
    measures = _measures_panel(content)
    class_renderers = _class_legend(views[0]["plot"], content.class_names, class_colors(len(content.class_names)))
    side = column(pinned, figures, *[plot for plot, _ in curves], *([confusion[0]] if confusion else []),
                  *([measures["layout"]] if measures else []), name="layerlapse-side")
    models = {**_map_models(views), "colorMapper": mapper, "colorBar": _color_bar(views[0]["plot"], mapper),
              "side": side,
              "classRenderers": class_renderers, **controls, "pinned": pinned, "figures": figures,
              "curveSpans": [span for _, span in curves], "spans": measures["spans"] if measures else [],
              "confusion": confusion[1] if confusion else None,
              **{key: value for key, value in (data_map or {}).items() if key != "layout"},
              "hardest": strips.get("hardest"), "forgotten": strips.get("forgotten"),
              **{key: value for key, value in (measures or {}).items() if key not in ("layout", "spans")}}
    # the payload's tag follows Bokeh's document in the page: read when the document is ready, not before
    start = CustomJS(args=models, code=page_script() + f"\nlayerlapseStart({{{', '.join(models)}}}, document"
                     f".getElementById('{PAYLOAD_TAG}').textContent);")
    document.js_on_event("document_ready", start)
    _wire_events(views, controls, class_renderers, data_map)
    header = Div(text=header_html(content), width=MAP_SIZE[0] + SIDE_WIDTH + 20, name="layerlapse-header")
    below = [*([data_map["layout"]] if data_map else []), *([row(*strips.values())] if strips else [])]
    map_column = column(row(controls["play"], controls["slider"], controls["layer"], controls["compare"]),
                        row(controls["showTest"], controls["highlightWrong"], controls["colorBy"]),
                        views[0]["plot"], *below)
    return column(header, row(map_column, views[1]["plot"], side))


def _map_models(views: list[dict]) -> dict:
    """The maps' models as report.js gets them: one list per kind, map k at index k (CustomJS args take lists)."""
    return {f"{kind}s": [view[kind] for view in views] for kind in ("plot", "trailSource", "currentSource")}


def _point_color_mapper(content: ReportContent) -> LinearColorMapper:
    """One mapper for every map's probe points: class colours (the PNG frames'), or, when report.js colours by a
    measure, a sequential palette over the measure's range; NaN (never learned) is grey."""
    from bokeh.models import LinearColorMapper

    colors = class_colors(len(content.class_names))
    return LinearColorMapper(palette=colors, low=-0.5, high=len(colors) - 0.5, nan_color="#bbbbbb",
                             name="layerlapse-color-mapper")


def _color_bar(plot: Plot, mapper: LinearColorMapper) -> ColorBar:
    from bokeh.models import ColorBar

    bar = ColorBar(color_mapper=mapper, orientation="horizontal", height=10, title="", visible=False,
                   title_text_font_size="9pt", major_label_text_font_size="8pt", padding=4,
                   name="layerlapse-color-bar")
    plot.add_layout(bar, "below")
    return bar


def _map_figure(content: ReportContent, prefix: str, size: tuple[int, int]) -> dict:
    """A map: axes, tools, the legend and the pinned point's trail, on a transparent background; its points (probe
    points coloured by class or a measure, test points as diamonds in their class colour, the misclassified ringed,
    as the PNG frames draw them) lie under the frame on report.js's point layer (pointlayer.js). Box and lasso
    select give their geometry to report.js, which highlights the points inside on every map and in the data map."""
    from bokeh.models import Range1d
    from bokeh.plotting import figure

    x0, x1, y0, y1 = content.limits[content.layers[0]]
    # titled with its layer (report.js keeps the title in step; a title is canvas text, never markup)
    plot = figure(width=size[0], height=size[1], output_backend="canvas", name=f"layerlapse-{prefix}map",
                  title=f"layer {content.layers[0]}", x_range=Range1d(x0, x1), y_range=Range1d(y0, y1),
                  tools="pan,wheel_zoom,box_zoom,reset", active_scroll="wheel_zoom", active_drag="pan")
    _transparent_with_select_tools(plot)
    plot.xaxis.visible = plot.yaxis.visible = False
    plot.grid.visible = False
    return {"plot": plot, **_trail_glyphs(plot, prefix)}


def _transparent_with_select_tools(plot: Plot) -> None:
    """A plot whose points report.js draws under it: no fill of its own over them, and box and lasso select tools
    that select no Bokeh renderer (report.js receives their geometry and selects its points)."""
    from bokeh.models import BoxSelectTool, LassoSelectTool

    plot.background_fill_color = None
    plot.border_fill_color = None
    plot.outline_line_color = "#cccccc"
    plot.add_tools(BoxSelectTool(renderers=[]), LassoSelectTool(renderers=[]))
    plot.toolbar.logo = None


def _trail_glyphs(plot: Plot, prefix: str) -> dict:
    """The pinned point's trajectory: a segment from each epoch's place to the next, labelled with the epoch, and a
    ring at the shown epoch."""
    from bokeh.models import ColumnDataSource

    trail = ColumnDataSource({"x": [], "y": [], "x_next": [], "y_next": [], "epoch": [], "label": []},
                             name=f"layerlapse-{prefix}trail")
    plot.segment("x", "y", "x_next", "y_next", source=trail, line_color="black", line_width=1.5, line_alpha=0.8)
    plot.text("x", "y", text="label", source=trail, text_font_size="8pt", x_offset=4, y_offset=-2,
              text_color="black")
    current = ColumnDataSource({"x": [], "y": []}, name=f"layerlapse-{prefix}current")
    plot.ellipse("x", "y", width=15, height=15, width_units="screen", height_units="screen", source=current,
                 fill_alpha=0, line_color="black", line_width=2.5)
    return {"trailSource": trail, "currentSource": current}


CLASS_NAME_CHARS = 16  # longer names are cut in the legend and the confusion matrix's axes (hover says the whole)


def short_name(name: str, chars: int = CLASS_NAME_CHARS) -> str:
    """A class name for a legend or an axis: whole when short, else its first characters and an ellipsis (a long
    name took half the map's width and squeezed the confusion matrix); the points' hover shows it whole."""
    return name if len(name) <= chars else name[: chars - 1].rstrip() + "…"


def _class_legend(plot: Plot, class_names: list[str], colors: list[str]) -> list[GlyphRenderer]:
    """A legend entry per class whose click hides or shows it (on every map): each entry's renderer is a stand-in
    that is never drawn (one NaN point); report.js reads their visibility."""
    from bokeh.core.properties import value
    from bokeh.models import Legend, LegendItem

    stand_ins = [plot.ellipse([math.nan], [math.nan], width=9, height=9, width_units="screen",
                              height_units="screen", fill_color=color, line_color=color) for color in colors]
    items = [LegendItem(label=value(short_name(name)), renderers=[stand_in])
             for name, stand_in in zip(class_names, stand_ins)]
    plot.add_layout(Legend(items=items, click_policy="hide", label_text_font_size="9pt", spacing=0, padding=4,
                           title="class (click: hide)"), "right")
    return stand_ins


def _controls(content: ReportContent) -> dict:
    from bokeh.models import Button, Select, Slider, Toggle

    last = content.epochs[-1]
    slider = Slider(start=0, end=max(last, 1), value=last, step=1, title=content.slider_title, width=240,
                    disabled=last == 0, name="layerlapse-epoch")
    play = Button(label="▶ play", width=80, disabled=last == 0, name="layerlapse-play")
    layer = Select(options=content.layers, value=content.layers[0], width=120,
                   title="layer", disabled=len(content.layers) == 1, name="layerlapse-layer")
    compare = Select(options=compare_options(content.layers, content.layers[0]), value="none", width=120,
                     title="compare with", disabled=len(content.layers) == 1, name="layerlapse-compare")
    show_test = Toggle(label=shown_test_points_label(content), active=False, disabled=content.test is None, width=190,
                       name="layerlapse-show-test", stylesheets=[TOGGLE_STYLE])
    wrong = Toggle(label="highlight misclassified" if content.probe.predicted is not None
                   else "no predictions stored", active=False, disabled=content.probe.predicted is None,
                   width=180, name="layerlapse-misclassified", stylesheets=[TOGGLE_STYLE])
    color_by = Select(options=[("class", "colour: class")] + [(measure["key"], f"colour: {measure['label']}")
                                                               for measure in content.color_measures],
                      value="class", width=190, disabled=not content.color_measures, name="layerlapse-color-by")
    return {"slider": slider, "play": play, "layer": layer, "compare": compare, "showTest": show_test,
            "highlightWrong": wrong, "colorBy": color_by}


def shown_test_points_label(content: ReportContent) -> str:
    """The test points' toggle, with how many the page draws of the run's test set: "test points (1,000 of
    10,000)"."""
    if content.test is None:
        return "no test points"
    shown = len(content.test)
    if shown >= content.test_images:
        return f"test points ({shown:,})"
    return f"test points ({shown:,} of {content.test_images:,})"


# A toggle that is on looks on: filled, with a tick (Bokeh's own pressed look was a slightly darker grey)
TOGGLE_STYLE = (".bk-btn.bk-active { background: #1f77b4; border-color: #1f77b4; color: white; }"
                ".bk-btn.bk-active::before { content: '✓ '; }")


def compare_options(layers: list[str], shown: str) -> list[tuple[str, str]]:
    """The "compare with" choices: none, or a layer other than the shown one."""
    return [("none", "none")] + [(layer, layer) for layer in layers if layer != shown]


def _wire_events(views: list[dict], controls: dict, class_renderers: list[GlyphRenderer],
                 data_map: dict | None) -> None:
    """Every widget and map event calls into report.js's `window.layerlapse`."""
    from bokeh.models import CustomJS

    def call(method: str, argument: str = "", args: dict | None = None) -> CustomJS:
        return CustomJS(args=args or {}, code=f"if (window.layerlapse) window.layerlapse.{method}({argument});")

    controls["slider"].js_on_change("value", call("setEpoch", "cb_obj.value"))
    controls["play"].js_on_event("button_click", call("togglePlay"))
    controls["layer"].js_on_change("value", call("setLayer", "cb_obj.value"))
    controls["compare"].js_on_change("value", call("setCompare", "cb_obj.value === 'none' ? null : cb_obj.value"))
    controls["colorBy"].js_on_change("value", call("setColorBy", "cb_obj.value"))
    for toggle in (controls["showTest"], controls["highlightWrong"]):
        toggle.js_on_change("active", call("redraw"))
    for stand_in in class_renderers:  # a class hidden or shown in the legend: on every map and the data map
        stand_in.js_on_change("visible", call("redraw"))
    for index, view in enumerate(views):
        view["plot"].js_on_event("mousemove", call("hover", f"cb_obj, {index}"))
        view["plot"].js_on_event("mouseleave", call("hover", "null"))
        view["plot"].js_on_event("tap", call("tap", f"cb_obj, {index}"))
        _wire_point_layer(view["plot"], str(index), call)
    if data_map is not None:
        _wire_point_layer(data_map["dataMap"], '"dataMap"', call)
        data_map["region"].js_on_change("value", call("selectRegion", "cb_obj.value"))
        data_map["dataMapColor"].js_on_change("value", call("redraw"))


def _wire_point_layer(plot: Plot, which: str, call: Any) -> None:
    """A plot whose points report.js draws: a box or lasso drawn on it selects, a pan or zoom repaints."""
    plot.js_on_event("selectiongeometry", call("selectGeometry", f"cb_obj.geometry, cb_obj.final, {which}"))
    for plot_range in (plot.x_range, plot.y_range):
        for end in ("start", "end"):
            plot_range.js_on_change(end, call("repaint"))


# ---- the panels beside and below the map -------------------------------------------------------------------------


def _data_map_panel(content: ReportContent) -> dict | None:
    """Dataset cartography's data map of the probe (variability × confidence, coloured by correctness or class), a
    region choice, box and lasso select, and the selected images' thumbnails."""
    from bokeh.layouts import column, row
    from bokeh.models import BoxSelectTool, ColorBar, Div, LinearColorMapper, Range1d, Select
    from bokeh.plotting import figure

    if content.probe.dynamics is None:
        return None
    plot = figure(width=DATA_MAP_SIZE[0], height=DATA_MAP_SIZE[1], output_backend="canvas",
                  name="layerlapse-data-map", title="data map of the probe (drag: select)",
                  x_range=Range1d(0, VARIABILITY_MAX), y_range=Range1d(0, 1.02), tools="reset",
                  toolbar_location="right")
    _transparent_with_select_tools(plot)
    plot.toolbar.active_drag = plot.select_one({"type": BoxSelectTool})
    plot.xaxis.axis_label, plot.yaxis.axis_label = "variability", "confidence"
    _region_cut_offs(plot, content.regions)
    # the points are report.js's (pointlayer.js); it swaps this mapper's palette between correctness (red: never
    # right, green: always) and class, for what reads it
    mapper = LinearColorMapper(palette=correctness_palette(), low=0, high=1, name="layerlapse-data-map-colors")
    bar = ColorBar(color_mapper=mapper, orientation="horizontal", height=8, title="correctness",
                   title_text_font_size="8pt", major_label_text_font_size="7pt", padding=3,
                   name="layerlapse-data-map-color-bar")  # shown while the data map is coloured by correctness
    plot.add_layout(bar, "below")
    counts = (content.regions or {}).get("counts", {})
    # each region with how many probe images it holds (of the whole probe, also where the page shows a subsample)
    region = Select(options=[("none", "region: none")] + [(key, f"{label} ({counts.get(key, 0):,})")
                                                         for key, (_, label) in REGIONS.items()],
                    value="none", width=170, name="layerlapse-region")
    color = Select(options=[("correctness", "colour: correctness"), ("class", "colour: class")],
                   value="correctness", width=170, name="layerlapse-data-map-color")
    selection = Div(text="", width=SELECTION_WIDTH, height=DATA_MAP_SIZE[1] + 40, name="layerlapse-selection",
                    styles={"overflow-y": "auto"})
    layout = row(column(row(region, color), plot), selection)
    return {"dataMap": plot, "dataMapMapper": mapper, "dataMapColorBar": bar, "region": region,
            "dataMapColor": color, "selection": selection, "layout": layout}


def _region_cut_offs(plot: Plot, regions: dict | None) -> None:
    """The regions' borders on the data map, as figures/data_map.png draws them: ambiguous right of the ambiguous
    cut-off; left of the steady one, easy above the high confidence cut-off and hard below the low one; where the
    run's thirds moved them, the fixed cut-off dotted."""
    from ..measures.dynamics import AMBIGUOUS_VARIABILITY

    if regions is None:
        return
    ambiguous, steady = regions["ambiguous_from"], regions["steady_below"]
    borders = [(ambiguous, 0, ambiguous, 1.02)] + ([(steady, 0, steady, 1.02)] if steady < ambiguous else [])
    borders += [(0, level, steady, level) for level in (regions["easy_confidence"], regions["hard_confidence"])]
    x0, y0, x1, y1 = (list(values) for values in zip(*borders))
    plot.segment(x0=x0, y0=y0, x1=x1, y1=y1, line_color="#555555", line_dash="dashed", line_width=1)
    if regions["follows_the_run"]:
        plot.segment(x0=[AMBIGUOUS_VARIABILITY], y0=[0], x1=[AMBIGUOUS_VARIABILITY], y1=[1.02], line_color="#999999",
                     line_dash="dotted", line_width=1)


def _strip_divs(content: ReportContent) -> dict:
    """The probe's hardest and most forgotten images (report.js fills them with thumbnails)."""
    from bokeh.models import Div

    return {name: Div(text="", width=STRIP_WIDTH, height=200, name=f"layerlapse-{name}",
                      styles={"overflow-y": "auto"}) for name in content.strips}


def _measures_panel(content: ReportContent) -> dict | None:
    """The shown layer's CKA between every pair of snapshots, and its k-NN and linear-probe accuracy and change
    (1 − CKA to the previous snapshot) over snapshots, each with a marker at the shown snapshot."""
    from bokeh.layouts import column
    from bokeh.models import ColorBar, ColumnDataSource, Div, HoverTool, LinearColorMapper, Range1d, Span
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure

    if content.measures is None:
        return None
    frames = len(content.epochs)
    first, second = np.divmod(np.arange(frames * frames), frames)
    cells = ColumnDataSource({"a": first, "b": second, "cka": np.full(frames * frames, np.nan)},
                             name="layerlapse-cka-cells")
    heatmap = figure(width=SIDE_WIDTH, height=SIDE_WIDTH - 80, title="CKA between snapshots (shown layer)",
                     tools="", toolbar_location=None, x_range=Range1d(-0.5, frames - 0.5),
                     y_range=Range1d(frames - 0.5, -0.5), name="layerlapse-cka")
    shade = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0, nan_color="#eeeeee")
    cell_renderer = heatmap.rect("a", "b", 1, 1, source=cells, fill_color={"field": "cka", "transform": shade},
                                 line_color=None)
    heatmap.add_tools(HoverTool(renderers=[cell_renderer], tooltips=[(content.slider_title + "s", "@a × @b"),
                                                                     ("CKA", "@cka{0.000}")]))
    heatmap.add_layout(ColorBar(color_mapper=shade, width=10, major_label_text_font_size="8pt"), "right")
    heatmap.grid.visible = False
    heatmap.xaxis.axis_label = heatmap.yaxis.axis_label = content.slider_title
    spans = [Span(location=0, dimension=dimension, line_color="red", line_width=1.5,
                  name=f"layerlapse-cka-marker-{dimension}") for dimension in ("height", "width")]
    for span in spans:
        heatmap.add_layout(span)
    curves, curve_source, curve_span = _measure_curves(content)
    changes = Div(text="", width=SIDE_WIDTH, height=60, name="layerlapse-changes")
    return {"ckaCells": cells, "measuresSource": curve_source, "changes": changes, "spans": [*spans, curve_span],
            "layout": column(changes, heatmap, curves)}


def _measure_curves(content: ReportContent) -> tuple[Plot, ColumnDataSource, Span]:
    from bokeh.models import BasicTicker, ColumnDataSource, Range1d, Span
    from bokeh.plotting import figure

    nothing = [math.nan] * len(content.epochs)
    source = ColumnDataSource({"epoch": content.epochs, "knn": nothing, "linear": nothing, "change": nothing},
                              name="layerlapse-measures-source")
    plot = figure(width=SIDE_WIDTH, height=240, title="the shown layer's representation", tools="",
                  toolbar_location=None, y_range=Range1d(0, 1.05), name="layerlapse-measures")
    for key, color, label in (("knn", "#2ca02c", f"{content.measures['knnK']}-NN accuracy"),
                              ("linear", "#9467bd", "linear probe"), ("change", "#d62728", "1 − CKA to previous")):
        plot.line("epoch", key, source=source, color=color, line_width=2, legend_label=label)
        plot.scatter("epoch", key, source=source, color=color, size=4)
    plot.add_layout(plot.legend[0], "below")  # inside, it would hide curves that can lie anywhere in 0..1
    plot.legend.orientation = "horizontal"
    plot.legend.label_text_font_size = "8pt"
    plot.legend.padding = plot.legend.spacing = 2
    plot.xaxis.axis_label = content.slider_title
    plot.xaxis.ticker = BasicTicker(min_interval=1)
    span = Span(location=0, dimension="height", line_color="black", line_dash="dashed", line_width=1.5,
                name="layerlapse-measures-marker")
    plot.add_layout(span)
    return plot, source, span


def _curve_axis(content: ReportContent) -> tuple[list[float], list[float], str]:
    if content.curve_axis is not None:
        return content.curve_axis
    rows = [row.get("snapshot", row.get("epoch", position)) for position, row in enumerate(content.history)]
    return rows, list(range(max(content.epochs, default=0) + 1)), "epoch"


def _curve_figures(history: list[dict], axis: tuple[list[float], list[float], str], epochs: list[int]
                   ) -> list[tuple[Plot, Span]]:
    """Accuracy and loss, train and validation, against what `axis` names (`store.curve_axis`: the epoch, or the
    optimizer step of a run recorded by step), each with a vertical marker at the shown snapshot. The x axis spans
    the slider's snapshots with some room to spare, so the marker shows at the first (before the first point) and
    off the border at the last; the legend sits above the plot, never on the curves."""
    from bokeh.models import BasicTicker, ColumnDataSource, Range1d, Span
    from bokeh.plotting import figure

    if not history:
        return []
    curves = []
    for metric, title in (("acc", "accuracy"), ("loss", "loss")):
        # a metric some rows lack, or stored as null (a nan), is drawn with gaps there
        keys = [key for key in (metric, f"val_{metric}")
                if any(isinstance(row.get(key), (int, float)) for row in history)]
        if not keys:
            continue
        row_x, snapshot_x, x_name = axis
        xs = [*row_x, snapshot_x[epochs[0]], snapshot_x[epochs[-1]]]
        room = 0.5 if x_name != "optimizer step" else max(0.5, (max(xs) - min(xs)) * 0.03)
        plot = figure(width=SIDE_WIDTH, height=175, title=title, tools="", toolbar_location=None,
                      name=f"layerlapse-{title}", x_range=Range1d(min(xs) - room, max(xs) + room))
        plot.yaxis.ticker.desired_num_ticks = 4  # 170 px of a dozen crowded ticks before
        for key, color in zip(keys, ("#1f77b4", "#ff7f0e")):
            label = "validation" if key.startswith("val_") else "training"
            x, values = metric_series(history, row_x, key)
            source = ColumnDataSource({"x": x, "y": values})
            plot.line("x", "y", source=source, color=color, line_width=2, legend_label=label)
            plot.scatter("x", "y", source=source, color=color, size=4)
        legend = plot.legend[0]
        legend.orientation, legend.label_text_font_size = "horizontal", "8pt"
        legend.padding, legend.margin, legend.spacing = 2, 0, 8
        plot.add_layout(legend, "above")
        plot.xaxis.axis_label = x_name
        plot.xaxis.ticker = BasicTicker(min_interval=1)  # whole epochs, steps or snapshots
        span = Span(location=0, dimension="height", line_color="black", line_dash="dashed", line_width=1.5)
        plot.add_layout(span)
        curves.append((plot, span))
    return curves


def _confusion_figure(content: ReportContent) -> tuple[Plot, ColumnDataSource] | None:
    """The probe's confusion matrix at the shown epoch: rows true, columns predicted, shaded by row share."""
    from bokeh.models import ColumnDataSource, FixedTicker, LinearColorMapper, Range1d
    from bokeh.palettes import Blues256
    from bokeh.plotting import figure

    if content.confusion is None:
        return None
    classes = len(content.class_names)
    true, predicted = np.divmod(np.arange(classes * classes), classes)
    source = ColumnDataSource({"true": true, "predicted": predicted, "share": np.zeros(classes * classes),
                               "count": [""] * (classes * classes), "ink": ["black"] * (classes * classes)},
                              name="layerlapse-confusion")
    plot = figure(width=SIDE_WIDTH, height=SIDE_WIDTH, title=f"confusion of the probe at the shown {content.slider_title}", tools="",
                  toolbar_location=None, x_range=Range1d(-0.5, classes - 0.5),
                  y_range=Range1d(classes - 0.5, -0.5), name="layerlapse-confusion-plot")
    shade = LinearColorMapper(palette=list(reversed(Blues256)), low=0.0, high=1.0)
    plot.rect("predicted", "true", 1, 1, source=source, fill_color={"field": "share", "transform": shade},
              line_color="white")
    if classes <= 20:
        plot.text("predicted", "true", text="count", source=source, text_align="center",
                  text_baseline="middle", text_font_size="8pt", text_color="ink")
    names = {index: short_name(name) for index, name in enumerate(content.class_names)}
    for axis in (plot.xaxis, plot.yaxis):
        axis.ticker = FixedTicker(ticks=list(range(classes)))
        axis.major_label_overrides = names  # drawn on the canvas: text, never markup
    plot.xaxis.axis_label, plot.yaxis.axis_label = "predicted", "true"
    if max(len(name) for name in names.values()) * classes > 40:  # names that would overlap along the bottom
        plot.xaxis.major_label_orientation = math.pi / 4
    plot.grid.visible = False
    return plot, source
