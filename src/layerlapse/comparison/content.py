"""What the comparison's page shows, as the report's own content: each run's layer is one of the page's layers
("A · hidden", "B · hidden"), its maps turned onto the first run's, so the report's slider, maps side by side,
hover, selection, pinned point and trail work on runs as they do on layers. What only a comparison has (each run's
predictions and dynamics, the neighbour overlaps, CKA between the runs) travels as the points' `extra` arrays and
the content's `comparison`, which the page's compare.js reads.
"""

from __future__ import annotations

import numpy as np

from ..measures.dynamics import NOT_YET
from ..render.captions import measures_line
from ..report.content import Points, ReportContent, layer_limits
from ..report.style import DIVERGING_COLORS, FOUR_WAY_COLORS, correctness_palette
from ..store import layout
from .compute import Compared
from .measures import AGREEMENT, LEARNED_BY, NEIGHBOUR_K
from .ranking import ranked_strips, strip_headings


def page_layer(name: str, layer: str) -> str:
    """A run's layer as the page names it: "A · hidden"."""
    return f"{name} · {layer}"


def comparison_content(compared: Compared) -> ReportContent:
    """The page's content for the compared runs."""
    joined = compared.joined
    layers = [page_layer(name, layer) for name, run in zip(joined.names, joined.runs) for layer in run.layers]
    coords = {page_layer(name, layer): compared.coords[k][layer]
              for k, (name, run) in enumerate(zip(joined.names, joined.runs)) for layer in run.layers}
    rows = joined.indices if joined.indices is not None else joined.rows[0]
    probe = Points(joined.labels, coords, joined.images, compared.predicted[0], compared.confidence[0],
                   np.asarray(rows, dtype=np.int64), None, _extra(compared), texts=joined.texts)
    limits = {layer: layer_limits(probe, None, layer) for layer in layers}
    return ReportContent(
        title=f"layerlapse · compare {', '.join(joined.names)}",
        summary=_summary(compared), class_names=joined.class_names, epochs=list(range(len(joined.frames))),
        layers=layers, limits=limits, probe=probe, test=None, probe_total=joined.n_items, test_total=0,
        history=[], confusion=None, epoch_figures=_frame_figures(compared),
        layer_figures=_layer_figures(compared), notes=_notes(compared), seed=0, slider_title="snapshot",
        color_measures=_color_measures(compared), strips=ranked_strips(compared),
        comparison=_comparison(compared, layers))


def _extra(compared: Compared) -> dict[str, np.ndarray]:
    """Per item: each run's predictions, confidence, when it learned it and whether it ends right; each pair of
    runs' neighbour overlap between every pair of their layers."""
    extra = {}
    for r, (predicted, confidence, found) in enumerate(zip(compared.predicted, compared.confidence,
                                                           compared.dynamics)):
        extra[f"pred{r}"], extra[f"conf{r}"] = predicted, confidence
        first = np.where(found.first_learned == NOT_YET, 0, np.minimum(found.first_learned + 1, 255))
        extra[f"first{r}"] = first.astype(np.uint8)
        extra[f"learned{r}"] = (found.learned_from != NOT_YET).astype(np.uint8)
        extra[f"forget{r}"] = np.clip(found.forgetting_events, 0, 255).astype(np.uint8)
    for pair in compared.pairs:
        for (a, b), overlap in pair.overlap.items():
            extra[f"overlap{pair.left}_{pair.right}_{a}_{b}"] = overlap
    return extra


def _summary(compared: Compared) -> str:
    joined = compared.joined
    runs = " · ".join(f"{name}: {run.path.name} ({_test_accuracy(run)})" for name, run in zip(joined.names, joined.runs))
    return (f"{runs} · {joined.n_items:,} shared probe items, {joined.item_rule} · {len(joined.frames)} snapshots, "
            f"{joined.snapshot_rule} · maps: each run's own, turned (rotated or reflected, never stretched) onto "
            f"{joined.names[0]}'s")


def _test_accuracy(run) -> str:
    test = run.manifest.get("test")
    return f"test accuracy {test['accuracy']:.4f}" if test else "no test set"


def _frame_figures(compared: Compared) -> list[str]:
    joined = compared.joined
    lines = []
    for frame, snapshots in enumerate(joined.frames):
        titles = {run.snapshot_title(snapshot) for run, snapshot in zip(joined.runs, snapshots)}
        when = compared.frame_titles[frame] if len(titles) == 1 else " / ".join(
            f"{name}: {run.snapshot_title(snapshot)}" for name, run, snapshot in zip(joined.names, joined.runs,
                                                                                    snapshots))
        accuracies = " · ".join(f"{name} probe accuracy {np.mean(predicted[frame] == joined.labels):.4f}"
                                for name, predicted in zip(joined.names, compared.predicted))
        lines.append(f"{when.lower()} · {accuracies}")
    return lines


