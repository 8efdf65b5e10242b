"""The interactive report: one self-contained `report.html` per run, written by `write_report`: Bokeh (its resources
inlined, so the page makes no network request) for the controls, axes, legend, curves and panels, and the page's own
point layer for the maps' points: a WebGL canvas under each map's frame (a 2-D canvas where there is no WebGL), to
which every frame's positions are uploaded once, so that a slider step only chooses the frames to draw and playing
blends two frames in the shader.

The page's parts: content.py reads the run, pack.py packs its arrays into the payload, budget.py keeps the page
within its size budget, style.py and panels.py hold its looks and its Bokeh panels, script.py joins its JavaScript
(js/, by concern). What travels between Python and the page's JavaScript, the payload, the Bokeh models' names and
the hook for tests and benchmarks (`window.layerlapse`), is the page's data contract, js/contract.js.
`page_payload(page)` reads a written page's payload back with every array decoded.

Torch is never imported here: a stored run folder is all the report needs.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import REPORT_BUDGET_MB
from ..errors import ConfigError
from ..store import layout
from ..store.atomic import atomic_output
from ..store.run import RunFolder
from .budget import MB, fit_to_budget
from .content import ReportContent, chosen_layers, page_curve_axis, read_content
from .pack import Blobs, payload, undo_delta_planes
from .panels import (confusion_figure, curve_figures, data_map_panel, measures_panel, selection_panel, strip_divs,
                     transparent_with_select_tools)
from .script import page_script
from .style import (COMPARE_SIZE, MAP_SIZE, PAGE_STYLE, SIDE_WIDTH, class_colors, colorblind_colors, short_name,
                    theme_stylesheet)

if TYPE_CHECKING:
    from bokeh.document import Document
    from bokeh.models import ColorBar, GlyphRenderer, LayoutDOM, Legend, LinearColorMapper, Plot


def write_report(run: RunFolder, path: str | os.PathLike | None = None, *,
                 size_budget_mb: float = REPORT_BUDGET_MB,
                 layers: Sequence[str] | None = None) -> Path:
    """Write the run's interactive report, one self-contained HTML file, atomically; return its path.

    Past the size budget the page shows a stratified, seeded subsample of the points, says so, and a
    `ReportSizeWarning` is issued; points are never cut silently.

    Parameters
    ----------
    run
        The stored run folder to report on (`load_run`); every chosen layer needs its maps (`layerlapse render`).
    path
        Where to write the page; default `run.path / "report.html"`.
    size_budget_mb
        The page's largest size, in SI megabytes (a positive number; default `config.REPORT_BUDGET_MB`).
    layers
        The recorded layers the page can switch between, the first shown first; default: all of them.

    Returns
    -------
    Path
        The written page.

    Raises
    ------
    ConfigError
        For a size budget that is not positive or too small for the page without its points, or a layer the run
        did not record.
    RunFolderError
        For a chosen layer without maps, or a run folder that lacks what the page needs.
    """
    chosen = check_settings(run, size_budget_mb, layers)
    target = Path(path) if path is not None else run.local(layout.REPORT)
    content = read_content(run, chosen)
    page = fit_to_budget(content, int(size_budget_mb * MB), size_budget_mb, render_page)
    with atomic_output(target) as temp:
        temp.write_text(page, encoding="utf-8")
    return target


def check_settings(run: RunFolder, size_budget_mb: float, layers: Sequence[str] | None) -> list[str]:
    """The layers the report shows, or the one-line error for a size budget or a layer choice it cannot use."""
    if not size_budget_mb > 0:
        raise ConfigError(f"size_budget_mb must be a positive number of megabytes, got {size_budget_mb!r}")
    return chosen_layers(run, layers)


PAYLOAD_TAG = "layerlapse-payload"


def page_payload(page: str) -> dict:
    """A written page's payload with every array decoded (numpy) and every atlas as its PNG bytes: what the page's code
    reads, read back (for tests and tools)."""
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


# More panels for a page that shows more than one run (layerlapse.compare): given the content, the Bokeh models to
# add beside the map ("side"), below it ("below"), and for the page's code ("models")
Extras = Callable[[ReportContent], dict]


def render_page(content: ReportContent, extras: Extras | None = None) -> str:
    """The whole HTML page, Bokeh's resources inlined, the payload and its arrays in <script> tags of their own."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    document, data_tags = page_parts(content, extras)
    page = file_html(document, INLINE, title=content.title)
    end = page.rfind("</body>")
    head = page.find("<head>")
    if end < 0 or head < 0:
        raise RuntimeError("Bokeh's page has no <head> or </body>: this Bokeh version's file_html is not what page.py "
                           "expects")
    head += len("<head>")
    return page[:head] + "\n" + HEAD + page[head:end] + data_tags + page[end:]


