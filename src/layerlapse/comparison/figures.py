"""The comparison's figures, as PNG bytes (the comparison folder writes them): the runs' last maps side by side
(turned onto the first's) and coloured by neighbour overlap; CKA between the first two runs' layers at the last
snapshot and their measures over the snapshots; every run's curves overlaid; the confusion matrices' difference;
and, with three runs or more, each pairwise measure within a recipe (seed noise) against between recipes."""

from __future__ import annotations

import io

import numpy as np

from ..render.canvas import new_figure
from ..render.charts import confusion_matrix
from ..render.points import common_limits, scatter_by_class
from ..render.style import RUN_COLORS
from ..store.history import metric_series
from .compute import Compared
from .measures import NEIGHBOUR_K

DPI_SIZE = (1280, 560)


def draw_figures(compared: Compared, summary: dict) -> dict[str, bytes]:
    figures = {"maps": _maps(compared), "measures": _measures(compared, summary), "curves": _curves(compared),
               "confusion_difference": _confusion_difference(compared)}
    if summary.get("seeds"):
        figures["seeds"] = _seeds(summary)
    return {name: png for name, png in figures.items() if png is not None}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    return buffer.getvalue()


def _maps(compared: Compared) -> bytes:
    """The last snapshot of every run's first layer, side by side, and the first two coloured by overlap."""
    joined = compared.joined
    panels = [(name, run.layers[0], compared.coords[k][run.layers[0]][-1])
              for k, (name, run) in enumerate(zip(joined.names, joined.runs))]
    figure = new_figure((400 * (len(panels) + 1), 440))
    limits = common_limits([xy for _, _, xy in panels])
    for k, (name, layer, xy) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels) + 1, k + 1)
        scatter_by_class(axes, xy, joined.labels, len(joined.class_names), None, limits)
        axes.set_title(f"{name} · {layer}, {compared.frame_titles[-1].lower()}", fontsize=10)
    axes = figure.add_subplot(1, len(panels) + 1, len(panels) + 1)
    overlap = compared.pair(0, 1).overlap[(0, 0)][-1]
    measured = overlap != 255
    xy = panels[0][2]
    drawn = axes.scatter(xy[measured, 0], xy[measured, 1], c=overlap[measured] / NEIGHBOUR_K, cmap="RdYlGn",
                         vmin=0, vmax=1, s=4, linewidths=0)
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(f"{joined.names[0]}'s map by {NEIGHBOUR_K}-NN overlap with {joined.names[1]}", fontsize=10)
    figure.colorbar(drawn, ax=axes, fraction=0.046, pad=0.02)
    figure.tight_layout()
    return _png(figure)


def _measures(compared: Compared, summary: dict) -> bytes:
    """CKA between the first two runs' layers at the last snapshot, and their measures over the snapshots."""
    pair = summary["pairs"][0]
    figure = new_figure(DPI_SIZE)
    heat = figure.add_subplot(1, 2, 1)
    matrix = np.array([[np.nan if v is None else v for v in row] for row in pair["cka"]["per_snapshot"][-1]])
    shown = heat.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    heat.set_xticks(range(len(pair["cka"]["right_layers"])), pair["cka"]["right_layers"], rotation=30, fontsize=8)
    heat.set_yticks(range(len(pair["cka"]["left_layers"])), pair["cka"]["left_layers"], fontsize=8)
    heat.set_xlabel(pair["right"])
    heat.set_ylabel(pair["left"])
    for (a, b), value in np.ndenumerate(matrix):
        if np.isfinite(value):
            heat.text(b, a, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black",
                      fontsize=9)
    heat.set_title(f"linear CKA, {compared.frame_titles[-1].lower()}", fontsize=10)
    figure.colorbar(shown, ax=heat, fraction=0.046, pad=0.02)
    lines = figure.add_subplot(1, 2, 2)
    frames = np.arange(len(compared.frame_titles))
    cka = np.array([[np.nan if v is None else v for v in np.diagonal(np.array(frame, dtype=object))]
                    for frame in pair["cka"]["per_snapshot"]], dtype=float)
    for k in range(cka.shape[1]):
        lines.plot(frames, cka[:, k], label=f"CKA, layer {k + 1} with layer {k + 1}", linewidth=2)
    overlap = pair["neighbour_overlap"][0]
    lines.plot(frames, [np.nan if v is None else v for v in overlap["mean_per_snapshot"]], linewidth=2,
               label=f"{NEIGHBOUR_K}-NN overlap ({overlap['left_layer']} / {overlap['right_layer']})")
    lines.plot(frames, [share["both_right"] for share in pair["agreement"]], linewidth=2, label="both right")
    lines.plot(frames, [share["same_prediction"] for share in pair["agreement"]], linewidth=2, linestyle="--",
               label="same prediction")
    lines.set_ylim(0, 1.05)
    lines.set_xlabel("snapshot")
    lines.set_title(f"{pair['left']} and {pair['right']} over training", fontsize=10)
    lines.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return _png(figure)