def _layer_figures(compared: Compared) -> dict[str, list[str]]:
    """Each run's own faithfulness measures of its frames, and how far the turn left it from the first run's."""
    joined = compared.joined
    figures = {}
    for k, (name, run) in enumerate(zip(joined.names, joined.runs)):
        for layer in run.layers:
            lines = []
            for frame, snapshots in enumerate(joined.frames):
                line = measures_line(run.frame_measures(layer, snapshots[k]))
                if k > 0:
                    onto = page_layer(joined.names[0], compared.turned_onto[k][layer])
                    line += (f" · turned onto {onto}: disparity {compared.disparity[k][layer][frame]:.2f} "
                             "(0: the same picture)")
                lines.append(line)
            figures[page_layer(name, layer)] = lines
    return figures


def _notes(compared: Compared) -> list[str]:
    joined = compared.joined
    notes = list(joined.notes)
    with_images = sum(run.has(layout.PROBE_IMAGES) for run in joined.runs)
    if with_images < len(joined.runs):
        checked = "are checked by class, and by image between the runs that stored thumbnails" if with_images > 1 \
            else "are checked by class only (a run stored no thumbnails to check them by)"
        notes.append(f"the items {checked}")
    if len(compared.neighbour_items) < joined.n_items:
        notes.append(f"neighbour overlap measured on a seeded sample of {len(compared.neighbour_items):,} items "
                     "(neighbours among them); the others are grey when coloured by it")
    return notes


def _color_measures(compared: Compared) -> list[dict]:
    frames = len(compared.joined.frames)
    measures = [
        {"key": "agreement", "label": "agreement", "source": "comparison", "scale": 1, "offset": 0,
         "missing": None, "low": -0.5, "high": 3.5, "palette": FOUR_WAY_COLORS,
         "title": "at this snapshot, left map's run vs right's: " + ", ".join(AGREEMENT)},
        {"key": "overlap", "label": f"{NEIGHBOUR_K}-NN overlap", "source": "comparison", "scale": 1, "offset": 0,
         "missing": None, "low": 0, "high": 1, "palette": correctness_palette(),
         "title": f"share of its {NEIGHBOUR_K} nearest neighbours the two maps' layers share (red: the runs see "
                  "it differently)"},
        {"key": "learnedBy", "label": "learned by", "source": "comparison", "scale": 1, "offset": 0,
         "missing": None, "low": -0.5, "high": 3.5, "palette": FOUR_WAY_COLORS,
         "title": "right at the last snapshot, left map's run vs right's: " + ", ".join(LEARNED_BY)},
        {"key": "learnedLater", "label": "learned later (right − left)", "source": "comparison", "scale": 1,
         "offset": 0, "missing": None, "low": -max(frames - 1, 1), "high": max(frames - 1, 1),
         "palette": DIVERGING_COLORS, "title": "snapshots by which the right map's run first got it right after the left's "
                                        "(red: later; grey: one never did)"},
        {"key": "forgottenMore", "label": "forgotten more (right − left)", "source": "comparison", "scale": 1,
         "offset": 0, "missing": None, "low": -max(frames // 2, 1), "high": max(frames // 2, 1),
         "palette": DIVERGING_COLORS, "title": "forgetting events (right → wrong) in the right map's run minus the left's "
                                        "(red: forgotten more on the right)"},
    ]
    if len(compared.joined.runs) >= 3:
        measures.append({"key": "learnedShare", "label": "learned in k of n runs", "source": "comparison",
                         "scale": 1, "offset": 0, "missing": None, "low": 0, "high": 1,
                         "palette": correctness_palette(),
                         "title": "share of the runs right at the last snapshot (green: every seed; red: none)"})
    return measures


def _comparison(compared: Compared, layers: list[str]) -> dict:
    joined = compared.joined
    layer_run = [k for k, run in enumerate(joined.runs) for _ in run.layers]
    layer_of = [index for run in joined.runs for index in range(len(run.layers))]
    second = next((k for k, layer in enumerate(layers) if layer_run[k] == 1), None)
    return {
        "runs": [{"name": name, "layerNames": list(run.layers),
                  "layers": [k for k, owner in enumerate(layer_run) if owner == r]}
                 for r, (name, run) in enumerate(zip(joined.names, joined.runs))],
        "layerRun": layer_run, "layerOf": layer_of,
        "pairs": [{"left": pair.left, "right": pair.right,
                   "cka": [[[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in frame]
                           for frame in pair.cka]} for pair in compared.pairs],
        "neighbourK": NEIGHBOUR_K, "neighbourItems": len(compared.neighbour_items), "ckaItems": compared.cka_items,
        "strips": strip_headings(compared),
        "initialCompare": layers[second] if second is not None else None,
        "itemRule": joined.item_rule, "snapshotRule": joined.snapshot_rule,
    }

