"""Every layer at once: the grid of maps (layers by snapshots) and the frames of the layers' lapse, laid out in
pixels so that every frame of a run has the same size whatever its captions say."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .canvas import PathLike, fraction_rect, new_figure, save_png, tick_positions, whole_blocks, wrapped
from .points import check_points, scatter_by_class, common_limits
from .style import class_colormap, class_norm

if TYPE_CHECKING:
    from matplotlib.figure import Figure


_LEGEND_CLASSES_AT_MOST = 20  # more classes get a colour strip with some names instead of a legend of markers


def choose_snapshots(snapshots: list[int], count: int = 5) -> list[int]:
    """About `count` snapshots spread evenly over the run, always its first and last, sorted (all when fewer)."""
    if count < 2:
        raise ValueError(f"count must be at least 2 (the first and the last snapshot), got {count}")
    ordered = sorted(set(snapshots))
    if not ordered:
        raise ValueError("snapshots is empty; record at least one snapshot before choosing some to draw")
    positions = np.linspace(0, len(ordered) - 1, min(count, len(ordered))).round().astype(int)
    return [ordered[position] for position in sorted(set(positions.tolist()))]


# The grid of maps and the layers' frames are laid out in pixels, so that every frame of a run comes out the same
# size whatever its captions say.
_CAPTION_LINE_PX = 16  # a 7-point line at 128 dpi with its leading
_LEGEND_ROW_PX = 22
_LEGEND_CHAR_PX = 8  # an 8-point character, rounded up so that columns never overlap
_GRID_CELL_PX = 240
_LAYER_PANEL_PX = 384
_MOST_LAYER_COLUMNS = 4
_FRAME_TITLE_PX = 44
# a layer's panel in the layers' frame: its name above, its map, three caption lines and a gap below
_LAYER_ROW_PX = 24 + _LAYER_PANEL_PX + 3 * _CAPTION_LINE_PX + 12


def _class_key_layout(class_names: Sequence[str], width_px: int) -> tuple[int, int]:
    """Columns and height in pixels of the class key across the bottom of a figure `width_px` wide."""
    if len(class_names) > _LEGEND_CLASSES_AT_MOST:
        return 0, 64  # a colour strip with some of the names under it
    entry_px = 40 + _LEGEND_CHAR_PX * max(len(str(name)) for name in class_names)
    rows = math.ceil(len(class_names) / max(1, min(len(class_names), (width_px - 24) // entry_px)))
    # as few columns as fill those rows: 5 + 5 reads better than 9 + 1
    return math.ceil(len(class_names) / rows), rows * _LEGEND_ROW_PX + 14


def _draw_class_key(figure: Figure, figure_px: tuple[int, int], class_names: Sequence[str], columns: int,
                    height_px: int) -> None:
    """One key to the class colours for the whole figure, in a band of `height_px` at its bottom."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D

    n_classes = len(class_names)
    colormap = class_colormap(n_classes)
    if columns == 0:
        strip = figure.add_axes(fraction_rect(figure_px, 40, figure_px[1] - height_px + 8, figure_px[0] - 80, 14))
        colorbar = figure.colorbar(ScalarMappable(norm=class_norm(n_classes), cmap=colormap), cax=strip,
                                   orientation="horizontal")
        ticks = tick_positions(n_classes)
        colorbar.set_ticks(ticks, labels=[str(class_names[tick]) for tick in ticks])
        colorbar.ax.tick_params(labelsize=8, length=0)
        return
    rows = math.ceil(n_classes / columns)
    # The legend fills column by column; handing it the classes in this order makes them read along the rows.
    order = [row * columns + column for column in range(columns) for row in range(rows) if row * columns + column
             < n_classes]
    handles = [Line2D([], [], marker="o", linestyle="", markersize=6, color=colormap(position),
                      label=str(class_names[position])) for position in order]
    figure.legend(handles=handles, loc="center", ncols=columns, fontsize=8, frameon=False, handlelength=1.0,
                  handletextpad=0.4, columnspacing=1.2,
                  bbox_to_anchor=fraction_rect(figure_px, 0, figure_px[1] - height_px, figure_px[0], height_px))


def _grid_maps(maps: Mapping[str, Mapping[int, np.ndarray]], labels: np.ndarray, snapshots: Sequence[int]
               ) -> dict[str, list[np.ndarray]]:
    """Each layer's maps at the chosen snapshots, checked: every snapshot there, one label per point."""
    if not maps:
        raise ValueError("maps has no layers; pass each layer's maps as {layer: {snapshot: map}}")
    if not snapshots:
        raise ValueError("snapshots is empty; pick some to draw, for example with choose_snapshots")
    chosen = {}
    for layer, by_snapshot in maps.items():
        if missing := [snapshot for snapshot in snapshots if snapshot not in by_snapshot]:
            raise ValueError(f"maps[{layer!r}] has no map for snapshot {missing[0]}; map that snapshot first or "
                             "leave it out of snapshots")
        chosen[layer] = [check_points(by_snapshot[snapshot], labels, f"maps[{layer!r}][{snapshot}]")[0]
                         for snapshot in snapshots]
    return chosen


