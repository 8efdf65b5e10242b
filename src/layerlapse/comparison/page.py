"""The comparison's own panels on the report's page (the report's `Extras`): beside the map, CKA between the shown
runs' layers, their agreement and the confusion matrices' difference at the snapshot (compare.js fills them), the
shown pair's measures over the snapshots, and every run's accuracy curves overlaid (the selection panel below the
map is the report's own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..report.content import ReportContent
from ..render.style import RUN_COLORS
from ..report.panels import legend_above, snapshot_marker
from ..report.style import SIDE_WIDTH
from ..store.history import metric_series
from .compute import Compared

if TYPE_CHECKING:
    from bokeh.models import Plot, Span


def comparison_extras(compared: Compared):
    """The `Extras` of the comparison's page: a function of the (possibly subsampled) content."""
    def extras(content: ReportContent) -> dict:
        from bokeh.models import Div

        table = Div(text="", width=SIDE_WIDTH, height=330, name="layerlapse-compare-table",
                    styles={"overflow-y": "auto"})
        curves, source, span = _pair_curves(content)
        runs, run_span = _run_curves(compared)
        return {"side": [table, curves, *([runs] if runs is not None else [])], "below": [],
                "models": {"compareTable": table, "compareCurves": source},
                "spans": [span, *([run_span] if run_span is not None else [])]}
    return extras


def _pair_curves(content: ReportContent) -> tuple[Plot, object, Span]:
    """The shown maps' pair over the snapshots (compare.js fills the source when the maps change)."""
    from bokeh.models import ColumnDataSource, Range1d
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
    legend_above(plot, spacing=6)
    plot.xaxis.axis_label = "snapshot"
    return plot, source, snapshot_marker(plot)


def _run_curves(compared: Compared) -> tuple[Plot | None, Span | None]:
    """Every run's validation accuracy (else training accuracy) at its matched snapshots, overlaid."""
    from bokeh.models import Range1d
    from bokeh.plotting import figure

    frames = len(compared.joined.frames)
    plot = figure(width=SIDE_WIDTH, height=190, title="accuracy of each run", tools="", toolbar_location=None,
                  x_range=Range1d(-0.5, max(frames - 1, 1) + 0.5), name="layerlapse-compare-runs")
    drawn = False
    for k, name in enumerate(compared.joined.names):
        rows, x = compared.matched_history(k)
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
    legend_above(plot, spacing=6)
    plot.xaxis.axis_label = "snapshot"
    return plot, snapshot_marker(plot)