# A phone lays the page out at its own width, at its own scale, rather than as a desktop page shrunk to fit; the page
# follows the system's light or dark scheme (style.py's PAGE_STYLE, and looks.js for what Bokeh draws on canvas)
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
HEAD = f'{VIEWPORT}\n<meta name="color-scheme" content="light dark">\n<style>{PAGE_STYLE}</style>\n'


def page_parts(content: ReportContent, extras: Extras | None = None) -> tuple[Document, str]:
    """The page's Bokeh document and its data tags (the payload and its blobs): the offline page joins them into one
    file, the live page (live.py) sends them to a page that is already open."""
    from bokeh.document import Document

    blobs = Blobs()
    data = payload(content, blobs)
    document = Document()
    root = build_layout(content, document, extras)
    themed(root)  # before the root joins the document: each change there would walk the document's models again
    document.add_root(root)
    return document, f'<script type="application/json" id="{PAYLOAD_TAG}">{data}</script>\n{blobs.html()}'


def themed(root: LayoutDOM) -> None:
    """Every element of the page with the one stylesheet that makes it dark where the system is (style.py): one
    stylesheet model, shared, so the page holds its text once."""
    from bokeh.models import UIElement

    sheet = theme_stylesheet()
    for model in root.references():
        if isinstance(model, UIElement):
            model.stylesheets = [*model.stylesheets, sheet]


def header_html(content: ReportContent) -> str:
    """The page's heading: run and notes, every piece of run data HTML-escaped."""
    notes = "".join(f'<p class="layerlapse-note">{html.escape(note)}</p>' for note in content.notes)
    return (f"<h2 style='margin:4px 0'>{html.escape(content.title)}</h2>"
            f"<p style='margin:2px 0'>{html.escape(content.summary)}</p>{notes}")


