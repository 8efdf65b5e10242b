"""The Bokeh panels below and beside the map: the data map, the hardest and most forgotten strips, the layer
measures, the training curves and the confusion matrix; the page's code (js/panels.js, selection.js) fills and
moves them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..store.history import metric_series
from .content import REGIONS, VARIABILITY_MAX, ReportContent
from .style import DATA_MAP_SIZE, SELECTION_WIDTH, SIDE_WIDTH, STRIP_WIDTH, correctness_palette, short_name

if TYPE_CHECKING:
    from bokeh.models import ColumnDataSource, Plot, Span


def transparent_with_select_tools(plot: Plot) -> None:
    """A plot whose points the page's point layer draws under it: no fill of its own over them, and box and lasso
    select tools that select no Bokeh renderer (selection.js receives their geometry and selects its points)."""
    from bokeh.models import BoxSelectTool, LassoSelectTool

    plot.background_fill_color = None
    plot.border_fill_color = None
    plot.outline_line_color = "#cccccc"
    plot.add_tools(BoxSelectTool(renderers=[]), LassoSelectTool(renderers=[]))
    plot.toolbar.logo = None


def data_map_panel(content: ReportContent) -> dict | None:
    """Dataset cartography's data map of the probe (variability × confidence, coloured by correctness or class), a
    region choice, and box and lasso select (the selection they make is listed in the selection panel)."""
    from bokeh.layouts import column, row
    from bokeh.models import BoxSelectTool, ColorBar, LinearColorMapper, Range1d, Select
    from bokeh.plotting import figure

    if content.probe.dynamics is None:
        return None
    plot = figure(width=DATA_MAP_SIZE[0], height=DATA_MAP_SIZE[1], output_backend="canvas",
                  name="layerlapse-data-map", title="data map of the probe (drag: select)",
                  x_range=Range1d(0, VARIABILITY_MAX), y_range=Range1d(0, 1.02), tools="reset",
                  toolbar_location="right")
    transparent_with_select_tools(plot)
    plot.toolbar.active_drag = plot.select_one({"type": BoxSelectTool})
    plot.xaxis.axis_label, plot.yaxis.axis_label = "variability", "confidence"
    _region_cut_offs(plot, content.regions)
    # the points are the point layer's; selection.js swaps this mapper's palette between correctness (red: never
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
    layout = column(row(region, color), plot)
    return {"dataMap": plot, "dataMapMapper": mapper, "dataMapColorBar": bar, "region": region,
            "dataMapColor": color, "layout": layout}


def selection_panel() -> dict:
    """The selection, whatever made it (a box, a lasso, a region, a confusion cell, a search): its heading and its
    items (selection.js), and what keeps it (keep.js): a CSV of its rows, its ids copied, a name to keep it by in
    this browser, and the kept selections to come back to."""
    from bokeh.layouts import column, row
    from bokeh.models import Button, Div, Select, TextInput

    csv = Button(label="⤓ CSV", width=70, name="layerlapse-selection-csv", disabled=True,
                 html_attributes={"title": "Download the selected items' rows as CSV (what the page shows of each)"})
    copy = Button(label="copy ids", width=80, name="layerlapse-selection-copy", disabled=True,
                  html_attributes={"title": "Copy the selected items' probe indices to the clipboard"})
    name = TextInput(placeholder="name it (Enter: keep)", width=SELECTION_WIDTH - 70 - 80 - 20,
                     name="layerlapse-keep-name", disabled=True)
    kept = Select(options=[("", "kept selections (none yet)")], value="", width=SELECTION_WIDTH,
                  name="layerlapse-kept", disabled=True)
    selection = Div(text="", width=SELECTION_WIDTH, height=DATA_MAP_SIZE[1] - 40, name="layerlapse-selection",
                    styles={"overflow-y": "auto"})
    return {"selection": selection, "selectionCsv": csv, "selectionCopy": copy, "keepName": name, "kept": kept,
            "layout": column(row(csv, copy, name), kept, selection)}


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


def strip_divs(content: ReportContent) -> dict:
    """The probe's hardest and most forgotten images (panels.js fills them with thumbnails)."""
    from bokeh.models import Div

    return {name: Div(text="", width=STRIP_WIDTH, height=200, name=f"layerlapse-{name}",
                      styles={"overflow-y": "auto"}) for name in content.strips}


def measures_panel(content: ReportContent) -> dict | None:
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


