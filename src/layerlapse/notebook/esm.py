"""The widget's JavaScript module (anywidget's `_esm`): the report's own parts, joined by report/script.py's
functions, then the widget's (js/). The point layer is the report's `makePointLayer`; payload.js gives
`undoDeltas` (the report's gzip of frame deltas); thumbnails.js's `makeThumbnails` takes each atlas's PNG from the
model's buffers (its `sheetText`) where the page reads a <script> tag. A fix to any of these parts lands in the report, the live page and
the widget alike.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..report.script import INDENT, point_layer_script, read_part

WIDGET_PARTS = ("widget.js", "interaction.js")  # the view, then its behaviour and the module's export


@lru_cache(maxsize=1)
def widget_module() -> str:
    """The widget's ES module: the report's point layer, entry and thumbnails, then the widget's own code."""
    thumbnails = "\n".join(INDENT + line if line else line for line in read_part("thumbnails.js").split("\n"))
    wrapped = (f'function thumbnailParts() {{\n{INDENT}"use strict";\n{thumbnails.rstrip()}\n'
               f"{INDENT}return makeThumbnails;\n}}\n")
    own = "\n".join(resources.files(__package__).joinpath("js", part).read_text(encoding="utf-8")
                    for part in WIDGET_PARTS)
    return "\n".join([point_layer_script(), read_part("payload.js"), wrapped, own])