def build_layout(content: ReportContent, document: Document, extras: Extras | None = None) -> LayoutDOM:
    """The page's Bokeh models; `document` gets the callback that starts the page's code (script.py) once the page
    is drawn."""
    from bokeh.layouts import column, row
    from bokeh.models import CustomJS, Div

    more = extras(content) if extras is not None else {"side": [], "below": [], "models": {}, "spans": []}

    mapper = _point_color_mapper(content)
    views = [_map_figure(content, "", MAP_SIZE), _map_figure(content, "compare-", COMPARE_SIZE)]
    views[1]["plot"].visible = False  # until a layer is chosen to compare with
    controls = _controls(content)
    # fixed sizes: a Div whose text changes then never makes Bokeh lay out the whole page again (~0.5 s)
    # (with texts, taller and scrolling: the pinned item's whole text is shown there)
    pinned = Div(text="", width=SIDE_WIDTH, height=90 if content.probe.texts is None else 150,
                 name="layerlapse-pinned", styles={"overflow-y": "auto"})
    figures = Div(text="", width=SIDE_WIDTH, height=95, name="layerlapse-figures", styles={"overflow-y": "auto"})
    curves = curve_figures(content.history, page_curve_axis(content), content.epochs)
    confusion = confusion_figure(content)
    data_map = data_map_panel(content)
    strips = strip_divs(content)
    measures = measures_panel(content)
    class_legend, class_renderers = _class_legend(views[0]["plot"], content.class_names,
                                                  class_colors(len(content.class_names)))
    side = column(row(controls["find"], controls["palette"]), pinned, figures, *more["side"],
                  *[plot for plot, _ in curves],
                  *([confusion[0]] if confusion else []), *([measures["layout"]] if measures else []),
                  name="layerlapse-side")
    selection = selection_panel()
    header = Div(text=header_html(content), width=MAP_SIZE[0] + SIDE_WIDTH + 20, name="layerlapse-header")
    models = {**_map_models(views), "colorMapper": mapper, "colorBar": _color_bar(views[0]["plot"], mapper),
              "side": side, "header": header, **{key: value for key, value in selection.items() if key != "layout"},
              "classRenderers": class_renderers, "classLegend": class_legend, **controls, "pinned": pinned,
              "figures": figures,
              "curveSpans": [span for _, span in curves], "spans": [*(measures["spans"] if measures else []), *more.get("spans", [])],
              "confusion": confusion[1] if confusion else None,
              **{key: value for key, value in (data_map or {}).items() if key != "layout"},
              "strips": strips,
              **{key: value for key, value in (measures or {}).items() if key not in ("layout", "spans")},
              **more["models"]}
    _wire_events(views, controls, class_renderers, data_map, selection)
    strip_list = list(strips.values())
    # the selection panel beside the data map, or alone below the map where the run has no dynamics
    chosen = row(data_map["layout"], selection["layout"]) if data_map else selection["layout"]
    below = [*more["below"], chosen,
             *[row(*strip_list[k:k + 2]) for k in range(0, len(strip_list), 2)]]  # two a row, as wide as the map
    map_column = column(row(controls["play"], controls["slider"], controls["layer"], controls["compare"]),
                        row(controls["showTest"], controls["highlightWrong"], controls["colorBy"]),
                        views[0]["plot"], *below, name="layerlapse-map-column")
    root = column(header, row(map_column, views[1]["plot"], side), name="layerlapse-root")
    models["mapColumn"] = map_column  # as wide as its map beside a compared one (layout.js): its rows wrap
    # the payload's tag follows Bokeh's document in the page: read when the document is ready, not before
    models["root"] = root
    start = CustomJS(args=models, code=page_script() + f"\nlayerlapseStart({{{', '.join(models)}}}, document"
                     f".getElementById('{PAYLOAD_TAG}').textContent);")
    document.js_on_event("document_ready", start)
    return root


def _map_models(views: list[dict]) -> dict:
    """The maps' models as the page's code gets them: one list per kind, map k at index k (CustomJS args take lists)."""
    return {f"{kind}s": [view[kind] for view in views]
            for kind in ("plot", "trailSource", "currentSource", "hoverSource")}


def _point_color_mapper(content: ReportContent) -> LinearColorMapper:
    """One mapper for every map's probe points: class colours (the PNG frames'), or, when the page colours by a
    measure, a sequential palette over the measure's range; NaN (never learned) is grey."""
    from bokeh.models import LinearColorMapper

    colors = class_colors(len(content.class_names))
    return LinearColorMapper(palette=colors, low=-0.5, high=len(colors) - 0.5, nan_color="#bbbbbb",
                             name="layerlapse-color-mapper")


def _color_bar(plot: Plot, mapper: LinearColorMapper) -> ColorBar:
    """The legend of a measure's colouring, beside the map where the class legend stands while the points have their
    class colours (maps.js shows one or the other): the points' own mapper, the measure's title and range."""
    from bokeh.models import ColorBar

    bar = ColorBar(color_mapper=mapper, orientation="vertical", width=14, height=260, title="", visible=False,
                   title_text_font_size="9pt", title_text_font_style="italic", major_label_text_font_size="8pt",
                   padding=4, name="layerlapse-color-bar")
    plot.add_layout(bar, "right")
    return bar