def _curves(compared: Compared) -> bytes | None:
    """Every run's accuracy and loss at its matched snapshots, overlaid."""
    joined = compared.joined
    figure = new_figure(DPI_SIZE)
    drawn = False
    for column, metric in enumerate(("acc", "loss")):
        axes = figure.add_subplot(1, 2, column + 1)
        for k, name in enumerate(joined.names):
            rows, x = compared.matched_history(k)
            for key, style in ((f"val_{metric}", "-"), (metric, "--")):
                series = metric_series(rows, x, key)
                if series is not None:
                    axes.plot(*series, style, color=RUN_COLORS[k % len(RUN_COLORS)], linewidth=2,
                              label=f"{name} {'validation' if key.startswith('val_') else 'training'}")
                    drawn = True
        axes.set_xlabel("snapshot")
        axes.set_title({"acc": "accuracy", "loss": "loss"}[metric], fontsize=10)
        if axes.lines:
            axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure) if drawn else None


def _confusion_difference(compared: Compared) -> bytes:
    """At the last snapshot: the first run's confusion matrix minus the second's (rows true, columns predicted)."""
    joined = compared.joined
    classes = len(joined.class_names)
    left, right = (confusion_matrix(joined.labels, predicted[-1], classes) for predicted in compared.predicted[:2])
    difference = left.astype(np.int64) - right.astype(np.int64)
    figure = new_figure((640, 600))
    axes = figure.add_subplot(1, 1, 1)
    most = max(int(np.abs(difference).max()), 1)
    shown = axes.imshow(difference, cmap="RdBu", vmin=-most, vmax=most)
    if classes <= 20:
        for (t, p), value in np.ndenumerate(difference):
            if value:
                axes.text(p, t, f"{value:+d}", ha="center", va="center", fontsize=8)
        axes.set_xticks(range(classes), [name[:8] for name in joined.class_names], rotation=45, fontsize=8)
        axes.set_yticks(range(classes), [name[:8] for name in joined.class_names], fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"confusion, {joined.names[0]} − {joined.names[1]}, {compared.frame_titles[-1].lower()}\n"
                   f"(blue: more in {joined.names[0]}, red: more in {joined.names[1]})", fontsize=10)
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.02)
    figure.tight_layout()
    return _png(figure)


def _seeds(summary: dict) -> bytes:
    """Each pairwise measure at the last snapshot: its mean and spread over pairs of one recipe (seed noise) and
    over pairs of different recipes."""
    seeds = summary["seeds"]
    measured = seeds["pairwise_at_last_snapshot"]
    keys = sorted({key for values in measured.values() for key in values})
    figure = new_figure(DPI_SIZE)
    axes = figure.add_subplot(1, 1, 1)
    width = 0.38
    for offset, kind, color in ((-width / 2, "within", "#1f77b4"), (width / 2, "between", "#ff7f0e")):
        found = measured.get(kind) or {}
        means = [found.get(key, {}).get("mean") for key in keys]
        errors = [found.get(key, {}).get("sd") for key in keys]
        if all(mean is None for mean in means):
            continue
        axes.bar(np.arange(len(keys)) + offset, [np.nan if m is None else m for m in means], width,
                 yerr=[0 if e is None else e for e in errors], color=color, capsize=4,
                 label=f"pairs {'of one recipe (seed noise)' if kind == 'within' else 'of different recipes'}")
    axes.set_xticks(range(len(keys)), [key.replace("_", " ") for key in keys], fontsize=9)
    axes.set_ylim(0, 1.05)
    items = seeds["items"]
    axes.set_title(f"{len(summary['runs'])} runs, {seeds['recipe_count']} recipe(s) · items learned by every run "
                   f"{items['every_run']:,}, by none {items['no_run']:,}, seed-dependent "
                   f"{items['seed_dependent']:,}", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)