def _grid_cell_px(rows: int, columns: int) -> int:
    """240-pixel cells, smaller for many layers or snapshots so that the figure stays within about 2000 x 3000."""
    return int(max(120, min(_GRID_CELL_PX, 1900 // columns, 2800 // rows)))


def draw_layer_grid(maps: dict[str, dict[int, np.ndarray]], labels: np.ndarray, class_names: list[str],
                    snapshots: list[int], titles: dict[int, str], path: PathLike, *,
                    captions: dict[tuple[str, int], str] | None = None) -> Path:
    """Every layer's map (rows, input to output) at a few snapshots (columns), coloured by class; each layer's
    maps share one view, so what moves between columns is the map, not the axes."""
    chosen = _grid_maps(maps, labels, snapshots)
    labels = np.asarray(labels)
    cell = _grid_cell_px(len(chosen), len(snapshots))
    left, top, gap = 34, 30, 10
    caption_px = 2 * _CAPTION_LINE_PX + 4 if captions else 0
    width = left + len(snapshots) * (cell + gap) + 4
    key_columns, key_px = _class_key_layout(class_names, width)
    height = top + len(chosen) * (cell + caption_px + gap) + key_px
    figure = new_figure((width, height))
    for row, (layer, layer_maps) in enumerate(chosen.items()):
        limits = common_limits(layer_maps)
        for column, (snapshot, xy) in enumerate(zip(snapshots, layer_maps)):
            cell_left, cell_top = left + column * (cell + gap), top + row * (cell + caption_px + gap)
            axes = figure.add_axes(fraction_rect((width, height), cell_left, cell_top, cell, cell))
            scatter_by_class(axes, xy, labels, len(class_names), None, limits, marker_scale=cell / 600)
            if row == 0:
                axes.set_title(titles.get(snapshot, f"snapshot {snapshot}"), fontsize=9)
            if column == 0:
                axes.set_ylabel(layer, fontsize=9)
            if captions and (caption := captions.get((layer, snapshot))):
                figure.text((cell_left + cell / 2) / width, 1 - (cell_top + cell + 3) / height,
                            wrapped(caption, cell, 2), ha="center", va="top", fontsize=7, color="0.35")
    _draw_class_key(figure, (width, height), class_names, key_columns, key_px)
    return save_png(figure, path)


def _frame_maps(maps_at: Mapping[str, np.ndarray], labels: np.ndarray, limits: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    """The layers' maps at one snapshot, checked: a view for every layer, one label per point."""
    if not maps_at:
        raise ValueError("maps_at has no layers; pass each layer's map at this snapshot as {layer: map}")
    if missing := [layer for layer in maps_at if layer not in limits]:
        raise ValueError(f"limits has no entry for layer {missing[0]!r}; pass common_limits over all of that "
                         "layer's maps, the same for every frame")
    return {layer: check_points(xy, labels, f"maps_at[{layer!r}]")[0] for layer, xy in maps_at.items()}


def _layers_frame_layout(n_layers: int, class_names: Sequence[str]) -> tuple[tuple[int, int], int, int, int]:
    """Figure size, columns and the class key's columns and height: they depend only on the number of layers and
    the class names, so every frame of a run has the same size."""
    columns = min(n_layers, _MOST_LAYER_COLUMNS)
    rows = math.ceil(n_layers / columns)
    width = 16 + columns * (_LAYER_PANEL_PX + 16)
    key_columns, key_px = _class_key_layout(class_names, width)
    height = _FRAME_TITLE_PX + rows * _LAYER_ROW_PX + key_px
    return (width, whole_blocks(height)), columns, key_columns, key_px


def draw_layers_frame(maps_at: dict[str, np.ndarray], labels: np.ndarray, class_names: list[str],
                      limits: dict[str, tuple], path: PathLike, *, title: str, captions: dict[str, str]) -> Path:
    """One frame of the layers' lapse: every layer's map at one snapshot side by side, each in its own fixed view
    (`limits`, from common_limits over all of that layer's maps) with its caption under it."""
    chosen = _frame_maps(maps_at, labels, limits)
    labels = np.asarray(labels)
    size, columns, key_columns, key_px = _layers_frame_layout(len(chosen), class_names)
    figure = new_figure(size)
    figure.text(0.5, 1 - 12 / size[1], title, ha="center", va="top", fontsize=12)
    for position, (layer, xy) in enumerate(chosen.items()):
        row, column = divmod(position, columns)
        left, top = 16 + column * (_LAYER_PANEL_PX + 16), _FRAME_TITLE_PX + row * _LAYER_ROW_PX + 24
        axes = figure.add_axes(fraction_rect(size, left, top, _LAYER_PANEL_PX, _LAYER_PANEL_PX))
        scatter_by_class(axes, xy, labels, len(class_names), None, limits[layer],
                          marker_scale=_LAYER_PANEL_PX / 600)
        axes.set_title(layer, fontsize=10)
        if caption := captions.get(layer):
            figure.text((left + _LAYER_PANEL_PX / 2) / size[0], 1 - (top + _LAYER_PANEL_PX + 4) / size[1],
                        wrapped(caption, _LAYER_PANEL_PX, 3), ha="center", va="top", fontsize=7, color="0.35")
    _draw_class_key(figure, size, class_names, key_columns, key_px)
    return save_png(figure, path)