def _map_figure(content: ReportContent, prefix: str, size: tuple[int, int]) -> dict:
    """A map: axes, tools, the legend and the pinned point's trail, on a transparent background; its points (probe
    points coloured by class or a measure, test points as diamonds in their class colour, the misclassified ringed,
    as the PNG frames draw them) lie under the frame on the page's point layer (js/pointlayer*.js). Box and lasso
    select give their geometry to selection.js, which highlights the points inside on every map and in the data map."""
    from bokeh.models import BoxZoomTool, PanTool, Range1d, ResetTool, WheelZoomTool
    from bokeh.plotting import figure

    shown = content.layers[0]
    if prefix and content.comparison and content.comparison.get("initialCompare"):
        shown = content.comparison["initialCompare"]  # a comparison opens with the second run's map beside
    x0, x1, y0, y1 = content.limits[shown]
    # the mouse wheel scrolls the page: the wheel zoom is in the toolbar, off until the reader turns it on
    pan = PanTool()
    wheel = WheelZoomTool(description="Wheel zoom (click to turn on: the wheel then zooms the map, not the page)")
    # titled with its layer (maps.js keeps the title in step; a title is canvas text, never markup)
    plot = figure(width=size[0], height=size[1], output_backend="canvas", name=f"layerlapse-{prefix}map",
                  title=f"layer {shown}", x_range=Range1d(x0, x1), y_range=Range1d(y0, y1),
                  tools=[pan, wheel, BoxZoomTool(), ResetTool()], active_scroll=None, active_drag=pan)
    transparent_with_select_tools(plot)
    plot.xaxis.visible = plot.yaxis.visible = False
    plot.grid.visible = False
    return {"plot": plot, **_trail_glyphs(plot, prefix)}


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
    # the point hovered on the other map, ringed here: one item seen on both maps
    hovered = ColumnDataSource({"x": [], "y": []}, name=f"layerlapse-{prefix}hovered")
    plot.ellipse("x", "y", width=13, height=13, width_units="screen", height_units="screen", source=hovered,
                 fill_alpha=0, line_color="#d62728", line_width=2)
    return {"trailSource": trail, "currentSource": current, "hoverSource": hovered}


def _class_legend(plot: Plot, class_names: list[str], colors: list[str]) -> tuple[Legend, list[GlyphRenderer]]:
    """A legend entry per class whose click hides or shows it (on every map): each entry's renderer is a stand-in
    that is never drawn (one NaN point); maps.js reads their visibility, and hides the legend while the points are
    coloured by a measure (the measure's colour bar stands in its place then)."""
    from bokeh.core.properties import value
    from bokeh.models import Legend, LegendItem

    stand_ins = [plot.ellipse([math.nan], [math.nan], width=9, height=9, width_units="screen",
                              height_units="screen", fill_color=color, line_color=color) for color in colors]
    items = [LegendItem(label=value(short_name(name)), renderers=[stand_in])
             for name, stand_in in zip(class_names, stand_ins)]
    legend = Legend(items=items, click_policy="hide", label_text_font_size="9pt", spacing=0, padding=4,
                    title="class (click: hide)", name="layerlapse-class-legend")
    plot.add_layout(legend, "right")
    return legend, stand_ins


