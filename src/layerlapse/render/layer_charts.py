"""The layers compared over the run: linear CKA heatmaps, and per layer its class separation and how much it changed
from one snapshot to the next."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .canvas import PathLike, new_figure, save_png, tick_positions
from .style import layer_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes


# --- the layers side by side: layer measures, CKA, the grid of maps and the layers' lapse ----------------------------

# Sequential, not diverging: CKA runs from 0 (unrelated) to 1 (the same up to rotation and scale), with no middle.
_CKA_COLORMAP = "viridis"
_MISSING_CELL_COLOR = "0.85"  # a pair the measures could not compare (None): grey, with nothing written in it
_MOST_CELLS_WITH_TEXT = 12  # a side beyond this gets no numbers: they would not fit in their cells


def _floats(values: Sequence[float | None]) -> np.ndarray:
    """Stored measures as floats, None (not measured) as NaN, which matplotlib leaves as a gap."""
    return np.array([np.nan if value is None else float(value) for value in values], dtype=np.float64)


def _measured_layers(measures: Mapping[str, Any]) -> tuple[list[int], list[str]]:
    """The snapshot numbers and the layers in order, input to output; a one-line error when there is nothing."""
    layers = measures.get("layers") if isinstance(measures, Mapping) else None
    if not layers:
        raise ValueError("measures has no layers; compute the layer measures of a run that recorded at least one "
                         "layer before drawing them")
    snapshots = [int(snapshot) for snapshot in measures.get("snapshots") or []]
    if not snapshots:
        raise ValueError("measures has no snapshots; compute the layer measures over the run's snapshots first")
    order = list(measures.get("layer_order") or [])
    if unknown := [layer for layer in order if layer not in layers]:
        raise ValueError(f"measures['layer_order'] names {unknown[0]!r}, which measures['layers'] lacks; "
                         "write layer_order from the same measures")
    return snapshots, order + [layer for layer in layers if layer not in order]


def _per_snapshot(measures: Mapping[str, Any], layer: str, key: str, n_snapshots: int) -> np.ndarray:
    """One value per snapshot of a layer's measure (all NaN where the measure is absent)."""
    values = measures["layers"][layer].get(key)
    if values is None:
        return np.full(n_snapshots, np.nan)
    if len(values) != n_snapshots:
        raise ValueError(f"measures['layers'][{layer!r}][{key!r}] has {len(values)} values but there are "
                         f"{n_snapshots} snapshots; compute the measures and the snapshots from the same run")
    return _floats(values)


def _square_matrix(rows: Sequence[Sequence[float | None]], side: int, name: str, axis_name: str) -> np.ndarray:
    """A side x side matrix of floats (None as NaN), or a one-line error naming the shape found."""
    widths = sorted({len(row) for row in rows})
    if len(rows) != side or widths != [side]:
        if not rows:
            found = "empty"
        elif len(widths) == 1:
            found = f"{len(rows)} x {widths[0]}"
        else:
            found = f"{len(rows)} rows of lengths {widths}"
        raise ValueError(f"{name} is {found} but there are {side} {axis_name}; it must be {side} x {side}: compute "
                         f"it over the same {axis_name} as the rest of the measures")
    return np.array([_floats(row) for row in rows], dtype=np.float64)


def _cka_heatmap(axes: Axes, matrix: np.ndarray, names: Sequence[str], title: str) -> Any:
    """One CKA matrix as a heatmap on a fixed 0..1 scale, its values written in when there are few cells."""
    import matplotlib

    colormap = matplotlib.colormaps[_CKA_COLORMAP].with_extremes(bad=_MISSING_CELL_COLOR)
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
    side = len(matrix)
    if side <= _MOST_CELLS_WITH_TEXT:
        fontsize = 8 if side <= 8 else 7
        for (row, column), value in np.ndenumerate(matrix):
            if math.isfinite(value):  # viridis is dark at the bottom: light text there, dark text above
                axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                          color="white" if value < 0.55 else "black")
    ticks = tick_positions(side)
    labels = [str(names[tick]) for tick in ticks]
    long_names = max(len(label) for label in labels) > 3
    axes.set_xticks(ticks, labels=labels, fontsize=8, rotation=40 if long_names else 0,
                    ha="right" if long_names else "center", rotation_mode="anchor")
    axes.set_yticks(ticks, labels=labels, fontsize=8)
    axes.tick_params(length=2)
    axes.set_title(title, fontsize=10)
    return image


