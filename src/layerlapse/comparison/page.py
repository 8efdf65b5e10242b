"""The comparison's own panels on the report's page (the report's `Extras`): beside the map, CKA between the shown
runs' layers, their agreement and the confusion matrices' difference at the snapshot (compare.js fills them), the
shown pair's measures over the snapshots, and every run's accuracy curves overlaid; below the map, the selected
items."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..report.content import ReportContent
from ..report.style import SELECTION_WIDTH, SIDE_WIDTH
from ..store.history import metric_series
from .compute import Compared

if TYPE_CHECKING:
    from bokeh.models import Plot, Span

RUN_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def comparison_extras(compared: Compared):
    """The `Extras` of the comparison's page: a function of the (possibly subsampled) content."""
    def extras(content: ReportContent) -> dict:
        from bokeh.models import Div

        table = Div(text="", width=SIDE_WIDTH, height=330, name="layerlapse-compare-table",
                    styles={"overflow-y": "auto"})
        curves, source, span = _pair_curves(content)
        runs, run_span = _run_curves(compared)
        selection = Div(text="", width=SELECTION_WIDTH, height=80, name="layerlapse-selection",
                        styles={"overflow-y": "auto"})
        return {"side": [table, curves, *([runs] if runs is not None else [])], "below": [selection],
                "models": {"compareTable": table, "compareCurves": source, "selection": selection},
                "spans": [span, *([run_span] if run_span is not None else [])]}
    return extras


def _pair_curves(content: ReportContent) -> tuple[Plot, object, Span]:
    """The shown maps' pair over the snapshots (compare.js fills the source when the maps change)."""
    from bokeh.models import ColumnDataSource, Range1d, Span
    from bokeh.plotting import figure

    frames = content.epochs
    source = ColumnDataSource({"frame": [], "cka": [], "overlap": [], "both": [], "same": []},
                              name="layerlapse-compare-curves")
    plot = figure(width=SIDE_WIDTH, height=210, title="the shown maps' runs, over the snapshots", tools="",
                  toolbar_location=None, x_range=Range1d(-0.5, max(frames[-1], 1) + 0.5), y_range=Range1d(0, 1.05),
                  name="layerlapse-compare-curves-plot")
    for key, label, color in (("cka", "CKA of the two layers", "#1f77b4"), ("overlap", "10-NN overlap", "#ff7f0e"),
                              ("both", "both right", "#2ca02c"), ("same", "same prediction", "#7f7f7f")):
        plot.line("frame", key, source=source, color=color, line_width=2, legend_label=label)
    _legend_above(plot)
    plot.xaxis.axis_label = "snapshot"
    span = Span(location=0, dimension="height", line_color="black", line_dash="dashed", line_width=1.5)
    plot.add_layout(span)
    return plot, source, span


def _run_curves(compared: Compared) -> tuple[Plot | None, Span | None]:
    """Every run's validation accuracy (else training accuracy) at its matched snapshots, overlaid."""
    from bokeh.models import Range1d, Span
    from bokeh.plotting import figure

    joined = compared.joined
    frames = len(joined.frames)
    plot = figure(width=SIDE_WIDTH, height=190, title="accuracy of each run", tools="", toolbar_location=None,
                  x_range=Range1d(-0.5, max(frames - 1, 1) + 0.5), name="layerlapse-compare-runs")
    drawn = False
    for k, (name, run) in enumerate(zip(joined.names, joined.runs)):
        frame_of = {snapshots[k]: frame for frame, snapshots in enumerate(joined.frames)}
        rows = [row for row in run.history if row.get("snapshot") in frame_of]
        x = [frame_of[row["snapshot"]] for row in rows]
        for key, dash in (("val_acc", "solid"), ("acc", "dashed")):
            series = metric_series(rows, x, key)
            if series is None:
                continue
            label = f"{name} {'val.' if key == 'val_acc' else 'train'}"
            plot.line(*series, color=RUN_COLORS[k % len(RUN_COLORS)], line_width=2, line_dash=dash,
                      legend_label=label)
            drawn = True
    if not drawn:
        return None, None
    _legend_above(plot)
    plot.xaxis.axis_label = "snapshot"
    span = Span(location=0, dimension="height", line_color="black", line_dash="dashed", line_width=1.5)
    plot.add_layout(span)
    return plot, span


def _legend_above(plot: Plot) -> None:
    legend = plot.legend[0]
    legend.orientation, legend.label_text_font_size = "horizontal", "8pt"
    legend.padding, legend.margin, legend.spacing = 2, 0, 6
    plot.add_layout(legend, "above")