def _controls(content: ReportContent) -> dict:
    from bokeh.models import Button, Select, Slider, TextInput, Toggle

    last = content.epochs[-1]
    # wide enough for a comparison's "seed 0 · hidden" (a select cuts its text)
    layer_width = min(220, max(120, 7 * max(len(layer) for layer in content.layers) + 36))
    slider = Slider(start=0, end=max(last, 1), value=last, step=1, title=content.slider_title, width=240,
                    disabled=last == 0, name="layerlapse-epoch")
    play = Button(label="▶ play", width=80, disabled=last == 0, name="layerlapse-play")
    layer = Select(options=content.layers, value=content.layers[0], width=layer_width,
                   title="layer", disabled=len(content.layers) == 1, name="layerlapse-layer")
    compare = Select(options=compare_options(content.layers, content.layers[0]), value="none", width=layer_width,
                     title="compare with", disabled=len(content.layers) == 1, name="layerlapse-compare")
    show_test = Toggle(label=shown_test_points_label(content), active=False, disabled=content.test is None, width=190,
                       name="layerlapse-show-test", stylesheets=[TOGGLE_STYLE])
    wrong = Toggle(label="highlight misclassified" if content.probe.predicted is not None
                   else "no predictions stored", active=False, disabled=content.probe.predicted is None,
                   width=180, name="layerlapse-misclassified", stylesheets=[TOGGLE_STYLE])
    color_by = Select(options=[("class", "colour: class")] + [(measure["key"], f"colour: {measure['label']}")
                                                               for measure in content.color_measures],
                      value="class", width=190, disabled=not content.color_measures, name="layerlapse-color-by")
    # find.js reads what is typed: a probe index, a class, a prediction, or words of the items' texts
    find = TextInput(placeholder=FIND_HINT, width=SIDE_WIDTH - 150, name="layerlapse-find",
                     description=FIND_HELP)
    safe = colorblind_colors(len(content.class_names)) is not None  # none past ten classes (render/style.py)
    palette = Select(options=[("tab10", "colours: tab10"),
                              ("colorblind", "colour-blind safe" if safe else "colour-blind: ≤10 classes")],
                     value="tab10", width=140, disabled=not safe, name="layerlapse-palette")
    return {"slider": slider, "play": play, "layer": layer, "compare": compare, "showTest": show_test,
            "highlightWrong": wrong, "colorBy": color_by, "find": find, "palette": palette}


FIND_HINT = "find: #index, class, text (/)"
FIND_HELP = ("Find probe items: #3121 (a probe index), a class name, true:cat or predicted:dog (at the shown "
             "snapshot), or words of the items' texts. The matches are selected; Enter pins the first.")


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
                 data_map: dict | None, selection: dict) -> None:
    """Every widget and map event calls into the page's `window.layerlapse` (testhook.js)."""
    from bokeh.models import CustomJS

    def call(method: str, argument: str = "", args: dict | None = None) -> CustomJS:
        return CustomJS(args=args or {}, code=f"if (window.layerlapse) window.layerlapse.{method}({argument});")

    controls["slider"].js_on_change("value", call("setEpoch", "cb_obj.value"))
    controls["play"].js_on_event("button_click", call("togglePlay"))
    controls["layer"].js_on_change("value", call("setLayer", "cb_obj.value"))
    controls["compare"].js_on_change("value", call("setCompare", "cb_obj.value === 'none' ? null : cb_obj.value"))
    controls["colorBy"].js_on_change("value", call("setColorBy", "cb_obj.value"))
    controls["palette"].js_on_change("value", call("setPalette", "cb_obj.value"))
    controls["find"].js_on_change("value_input", call("find", "cb_obj.value_input"))
    controls["find"].js_on_change("value", call("find", "cb_obj.value, {pin: true}"))
    selection["selectionCsv"].js_on_event("button_click", call("downloadSelection"))
    selection["selectionCopy"].js_on_event("button_click", call("copySelection"))
    selection["keepName"].js_on_change("value", call("keepSelection", "cb_obj.value"))
    selection["kept"].js_on_change("value", call("recallSelection", "cb_obj.value"))
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
    """A plot whose points the page's point layer draws: a box or lasso drawn on it selects, a pan or zoom repaints."""
    plot.js_on_event("selectiongeometry", call("selectGeometry", f"cb_obj.geometry, cb_obj.final, {which}"))
    for plot_range in (plot.x_range, plot.y_range):
        for end in ("start", "end"):
            plot_range.js_on_change(end, call("repaint"))