def _cka_panels(measures: Mapping[str, Any], snapshots: list[int], order: list[str]
                ) -> list[tuple[np.ndarray, list[str], str, str]]:
    """(matrix, tick names, title, axis label) for each panel: each layer over the snapshots, then the layers."""
    snapshot_names = [str(snapshot) for snapshot in snapshots]
    panels = [(_square_matrix(measures["layers"][layer].get("cka") or [], len(snapshots),
                              f"measures['layers'][{layer!r}]['cka']", "snapshots"),
               snapshot_names, layer, "snapshot") for layer in order]
    between = measures.get("cka_between_layers")
    if len(order) >= 2 and between:
        if len(between) != len(snapshots):
            raise ValueError(f"measures['cka_between_layers'] has {len(between)} matrices but there are "
                             f"{len(snapshots)} snapshots; compute it at every snapshot of the run")
        titles = measures.get("titles") or []
        last = titles[-1] if len(titles) == len(snapshots) else f"snapshot {snapshots[-1]}"
        matrix = _square_matrix(between[-1] or [], len(order), "measures['cka_between_layers'][-1]", "layers")
        panels.append((matrix, order, f"between layers, {last}", "layer"))
    return panels


def _cka_panel_px(panels: Sequence[tuple[np.ndarray, Any, Any, Any]]) -> int:
    """A panel's side in pixels: 400, or more when numbers are written in up to 12 cells a side (34 px a cell)."""
    with_text = [len(matrix) for matrix, *_ in panels if len(matrix) <= _MOST_CELLS_WITH_TEXT]
    return max(400, 120 + 34 * max(with_text, default=0))


def draw_cka(measures: dict, path: PathLike, *, title: str | None = None) -> Path:
    """Linear CKA between every pair of snapshots, one heatmap per layer, and between the layers at the last
    snapshot: which epochs changed a layer's representation, and how alike the layers end up."""
    snapshots, order = _measured_layers(measures)
    panels = _cka_panels(measures, snapshots, order)
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    panel_px = _cka_panel_px(panels)
    figure = new_figure((columns * panel_px + 120, rows * panel_px + 50))
    figure.set_layout_engine("constrained", w_pad=0.1, h_pad=0.1)
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, (matrix, names, panel_title, axis_label) in zip(grid, panels):
        image = _cka_heatmap(axes, matrix, names, panel_title)
        axes.set_xlabel(axis_label, fontsize=8)
        axes.set_ylabel(axis_label, fontsize=8)
    for axes in grid[len(panels):]:
        axes.set_axis_off()
    colorbar = figure.colorbar(image, ax=list(grid), shrink=0.8, aspect=30)
    colorbar.set_label("linear CKA", fontsize=9)
    colorbar.ax.tick_params(labelsize=8)
    between = " and between layers" if len(panels) > len(order) else ""
    figure.suptitle(title or f"Linear CKA between snapshots{between}", fontsize=11)
    return save_png(figure, path)


def _plot_accuracies(axes: Axes, measures: Mapping[str, Any], snapshots: list[int], order: list[str],
                     colors: Mapping[str, Any]) -> None:
    """Top panel: how well each layer's neighbours (solid) and a linear probe (dashed) tell the classes apart."""
    from matplotlib.lines import Line2D

    marker = "o" if len(snapshots) <= 40 else None  # a lone value between two gaps still shows
    for layer in order:
        for key, style in (("knn_accuracy", "-"), ("linear_probe_accuracy", "--")):
            # not clipped: an accuracy of 1 sits on the top edge, and its marker should show whole
            axes.plot(snapshots, _per_snapshot(measures, layer, key, len(snapshots)), linestyle=style,
                      color=colors[layer], marker=marker, markersize=3, linewidth=1.4, clip_on=False)
    handles = [Line2D([], [], color=colors[layer], linewidth=2, label=layer) for layer in order]
    handles += [Line2D([], [], color="0.3", linestyle="-", label=f"k-NN accuracy (k = {measures.get('knn_k', '?')})"),
                Line2D([], [], color="0.3", linestyle="--", label="linear probe accuracy")]
    sample = measures.get("sample_size")
    axes.legend(handles=handles, fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                title=f"{sample:,} sampled points" if isinstance(sample, int) else None)
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("accuracy", fontsize=9)
    axes.set_title("How well each layer separates the classes", fontsize=10)


def _largest_changes(layer_measures: Mapping[str, Any], change: np.ndarray, snapshots: list[int]
                     ) -> list[tuple[int, float, str]]:
    """(snapshot, height on the change curve, title) of each of a layer's largest changes that has a value."""
    marks = []
    for entry in layer_measures.get("largest_change") or []:
        if entry.get("snapshot") not in snapshots:
            raise ValueError(f"largest_change names snapshot {entry.get('snapshot')!r}, which measures['snapshots'] "
                             "lacks; compute the measures and the snapshots from the same run")
        position = snapshots.index(entry["snapshot"])
        height = change[position] if math.isfinite(change[position]) else entry.get("cka_change")
        if isinstance(height, (int, float)) and math.isfinite(height):
            marks.append((entry["snapshot"], float(height), str(entry.get("title") or entry["snapshot"])))
    return marks


