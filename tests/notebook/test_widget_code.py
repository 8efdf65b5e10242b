"""The widget's code: the report's parts joined as they are (not a copy that could drift: a fix to the report's
JavaScript lands in the widget), and its own functions held to the report's limit (tests/report/test_report_code.py's
scan)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from layerlapse.report.script import POINT_LAYER_PARTS, point_layer_script, read_part

pytest.importorskip("anywidget", reason="the notebook extra: pip install 'layerlapse[notebook]'")

from layerlapse.notebook.esm import WIDGET_PARTS, widget_module  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "src" / "layerlapse" / "notebook"
REPORT_CODE = Path(__file__).resolve().parents[1] / "report" / "test_report_code.py"


def report_code_scan():
    spec = importlib.util.spec_from_file_location("report_code_scan", REPORT_CODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_widget_draws_with_the_report_s_own_parts() -> None:
    module = widget_module()
    assert point_layer_script() in module  # makePointLayer, every part of it, as the report joins it
    assert read_part("payload.js") in module  # undoDeltas
    for line in read_part("thumbnails.js").splitlines():
        assert line.strip() in module  # makeThumbnails, wrapped to read the model's buffers
    assert module.count("function makePointLayer(") == 1 and module.count("function undoDeltas(") == 1
    own = "".join((NOTEBOOK / "js" / part).read_text() for part in WIDGET_PARTS)
    for part in POINT_LAYER_PARTS:  # none of the point layer's functions is written again in the widget's files
        for name, _ in report_code_scan().js_functions(read_part(part)):
            if name not in ("(arrow)", "(anonymous)"):
                assert f"function {name}(" not in own, name
    assert module.rstrip().endswith("};") and "export default" in module


@pytest.mark.parametrize("part", WIDGET_PARTS)
def test_no_widget_function_is_longer_than_the_report_s_limit(part: str) -> None:
    scan = report_code_scan()
    found = scan.js_functions((NOTEBOOK / "js" / part).read_text(encoding="utf-8"))
    long = [(name, lines) for name, lines in found if lines > scan.MAX_FUNCTION_LINES]
    assert not long, f"{part}: functions over {scan.MAX_FUNCTION_LINES} lines: {long}"
    print(sorted(found, key=lambda item: -item[1])[:3])