def curve_figures(history: list[dict], axis: tuple[list[float], list[float], str], epochs: list[int]
                   ) -> list[tuple[Plot, Span]]:
    """Accuracy and loss, train and validation, against what `axis` names (`store.curve_axis`: the epoch, or the
    optimizer step of a run recorded by step), each with a vertical marker at the shown snapshot. The x axis spans
    the slider's snapshots with some room to spare, so the marker shows at the first (before the first point) and
    off the border at the last; the legend sits above the plot, never on the curves."""
    from bokeh.models import BasicTicker, ColumnDataSource, Range1d
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
        legend_above(plot, spacing=8)
        plot.xaxis.axis_label = x_name
        plot.xaxis.ticker = BasicTicker(min_interval=1)  # whole epochs, steps or snapshots
        curves.append((plot, snapshot_marker(plot)))
    return curves


def legend_above(plot: Plot, spacing: int) -> None:
    """A curves plot's legend in one line above it, never on the curves."""
    legend = plot.legend[0]
    legend.orientation, legend.label_text_font_size = "horizontal", "8pt"
    legend.padding, legend.margin, legend.spacing = 2, 0, spacing
    plot.add_layout(legend, "above")


def snapshot_marker(plot: Plot) -> Span:
    """The dashed vertical line at the shown snapshot (panels.js moves it with the slider)."""
    from bokeh.models import Span

    span = Span(location=0, dimension="height", line_color="black", line_dash="dashed", line_width=1.5)
    plot.add_layout(span)
    return span


def confusion_figure(content: ReportContent) -> tuple[Plot, ColumnDataSource] | None:
    """The probe's confusion matrix at the shown epoch: rows true, columns predicted, shaded by row share. A click
    on a cell (or, with the plot focused, arrow keys and Enter) selects the probe items of its true class predicted
    as its class at the shown snapshot (panels.js); the chosen cell is outlined, the keyboard's cell dashed."""
    from bokeh.models import ColumnDataSource, CustomJS, FixedTicker, LinearColorMapper, Range1d, Title
    from bokeh.palettes import Blues256
    from bokeh.plotting import figure

    if content.confusion is None:
        return None
    classes = len(content.class_names)
    true, predicted = np.divmod(np.arange(classes * classes), classes)
    source = ColumnDataSource({"true": true, "predicted": predicted, "share": np.zeros(classes * classes),
                               "count": [""] * (classes * classes), "ink": ["black"] * (classes * classes)},
                              name="layerlapse-confusion")
    names = {index: short_name(name) for index, name in enumerate(content.class_names)}
    # the title starts above the frame, right of the class names: long names leave it room for fewer words
    of = "" if max(len(name) for name in names.values()) > 6 else " of the probe"
    title = f"confusion{of} at the shown {content.slider_title}"
    plot = figure(width=SIDE_WIDTH, height=SIDE_WIDTH, title=title, tools="", toolbar_location=None,
                  x_range=Range1d(-0.5, classes - 0.5), y_range=Range1d(classes - 0.5, -0.5),
                  name="layerlapse-confusion-plot")
    shade = LinearColorMapper(palette=list(reversed(Blues256)), low=0.0, high=1.0,
                              name="layerlapse-confusion-shade")  # looks.js darkens it in the dark scheme
    plot.rect("predicted", "true", 1, 1, source=source, fill_color={"field": "share", "transform": shade},
              line_color="white")
    if classes <= 20:
        plot.text("predicted", "true", text="count", source=source, text_align="center",
                  text_baseline="middle", text_font_size="8pt", text_color="ink")
    for name, color, dash in (("chosen", "#ff7f0e", "solid"), ("cursor", "black", "dashed")):
        marks = ColumnDataSource({"x": [], "y": []}, name=f"layerlapse-confusion-{name}")
        plot.rect("x", "y", 1, 1, source=marks, fill_color=None, line_color=color, line_width=3, line_dash=dash)
    tapped = CustomJS(code="if (window.layerlapse) window.layerlapse.tapConfusion(cb_obj);")
    for event in ("tap", "doubletap"):  # a second click within 300 ms is Bokeh's double tap: it lets go as well
        plot.js_on_event(event, tapped)
    plot.add_layout(Title(text="click a cell to select its items", text_font_size="8pt", text_font_style="italic",
                          text_color="#555555"), "above")  # the keys: in the canvas's aria-label (panels.js)
    for axis in (plot.xaxis, plot.yaxis):
        axis.ticker = FixedTicker(ticks=list(range(classes)))
        axis.major_label_overrides = names  # drawn on the canvas: text, never markup
    plot.xaxis.axis_label, plot.yaxis.axis_label = "predicted", "true"
    if max(len(name) for name in names.values()) * classes > 40:  # names that would overlap along the bottom
        plot.xaxis.major_label_orientation = math.pi / 4
    plot.grid.visible = False
    return plot, source