def _mark_largest_changes(axes: Axes, marks: Sequence[tuple[int, float, str, Any]], n_snapshots: int) -> None:
    """A ring in the layer's colour on each largest change, and the snapshot's title once above its highest ring:
    layers often change most at the same snapshot, and one label each would pile up."""
    for snapshot, height, _, color in marks:
        axes.plot(snapshot, height, marker="o", markersize=8, markerfacecolor="none", markeredgecolor=color,
                  markeredgewidth=1.5)
    labelled = []
    for snapshot in sorted({mark[0] for mark in marks}):
        here = [mark for mark in marks if mark[0] == snapshot]
        _, height, title, color = max(here, key=lambda mark: mark[1])
        # a label beside the one before (neighbouring snapshots) goes one line higher, so the two do not overlap
        lift = 7 + (11 if labelled and labelled[-1] == (snapshot - 1, 7) else 0)
        labelled.append((snapshot, lift))
        axes.annotate(title, (snapshot, height), xytext=(0, lift), textcoords="offset points", fontsize=7,
                      ha="left" if n_snapshots > 20 else "center", rotation=50 if n_snapshots > 20 else 0,
                      color=color if len({mark[3] for mark in here}) == 1 else "0.25",
                      bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.5})


def _plot_changes(axes: Axes, measures: Mapping[str, Any], snapshots: list[int], order: list[str],
                  colors: Mapping[str, Any]) -> None:
    """Bottom panel: how much each layer's representation moved since the snapshot before."""
    from matplotlib.lines import Line2D

    marker = "o" if len(snapshots) <= 40 else None
    highest, measured, any_neighbors, marks = 0.0, False, False, []
    for layer in order:
        change = 1.0 - _per_snapshot(measures, layer, "cka_to_previous", len(snapshots))
        lost = 1.0 - _per_snapshot(measures, layer, "neighbors_kept", len(snapshots))
        axes.plot(snapshots, change, color=colors[layer], marker=marker, markersize=3, linewidth=1.4)
        if np.isfinite(lost).any():
            any_neighbors = True
            axes.plot(snapshots, lost, color=colors[layer], linestyle=":", linewidth=1.4)
        highest = max(highest, float(np.nanmax(np.r_[change, lost, 0.0])))
        measured = measured or bool(np.isfinite(change).any())
        marks += [(*mark, colors[layer]) for mark in _largest_changes(measures["layers"][layer], change, snapshots)]
    _mark_largest_changes(axes, marks, len(snapshots))
    if not measured:
        axes.text(0.5, 0.5, "no change measured (it needs two snapshots)", transform=axes.transAxes, ha="center",
                  fontsize=9, color="0.5")
    handles = [Line2D([], [], color="0.3", label="1 − CKA to previous")]
    if any_neighbors:
        handles.append(Line2D([], [], color="0.3", linestyle=":",
                              label=f"1 − share of {measures.get('knn_k', '?')} nearest\nneighbours kept"))
    if marks:
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                              label="largest changes"))
    axes.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.set_ylim(0.0, min(1.08, max(0.05, highest) * 1.25))  # room above the highest ring for its label
    axes.set_ylabel("change from previous", fontsize=9)
    axes.set_title("How much each layer changed since the snapshot before", fontsize=10)


def draw_layer_measures(measures: dict, path: PathLike) -> Path:
    """Per layer and snapshot: k-NN and linear-probe accuracy above, the change from the previous snapshot below,
    with each layer's largest changes marked and named."""
    from matplotlib.ticker import MaxNLocator

    snapshots, order = _measured_layers(measures)
    colors = layer_colors(order)
    figure = new_figure((1152, 768))
    figure.set_layout_engine("constrained", h_pad=0.08)
    top, bottom = figure.subplots(2, 1, sharex=True)
    _plot_accuracies(top, measures, snapshots, order, colors)
    _plot_changes(bottom, measures, snapshots, order, colors)
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=8)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))  # no snapshot 1.5
    if len(snapshots) == 1:
        bottom.set_xlim(snapshots[0] - 1, snapshots[0] + 1)  # else the locator zooms in to ticks of -0.045
    bottom.set_xlabel("snapshot", fontsize=9)
    return save_png(figure, path)
